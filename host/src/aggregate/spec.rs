//! What an aggregation is, as the pipeline file describes it: group keys, window, aggregates, output mode;
//! and the counts it reports per batch.

use super::accumulator::Function;
use crate::window::WindowSpec;

/// Spark's output modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Final rows only, once.
    Append,
    /// Changed rows, every batch.
    Update,
    /// All rows, every batch.
    Complete,
}

impl OutputMode {
    /// Parses `append`, `update` or `complete`.
    pub fn parse(text: &str) -> Result<OutputMode, String> {
        match text {
            "append" => Ok(OutputMode::Append),
            "update" => Ok(OutputMode::Update),
            "complete" => Ok(OutputMode::Complete),
            other => Err(format!(
                "expected append, update or complete, found {other:?}"
            )),
        }
    }
}

/// An aggregate as written in the pipeline file: `{ function = "sum", column = "amount", as = "total" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateExpr {
    /// The function.
    pub function: Function,
    /// The input column (none for `count` of rows).
    pub column: Option<String>,
    /// The output column name.
    pub alias: String,
    /// For `collect_list`: the most values kept per group (default [`AggregateExpr::DEFAULT_MAX_ITEMS`]).
    pub max_items: usize,
}

impl AggregateExpr {
    /// How many values `collect_list` keeps per group when `max_items` is not given.
    pub const DEFAULT_MAX_ITEMS: usize = 100;

    /// `function` of `column` (none for a `count` of rows), named as the pipeline file names it when `as`
    /// is not given: the function, then the column (`count`, `sum_amount`).
    ///
    /// ```
    /// use weir::{AggregateExpr, Function};
    /// let total = AggregateExpr::new(Function::Sum, Some("amount")).with_alias("total");
    /// assert_eq!(total.to_string(), "sum(amount) as total");
    /// assert_eq!(AggregateExpr::new(Function::Count, None).alias, "count");
    /// ```
    pub fn new(function: Function, column: Option<&str>) -> AggregateExpr {
        let alias = match column {
            Some(column) => format!("{}_{column}", function.name()),
            None => function.name().to_string(),
        };
        AggregateExpr {
            function,
            column: column.map(str::to_string),
            alias,
            max_items: AggregateExpr::DEFAULT_MAX_ITEMS,
        }
    }

    /// Names the output column (`as`).
    pub fn with_alias(mut self, alias: impl Into<String>) -> AggregateExpr {
        self.alias = alias.into();
        self
    }

    /// For `collect_list`: keeps at most `max_items` values per group.
    pub fn with_max_items(mut self, max_items: usize) -> AggregateExpr {
        self.max_items = max_items;
        self
    }
}

/// `count(*) as n`, `sum(amount) as total`: how plans and checkpoints show an aggregate.
impl std::fmt::Display for AggregateExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let column = self.column.as_deref().unwrap_or("*");
        write!(f, "{}({column}) as {}", self.function.name(), self.alias)?;
        if self.function == Function::CollectList {
            write!(f, " (at most {})", self.max_items)?;
        }
        Ok(())
    }
}

/// `10000 ms windows sliding 10000 ms on ts`, or `sessions with a 5000 ms gap on ts`.
impl std::fmt::Display for WindowBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            WindowKind::Fixed(w) => write!(
                f,
                "{} ms windows sliding {} ms, offset {} ms, on {}",
                w.size_ms, w.slide_ms, w.offset_ms, self.column
            ),
            WindowKind::Session { gap_ms } => {
                write!(f, "sessions with a {gap_ms} ms gap on {}", self.column)
            }
        }
    }
}

/// The window of an aggregation over an event-time column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowBy {
    /// The event-time column (Int64 milliseconds or a timestamp).
    pub column: String,
    /// Which windows.
    pub kind: WindowKind,
}

/// Fixed windows or sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Tumbling or sliding windows.
    Fixed(WindowSpec),
    /// Session windows (Spark's `session_window(col, gap)`): a group's events closer than `gap_ms` to each
    /// other form one session `[first event, last event + gap)`; sessions that come to overlap merge.
    Session {
        /// The gap in ms.
        gap_ms: i64,
    },
}

/// The `[aggregate]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateSpec {
    /// Grouping columns.
    pub group_by: Vec<String>,
    /// Optional event-time window.
    pub window: Option<WindowBy>,
    /// The aggregates.
    pub aggregates: Vec<AggregateExpr>,
    /// The output mode.
    pub output_mode: OutputMode,
    /// `input_partitioned_by`: group keys that the input topic is partitioned by, i.e. rows with equal
    /// values of them come from one input partition. Consumer group members then aggregate each input
    /// partition apart; without it they repartition the rows by their group keys through a topic. A single
    /// instance does not read it.
    pub input_partitioned_by: Vec<String>,
}

impl AggregateSpec {
    /// Spark's rule on output modes: append emits a group once it is final, which needs an event-time
    /// window and a watermark (`watermark` says whether the pipeline has one).
    pub fn check_output_mode(&self, watermark: bool) -> Result<(), String> {
        if self.output_mode == OutputMode::Append && (self.window.is_none() || !watermark) {
            return Err(
                "output_mode = \"append\" needs an event-time window and a [watermark]: without them no group is \
                 ever final (Spark refuses this too); use \"update\" or \"complete\""
                    .into(),
            );
        }
        Ok(())
    }

    /// `input_partitioned_by` must name group keys: the rows of one group then come from one input
    /// partition, whatever else the group keys hold.
    ///
    /// ```
    /// use weir::{AggregateExpr, AggregateSpec, Function, OutputMode};
    /// let mut spec = AggregateSpec {
    ///     group_by: vec!["id".into(), "merchant".into()],
    ///     window: None,
    ///     aggregates: vec![AggregateExpr::new(Function::Count, None)],
    ///     output_mode: OutputMode::Update,
    ///     input_partitioned_by: vec!["id".into()],
    /// };
    /// assert!(spec.check_input_partitioning().is_ok());
    /// spec.input_partitioned_by = vec!["region".into()];
    /// assert!(spec.check_input_partitioning().unwrap_err().contains("`region`"));
    /// ```
    pub fn check_input_partitioning(&self) -> Result<(), String> {
        match (self.input_partitioned_by.iter()).find(|column| !self.group_by.contains(column)) {
            Some(column) => Err(format!(
                "`{column}` is not among group_by {:?}: a group's rows would come from several partitions; \
                 name the group keys that the input topic's records are partitioned by",
                self.group_by
            )),
            None => Ok(()),
        }
    }
}
