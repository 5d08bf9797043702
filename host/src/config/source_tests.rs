//! `[source]` for files: what each key becomes, and what is refused, by key.

use super::*;
use crate::sink::Delivery;
use crate::source::{FileSourceFormat, SourceSpec};

const KAFKA_SINK: &str = r#"
[sink]
kafka.bootstrap.servers = "localhost:9092"
topic = "out"
"#;

fn parse_with(source: &str, rest: &str) -> Result<PipelineSpec, ConfigError> {
    let text = format!("[source]\n{source}\n{rest}");
    parse(&text, "p.toml", Path::new("/pipelines"), "p", |_| None)
}

fn refused(source: &str, rest: &str) -> String {
    parse_with(source, rest).expect_err("refused").to_string()
}

const CSV_DESERIALIZER: &str =
    "[deserializer]\nformat = \"csv\"\nschema = \"id INT, name STRING\"\n";

#[test]
fn a_path_makes_a_file_source_resolved_beside_the_file() {
    let source = "path = \"in\"\nformat = \"csv\"\nheader = true\nmaxFilesPerTrigger = 5\nmaxFileAge = \"1h\"";
    let spec = parse_with(source, &format!("{CSV_DESERIALIZER}{KAFKA_SINK}")).unwrap();
    let SourceSpec::Files(files) = &spec.source else {
        panic!("{:?}", spec.source)
    };
    assert_eq!(files.path, Path::new("/pipelines/in"));
    assert!(matches!(
        files.format,
        FileSourceFormat::Csv { header: true }
    ));
    assert_eq!(files.max_files_per_trigger, Some(5));
    assert_eq!(files.max_file_age.as_secs(), 3600);
    assert!(matches!(spec.deserializer.format, DecodeFormat::Csv { .. }));
    // The Kafka sink cannot be exactly-once from files: with a checkpoint it defaults to at least once.
    let checkpointed =
        format!("checkpointLocation = \"c\"\n[source]\n{source}\n{CSV_DESERIALIZER}{KAFKA_SINK}");
    let spec = parse(&checkpointed, "p.toml", Path::new("."), "p", |_| None).unwrap();
    assert_eq!(spec.sink.delivery, Delivery::AtLeastOnce);
}

#[test]
fn parquet_takes_its_schema_on_the_source_and_no_deserializer() {
    let spec = parse_with(
        "path = \"in\"\nformat = \"parquet\"\nschema = \"id BIGINT\"",
        KAFKA_SINK,
    )
    .unwrap();
    assert!(matches!(spec.deserializer.format, DecodeFormat::Rows));
    assert_eq!(spec.source.record_schema().field(0).name(), "id");

    let error = refused("path = \"in\"\nformat = \"parquet\"", KAFKA_SINK);
    assert!(error.contains("`source.schema`: missing"), "{error}");
    let error = refused(
        "path = \"in\"\nformat = \"parquet\"\nschema = \"id BIGINT\"",
        &format!("{CSV_DESERIALIZER}{KAFKA_SINK}"),
    );
    assert!(
        error.contains("`deserializer`: Parquet files hold typed rows"),
        "{error}"
    );
}

#[test]
fn file_source_mistakes_are_refused_by_key() {
    let rest = format!("{CSV_DESERIALIZER}{KAFKA_SINK}");
    for (source, key, words) in [
        (
            "path = \"in\"",
            "source.format",
            "expected \"json\", \"csv\", \"text\" or",
        ),
        (
            "path = \"in\"\nformat = \"orc\"",
            "source.format",
            "found \"orc\"",
        ),
        (
            "path = \"in\"\nformat = \"json\"\nheader = true",
            "source.header",
            "only used with",
        ),
        (
            "path = \"in\"\nformat = \"csv\"\nschema = \"a INT\"",
            "source.schema",
            "[deserializer]",
        ),
        (
            "path = \"in\"\nformat = \"csv\"\nmaxFileAge = \"old\"",
            "source.maxFileAge",
            "not a duration",
        ),
        (
            "path = \"in\"\nformat = \"csv\"\nsubscribe = \"t\"",
            "source.subscribe",
            "",
        ),
    ] {
        let error = refused(source, &rest);
        assert!(
            error.contains(&format!("`{key}`")) && error.contains(words),
            "{source}: {error}"
        );
    }
    let exactly_once = format!("{rest}delivery = \"exactly-once\"\n");
    let error = format!(
        "{}",
        parse(
            &format!("checkpointLocation = \"c\"\n[source]\npath = \"in\"\nformat = \"csv\"\n{exactly_once}"),
            "p.toml",
            Path::new("."),
            "p",
            |_| None
        )
        .unwrap_err()
    );
    assert!(
        error.contains("`sink.delivery`") && error.contains("a file source has none"),
        "{error}"
    );
}
