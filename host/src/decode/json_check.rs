//! The record checks arrow-json does not make, for the built-in JSON deserializer's documented policy.
//!
//! arrow-json converts generously: `"1"` into an INT column, `1700000000000.5` into BIGINT (truncated),
//! a number into TIMESTAMP (as microseconds), and a missing or null value into a null. Spark's `from_json`
//! treats the first three as malformed records, and a WebAssembly deserializer written with serde does the
//! same. So, before arrow-json sees a record:
//! - a `NOT NULL` column (schema DDL) that is missing or null makes the record malformed, in every mode;
//! - with `strict = true`, so does a value whose JSON type is not its column's, a key that appears twice,
//!   and an integer out of its column's range.
//!
//! The check is one serde pass that allocates nothing per value, and runs only when the schema has a
//! `NOT NULL` column or `strict` is set.

use std::collections::HashMap;
use std::fmt;

use arrow_schema::{DataType, SchemaRef};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// What a column takes under the strict policy.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A JSON integer in `min..=max`.
    Integer {
        min: i64,
        max: i64,
        ddl: &'static str,
    },
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON string (STRING, BINARY, TIMESTAMP, DATE).
    Text { ddl: &'static str },
}

impl Expect {
    fn of(data_type: &DataType) -> Expect {
        let integer = |min: i64, max: i64, ddl| Expect::Integer { min, max, ddl };
        match data_type {
            DataType::Int8 => integer(i8::MIN.into(), i8::MAX.into(), "TINYINT"),
            DataType::Int16 => integer(i16::MIN.into(), i16::MAX.into(), "SMALLINT"),
            DataType::Int32 => integer(i32::MIN.into(), i32::MAX.into(), "INT"),
            DataType::Int64 => integer(i64::MIN, i64::MAX, "BIGINT"),
            DataType::Float32 | DataType::Float64 => Expect::Number,
            DataType::Boolean => Expect::Boolean,
            DataType::Binary => Expect::Text { ddl: "BINARY" },
            DataType::Timestamp(..) => Expect::Text { ddl: "TIMESTAMP" },
            DataType::Date32 => Expect::Text { ddl: "DATE" },
            _ => Expect::Text { ddl: "STRING" },
        }
    }
}

/// One column as the check sees it.
#[derive(Debug, Clone)]
struct Column {
    index: usize,
    expect: Expect,
    not_null: bool,
}

/// The checks for one schema; see the module doc.
#[derive(Debug, Clone)]
pub(crate) struct RecordCheck {
    columns: HashMap<String, Column>,
    names: Vec<String>,
    not_null: Vec<usize>,
    strict: bool,
}

impl RecordCheck {
    /// The checks `schema` and `strict` call for, or `None` when there are none to make.
    pub(crate) fn new(schema: &SchemaRef, strict: bool) -> Option<RecordCheck> {
        let fields = schema.fields();
        let not_null: Vec<usize> = (0..fields.len())
            .filter(|i| !fields[*i].is_nullable())
            .collect();
        if !strict && not_null.is_empty() {
            return None;
        }
        let columns = fields
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let column = Column {
                    index,
                    expect: Expect::of(f.data_type()),
                    not_null: !f.is_nullable(),
                };
                (f.name().clone(), column)
            })
            .collect();
        Some(RecordCheck {
            columns,
            names: fields.iter().map(|f| f.name().clone()).collect(),
            not_null,
            strict,
        })
    }

    /// Checks one record's value; the error says which column and why, in a sentence.
    pub(crate) fn check(&self, value: &[u8]) -> Result<(), String> {
        let mut seen = vec![false; self.names.len()];
        let mut deserializer = serde_json::Deserializer::from_slice(value);
        RecordSeed {
            check: self,
            seen: &mut seen,
        }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|e| e.to_string())?;
        match self.not_null.iter().find(|i| !seen[**i]) {
            Some(i) => Err(format!(
                "column `{}` is NOT NULL, but the record has no value for it",
                self.names[*i]
            )),
            None => Ok(()),
        }
    }
}

/// Reads the record's object, checking each known key's value; `seen` marks columns with a non-null value.
struct RecordSeed<'a> {
    check: &'a RecordCheck,
    seen: &'a mut [bool],
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Visited keys, to refuse a duplicate under `strict` (serde's derive does; arrow-json keeps the last).
        let mut visited = vec![false; self.seen.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(column) = self.check.columns.get(key.as_ref()) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if self.check.strict && std::mem::replace(&mut visited[column.index], true) {
                return Err(de::Error::custom(format_args!(
                    "the key `{key}` appears twice"
                )));
            }
            let present = map.next_value_seed(ValueSeed {
                name: &key,
                column,
                strict: self.check.strict,
            })?;
            self.seen[column.index] |= present;
        }
        Ok(())
    }
}

/// Checks one value against its column; yields whether it is non-null.
struct ValueSeed<'a> {
    name: &'a str,
    column: &'a Column,
    strict: bool,
}

impl ValueSeed<'_> {
    fn wrong<E: de::Error>(&self, found: fmt::Arguments) -> Result<bool, E> {
        if !self.strict {
            return Ok(true);
        }
        let ddl = match self.column.expect {
            Expect::Integer { ddl, .. } | Expect::Text { ddl } => ddl,
            Expect::Number => "FLOAT or DOUBLE",
            Expect::Boolean => "BOOLEAN",
        };
        Err(E::custom(format_args!(
            "column `{}` is {ddl}, but the value is {found}",
            self.name
        )))
    }

    fn integer<E: de::Error>(&self, value: i128) -> Result<bool, E> {
        match self.column.expect {
            Expect::Integer { min, max, ddl }
                if self.strict && !(min.into()..=max.into()).contains(&value) =>
            {
                Err(E::custom(format_args!(
                    "column `{}` is {ddl}, but {value} is out of its range",
                    self.name
                )))
            }
            Expect::Integer { .. } | Expect::Number => Ok(true),
            _ => self.wrong(format_args!("the number {value}")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        if self.column.not_null {
            return Err(E::custom(format_args!(
                "column `{}` is NOT NULL, but the value is null",
                self.name
            )));
        }
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
        match self.column.expect {
            Expect::Boolean => Ok(true),
            _ => self.wrong(format_args!("{value}")),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<bool, E> {
        self.integer(value.into())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<bool, E> {
        self.integer(value.into())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<bool, E> {
        match self.column.expect {
            Expect::Number => Ok(true),
            Expect::Integer { .. } => self.wrong(format_args!("the fraction {value}")),
            _ => self.wrong(format_args!("the number {value}")),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<bool, E> {
        match self.column.expect {
            Expect::Text { .. } => Ok(true),
            _ => self.wrong(format_args!("the string {value:?}")),
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.wrong(format_args!("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.wrong(format_args!("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_ddl_schema;

    fn check(ddl: &str, strict: bool, value: &str) -> Result<(), String> {
        RecordCheck::new(&parse_ddl_schema(ddl).unwrap(), strict)
            .expect("checks to make")
            .check(value.as_bytes())
    }

    #[test]
    fn strict_refuses_what_arrow_json_would_coerce() {
        let ddl = "name STRING, flag INT, ts BIGINT, amount DOUBLE, at TIMESTAMP";
        assert_eq!(
            check(
                ddl,
                true,
                r#"{"name":"a","flag":1,"ts":5,"amount":2,"at":"2024-01-01"}"#
            ),
            Ok(())
        );
        let refused = [
            (
                r#"{"flag":"1"}"#,
                "column `flag` is INT, but the value is the string \"1\"",
            ),
            (
                r#"{"ts":1700000000000.5}"#,
                "column `ts` is BIGINT, but the value is the fraction 1700000000000.5",
            ),
            (
                r#"{"flag":3000000000}"#,
                "column `flag` is INT, but 3000000000 is out of its range",
            ),
            (
                r#"{"at":1700000000}"#,
                "column `at` is TIMESTAMP, but the value is the number 1700000000",
            ),
            (
                r#"{"name":12}"#,
                "column `name` is STRING, but the value is the number 12",
            ),
            (r#"{"name":"a","name":"b"}"#, "the key `name` appears twice"),
            (
                r#"{"amount":[1]}"#,
                "column `amount` is FLOAT or DOUBLE, but the value is an array",
            ),
        ];
        for (value, expected) in refused {
            let error = check(ddl, true, value).unwrap_err();
            assert!(error.starts_with(expected), "{value}: {error}");
        }
        // Keys outside the schema are not looked at; a record that is not one object is refused.
        assert_eq!(check(ddl, true, r#"{"other":{"x":[1,"2"]}}"#), Ok(()));
        assert!(check(ddl, true, "[1]").is_err());
        assert!(check(ddl, true, r#"{"flag":1} {"flag":2}"#).is_err());
    }

    #[test]
    fn not_null_columns_need_a_value_in_every_mode() {
        let ddl = "name STRING NOT NULL, flag INT";
        for strict in [false, true] {
            assert_eq!(check(ddl, strict, r#"{"name":"a"}"#), Ok(()));
            assert_eq!(
                check(ddl, strict, r#"{"flag":1}"#).unwrap_err(),
                "column `name` is NOT NULL, but the record has no value for it"
            );
            assert!(check(ddl, strict, r#"{"name":null}"#)
                .unwrap_err()
                .starts_with("column `name` is NOT NULL, but the value is null"));
        }
        // Without `strict`, types are arrow-json's business.
        assert_eq!(check(ddl, false, r#"{"name":"a","flag":"1"}"#), Ok(()));
        assert!(RecordCheck::new(&parse_ddl_schema("a INT").unwrap(), false).is_none());
    }
}
