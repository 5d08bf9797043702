//! What a WebAssembly stage is: the module, its configuration and limits, and its failure policies.

use std::path::PathBuf;

use super::UdfLimits;

/// A WebAssembly transform stage.
#[derive(Debug, Clone)]
pub struct TransformSpec {
    /// The module and its configuration.
    pub udf: UdfSpec,
    /// What happens to rows the transform reports as failed: `Fail` or `Drop`.
    pub on_error: OnError,
}

impl TransformSpec {
    /// A transform running `udf`, failing the pipeline on a row error (`on_error = "fail"`).
    ///
    /// ```
    /// use weir::{OnError, TransformSpec, UdfSpec};
    /// let filter = TransformSpec::new(
    ///     UdfSpec::new("filter.wasm").with_config(serde_json::json!({ "column": "count", "greater_than": 1 })),
    /// );
    /// assert_eq!(filter.on_error, OnError::Fail);
    /// ```
    pub fn new(udf: UdfSpec) -> TransformSpec {
        TransformSpec {
            udf,
            on_error: OnError::Fail,
        }
    }
}

/// A WebAssembly module and how to run it.
#[derive(Debug, Clone)]
pub struct UdfSpec {
    /// The stage name in messages (default: the module's file stem).
    pub name: String,
    /// The `.wasm` file.
    pub path: PathBuf,
    /// The `config` table, handed to the UDF's init call as JSON.
    pub config: serde_json::Value,
    /// Resource limits for each instance.
    pub limits: UdfLimits,
    /// What happens when a call fails as a whole (trap, timeout, limit, malformed output, the UDF's own
    /// error): `on_failure` in the pipeline file.
    pub on_failure: OnFailure,
}

impl UdfSpec {
    /// A module at `path`, named after its file stem, with an empty `config`, the default limits and
    /// `on_failure = "fail"`; the `with_*` methods change one of those.
    ///
    /// ```
    /// use weir::{UdfLimits, UdfSpec};
    /// let mut limits = UdfLimits::default();
    /// limits.max_rows_per_call = 1024;
    /// let spec = UdfSpec::new("udfs/fraud_flagged.wasm")
    ///     .with_config(serde_json::json!({ "threshold": 1 }))
    ///     .with_limits(limits);
    /// assert_eq!(spec.name, "fraud_flagged");
    /// assert_eq!(spec.config["threshold"], 1);
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> UdfSpec {
        let path = path.into();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        UdfSpec {
            name,
            path,
            config: serde_json::Value::Object(Default::default()),
            limits: UdfLimits::default(),
            on_failure: OnFailure::Fail,
        }
    }

    /// The stage name in messages, instead of the file stem.
    pub fn with_name(mut self, name: impl Into<String>) -> UdfSpec {
        self.name = name.into();
        self
    }

    /// The `config` table handed to the UDF's init call.
    pub fn with_config(mut self, config: serde_json::Value) -> UdfSpec {
        self.config = config;
        self
    }

    /// Resource limits for each instance.
    pub fn with_limits(mut self, limits: UdfLimits) -> UdfSpec {
        self.limits = limits;
        self
    }
}

/// The policy for a UDF call that fails as a whole, rather than for single rows.
///
/// ```toml
/// [[transform]]
/// udf = "enrich.wasm"
/// on_failure = "dead-letter"              # or "fail" (the default)
/// dead_letter_topic = "enrich-failures"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the pipeline with the error; nothing of the batch is committed.
    #[default]
    Fail,
    /// Write every source record of the failed call to this topic, with the error in its headers, and go on.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

/// The policy for records or rows that fail on their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnError {
    /// Stop the pipeline with an error naming the record; nothing after it is committed.
    Fail,
    /// Skip the record and count it in the progress report.
    Drop,
    /// Write the original record, with the error in its headers, to this topic.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}
