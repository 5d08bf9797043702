//! The seeds' Nest camera workload: device records with nested cameras, and the exact results of the
//! Nest pipelines computed offline (`examples/nest-cameras/`): person sightings per device and hour, per
//! zip code and hour through the device-location table, and the hours over a threshold.

use std::collections::{BTreeMap, BTreeSet};

/// Event time of the first Nest camera event: 2016-12-29T00:00:00Z.
pub const NEST_BASE_MS: i64 = 1_482_969_600_000;
/// Camera ids in the Nest workload.
pub const NEST_CAMERAS: u64 = 8;

/// One camera event of the Nest workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraEvent {
    /// `cam0` .. `cam7`.
    pub device_id: String,
    /// Whether a person was seen.
    pub has_person: bool,
    /// Event start, ms since the epoch.
    pub start_ms: i64,
}

/// The seeds' Nest device records: `n` records, each a `devices.cameras` map of one to three cameras with
/// their last event, spread over about `n × 37 s` of event time. Returns each record's camera events and
/// its JSON. The camera's `where_name` is `Room <device_id>`, `has_motion` is true and `has_sound` false.
pub fn nest_records(n: u64) -> impl Iterator<Item = (Vec<CameraEvent>, String)> {
    nest_records_every(n, 37_000)
}

/// [`nest_records`] with a record every `spacing_ms` of event time (each camera's event up to 30 s after
/// its record's time).
pub fn nest_records_every(
    n: u64,
    spacing_ms: i64,
) -> impl Iterator<Item = (Vec<CameraEvent>, String)> {
    let mut x: u64 = 7;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    (0..n).map(move |i| {
        let cameras = 1 + next() % 3;
        let first = next() % NEST_CAMERAS;
        let events: Vec<CameraEvent> = (0..cameras)
            .map(|c| CameraEvent {
                device_id: format!("cam{}", (first + c) % NEST_CAMERAS),
                has_person: next() % 10 < 4,
                start_ms: NEST_BASE_MS + i as i64 * spacing_ms + (next() % 30_000) as i64,
            })
            .collect();
        let cameras: Vec<String> = events
            .iter()
            .map(|e| {
                let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.start_ms as u64);
                format!(
                    r#""{id}":{{"device_id":"{id}","where_name":"Room {id}","is_online":true,"last_event":{{"has_sound":false,"has_motion":true,"has_person":{},"start_time":"{}","end_time":"{}"}}}}"#,
                    e.has_person,
                    humantime::format_rfc3339_millis(time),
                    humantime::format_rfc3339_millis(time + std::time::Duration::from_secs(20)),
                    id = e.device_id
                )
            })
            .collect();
        let json = format!(r#"{{"devices":{{"thermostats":{{}},"cameras":{{{}}}}}}}"#, cameras.join(","));
        (events, json)
    })
}

/// The Nest job offline: camera events with a person, counted per device and hour of their start.
pub fn nest_hourly_person_counts(n: u64) -> BTreeMap<(String, i64), i64> {
    let mut counts = BTreeMap::new();
    for (events, _) in nest_records(n) {
        for e in events.into_iter().filter(|e| e.has_person) {
            *counts
                .entry((e.device_id, e.start_ms - e.start_ms.rem_euclid(3_600_000)))
                .or_default() += 1;
        }
    }
    counts
}

/// The record spacing of `examples/nest-cameras/`: a record a second, so a busy zip code sees more than
/// 1,000 sightings an hour.
pub const NEST_EXAMPLE_SPACING_MS: i64 = 1_000;

/// `examples/nest-cameras/device_locations.csv`: each camera's zip code. Five cameras in 94105, two in
/// 10001, one in 60601, so the hourly counts per zip code straddle the report's 1,000.
pub const NEST_DEVICE_ZIP_CODES: [(&str, &str); NEST_CAMERAS as usize] = [
    ("cam0", "94105"),
    ("cam1", "94105"),
    ("cam2", "94105"),
    ("cam3", "94105"),
    ("cam4", "94105"),
    ("cam5", "10001"),
    ("cam6", "10001"),
    ("cam7", "60601"),
];

/// The report's threshold: the hours of a zip code with more sightings than this.
pub const NEST_REPORT_THRESHOLD: i64 = 1_000;

/// `examples/nest-cameras/stats.toml` offline: person sightings per (zip code, hour start in ms).
pub fn nest_zip_hourly_counts(n: u64, spacing_ms: i64) -> BTreeMap<(String, i64), i64> {
    let zip_of: BTreeMap<&str, &str> = NEST_DEVICE_ZIP_CODES.into_iter().collect();
    let mut counts = BTreeMap::new();
    for (events, _) in nest_records_every(n, spacing_ms) {
        for e in events.into_iter().filter(|e| e.has_person) {
            let zip = zip_of[e.device_id.as_str()].to_string();
            *counts
                .entry((zip, e.start_ms - e.start_ms.rem_euclid(3_600_000)))
                .or_default() += 1;
        }
    }
    counts
}

/// `examples/nest-cameras/report.toml` offline: the distinct (zip code, hour start) with more than
/// [`NEST_REPORT_THRESHOLD`] sightings.
pub fn nest_busy_hours(n: u64, spacing_ms: i64) -> BTreeSet<(String, i64)> {
    nest_zip_hourly_counts(n, spacing_ms)
        .into_iter()
        .filter(|(_, count)| *count > NEST_REPORT_THRESHOLD)
        .map(|(key, _)| key)
        .collect()
}
