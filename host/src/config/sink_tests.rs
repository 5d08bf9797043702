//! `[sink]` for files and the console: what each key becomes, and what is refused, by key.

use super::*;
use crate::sink::{ConsoleSpec, Delivery, FileFormat, FileSinkSpec, SinkTarget};

const SOURCE: &str = r#"
checkpointLocation = "ckpt"
[source]
kafka.bootstrap.servers = "localhost:9092"
subscribe = "cameras"
[deserializer]
format = "json"
schema = "device_id STRING, zip_code STRING"
"#;

fn parse_sink(sink: &str) -> Result<PipelineSpec, ConfigError> {
    let text = format!("{SOURCE}\n[sink]\n{sink}\n");
    parse(&text, "p.toml", Path::new("/pipelines"), "p", |_| None)
}

fn refused(sink: &str) -> String {
    parse_sink(sink).expect_err("refused").to_string()
}

#[test]
fn a_path_makes_a_file_sink_resolved_beside_the_file() {
    let spec =
        parse_sink("format = \"parquet\"\npath = \"out/archive\"\npartitionBy = [\"zip_code\"]")
            .unwrap();
    assert_eq!(
        spec.sink.target,
        SinkTarget::Files(FileSinkSpec {
            path: "/pipelines/out/archive".into(),
            format: FileFormat::Parquet,
            partition_by: vec!["zip_code".into()],
        })
    );
    assert_eq!(spec.sink.delivery, Delivery::ExactlyOnce);
    let json = parse_sink("format = \"json\"\npath = \"out\"").unwrap();
    assert!(matches!(
        json.sink.target,
        SinkTarget::Files(FileSinkSpec {
            format: FileFormat::JsonLines,
            ..
        })
    ));
}

#[test]
fn the_console_takes_num_rows_and_truncate_and_is_at_least_once() {
    let spec = parse_sink("format = \"console\"\nnumRows = 5\ntruncate = false").unwrap();
    assert_eq!(
        spec.sink.target,
        SinkTarget::Console(ConsoleSpec {
            num_rows: 5,
            truncate: false
        })
    );
    assert_eq!(spec.sink.delivery, Delivery::AtLeastOnce);
}

#[test]
fn file_and_console_sinks_refuse_what_they_cannot_do_by_key() {
    let cases = [
        ("format = \"parquet\"", "`sink.path`: missing"),
        (
            "format = \"avro\"\npath = \"out\"",
            "`sink.format`: with a `path`",
        ),
        (
            "path = \"out\"\ntopic = \"x\"",
            "`sink.topic`: only used with a Kafka sink",
        ),
        (
            "topic = \"x\"\npartitionBy = [\"zip_code\"]",
            "`sink.partitionBy`: only used with a file sink",
        ),
        (
            "path = \"out\"\ndelivery = \"at-least-once\"",
            "`sink.delivery`: a file sink is always exactly-once",
        ),
        (
            "format = \"console\"\ndelivery = \"exactly-once\"",
            "`sink.delivery`: the console cannot",
        ),
        ("format = \"csv\"", "`sink.format`: expected \"kafka\""),
        (
            "path = \"out\"\nnumRows = 5",
            "`sink.numRows`: only used with format = \"console\"",
        ),
    ];
    for (sink, expected) in cases {
        let error = refused(sink);
        assert!(error.contains(expected), "{sink:?}: {error}");
    }
}

#[test]
fn a_file_sink_needs_a_checkpoint_and_writes_no_dead_letters() {
    let text = SOURCE.replace("checkpointLocation = \"ckpt\"", "") + "[sink]\npath = \"out\"\n";
    let error = parse(&text, "p.toml", Path::new("/p"), "p", |_| None).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`sink.path`: a file sink needs a checkpoint"),
        "{error}"
    );
    let letters = SOURCE.replace(
        "schema = ",
        "on_error = \"dead-letter\"\ndead_letter_topic = \"dlq\"\nschema = ",
    ) + "[sink]\npath = \"out\"\n";
    let error = parse(&letters, "p.toml", Path::new("/p"), "p", |_| None).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`deserializer.on_error`: this sink writes no Kafka topics"),
        "{error}"
    );
}

#[test]
fn a_file_sink_refuses_update_mode() {
    let aggregate = "[aggregate]\ngroup_by = [\"zip_code\"]\naggregates = [{ function = \"count\", as = \"n\" }]\n";
    let text = format!("{SOURCE}{aggregate}output_mode = \"update\"\n[sink]\npath = \"out\"\n");
    let error = parse(&text, "p.toml", Path::new("/p"), "p", |_| None).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`aggregate.output_mode`: a file sink keeps every batch's rows"),
        "{error}"
    );
    let complete = text.replace("\"update\"", "\"complete\"");
    assert!(parse(&complete, "p.toml", Path::new("/p"), "p", |_| None).is_ok());
}
