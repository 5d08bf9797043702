//! What a SQL stage is, as the pipeline file and the builder say it.

use std::fmt;

/// A stage of SQL expressions over the rows, as Spark's `where` and `selectExpr`.
///
/// ```
/// use weir::SqlSpec;
/// let flagged = SqlSpec::filter("flag = 1");
/// let with_id = SqlSpec::select(["*", "name || surname AS id"]);
/// assert_eq!(flagged.to_string(), "where flag = 1");
/// assert_eq!(with_id.to_string(), "select *, name || surname AS id");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlSpec {
    /// `where`: keeps the rows for which a boolean expression is true (false and NULL drop the row).
    Where {
        /// The condition, e.g. `flag = 1 AND amount > 100`.
        condition: String,
    },
    /// `select`: the output columns, each an expression with an optional `AS name`; `*` stands for every
    /// input column that no other expression of the list names.
    Select {
        /// The expressions, e.g. `["*", "name || surname AS id"]`.
        expressions: Vec<String>,
    },
}

impl SqlSpec {
    /// A `where` stage.
    pub fn filter(condition: impl Into<String>) -> SqlSpec {
        SqlSpec::Where {
            condition: condition.into(),
        }
    }

    /// A `select` stage.
    pub fn select<S: Into<String>>(expressions: impl IntoIterator<Item = S>) -> SqlSpec {
        SqlSpec::Select {
            expressions: expressions.into_iter().map(Into::into).collect(),
        }
    }

    /// The pipeline-file key of the stage's expression: `where` or `select`.
    pub fn key(&self) -> &'static str {
        match self {
            SqlSpec::Where { .. } => "where",
            SqlSpec::Select { .. } => "select",
        }
    }
}

impl fmt::Display for SqlSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlSpec::Where { condition } => write!(f, "where {condition}"),
            SqlSpec::Select { expressions } => write!(f, "select {}", expressions.join(", ")),
        }
    }
}
