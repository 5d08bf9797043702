//! The `kafka.*` options that pass straight through to librdkafka, as in Spark.
//!
//! Weir does not re-invent client configuration: any `kafka.<name>` option reaches the consumer or producer
//! as `<name>`. A few keys would break Weir's own offset or serialization handling, so, like Spark, they
//! are refused.

use std::collections::BTreeMap;

/// Option keys and values, as written in the pipeline file.
pub(crate) type Options = BTreeMap<String, String>;

/// Keys Spark refuses on the source, because the engine owns offsets and deserialization.
pub(crate) const FORBIDDEN_SOURCE_KEYS: &[&str] = &[
    "auto.offset.reset",
    "key.deserializer",
    "value.deserializer",
    "enable.auto.commit",
    "interceptor.classes",
];

/// Keys Spark refuses on the sink, because the engine owns serialization.
pub(crate) const FORBIDDEN_SINK_KEYS: &[&str] =
    &["key.serializer", "value.serializer", "interceptor.classes"];

/// A bad option: the key as written and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// The option key, as the user wrote it.
    pub key: String,
    /// What was expected.
    pub message: String,
}

impl OptionError {
    /// An error for `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        OptionError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "option `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for OptionError {}

/// Splits `options` into the librdkafka configuration (the `kafka.` prefix removed) and Weir's own options.
pub(crate) fn split_kafka_options(
    options: Options,
    forbidden: &[&str],
) -> Result<(Options, Options), OptionError> {
    let mut kafka = BTreeMap::new();
    let mut rest = BTreeMap::new();
    for (key, value) in options {
        match key.strip_prefix("kafka.") {
            Some(name) if forbidden.contains(&name) => {
                return Err(OptionError::new(
                    key.clone(),
                    format!("`{name}` is not supported: Weir manages it itself (as Spark does)"),
                ))
            }
            Some(name) => {
                kafka.insert(name.to_string(), value);
            }
            None => {
                rest.insert(key, value);
            }
        }
    }
    if !kafka.contains_key("bootstrap.servers") {
        return Err(OptionError::new(
            "kafka.bootstrap.servers",
            "missing: expected the broker list, e.g. \"localhost:9092\"",
        ));
    }
    Ok((kafka, rest))
}

#[cfg(test)]
mod tests {
    /// `split_kafka_options` by example (a unit test: doc tests cannot reach crate-private items).
    #[test]
    fn split_kafka_options_example() {
        use crate::kafka::{split_kafka_options, FORBIDDEN_SOURCE_KEYS};
        use std::collections::BTreeMap;
        let options = BTreeMap::from([
            (
                "kafka.bootstrap.servers".to_string(),
                "localhost:9092".to_string(),
            ),
            ("subscribe".to_string(), "tx".to_string()),
        ]);
        let (kafka, rest) = split_kafka_options(options, FORBIDDEN_SOURCE_KEYS).unwrap();
        assert_eq!(kafka["bootstrap.servers"], "localhost:9092");
        assert_eq!(rest["subscribe"], "tx");

        let bad = BTreeMap::from([("kafka.enable.auto.commit".to_string(), "true".to_string())]);
        assert!(split_kafka_options(bad, FORBIDDEN_SOURCE_KEYS).is_err());
    }
}
