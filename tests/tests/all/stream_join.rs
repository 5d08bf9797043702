//! The stream-stream join end to end: impressions and clicks on two topics of two partitions each, joined
//! in a left outer join with the click's hour, exactly once across a crash at each commit step and random
//! kills. The committed rows (read from the raw log) are the offline result: every pair whose click came
//! within the hour of its impression, and each other impression once, with NULL clicks, when the
//! watermark passed its hour. One partition of each topic arriving a run late is not late.

use std::path::{Path, PathBuf};

use weir::internal::demo::produce_to_partitions;
use weir_tests::kafka_log::read_log;
use weir_tests::*;

use super::checkpoint::{crash_kill_and_finish, finish, EXACTLY_ONCE_CRASH_POINTS};

const MINUTE: i64 = 60_000;
const START: i64 = 1_700_000_000_000;
/// After every ad, one record per partition of each topic this far ahead moves the watermark past all of
/// them (the watermark is the minimum over partitions), so every unmatched impression is emitted.
const MARKER_AHEAD: i64 = 600 * MINUTE;

/// Ad `i`'s impression time, and its clicks' times: none for every third ad, one within the hour for the
/// others, and for every seventh a second one too late to match.
fn ad(i: i64) -> (i64, Vec<i64>) {
    let shown = START + i * 7_000;
    let mut clicks = Vec::new();
    if i % 3 != 0 {
        clicks.push(shown + (i % 6) * 10 * MINUTE);
    }
    if i % 7 == 0 {
        clicks.push(shown + 61 * MINUTE);
    }
    (shown, clicks)
}

/// Produces the impressions and clicks of the ads in `partitions` (ad `i` in partition `i % 2` of both
/// topics; each partition in event-time order), and with `markers` the records that move the watermark past
/// them all.
fn produce(bootstrap: &str, ads: i64, partitions: &[i32], markers: bool) {
    let impression = |id: String, t: i64| format!("{{\"adId\":\"{id}\",\"impressionTime\":{t}}}");
    let click = |id: String, t: i64| format!("{{\"clickAdId\":\"{id}\",\"clickTime\":{t}}}");
    let mut impressions = Vec::new();
    let mut clicks = Vec::new();
    for i in (0..ads).filter(|i| partitions.contains(&((i % 2) as i32))) {
        let (shown, times) = ad(i);
        let partition = (i % 2) as i32;
        impressions.push((
            partition,
            format!("ad-{i}"),
            impression(format!("ad-{i}"), shown),
        ));
        for t in times {
            clicks.push((partition, t, format!("ad-{i}"), click(format!("ad-{i}"), t)));
        }
    }
    // Each partition's clicks in event-time order, as the 2-minute delay declares them: a late second
    // click (61 minutes after its ad) written before the next ads' clicks would put them behind the
    // watermark whenever a batch ended between them, and the result would depend on batch boundaries.
    clicks.sort_by_key(|(partition, t, _, _)| (*partition, *t));
    let mut clicks: Vec<(i32, String, String)> = clicks
        .into_iter()
        .map(|(p, _, key, value)| (p, key, value))
        .collect();
    let ahead = START + ads * 7_000 + MARKER_AHEAD;
    for partition in (0..2).filter(|_| markers) {
        let id = format!("marker-{partition}");
        impressions.push((partition, id.clone(), impression(id.clone(), ahead)));
        clicks.push((partition, id.clone(), click(format!("click-{id}"), ahead)));
    }
    produce_to_partitions(bootstrap, "impressions", impressions).unwrap();
    produce_to_partitions(bootstrap, "clicks", clicks).unwrap();
}

/// The offline result, as `adId|impressionTime|clickAdId|clickTime` lines (`-` for NULL), sorted.
fn expected(ads: i64) -> Vec<String> {
    let mut rows = Vec::new();
    for i in 0..ads {
        let (shown, clicks) = ad(i);
        let matched: Vec<i64> = clicks
            .into_iter()
            .filter(|&t| t >= shown && t <= shown + 60 * MINUTE)
            .collect();
        if matched.is_empty() {
            rows.push(format!("ad-{i}|{shown}|-|-"));
        }
        rows.extend(matched.iter().map(|t| format!("ad-{i}|{shown}|ad-{i}|{t}")));
    }
    rows.sort();
    rows
}

fn pipeline(dir: &Path, per_trigger: u64) -> PathBuf {
    let text = format!(
        r#"name = "ad-clicks-test"
checkpointLocation = "checkpoint"

[source]
kafka.bootstrap.servers = "${{KAFKA_BOOTSTRAP_SERVERS}}"
subscribe = "impressions"
startingOffsets = "earliest"
maxOffsetsPerTrigger = {per_trigger}

[deserializer]
format = "json"
schema = "adId STRING, impressionTime BIGINT"

[watermark]
column = "impressionTime"
delay = "1m"
max_drift = "0"

[stream_join]
topic = "clicks"
on = "clickAdId = adId AND clickTime BETWEEN impressionTime AND impressionTime + 3600000"
how = "left_outer"
watermark = {{ column = "clickTime", delay = "2m" }}
deserializer = {{ format = "json", schema = "clickAdId STRING, clickTime BIGINT" }}

[sink]
kafka.bootstrap.servers = "${{KAFKA_BOOTSTRAP_SERVERS}}"
topic = "joined"
format = "json"

[trigger]
availableNow = true
"#
    );
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn a_left_outer_stream_join_is_exactly_once_across_crashes_and_kills() {
    let ads = 6_000;
    let broker = broker();
    produce(&broker.bootstrap, ads, &[0, 1], true);
    let dir = scratch_dir();
    let file = pipeline(&dir, 200);
    let killed = crash_kill_and_finish(&file, &broker.bootstrap, EXACTLY_ONCE_CRASH_POINTS, (3, 7));
    println!("{killed} kills landed while the join ran");

    assert_joined_exactly(&broker, ads);
}

/// One partition of each topic sends nothing in a first run, so it holds the watermark back, and
/// everything, from the start of event time, in a second: none of its rows is late, and the two runs
/// together write the offline result.
#[test]
fn a_partition_whose_rows_come_last_is_not_late() {
    let ads = 2_000;
    let broker = broker();
    let dir = scratch_dir();
    let file = pipeline(&dir, 500);
    produce(&broker.bootstrap, ads, &[0], false);
    finish(&file, &broker.bootstrap);
    let first = read_log(&broker.bootstrap, "joined", 0)
        .unwrap()
        .committed_values();
    assert!(
        first.iter().all(|row| !row.contains("\"clickAdId\":null")),
        "no impression can be given up while partition 1 holds the watermark: {first:?}"
    );
    produce(&broker.bootstrap, ads, &[1], true);
    finish(&file, &broker.bootstrap);
    assert_joined_exactly(&broker, ads);
}

fn broker() -> Broker {
    let broker = tansu();
    broker.create_topic("impressions", 2);
    broker.create_topic("clicks", 2);
    broker.create_topic("joined", 1);
    broker
}

/// The committed rows of `joined`, read from the raw log, are the offline result for `ads` ads.
fn assert_joined_exactly(broker: &Broker, ads: i64) {
    let log = read_log(&broker.bootstrap, "joined", 0).unwrap();
    let mut got: Vec<String> = log
        .committed_values()
        .iter()
        .map(|value| {
            let row: serde_json::Value = serde_json::from_str(value).unwrap();
            let text = |key: &str| match &row[key] {
                serde_json::Value::Null => "-".to_string(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let (ad, shown) = (text("adId"), text("impressionTime"));
            format!("{ad}|{shown}|{}|{}", text("clickAdId"), text("clickTime"))
        })
        .collect();
    got.sort();
    let expected = expected(ads);
    let unmatched = expected.iter().filter(|r| r.ends_with("|-|-")).count();
    assert!(
        unmatched > 0 && unmatched < expected.len(),
        "both kinds of rows are expected"
    );
    let missing: Vec<&String> = expected.iter().filter(|r| !got.contains(r)).collect();
    let extra: Vec<&String> = got.iter().filter(|r| !expected.contains(r)).collect();
    assert!(
        got == expected,
        "the joined rows differ from the offline result: {} rows for {} expected; \
         missing (first 20 of {}): {:?}; not expected (first 20 of {}): {:?}",
        got.len(),
        expected.len(),
        missing.len(),
        &missing[..missing.len().min(20)],
        extra.len(),
        &extra[..extra.len().min(20)],
    );
}
