//! `[stream_join]`: what each key becomes, and what is refused, by key.

use super::*;
use crate::stream_join::StreamJoinType;

const PIPELINE: &str = r#"
[source]
kafka.bootstrap.servers = "localhost:9092"
subscribe = "impressions"
[deserializer]
format = "json"
schema = "adId STRING, impressionTime TIMESTAMP"
[sink]
kafka.bootstrap.servers = "localhost:9092"
topic = "out"
"#;

const WATERMARK: &str = "[watermark]\ncolumn = \"impressionTime\"\ndelay = \"1m\"\n";

const JOIN: &str = r#"[stream_join]
topic = "clicks"
on = "clickAdId = adId AND clickTime BETWEEN impressionTime AND impressionTime + interval 1 hour"
how = "left_outer"
watermark = { column = "clickTime", delay = "2m" }
deserializer = { format = "json", schema = "clickAdId STRING, clickTime TIMESTAMP" }
"#;

fn parse_with(extra: &str) -> Result<PipelineSpec, ConfigError> {
    parse(
        &format!("{PIPELINE}{extra}"),
        "p.toml",
        Path::new("."),
        "p",
        |_| None,
    )
}

#[test]
fn a_stream_join_section_becomes_its_spec() {
    let spec = parse_with(&format!("{WATERMARK}{JOIN}")).unwrap();
    let join = spec.stream_join.unwrap();
    assert_eq!(
        (join.topic.as_str(), join.how),
        ("clicks", StreamJoinType::LeftOuter)
    );
    assert_eq!(
        (join.event_time.as_str(), join.delay_ms),
        ("clickTime", 120_000)
    );
    assert!(matches!(
        join.deserializer.format,
        DecodeFormat::Json { .. }
    ));
}

#[test]
fn stream_join_mistakes_are_refused_by_key() {
    let cases = [
        (JOIN.to_string(), "stream_join", "needs a [watermark]"),
        (
            format!("{WATERMARK}{}", JOIN.replace("left_outer", "full")),
            "stream_join.how",
            "found \"full\"",
        ),
        (
            format!(
                "{WATERMARK}{}",
                JOIN.replace("\"clicks\"", "\"impressions\"")
            ),
            "stream_join.topic",
            "the source's own topic",
        ),
        (
            format!(
                "{WATERMARK}{}",
                JOIN.replace(
                    "watermark = { column = \"clickTime\", delay = \"2m\" }\n",
                    ""
                )
            ),
            "stream_join.watermark",
            "missing",
        ),
        (
            format!(
                "{WATERMARK}{}",
                JOIN.replace("delay = \"2m\"", "delay = \"2m\", idle = 1")
            ),
            "stream_join.watermark.idle",
            "",
        ),
        (
            format!(
                "{WATERMARK}{}",
                JOIN.replace(
                    "schema = \"clickAdId",
                    "mode = \"SLOPPY\", schema = \"clickAdId"
                )
            ),
            "stream_join.deserializer.mode",
            "SLOPPY",
        ),
    ];
    for (extra, key, words) in cases {
        let error = parse_with(&extra).expect_err("refused").to_string();
        assert!(
            error.contains(&format!("`{key}`")) && error.contains(words),
            "{key}: {error}"
        );
    }
}
