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

const GROUP_SOURCE: &str =
    "kafka.bootstrap.servers = \"localhost:9092\"\nsubscribe = \"tx\"\nconsumerGroup = true";
const JSON_DESERIALIZER: &str =
    "[deserializer]\nformat = \"json\"\nschema = \"id BIGINT, t TIMESTAMP\"\n";

#[test]
fn a_consumer_group_member_is_exactly_once_without_a_checkpoint() {
    let source = format!("{GROUP_SOURCE}\nkafka.group.instance.id = \"host-1\"");
    let spec = parse_with(&source, &format!("{JSON_DESERIALIZER}{KAFKA_SINK}")).unwrap();
    let kafka = spec.source.kafka().unwrap();
    assert!(kafka.consumer_group);
    assert_eq!(kafka.kafka["group.instance.id"], "host-1");
    assert_eq!(spec.sink.delivery, Delivery::ExactlyOnce);
    // Without the group, exactly once needs a checkpoint, and static membership means nothing.
    let error = refused(
        "kafka.bootstrap.servers = \"b\"\nsubscribe = \"tx\"",
        &format!("{JSON_DESERIALIZER}{KAFKA_SINK}delivery = \"exactly-once\"\n"),
    );
    assert!(error.contains("`sink.delivery`"), "{error}");
    let error = refused(
        "kafka.bootstrap.servers = \"b\"\nsubscribe = \"tx\"\nkafka.group.instance.id = \"h\"",
        &format!("{JSON_DESERIALIZER}{KAFKA_SINK}"),
    );
    assert!(
        error.contains("kafka.group.instance.id") && error.contains("consumerGroup"),
        "{error}"
    );
}

#[test]
fn a_consumer_group_member_refuses_what_cannot_move_between_instances_by_key() {
    let rest = format!("{JSON_DESERIALIZER}{KAFKA_SINK}");
    let cases = [
        ("assign = '{\"tx\":[0]}'", "", "source.assign"),
        ("endingOffsets = \"latest\"", "", "source.endingOffsets"),
        ("kafka.group.id = \"g\"", "", "source.kafka.group.id"),
        ("", "[deduplicate]\ncolumns = [\"t\"]\n", "`deduplicate`"),
        ("", "[trigger]\navailableNow = true\n", "`trigger`"),
    ];
    for (extra_source, extra, key) in cases {
        let source = match extra_source.starts_with("assign") {
            true => {
                format!("kafka.bootstrap.servers = \"b\"\nconsumerGroup = true\n{extra_source}")
            }
            false => format!("{GROUP_SOURCE}\n{extra_source}"),
        };
        let error = refused(&source, &format!("{rest}{extra}"));
        assert!(error.contains(key), "{key}: {error}");
    }
    let checkpointed = format!("checkpointLocation = \"c\"\n[source]\n{GROUP_SOURCE}\n{rest}");
    let error = parse(&checkpointed, "p.toml", Path::new("."), "p", |_| None)
        .expect_err("refused")
        .to_string();
    assert!(error.contains("checkpointLocation"), "{error}");
    // An aggregation moves between instances. Over input not declared partitioned by its keys it reads its
    // rows through the repartition topic, which needs the topics named and exactly-once.
    let undeclared = "[aggregate]\ngroup_by = [\"t\"]\naggregates = [{ function = \"count\", as = \"n\" }]\noutput_mode = \"update\"\n";
    let repartitioned = format!("{JSON_DESERIALIZER}{undeclared}{KAFKA_SINK}");
    assert!(parse_with(GROUP_SOURCE, &repartitioned)
        .unwrap()
        .repartitions());
    let pattern =
        "kafka.bootstrap.servers = \"b\"\nsubscribePattern = \"tx-.*\"\nconsumerGroup = true";
    let error = refused(pattern, &repartitioned);
    assert!(error.contains("`subscribe`"), "{error}");
    let at_least_once = "delivery = \"at-least-once\"\n";
    let error = refused(GROUP_SOURCE, &format!("{repartitioned}{at_least_once}"));
    assert!(
        error.contains("`sink.delivery`") && error.contains("input_partitioned_by"),
        "{error}"
    );
    let aggregate = format!("{undeclared}input_partitioned_by = [\"t\"]\n");
    let declared_at_least_once =
        format!("{JSON_DESERIALIZER}{aggregate}{KAFKA_SINK}{at_least_once}");
    let spec = parse_with(GROUP_SOURCE, &declared_at_least_once).unwrap();
    assert_eq!(spec.sink.delivery, Delivery::AtLeastOnce);
    let declared = parse_with(
        GROUP_SOURCE,
        &format!("{JSON_DESERIALIZER}{aggregate}{KAFKA_SINK}"),
    )
    .unwrap();
    assert!(!declared.repartitions());
    // Local copies of the tasks' state: for a stateful group member only (a top-level key).
    let with_local = |rest: &str| {
        let text = format!("stateStoreLocation = \"state\"\n[source]\n{GROUP_SOURCE}\n{rest}");
        parse(&text, "p.toml", Path::new("/pipelines"), "p", |_| None)
    };
    let spec = with_local(&format!("{JSON_DESERIALIZER}{aggregate}{KAFKA_SINK}")).unwrap();
    assert_eq!(spec.state_store.unwrap(), Path::new("/pipelines/state"));
    let error = with_local(&format!("{JSON_DESERIALIZER}{KAFKA_SINK}"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("stateStoreLocation"), "{error}");
    // A declared key that is not a group key is refused, in either mode.
    let not_a_key = format!("{undeclared}input_partitioned_by = [\"id\"]\n");
    for source in [
        GROUP_SOURCE,
        "kafka.bootstrap.servers = \"b\"\nsubscribe = \"tx\"",
    ] {
        let error = refused(
            source,
            &format!("{JSON_DESERIALIZER}{not_a_key}{KAFKA_SINK}"),
        );
        assert!(
            error.contains("aggregate.input_partitioned_by")
                && error.contains("`id` is not among group_by"),
            "{error}"
        );
    }
    let console = format!("{JSON_DESERIALIZER}[sink]\nformat = \"console\"\n");
    let error = refused(GROUP_SOURCE, &console);
    assert!(error.contains("the sink must be Kafka"), "{error}");
}
