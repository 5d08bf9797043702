//! SQL stages: `where` and `select` over Arrow batches, as Spark's `where("flag = 1")` and
//! `selectExpr("name || surname AS id")`, for the comparisons and column arithmetic that do not deserve a
//! compiled module.
//!
//! DataFusion parses each expression, resolves its columns against the rows that reach the stage, coerces
//! its types and makes a physical expression once, when the pipeline is planned (so `weir validate`
//! catches a missing column or a wrong type); a batch is then one evaluation per expression.
//!
//! ```toml
//! [[transform]]
//! where = "flag = 1"
//!
//! [[transform]]
//! select = ["*", "name || surname AS id"]
//! ```

mod compile;
mod join_condition;
mod spec;
mod stage;

pub(crate) use join_condition::{read_join_condition, JoinCondition, Sides};
pub use spec::SqlSpec;
pub use stage::SqlError;
pub use stage::SqlStage;

#[cfg(test)]
mod tests;
