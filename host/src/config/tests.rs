//! Pipeline-file errors: each names the file, the key and what was expected.

use super::*;
use crate::decode::DecodeFormat;
use crate::dedup::DedupSpec;
use crate::join::{JoinType, TableFormat};
use crate::pipeline::Transform;
use crate::sink::SinkFormat;
use crate::sql::SqlSpec;
use crate::udf::OnError;

const GOOD: &str = r#"
[source]
kafka.bootstrap.servers = "${BROKER:-localhost:9092}"
subscribe = "transactions"
startingOffsets = "earliest"

[deserializer]
format = "json"
schema = "name STRING, flag INT"
on_error = "dead-letter"
dead_letter_topic = "dlq"

[sink]
kafka.bootstrap.servers = "localhost:9092"
topic = "results"
format = "json"
"#;

fn parse_text(text: &str) -> Result<PipelineSpec, ConfigError> {
    parse(text, "p.toml", Path::new("/pipelines"), "p", |name| {
        (name == "SET").then(|| "value".to_string())
    })
}

fn error_of(text: &str) -> ConfigError {
    parse_text(text).expect_err("the pipeline should be refused")
}

#[test]
fn a_good_file_parses_with_defaults_expanded() {
    let spec = parse_text(GOOD).unwrap();
    assert_eq!(spec.name, "p");
    assert_eq!(
        spec.source.kafka().unwrap().kafka["bootstrap.servers"],
        "localhost:9092"
    );
    assert_eq!(
        spec.deserializer.on_error,
        OnError::DeadLetter {
            topic: "dlq".into()
        }
    );
    assert_eq!(spec.sink.format, SinkFormat::Json);
    assert_eq!(spec.trigger, Trigger::AsFastAsPossible);
}

#[test]
fn the_bounded_triggers_are_read_and_refuse_ending_offsets() {
    let once = parse_text(&format!("{GOOD}\n[trigger]\nonce = true\n")).unwrap();
    assert_eq!(once.trigger, Trigger::Once);
    let now = parse_text(&format!("{GOOD}\n[trigger]\navailableNow = true\n")).unwrap();
    assert_eq!(now.trigger, Trigger::AvailableNow);
    let off = parse_text(&format!("{GOOD}\n[trigger]\navailableNow = false\n")).unwrap();
    assert_eq!(off.trigger, Trigger::AsFastAsPossible);
    let bounded = GOOD.replace(
        "startingOffsets = \"earliest\"",
        "startingOffsets = \"earliest\"\nendingOffsets = \"latest\"",
    );
    let err = error_of(&format!("{bounded}\n[trigger]\nonce = true\n"));
    assert_eq!(err.key, "source.endingOffsets");
    assert!(err.message.contains("offsets available at start"), "{err}");
}

#[test]
fn unknown_keys_are_named_with_their_section() {
    let typo = GOOD.replace(
        "dead_letter_topic = \"dlq\"",
        "dead_letter_topic = \"dlq\"\non_eror = \"drop\"",
    );
    let err = error_of(&typo);
    assert_eq!(err.key, "deserializer.on_eror");
    assert!(
        err.to_string()
            .starts_with("p.toml: `deserializer.on_eror`: unknown key"),
        "{err}"
    );
    assert!(err.message.contains("did you mean `on_error`?"), "{err}");
}

#[test]
fn bad_values_say_what_was_expected() {
    let err = error_of(&GOOD.replace("\"dead-letter\"", "\"retry\""));
    assert_eq!(err.key, "deserializer.on_error");
    assert!(err.message.contains("fail, drop or dead-letter"));

    let err = error_of(&GOOD.replace(
        "startingOffsets = \"earliest\"",
        "startingOffsets = \"first\"",
    ));
    assert_eq!(err.key, "source.startingOffsets");

    let err = error_of(&GOOD.replace("flag INT", "flag NUMBER"));
    assert_eq!(err.key, "deserializer.schema");

    let err = error_of(&format!("{GOOD}\n[trigger]\nprocessingTime = \"soon\"\n"));
    assert_eq!(err.key, "trigger.processingTime");
    let err = error_of(&format!(
        "{GOOD}\n[trigger]\nprocessingTime = \"1s\"\nonce = true\n"
    ));
    assert_eq!(err.key, "trigger.once");
    assert!(err.message.contains("one trigger"), "{err}");
    let err = error_of(&format!("{GOOD}\n[trigger]\navailableNow = \"yes\"\n"));
    assert_eq!(err.key, "trigger.availableNow");

    let err = error_of(&format!("{GOOD}\n[metrics]\nlisten = \"9464\"\n"));
    assert_eq!(err.key, "metrics.listen");
    assert!(err.message.contains("127.0.0.1:9464"), "{err}");
    let metrics = parse_text(&format!("{GOOD}\n[metrics]\nlisten = \"0.0.0.0:9464\"\n")).unwrap();
    assert_eq!(metrics.metrics.unwrap().listen.port(), 9464);
    let err = error_of(&format!("{GOOD}\n[limits]\nmemory = 5\n"));
    assert_eq!(err.key, "limits.memory");
    assert!(err.message.contains("expected a string"));
}

#[test]
fn missing_sections_and_variables_are_named() {
    let err = error_of(&GOOD.replace("[sink]", "[sunk]"));
    assert_eq!(err.key, "sink");
    let err = error_of(&GOOD.replace("${BROKER:-localhost:9092}", "${BROKER}"));
    assert_eq!(err.key, "source.kafka.bootstrap.servers");
    assert!(err.message.contains("BROKER is not set"));
    let err = error_of("[source\n");
    assert!(err.key.starts_with("line"), "{err}");
}

#[test]
fn forbidden_kafka_keys_are_refused() {
    let err = error_of(&GOOD.replace(
        "subscribe = ",
        "kafka.enable.auto.commit = true\nsubscribe = ",
    ));
    assert_eq!(err.key, "source.kafka.enable.auto.commit");
}

#[test]
fn udf_paths_resolve_against_the_file_and_limits_inherit() {
    let text = GOOD.replace("format = \"json\"\nschema = \"name STRING, flag INT\"", "udf = \"m/de.wasm\"\nlimits = { timeout = \"2s\" }")
        + "\n[limits]\nmemory = \"64MiB\"\n\n[[transform]]\nudf = \"t.wasm\"\nname = \"tee\"\nconfig = { threshold = 3 }\n";
    let spec = parse_text(&text).unwrap();
    let DecodeFormat::Udf(udf) = &spec.deserializer.format else {
        panic!("expected a UDF")
    };
    assert_eq!(udf.path, Path::new("/pipelines/m/de.wasm"));
    assert_eq!(udf.name, "de");
    assert_eq!(udf.limits.timeout, std::time::Duration::from_secs(2));
    assert_eq!(udf.limits.memory_bytes, 64 << 20);
    let Transform::Udf(transform) = &spec.transforms[0] else {
        panic!("expected a UDF transform")
    };
    assert_eq!(transform.udf.name, "tee");
    assert_eq!(transform.udf.config, serde_json::json!({"threshold": 3}));
}

#[test]
fn sql_stages_keep_their_place_among_the_transforms() {
    let text = format!(
        "{GOOD}\n[[transform]]\nwhere = \"flag = 1\"\n\n[[transform]]\nudf = \"t.wasm\"\n\n\
         [[transform]]\nselect = [\"*\", \"name || 'x' AS id\"]\n"
    );
    let spec = parse_text(&text).unwrap();
    assert_eq!(spec.transforms.len(), 3);
    assert!(
        matches!(&spec.transforms[0], Transform::Sql(sql) if *sql == SqlSpec::filter("flag = 1"))
    );
    assert!(matches!(&spec.transforms[1], Transform::Udf(_)));
    assert!(
        matches!(&spec.transforms[2], Transform::Sql(sql) if *sql == SqlSpec::select(["*", "name || 'x' AS id"]))
    );
}

#[test]
fn a_sql_stage_is_one_kind_of_stage() {
    let both = format!("{GOOD}\n[[transform]]\nwhere = \"flag = 1\"\nselect = [\"name\"]\n");
    let err = parse_text(&both).unwrap_err();
    assert_eq!(err.key, "transform[0].select");
    let with_udf = format!("{GOOD}\n[[transform]]\nwhere = \"flag = 1\"\nudf = \"t.wasm\"\n");
    let err = parse_text(&with_udf).unwrap_err();
    assert_eq!(err.key, "transform[0].udf");
    assert!(err.message.contains("UDF or a SQL `where`"), "{err}");
    let policy = format!("{GOOD}\n[[transform]]\nwhere = \"flag = 1\"\non_error = \"drop\"\n");
    let err = parse_text(&policy).unwrap_err();
    assert_eq!(err.key, "transform[0].on_error");
    let empty = format!("{GOOD}\n[[transform]]\nwhere = \" \"\n");
    assert_eq!(parse_text(&empty).unwrap_err().key, "transform[0].where");
}

#[test]
fn a_join_reads_its_table_keys_relative_to_the_file() {
    let text = format!(
        "{GOOD}\n[[transform]]\njoin = \"tables/zips.txt\"\nformat = \"csv\"\n\
         schema = \"name STRING, zip STRING\"\non = \"name\"\nhow = \"left_anti\"\n\n\
         [[transform]]\njoin = \"z.parquet\"\non = [\"name\", \"zip\"]\n"
    );
    let spec = parse_text(&text).unwrap();
    let Transform::Join(first) = &spec.transforms[0] else {
        panic!("{:?}", spec.transforms[0])
    };
    assert_eq!(first.table.path, Path::new("/pipelines/tables/zips.txt"));
    assert_eq!(
        (first.table.format, first.how),
        (TableFormat::Csv, JoinType::LeftAnti)
    );
    assert_eq!(first.on, ["name"]);
    assert_eq!(first.table.schema.as_ref().unwrap().fields().len(), 2);
    let Transform::Join(second) = &spec.transforms[1] else {
        panic!("{:?}", spec.transforms[1])
    };
    assert_eq!(
        (second.table.format, second.how),
        (TableFormat::Parquet, JoinType::Inner)
    );
    assert_eq!(second.on, ["name", "zip"]);
}

#[test]
fn join_mistakes_name_their_key() {
    let cases = [
        (
            "join = \"t.csv\"",
            "transform[0].on",
            "missing: the columns to match",
        ),
        ("join = \"t.csv\"\non = []", "transform[0].on", "missing"),
        (
            "join = \"t.csv\"\non = \"a\"\nhow = \"outer\"",
            "transform[0].how",
            "expected inner, left_outer, left_semi, left_anti",
        ),
        (
            "join = \"t.dat\"\non = \"a\"",
            "transform[0].format",
            "no .csv, .json, .jsonl or .parquet extension",
        ),
        (
            "join = \"t.dat\"\non = \"a\"\nformat = \"xml\"",
            "transform[0].format",
            "expected csv, json, parquet",
        ),
        (
            "join = \"t.parquet\"\non = \"a\"\nschema = \"a INT\"",
            "transform[0].schema",
            "carries its own schema",
        ),
        (
            "join = \"t.csv\"\non = \"a\"\nwhere = \"a = 1\"",
            "transform[0].where",
            "put each in its own",
        ),
        (
            "on = \"a\"\nwhere = \"a = 1\"",
            "transform[0].on",
            "only used with `join",
        ),
        (
            "join = \"t.csv\"\non = \"a\"\non_error = \"drop\"",
            "transform[0].on_error",
            "",
        ),
    ];
    for (stage, key, message) in cases {
        let err = error_of(&format!("{GOOD}\n[[transform]]\n{stage}\n"));
        assert_eq!(err.key, key, "{stage}: {err}");
        assert!(err.message.contains(message), "{stage}: {err}");
    }
}

#[test]
fn deduplicate_is_read_and_needs_a_watermark() {
    let watermark = "\n[watermark]\ncolumn = \"ts\"\ndelay = \"5s\"\n";
    let text = format!(
        "{GOOD}{watermark}\n[deduplicate]\ncolumns = [\"name\"]\nwithin_watermark = true\n"
    );
    let spec = parse_text(&text).unwrap();
    assert_eq!(
        spec.deduplicate,
        Some(DedupSpec::new(["name"]).within_watermark())
    );
    let err = error_of(&format!("{GOOD}\n[deduplicate]\ncolumns = [\"name\"]\n"));
    assert_eq!(err.key, "deduplicate");
    assert!(err.message.contains("needs a [watermark]"), "{err}");
    let err = error_of(&format!("{GOOD}{watermark}\n[deduplicate]\ncolumns = []\n"));
    assert_eq!(err.key, "deduplicate.columns");
}

#[test]
fn the_json_policy_keys_are_checked() {
    let strict = GOOD.replace(
        "schema = \"name STRING, flag INT\"",
        "schema = \"name STRING NOT NULL, flag INT\"\nstrict = true",
    );
    let DecodeFormat::Json { schema, strict, .. } =
        parse_text(&strict).unwrap().deserializer.format
    else {
        panic!("expected json")
    };
    assert!(strict && !schema.field(0).is_nullable());

    let err = error_of(&GOOD.replace("format = \"json\"", "format = \"json\"\nstrict = \"yes\""));
    assert_eq!(err.key, "deserializer.strict");
    assert!(err.message.contains("expected true or false"), "{err}");

    let permissive = GOOD.replace("flag INT", "flag INT NOT NULL").replace(
        "on_error = \"dead-letter\"\ndead_letter_topic = \"dlq\"",
        "mode = \"PERMISSIVE\"",
    );
    let err = error_of(&permissive);
    assert_eq!(err.key, "deserializer.schema");
    assert!(err.message.contains("\"flag\" is NOT NULL"), "{err}");

    let err = error_of(&GOOD.replace("flag INT", "flag INT NULL"));
    assert!(err.message.contains("only NOT NULL may follow it"), "{err}");
}

#[test]
fn rules_across_sections_name_the_key_at_fault() {
    let err = error_of(&GOOD.replace("[sink]", "[sink]\ndelivery = \"exactly-once\""));
    assert_eq!(err.key, "sink.delivery");
    assert!(err.message.contains("needs a checkpoint"), "{err}");

    let checkpointed = format!("checkpointLocation = \"ckpt\"\nminBatchesToRetain = -1\n{GOOD}");
    let err = error_of(&checkpointed);
    assert_eq!(err.key, "minBatchesToRetain");
    assert!(
        err.message.contains("a positive integer, found -1"),
        "{err}"
    );

    let after = format!("{GOOD}\n[[after_aggregate]]\nudf = \"filter.wasm\"\n");
    let err = error_of(&after);
    assert_eq!(err.key, "after_aggregate");
    assert!(
        err.message.contains("only used with an [aggregate]"),
        "{err}"
    );

    let transform = "[[transform]]\nudf = \"t.wasm\"\non_error = \"dead-letter\"\ndead_letter_topic = \"dlq\"\n";
    let err = error_of(&format!("{GOOD}\n{transform}"));
    assert_eq!(err.key, "transform[0].on_error");
    assert!(err.message.contains("use on_failure"), "{err}");

    let aggregated = format!(
        "{GOOD}\n[aggregate]\ngroup_by = [\"name\"]\naggregates = [{{ function = \"count\" }}]\n\
         output_mode = \"complete\"\n[[after_aggregate]]\nudf = \"filter.wasm\"\n\
         on_failure = \"dead-letter\"\ndead_letter_topic = \"dlq\"\n"
    );
    let err = error_of(&aggregated);
    assert_eq!(err.key, "after_aggregate[0].on_failure");
    assert!(err.message.contains("no source records"), "{err}");
}

#[test]
fn secrets_are_collected_and_masked_in_debug_and_errors() {
    let text = GOOD
        .replace(
            "startingOffsets = \"earliest\"",
            "startingOffsets = \"earliest\"\nkafka.sasl.password = \"written-in-file\"\n\
             kafka.sasl.username = \"${SECRET_USER}\"\nmaxOffsetsPerTrigger = \"${BATCH}\"",
        )
        .replace(
            "topic = \"results\"",
            "topic = \"results\"\nkafka.ssl.key.pem = \"-----BEGIN KEY-----\"",
        );
    let env = |name: &str| match name {
        "SECRET_USER" => Some("from-the-environment".to_string()),
        "BATCH" => Some("5000".to_string()),
        _ => None,
    };
    let spec = parse(&text, "p.toml", Path::new("/p"), "p", env).unwrap();
    let shown = format!("{spec:?} {spec:#?}");
    for secret in [
        "written-in-file",
        "from-the-environment",
        "-----BEGIN KEY-----",
    ] {
        assert!(!shown.contains(secret), "Debug shows {secret}");
        assert_eq!(spec.secrets.redact(secret), "***");
    }
    assert!(
        shown.contains("5000"),
        "a number from the environment is not a secret"
    );

    // An error about a value from the environment does not repeat it.
    let env = |name: &str| (name == "LISTEN").then(|| "internal-host-name".to_string());
    let bad = format!("{GOOD}\n[metrics]\nlisten = \"${{LISTEN}}\"\n");
    let error = parse(&bad, "p.toml", Path::new("/p"), "p", env).unwrap_err();
    assert_eq!(error.key, "metrics.listen");
    assert!(!error.message.contains("internal-host-name"), "{error}");
    assert!(error.message.contains("***"), "{error}");
}

#[test]
fn avro_reads_the_subscribed_topics_subject_unless_told_otherwise() {
    let avro = GOOD.replace(
        "format = \"json\"\nschema = \"name STRING, flag INT\"",
        "format = \"avro\"\nschema_registry = \"http://registry:8081\"",
    );
    let spec = parse_text(&avro).unwrap();
    let DecodeFormat::Avro { subject, .. } = &spec.deserializer.format else {
        panic!("not avro: {:?}", spec.deserializer.format);
    };
    assert_eq!(subject.as_deref(), Some("transactions-value"));

    // Two topics: no one subject to default to.
    let two = avro.replace("subscribe = \"transactions\"", "subscribe = \"a,b\"");
    let error = error_of(&two);
    assert_eq!(error.key, "deserializer.reader_schema");
    assert!(error.message.contains("subject"), "{error}");

    let no_registry = avro.replace("schema_registry = \"http://registry:8081\"\n", "");
    assert_eq!(error_of(&no_registry).key, "deserializer.schema_registry");
}

#[test]
fn an_avro_sink_needs_its_registry_and_names_its_subject() {
    let sink = |extra: &str| {
        GOOD.replace(
            "topic = \"results\"\nformat = \"json\"",
            &format!("topic = \"results\"\nformat = \"avro\"\n{extra}"),
        )
    };
    assert_eq!(error_of(&sink("")).key, "sink.schema_registry");
    let spec = parse_text(&sink("schema_registry = \"http://registry:8081\"")).unwrap();
    assert_eq!(spec.sink.format, SinkFormat::Avro);
    let (_, subject) = spec.sink.options.avro_target().unwrap();
    assert_eq!(subject, "results-value");
    let no_topic = sink("schema_registry = \"http://r:8081\"").replace("topic = \"results\"\n", "");
    assert_eq!(error_of(&no_topic).key, "sink.subject");
    let json_with_registry = GOOD.replace(
        "topic = \"results\"",
        "topic = \"results\"\nschema_registry = \"http://r:8081\"",
    );
    assert_eq!(error_of(&json_with_registry).key, "sink.schema_registry");
}
