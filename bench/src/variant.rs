//! The pipeline configurations the suite compares, each `examples/fraud-window/pipeline.toml` with a few
//! keys changed, so the benchmark always measures the example users run.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// How records become rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// The example's WebAssembly deserializer, `json-transactions`.
    Wasm,
    /// Weir's built-in arrow-json decoder with the workload's schema.
    NativeJson,
}

/// What runs between the deserializer and the sink: the flag filter and id (before the aggregation) and
/// the `count > 1` filter (after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stages {
    /// The example's WebAssembly transforms, `fraud-flagged` and `filter`.
    Udf,
    /// The example's transforms with `fraud-flagged` written in Python (`udfs/py-fraud-flagged`, a
    /// component), as `examples/fraud/pipeline-python.toml` runs it: what a Python stage costs a pipeline.
    PythonUdf,
    /// SQL stages: `where = "flag = 1"`, `select = ["name || surname AS id", "*"]`, `where = "count > 1"`
    /// (as `examples/fraud-window/pipeline-sql.toml`).
    Sql,
    /// The SQL stages after a left outer join of every transaction with a 1,000,000-row customer table
    /// (`customers.csv`, keyed by name and surname; the workload's 10,000 customers are its first rows).
    SqlJoin,
    /// The SQL stages with `[deduplicate] columns = ["name", "surname", "ts"]` before the aggregation (as
    /// `examples/fraud-window/pipeline-dedup.toml`; the workload has no repeats, so this is its cost).
    SqlDedup,
}

impl Stages {
    /// Whether the transforms are SQL stages.
    fn is_sql(self) -> bool {
        matches!(self, Stages::Sql | Stages::SqlJoin | Stages::SqlDedup)
    }
}

/// Rows of the customer table of [`Stages::SqlJoin`].
const CUSTOMER_ROWS: u64 = 1_000_000;

/// One configuration of the fraud-window pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// Its name in tables, files and charts.
    pub name: &'static str,
    /// The deserializer.
    pub decoder: Decoder,
    /// The transforms.
    pub stages: Stages,
    /// `[sink] delivery` with a `checkpointLocation`, or `None` for no checkpoint (output flushed each
    /// batch, no offsets kept: a rerun starts over).
    pub delivery: Option<&'static str>,
    /// `maxOffsetsPerTrigger`, to show what smaller batches cost; `None` keeps Weir's default.
    pub batch_records: Option<u64>,
    /// `[metrics]` on (on a port the system picks, not scraped), to show what keeping them costs.
    pub metrics: bool,
}

/// Every configuration the suite runs, the headline (exactly-once, as the example is meant to run) first.
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "wasm exactly-once",
        decoder: Decoder::Wasm,
        stages: Stages::Udf,
        delivery: Some("exactly-once"),
        batch_records: None,
        metrics: false,
    },
    Variant {
        name: "wasm exactly-once, metrics on",
        decoder: Decoder::Wasm,
        stages: Stages::Udf,
        delivery: Some("exactly-once"),
        batch_records: None,
        metrics: true,
    },
    Variant {
        name: "wasm exactly-once, 10,000-record batches",
        decoder: Decoder::Wasm,
        stages: Stages::Udf,
        delivery: Some("exactly-once"),
        batch_records: Some(10_000),
        metrics: false,
    },
    Variant {
        name: "wasm at-least-once",
        decoder: Decoder::Wasm,
        stages: Stages::Udf,
        delivery: Some("at-least-once"),
        batch_records: None,
        metrics: false,
    },
    Variant {
        name: "wasm no checkpoint",
        decoder: Decoder::Wasm,
        stages: Stages::Udf,
        delivery: None,
        batch_records: None,
        metrics: false,
    },
    Variant {
        name: "python fraud-flagged exactly-once",
        decoder: Decoder::Wasm,
        stages: Stages::PythonUdf,
        delivery: Some("exactly-once"),
        batch_records: None,
        metrics: false,
    },
    Variant {
        name: "native json exactly-once",
        decoder: Decoder::NativeJson,
        stages: Stages::Udf,
        delivery: Some("exactly-once"),
        batch_records: None,
        metrics: false,
    },
    Variant {
        name: "wasm + sql exactly-once",
        decoder: Decoder::Wasm,
        stages: Stages::Sql,
        delivery: Some("exactly-once"),
        batch_records: None,
        metrics: false,
    },
    Variant {
        name: "native json + sql exactly-once",
        decoder: Decoder::NativeJson,
        stages: Stages::Sql,
        delivery: Some("exactly-once"),
        batch_records: None,
        metrics: false,
    },
    Variant {
        name: "native json + sql + dedup exactly-once",
        decoder: Decoder::NativeJson,
        stages: Stages::SqlDedup,
        delivery: Some("exactly-once"),
        batch_records: None,
        metrics: false,
    },
    Variant {
        name: "native json + 1m-row join + sql exactly-once",
        decoder: Decoder::NativeJson,
        stages: Stages::SqlJoin,
        delivery: Some("exactly-once"),
        batch_records: None,
        metrics: false,
    },
];

/// The workload's schema for the built-in decoder, as `json-transactions` declares it.
const TRANSACTION_SCHEMA: &str =
    "name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT";

impl Variant {
    /// The name without spaces or commas, for topics and files.
    pub fn slug(&self) -> String {
        self.name.replace(", ", "-").replace([' ', ','], "-")
    }

    /// The WebAssembly modules its pipeline loads, by file stem in `target/wasm32-wasip1/release`.
    pub fn modules(&self) -> Vec<&'static str> {
        let mut modules = Vec::new();
        if self.decoder == Decoder::Wasm {
            modules.push("json_transactions");
        }
        match self.stages {
            Stages::Udf => modules.extend(["fraud_flagged", "filter"]),
            Stages::PythonUdf => modules.extend(["py_fraud_flagged", "filter"]),
            Stages::Sql | Stages::SqlJoin | Stages::SqlDedup => {}
        }
        modules
    }

    /// Writes this variant's pipeline file to `dir/pipeline.toml`, reading `input` and writing alerts to
    /// `alerts`; the checkpoint, when there is one, goes to `dir/checkpoint`. `bounded` keeps the example's
    /// `endingOffsets = "latest"`; unbounded runs (latency) go on until stopped.
    pub fn write_pipeline(
        &self,
        dir: &Path,
        input: &str,
        alerts: &str,
        bounded: bool,
    ) -> anyhow::Result<PathBuf> {
        let mut name = format!("name = \"bench-{}-{}\"", alerts, self.slug());
        if self.delivery.is_some() {
            name += &format!(
                "\ncheckpointLocation = \"{}\"",
                dir.join("checkpoint").display()
            );
        }
        let mut edits = vec![
            ("name = \"fraud-window\"", name),
            ("subscribe = \"tx\"", format!("subscribe = \"{input}\"")),
            ("topic = \"alerts\"", format!("topic = \"{alerts}\"")),
        ];
        let mut ending = if bounded {
            "endingOffsets = \"latest\"".to_string()
        } else {
            String::new()
        };
        if let Some(records) = self.batch_records {
            ending += &format!("\nmaxOffsetsPerTrigger = {records}");
        }
        edits.push(("endingOffsets = \"latest\"", ending));
        if let Some(delivery) = self.delivery {
            edits.push((
                "\n[sink]\n",
                format!("\n[sink]\ndelivery = \"{delivery}\"\n"),
            ));
        }
        if self.metrics {
            edits.push((
                "\n[sink]\n",
                "\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n[sink]\n".to_string(),
            ));
        }
        if self.decoder == Decoder::NativeJson {
            edits.push((
                "udf = \"../../target/wasm32-wasip1/release/json_transactions.wasm\"",
                format!("format = \"json\"\nschema = \"{TRANSACTION_SCHEMA}\""),
            ));
        }
        let join = match self.stages {
            Stages::SqlJoin => {
                write_customers(&dir.join("customers.csv"))?;
                "join = \"customers.csv\"\non = [\"name\", \"surname\"]\nhow = \"left_outer\"\n\n[[transform]]\n"
            }
            _ => "",
        };
        if self.stages.is_sql() {
            edits.push((
                "udf = \"../../target/wasm32-wasip1/release/fraud_flagged.wasm\"",
                format!("{join}where = \"flag = 1\"\n\n[[transform]]\nselect = [\"name || surname AS id\", \"*\"]"),
            ));
            edits.push((
                "udf = \"../../target/wasm32-wasip1/release/filter.wasm\"\nconfig = { column = \"count\", greater_than = 1 }",
                "where = \"count > 1\"".into(),
            ));
        }
        if self.stages == Stages::PythonUdf {
            edits.push((
                "release/fraud_flagged.wasm",
                "release/py_fraud_flagged.wasm".into(),
            ));
        }
        if self.stages == Stages::SqlDedup {
            edits.push((
                "\n[aggregate]\n",
                "\n[deduplicate]\ncolumns = [\"name\", \"surname\", \"ts\"]\n\n[aggregate]\n"
                    .into(),
            ));
        }
        let text = weir_tests::example_variant("fraud-window/pipeline.toml", &edits);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("pipeline.toml");
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// The customer table of [`Stages::SqlJoin`]: `name`, `surname`, `segment`, a row per customer.
fn write_customers(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let file =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "name,surname,segment")?;
    for user in 0..CUSTOMER_ROWS {
        let segment = ["retail", "business", "private"][(user % 3) as usize];
        writeln!(out, "name{user},sur{},{segment}", user % 97)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's file is a valid pipeline, with the changes it claims.
    #[test]
    fn every_variant_parses_as_a_pipeline() {
        for variant in VARIANTS {
            let dir = weir_tests::scratch_dir();
            let path = variant
                .write_pipeline(&dir, "tx-in", "alerts-out", true)
                .unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let spec = weir::config::parse(&text, "bench.toml", &dir, "bench", |_| None).unwrap();
            assert_eq!(spec.checkpoint.is_some(), variant.delivery.is_some());
            assert_eq!(spec.sink.options.topic.as_deref(), Some("alerts-out"));
            assert!(text.contains("subscribe = \"tx-in\""));
            assert_eq!(
                text.contains("format = \"json\"\nschema"),
                variant.decoder == Decoder::NativeJson
            );
            assert_eq!(
                spec.source.kafka().unwrap().max_offsets_per_trigger,
                variant.batch_records
            );
            assert_eq!(spec.metrics.is_some(), variant.metrics);
            let sql_stages = spec
                .transforms
                .iter()
                .chain(&spec.after_aggregate)
                .filter(|stage| matches!(stage, weir::Transform::Sql(_)))
                .count();
            assert_eq!(sql_stages, if variant.stages.is_sql() { 3 } else { 0 });
            let joins = spec
                .transforms
                .iter()
                .filter(|stage| matches!(stage, weir::Transform::Join(_)))
                .count();
            assert_eq!(joins, usize::from(variant.stages == Stages::SqlJoin));
            assert_eq!(
                spec.deduplicate.is_some(),
                variant.stages == Stages::SqlDedup
            );
            for module in [
                "json_transactions",
                "fraud_flagged",
                "py_fraud_flagged",
                "filter",
            ] {
                assert_eq!(
                    text.contains(&format!("release/{module}.wasm")),
                    variant.modules().contains(&module),
                    "{}: {module}",
                    variant.name
                );
            }
            assert!(!variant.slug().contains([' ', ',']));
        }
    }
}
