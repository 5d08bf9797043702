//! Deserializer UDF for the seeds' transaction records.
//!
//! Each Kafka record's value is a JSON object such as
//! `{"name":"name7","surname":"sur7","amount":"12.50","delta_t":"30","flag":1,"ts":1700000000000}`.
//! It becomes one row of `name`, `surname`, `amount`, `delta_t` (strings, as the seeds send them), `flag`
//! (int) and `ts` (event time in ms, null when absent). A record that is not such an object is reported as a
//! row error, so the host can drop it or send it to the dead-letter topic by itself.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use weir_guest::arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder};
use weir_guest::arrow_array::{ArrayRef, BinaryArray, RecordBatch};
use weir_guest::arrow_schema::{DataType, Field, Schema, SchemaRef};
use weir_guest::{RowErrors, Udf, UdfError};

/// One transaction as it appears on the wire; strings are borrowed from the record when unescaped.
#[derive(Deserialize)]
struct Transaction<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    surname: Cow<'a, str>,
    #[serde(borrow)]
    amount: Cow<'a, str>,
    #[serde(borrow)]
    delta_t: Cow<'a, str>,
    flag: i32,
    #[serde(default)]
    ts: Option<i64>,
}

/// The deserializer: stateless, so it keeps only its output schema.
pub struct Transactions {
    output: SchemaRef,
}

/// The rows this deserializer produces.
pub fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("surname", DataType::Utf8, false),
        Field::new("amount", DataType::Utf8, false),
        Field::new("delta_t", DataType::Utf8, false),
        Field::new("flag", DataType::Int32, false),
        Field::new("ts", DataType::Int64, true),
    ]))
}

impl Udf for Transactions {
    fn init(_config: &str, input: SchemaRef) -> Result<(Self, SchemaRef), UdfError> {
        let value = input.field_with_name("value").map_err(|_| {
            UdfError::new("the input has no `value` column; is this stage a deserializer?")
        })?;
        if value.data_type() != &DataType::Binary {
            return Err(UdfError::new(format!(
                "`value` is {} but Binary was expected",
                value.data_type()
            )));
        }
        let output = output_schema();
        Ok((
            Transactions {
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
        let rows = batch.num_rows();
        let text_bytes = values.values().len();
        let mut name = StringBuilder::with_capacity(rows, text_bytes / 4);
        let mut surname = StringBuilder::with_capacity(rows, text_bytes / 4);
        let mut amount = StringBuilder::with_capacity(rows, rows * 8);
        let mut delta_t = StringBuilder::with_capacity(rows, rows * 4);
        let mut flag = Int32Builder::with_capacity(rows);
        let mut ts = Int64Builder::with_capacity(rows);
        for (row, value) in values.iter().enumerate() {
            let Some(value) = value else {
                errors.push(row, "the record has no value");
                continue;
            };
            // The generators write compact objects with the keys in one order; those take the fast path,
            // anything else (whitespace, escapes, other key orders, bad input) goes through serde_json.
            let parsed = match compact(value) {
                Some(tx) => Ok(tx),
                None => serde_json::from_slice::<Transaction>(value),
            };
            match parsed {
                Ok(tx) => {
                    name.append_value(&tx.name);
                    surname.append_value(&tx.surname);
                    amount.append_value(&tx.amount);
                    delta_t.append_value(&tx.delta_t);
                    flag.append_value(tx.flag);
                    ts.append_option(tx.ts);
                }
                Err(e) => errors.push(row, format!("not a transaction: {e}")),
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(name.finish()),
            Arc::new(surname.finish()),
            Arc::new(amount.finish()),
            Arc::new(delta_t.finish()),
            Arc::new(flag.finish()),
            Arc::new(ts.finish()),
        ];
        Ok(RecordBatch::try_new(self.output.clone(), columns)?)
    }
}

/// Parses exactly `{"name":"..","surname":"..","amount":"..","delta_t":"..","flag":N,"ts":N}` with no
/// whitespace and no escapes in the strings; `None` for anything else, which serde_json then reads (or
/// rejects with its message). Measured on the benchmark workload it halves the deserializer's time.
fn compact(value: &[u8]) -> Option<Transaction<'_>> {
    fn string<'a>(rest: &mut &'a [u8], key: &[u8]) -> Option<Cow<'a, str>> {
        *rest = rest.strip_prefix(key)?;
        let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
        if rest[end] != b'"' {
            return None;
        }
        let text = std::str::from_utf8(&rest[..end]).ok()?;
        *rest = &rest[end + 1..];
        Some(Cow::Borrowed(text))
    }
    fn integer(rest: &mut &[u8], key: &[u8]) -> Option<i64> {
        *rest = rest.strip_prefix(key)?;
        let (negative, digits) = match rest.strip_prefix(b"-") {
            Some(digits) => (true, digits),
            None => (false, *rest),
        };
        let len = digits.iter().position(|b| !b.is_ascii_digit())?;
        if len == 0 || len > 18 {
            return None;
        }
        let magnitude = digits[..len]
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        *rest = &digits[len..];
        Some(if negative { -magnitude } else { magnitude })
    }
    let mut rest = value;
    let name = string(&mut rest, b"{\"name\":\"")?;
    let surname = string(&mut rest, b",\"surname\":\"")?;
    let amount = string(&mut rest, b",\"amount\":\"")?;
    let delta_t = string(&mut rest, b",\"delta_t\":\"")?;
    let flag = i32::try_from(integer(&mut rest, b",\"flag\":")?).ok()?;
    let ts = integer(&mut rest, b",\"ts\":")?;
    (rest == b"}").then_some(Transaction {
        name,
        surname,
        amount,
        delta_t,
        flag,
        ts: Some(ts),
    })
}

weir_guest::export_deserializer!(Transactions);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_guest::arrow_array::{Array, Int32Array, Int64Array, StringArray};

    fn records(values: &[&[u8]]) -> RecordBatch {
        let value: BinaryArray = values.iter().map(|v| Some(*v)).collect();
        RecordBatch::try_from_iter([("value", Arc::new(value) as ArrayRef)]).unwrap()
    }

    #[test]
    fn parses_transactions_and_reports_bad_rows() {
        let batch = records(&[
            br#"{"name":"ann","surname":"lee","amount":"1.50","delta_t":"3","flag":1,"ts":5}"#,
            b"not json",
            br#"{"name":"bo\"b","surname":"x","amount":"2","delta_t":"9","flag":0,"extra":true}"#,
            br#"{"name":"no flag","surname":"x","amount":"2","delta_t":"9"}"#,
        ]);
        let (out, errors) = weir_guest::run_native::<Transactions>("{}", batch).unwrap();
        assert_eq!(out.num_rows(), 2);
        let names = weir_guest::column::<StringArray>(&out, "name").unwrap();
        assert_eq!(names.value(0), "ann");
        assert_eq!(names.value(1), "bo\"b");
        assert_eq!(
            weir_guest::column::<Int32Array>(&out, "flag")
                .unwrap()
                .values(),
            &[1, 0]
        );
        let ts = weir_guest::column::<Int64Array>(&out, "ts").unwrap();
        assert_eq!((ts.value(0), ts.is_null(1)), (5, true));
        let rows: Vec<u32> = errors.iter().map(|e| e.row).collect();
        assert_eq!(rows, [1, 3]);
        assert!(
            errors[1].message.contains("missing field `flag`"),
            "{}",
            errors[1].message
        );
    }

    #[test]
    fn the_fast_path_agrees_with_serde_and_leaves_the_rest_to_it() {
        let compact_record = br#"{"name":"ann","surname":"lee","amount":"1.50","delta_t":"3","flag":-1,"ts":1700000000000}"#;
        let fast = compact(compact_record).unwrap();
        let slow: Transaction = serde_json::from_slice(compact_record).unwrap();
        assert_eq!(
            (
                fast.name,
                fast.surname,
                fast.amount,
                fast.delta_t,
                fast.flag,
                fast.ts
            ),
            (
                slow.name,
                slow.surname,
                slow.amount,
                slow.delta_t,
                slow.flag,
                slow.ts
            )
        );
        for other in [
            &br#"{"name":"a\"b","surname":"lee","amount":"1","delta_t":"3","flag":1,"ts":5}"#[..],
            br#"{"name": "ann","surname":"lee","amount":"1","delta_t":"3","flag":1,"ts":5}"#,
            br#"{"name":"ann","surname":"lee","amount":"1","delta_t":"3","flag":1}"#,
            br#"{"name":"ann","surname":"lee","amount":"1","delta_t":"3","flag":1.5,"ts":5}"#,
            br#"{"name":"ann","surname":"lee","amount":"1","delta_t":"3","flag":1,"ts":5} "#,
            br#"{"name":"ann","surname":"lee","amount":"1","delta_t":"3","flag":3000000000,"ts":5}"#,
        ] {
            assert!(compact(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn refuses_input_without_value() {
        let batch =
            RecordBatch::try_from_iter([("n", Arc::new(Int32Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        let err = weir_guest::run_native::<Transactions>("{}", batch).unwrap_err();
        assert!(err.to_string().contains("no `value` column"));
    }
}
