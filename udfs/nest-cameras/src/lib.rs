//! Deserializer UDF for the seeds' Nest device records: nested JSON whose `devices.cameras` map holds one
//! object per camera, each with its `last_event`. The map is exploded: one output row per camera.
//!
//! ```json
//! {"devices": {"cameras": {"cam1": {"device_id": "cam1", "where_name": "Hallway",
//!   "last_event": {"has_sound": false, "has_motion": true, "has_person": true,
//!                  "start_time": "2016-12-29T00:00:00.000Z"}}}}}
//! ```
//! Rows: `device_id`, `where_name`, `has_person`, `has_motion`, `has_sound`, `start_time` (timestamp, ms,
//! UTC). A record that does not parse, or whose time is not RFC 3339 UTC, is a row error.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use weir_guest::arrow_array::builder::{
    BooleanBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use weir_guest::arrow_array::{ArrayRef, BinaryArray, RecordBatch};
use weir_guest::arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use weir_guest::{RowErrors, Udf, UdfError};

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    devices: Devices<'a>,
}

#[derive(Deserialize)]
struct Devices<'a> {
    #[serde(borrow, default)]
    cameras: BTreeMap<Cow<'a, str>, Camera<'a>>,
}

#[derive(Deserialize)]
struct Camera<'a> {
    #[serde(borrow)]
    device_id: Cow<'a, str>,
    #[serde(borrow, default)]
    where_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    last_event: Event<'a>,
}

#[derive(Deserialize)]
struct Event<'a> {
    has_person: bool,
    #[serde(default)]
    has_motion: bool,
    #[serde(default)]
    has_sound: bool,
    #[serde(borrow)]
    start_time: Cow<'a, str>,
}

/// The deserializer: stateless, so it keeps only its output schema.
pub struct NestCameras {
    output: SchemaRef,
}

/// Milliseconds since the epoch of an RFC 3339 UTC time such as `2016-12-29T18:42:00.000Z`.
///
/// ```
/// assert_eq!(nest_cameras::parse_utc("1970-01-02T00:00:01.500Z"), Some(86_401_500));
/// assert_eq!(nest_cameras::parse_utc("2016-12-29T18:42:00Z"), Some(1_483_036_920_000));
/// assert_eq!(nest_cameras::parse_utc("yesterday"), None);
/// ```
pub fn parse_utc(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (hms, millis) = match time.split_once('.') {
        Some((hms, fraction)) => {
            let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
            (hms, digits.parse::<i64>().ok()?)
        }
        None => (time, 0),
    };
    let mut hms = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// The rows this deserializer produces.
pub fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("device_id", DataType::Utf8, false),
        Field::new("where_name", DataType::Utf8, true),
        Field::new("has_person", DataType::Boolean, false),
        Field::new("has_motion", DataType::Boolean, false),
        Field::new("has_sound", DataType::Boolean, false),
        Field::new(
            "start_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            false,
        ),
    ]))
}

impl Udf for NestCameras {
    fn init(_config: &str, input: SchemaRef) -> Result<(Self, SchemaRef), UdfError> {
        input.field_with_name("value").map_err(|_| {
            UdfError::new("the input has no `value` column; is this stage a deserializer?")
        })?;
        let output = output_schema();
        Ok((
            NestCameras {
                output: output.clone(),
            },
            output,
        ))
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        errors: &mut RowErrors,
    ) -> Result<RecordBatch, UdfError> {
        let values = weir_guest::column::<BinaryArray>(&batch, "value")?;
        let mut device = StringBuilder::new();
        let mut place = StringBuilder::new();
        let (mut person, mut motion, mut sound) = (
            BooleanBuilder::new(),
            BooleanBuilder::new(),
            BooleanBuilder::new(),
        );
        let mut start = TimestampMillisecondBuilder::new().with_timezone("+00:00");
        for (row, value) in values.iter().enumerate() {
            let record = match value.map(serde_json::from_slice::<Record>) {
                Some(Ok(record)) => record,
                Some(Err(e)) => {
                    errors.push(row, format!("not a Nest device record: {e}"));
                    continue;
                }
                None => {
                    errors.push(row, "the record has no value");
                    continue;
                }
            };
            // Check every camera first, so a bad record adds no rows at all.
            let times: Option<Vec<i64>> = record
                .devices
                .cameras
                .values()
                .map(|c| parse_utc(&c.last_event.start_time))
                .collect();
            let Some(times) = times else {
                errors.push(
                    row,
                    "a camera's last_event.start_time is not an RFC 3339 UTC time",
                );
                continue;
            };
            for (camera, time) in record.devices.cameras.values().zip(times) {
                device.append_value(&camera.device_id);
                place.append_option(camera.where_name.as_deref());
                person.append_value(camera.last_event.has_person);
                motion.append_value(camera.last_event.has_motion);
                sound.append_value(camera.last_event.has_sound);
                start.append_value(time);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(device.finish()),
            Arc::new(place.finish()),
            Arc::new(person.finish()),
            Arc::new(motion.finish()),
            Arc::new(sound.finish()),
            Arc::new(start.finish()),
        ];
        Ok(RecordBatch::try_new(self.output.clone(), columns)?)
    }
}

weir_guest::export_deserializer!(NestCameras);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_guest::arrow_array::{BooleanArray, StringArray};

    #[test]
    fn explodes_the_cameras_map() {
        let record = br#"{"devices":{"thermostats":{},"cameras":{
            "c1":{"device_id":"c1","where_name":"Hall","last_event":{"has_person":true,"has_motion":true,"start_time":"2016-12-29T00:00:00.000Z"}},
            "c2":{"device_id":"c2","last_event":{"has_person":false,"start_time":"2016-12-29T01:30:00.000Z"}}}}}"#;
        let value: BinaryArray = vec![Some(&record[..]), Some(&b"{}"[..])]
            .into_iter()
            .collect();
        let batch = RecordBatch::try_from_iter([("value", Arc::new(value) as ArrayRef)]).unwrap();
        let (out, errors) = weir_guest::run_native::<NestCameras>("{}", batch).unwrap();
        assert_eq!(out.num_rows(), 2);
        let ids = weir_guest::column::<StringArray>(&out, "device_id").unwrap();
        assert_eq!((ids.value(0), ids.value(1)), ("c1", "c2"));
        let person = weir_guest::column::<BooleanArray>(&out, "has_person").unwrap();
        assert!(person.value(0) && !person.value(1));
        assert_eq!(errors.iter().map(|e| e.row).collect::<Vec<_>>(), [1]);
    }
}
