//! The Nest pipeline whole (`examples/nest-cameras/`): nested device records exploded by a WebAssembly
//! deserializer; `stats.toml` and `archive.toml` run side by side in one `weir run` (one pipeline per
//! sink), then the bounded `report.toml` over the stats topic. Each output is checked exactly against
//! the workload computed offline (`weir::internal::workload`):
//!
//! - the stats topic, read from the raw log, its last record per key (what compaction keeps): every (zip
//!   code, hour)'s person sightings, keyed `{"zip_code":..,"window":{"start":..,"end":..}}`;
//! - the Parquet archive, read through its committed-files log: every camera event once, under its day;
//! - the report's JSON lines: the distinct (zip code, hour) with more than 1,000 sightings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, UNIX_EPOCH};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use weir::internal::demo::produce;
use weir::internal::workload::{
    nest_busy_hours, nest_records_every, nest_zip_hourly_counts, NEST_DEVICE_ZIP_CODES,
    NEST_EXAMPLE_SPACING_MS,
};
use weir_tests::kafka_log::read_log;
use weir_tests::sink_files::{committed_json_lines, committed_parquet, partition_value};
use weir_tests::*;

/// An example file of `examples/nest-cameras/`, bounded by `endingOffsets = "latest"` when `bounded`,
/// written into `dir` (so its checkpoint and output folders are there).
fn example_in(dir: &Path, name: &str, bounded: bool) -> std::path::PathBuf {
    let edits = if bounded {
        vec![(
            "startingOffsets = \"earliest\"",
            "startingOffsets = \"earliest\"\nendingOffsets = \"latest\"".to_string(),
        )]
    } else {
        Vec::new()
    };
    let file = dir.join(name);
    std::fs::write(
        &file,
        example_variant(&format!("nest-cameras/{name}"), &edits),
    )
    .unwrap();
    file
}

fn rfc3339_ms(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

fn parse_ms(text: &str) -> i64 {
    let text = text.replace("+00:00", "Z");
    let time = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).unwrap();
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The stats topic's last count per key, checking each key against its row.
fn stats_counts(bootstrap: &str) -> BTreeMap<(String, i64), i64> {
    let log = read_log(bootstrap, "nest-camera-stats", 0).unwrap();
    let mut latest = BTreeMap::new();
    for record in &log.committed {
        let key = String::from_utf8(record.key.clone().unwrap()).unwrap();
        let row: serde_json::Value =
            serde_json::from_slice(record.value.as_ref().unwrap()).unwrap();
        let zip = row["zip_code"].as_str().unwrap().to_string();
        let start = parse_ms(row["window_start"].as_str().unwrap());
        assert_eq!(
            parse_ms(row["window_end"].as_str().unwrap()),
            start + 3_600_000
        );
        let expected_key = format!(
            r#"{{"zip_code":"{zip}","window":{{"start":"{}","end":"{}"}}}}"#,
            rfc3339_ms(start),
            rfc3339_ms(start + 3_600_000)
        );
        assert_eq!(key, expected_key);
        latest.insert((zip, start), row["count"].as_i64().unwrap());
    }
    latest
}

/// The archive's rows, `device|where|person|motion|sound|start ms|day`, sorted.
fn archived_events(archive: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for (relative, batch) in committed_parquet(archive) {
        let day = partition_value(&relative, "date");
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .clone()
        };
        let flag = |name: &str| batch.column_by_name(name).unwrap().as_boolean().clone();
        let (devices, wheres) = (text("device_id"), text("where_name"));
        let (person, motion, sound) = (flag("has_person"), flag("has_motion"), flag("has_sound"));
        let start = batch.column_by_name("start_time").unwrap();
        let start = start.as_primitive::<TimestampMillisecondType>();
        for i in 0..batch.num_rows() {
            let (device, place, start) = (devices.value(i), wheres.value(i), start.value(i));
            let (person, motion, sound) = (person.value(i), motion.value(i), sound.value(i));
            rows.push(format!(
                "{device}|{place}|{person}|{motion}|{sound}|{start}|{day}"
            ));
        }
    }
    rows.sort();
    rows
}

/// The report's rows, (zip code, hour start), in file order.
fn report_rows(report: &Path) -> Vec<(String, i64)> {
    let rows = committed_json_lines(report).into_iter().map(|(_, row)| {
        let start = parse_ms(row["window_start"].as_str().unwrap());
        assert_eq!(
            parse_ms(row["window_end"].as_str().unwrap()),
            start + 3_600_000
        );
        (row["zip_code"].as_str().unwrap().to_string(), start)
    });
    rows.collect()
}

#[test]
fn the_nest_pipeline_writes_stats_archive_and_report_exactly() {
    udf_module("nest_cameras");
    let table =
        std::fs::read_to_string(workspace().join("examples/nest-cameras/device_locations.csv"))
            .unwrap();
    let listed: Vec<(String, String)> = table
        .lines()
        .skip(1)
        .map(|l| {
            l.split_once(',')
                .map(|(d, z)| (d.to_string(), z.to_string()))
                .unwrap()
        })
        .collect();
    let expected_table: Vec<(String, String)> = NEST_DEVICE_ZIP_CODES
        .iter()
        .map(|(d, z)| (d.to_string(), z.to_string()))
        .collect();
    assert_eq!(
        listed, expected_table,
        "the example's table is the one the check assumes"
    );

    let broker = tansu();
    broker.create_topic("nest-devices", 2);
    broker.create_topic("nest-camera-stats", 1);
    let dir = scratch_dir();
    std::fs::write(dir.join("device_locations.csv"), &table).unwrap();
    let stats = example_in(&dir, "stats.toml", true);
    let archive = example_in(&dir, "archive.toml", true);
    let report = example_in(&dir, "report.toml", false);

    // Two rounds: the second's records continue the first's, and every pipeline resumes from its
    // checkpoint; the report, in complete mode, replaces its first result.
    let n = 20_000;
    for round in 1..=2u64 {
        let records = nest_records_every(round * n, NEST_EXAMPLE_SPACING_MS)
            .enumerate()
            .skip(((round - 1) * n) as usize)
            .map(|(i, (_, json))| (format!("home{}", i % 50), json));
        produce(&broker.bootstrap, "nest-devices", records).unwrap();
        for files in [vec![stats.clone(), archive.clone()], vec![report.clone()]] {
            let output = weir_command()
                .args(["run", "--progress", "json"])
                .args(&files)
                .env("KAFKA_BOOTSTRAP_SERVERS", &broker.bootstrap)
                .stdout(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{files:?}: {stderr}");
        }
        check_outputs(&broker.bootstrap, &dir, round * n);
    }
}

/// The three outputs after the first `n` records, each against the workload computed offline.
fn check_outputs(bootstrap: &str, dir: &Path, n: u64) {
    let expected_counts = nest_zip_hourly_counts(n, NEST_EXAMPLE_SPACING_MS);
    assert_eq!(stats_counts(bootstrap), expected_counts);

    let mut expected_events = Vec::new();
    for (events, _) in nest_records_every(n, NEST_EXAMPLE_SPACING_MS) {
        for e in events {
            let day = rfc3339_ms(e.start_ms)[..10].to_string();
            let (id, person, start) = (&e.device_id, e.has_person, e.start_ms);
            expected_events.push(format!("{id}|Room {id}|{person}|true|false|{start}|{day}"));
        }
    }
    expected_events.sort();
    let got = archived_events(&dir.join("archive"));
    assert_eq!(got.len(), expected_events.len());
    assert!(
        got == expected_events,
        "the archive differs from the camera events"
    );

    let busy = nest_busy_hours(n, NEST_EXAMPLE_SPACING_MS);
    let quiet = expected_counts.len() - busy.len();
    assert!(
        !busy.is_empty() && quiet > 0,
        "{} busy hours, {quiet} quiet",
        busy.len()
    );
    let rows = report_rows(&dir.join("report"));
    let distinct: BTreeSet<(String, i64)> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), distinct.len(), "the report repeats a row");
    assert_eq!(distinct, busy);
}
