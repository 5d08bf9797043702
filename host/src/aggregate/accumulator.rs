//! Aggregate functions: their accumulators, the batch-at-a-time update kernels, and the output arrays.
//!
//! An update takes one input column and a list of (row, group) pairs and folds the whole batch into the
//! groups' accumulators in one typed loop per aggregate, so the per-row cost is an index and an add.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field};
use serde::{Deserialize, Serialize};

pub(crate) use super::scalar::ValueKind;
use super::scalar::{Scalar, ScalarBuilder};

/// An aggregate function, as named in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `count`: rows (or non-null values of `column`).
    Count,
    /// `sum` of a numeric column.
    Sum,
    /// `min` of a numeric or string column.
    Min,
    /// `max` of a numeric or string column.
    Max,
    /// `avg` of a numeric column.
    Avg,
    /// `count_distinct` values of a column.
    CountDistinct,
    /// `first` value seen.
    First,
    /// `last` value seen.
    Last,
    /// `collect_list`: the values, up to a bound.
    CollectList,
}

impl Function {
    /// The name in the pipeline file (the inverse of [`Function::parse`]).
    pub fn name(self) -> &'static str {
        match self {
            Function::Count => "count",
            Function::Sum => "sum",
            Function::Min => "min",
            Function::Max => "max",
            Function::Avg => "avg",
            Function::CountDistinct => "count_distinct",
            Function::First => "first",
            Function::Last => "last",
            Function::CollectList => "collect_list",
        }
    }

    /// Parses a function name from the pipeline file.
    pub fn parse(name: &str) -> Result<Function, String> {
        Ok(match name {
            "count" => Function::Count,
            "sum" => Function::Sum,
            "min" => Function::Min,
            "max" => Function::Max,
            "avg" => Function::Avg,
            "count_distinct" => Function::CountDistinct,
            "first" => Function::First,
            "last" => Function::Last,
            "collect_list" => Function::CollectList,
            other => {
                return Err(format!(
                    "unknown aggregate {other:?}; expected count, sum, min, max, avg, count_distinct, first, last or collect_list"
                ))
            }
        })
    }
}

/// The running state of one aggregate for one group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) enum Accumulator {
    /// `count`.
    Count(i64),
    /// `sum` of integers.
    SumInt(Option<i64>),
    /// `sum` of floats.
    SumFloat(Option<f64>),
    /// `avg`.
    Avg {
        /// Sum of the values.
        sum: f64,
        /// Number of values.
        count: i64,
    },
    /// `min`, `max`, `first`, `last`: one value.
    Value(Option<Scalar>),
    /// `count_distinct`.
    Distinct(BTreeSet<Scalar>),
    /// `collect_list`.
    List(Vec<Scalar>),
}

/// One aggregate of an aggregation: function, input column index and output.
#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    /// The function.
    pub function: Function,
    /// The input column, `None` for `count` of rows.
    pub column: Option<usize>,
    /// What the input column holds.
    pub kind: Option<ValueKind>,
    /// The output column name.
    pub name: String,
    /// For `collect_list`: the most values kept per group.
    pub max_items: usize,
}

impl Aggregate {
    /// A fresh accumulator.
    pub(crate) fn start(&self) -> Accumulator {
        match (self.function, self.kind) {
            (Function::Count, _) => Accumulator::Count(0),
            (Function::Sum, Some(ValueKind::Float)) => Accumulator::SumFloat(None),
            (Function::Sum, _) => Accumulator::SumInt(None),
            (Function::Avg, _) => Accumulator::Avg { sum: 0.0, count: 0 },
            (Function::CountDistinct, _) => Accumulator::Distinct(BTreeSet::new()),
            (Function::CollectList, _) => Accumulator::List(Vec::new()),
            _ => Accumulator::Value(None),
        }
    }

    /// Checks that the function can read the input kind.
    pub(crate) fn check(&self) -> Result<(), String> {
        let numeric = matches!(self.kind, Some(ValueKind::Int | ValueKind::Float));
        match self.function {
            Function::Sum | Function::Avg if !numeric => {
                Err(format!("`{}` needs a numeric column", self.name))
            }
            Function::Count => Ok(()),
            _ if self.column.is_none() => Err(format!("`{}` needs a column", self.name)),
            _ => Ok(()),
        }
    }

    /// The output field.
    pub(crate) fn field(&self) -> Field {
        let value = self
            .kind
            .map(ValueKind::data_type)
            .unwrap_or(DataType::Int64);
        let data_type = match self.function {
            Function::Count | Function::CountDistinct => DataType::Int64,
            Function::Sum => value,
            Function::Avg => DataType::Float64,
            Function::Min | Function::Max | Function::First | Function::Last => value,
            Function::CollectList => DataType::List(Arc::new(Field::new("item", value, true))),
        };
        Field::new(&self.name, data_type, true)
    }

    /// Folds `column` into the accumulators: `pairs` holds (row, group) and `accumulators[group]` is the
    /// group's accumulator for this aggregate.
    pub(crate) fn update(
        &self,
        column: Option<&ArrayRef>,
        pairs: &[(u32, u32)],
        accumulators: &mut [Accumulator],
    ) {
        let Some(column) = column else {
            // count of rows
            for (_, group) in pairs {
                if let Accumulator::Count(n) = &mut accumulators[*group as usize] {
                    *n += 1;
                }
            }
            return;
        };
        match self.function {
            Function::Count | Function::Sum => {
                self.update_counts_and_sums(column, pairs, accumulators)
            }
            _ => self.update_with_values(column, pairs, accumulators),
        }
    }

    /// [`Aggregate::update`] for `count` and `sum` of a column: typed loops over the Arrow array.
    fn update_counts_and_sums(
        &self,
        column: &ArrayRef,
        pairs: &[(u32, u32)],
        accumulators: &mut [Accumulator],
    ) {
        match self.function {
            Function::Count => {
                for (row, group) in pairs {
                    if let (false, Accumulator::Count(n)) = (
                        column.is_null(*row as usize),
                        &mut accumulators[*group as usize],
                    ) {
                        *n += 1;
                    }
                }
            }
            Function::Sum if self.kind == Some(ValueKind::Int) => {
                let ints = column.as_primitive::<Int64Type>();
                for (row, group) in pairs {
                    if let (false, Accumulator::SumInt(sum)) = (
                        ints.is_null(*row as usize),
                        &mut accumulators[*group as usize],
                    ) {
                        *sum = Some(sum.unwrap_or(0).wrapping_add(ints.value(*row as usize)));
                    }
                }
            }
            Function::Sum => {
                let floats = column.as_primitive::<Float64Type>();
                for (row, group) in pairs {
                    if let (false, Accumulator::SumFloat(sum)) = (
                        floats.is_null(*row as usize),
                        &mut accumulators[*group as usize],
                    ) {
                        *sum = Some(sum.unwrap_or(0.0) + floats.value(*row as usize));
                    }
                }
            }
            _ => unreachable!("only count and sum come here"),
        }
    }

    /// [`Aggregate::update`] for the functions that keep values (`avg`, `min`, `max`, `first`, `last`,
    /// `count_distinct`, `collect_list`): each row's value read as a [`Scalar`].
    fn update_with_values(
        &self,
        column: &ArrayRef,
        pairs: &[(u32, u32)],
        accumulators: &mut [Accumulator],
    ) {
        let value = |row: usize| -> Option<Scalar> {
            if column.is_null(row) {
                return None;
            }
            Some(match self.kind {
                Some(ValueKind::Int) => Scalar::Int(column.as_primitive::<Int64Type>().value(row)),
                Some(ValueKind::Float) => {
                    Scalar::Float(column.as_primitive::<Float64Type>().value(row))
                }
                _ => Scalar::Str(column.as_string::<i32>().value(row).to_string()),
            })
        };
        match self.function {
            Function::Avg => {
                for (row, group) in pairs {
                    let v = match value(*row as usize) {
                        Some(Scalar::Int(i)) => i as f64,
                        Some(Scalar::Float(f)) => f,
                        _ => continue,
                    };
                    if let Accumulator::Avg { sum, count } = &mut accumulators[*group as usize] {
                        *sum += v;
                        *count += 1;
                    }
                }
            }
            Function::Min | Function::Max | Function::First | Function::Last => {
                for (row, group) in pairs {
                    let Some(v) = value(*row as usize) else {
                        continue;
                    };
                    if let Accumulator::Value(current) = &mut accumulators[*group as usize] {
                        let replace = match (&current, self.function) {
                            (None, _) => true,
                            (Some(c), Function::Min) => v < *c,
                            (Some(c), Function::Max) => v > *c,
                            (Some(_), Function::Last) => true,
                            _ => false,
                        };
                        if replace {
                            *current = Some(v);
                        }
                    }
                }
            }
            Function::CountDistinct => {
                for (row, group) in pairs {
                    if let (Some(v), Accumulator::Distinct(set)) =
                        (value(*row as usize), &mut accumulators[*group as usize])
                    {
                        set.insert(v);
                    }
                }
            }
            Function::CollectList => {
                for (row, group) in pairs {
                    if let (Some(v), Accumulator::List(list)) =
                        (value(*row as usize), &mut accumulators[*group as usize])
                    {
                        if list.len() < self.max_items {
                            list.push(v);
                        }
                    }
                }
            }
            Function::Count | Function::Sum => unreachable!("count and sum have typed loops"),
        }
    }

    /// Merges the accumulator of a later session into an earlier one (session windows joining).
    pub(crate) fn merge(&self, earlier: &mut Accumulator, later: Accumulator) {
        match (earlier, later) {
            (Accumulator::Count(a), Accumulator::Count(b)) => *a += b,
            (Accumulator::SumInt(a), Accumulator::SumInt(b)) => {
                *a = match (*a, b) {
                    (None, b) => b,
                    (a, None) => a,
                    (Some(a), Some(b)) => Some(a.wrapping_add(b)),
                }
            }
            (Accumulator::SumFloat(a), Accumulator::SumFloat(b)) => {
                *a = match (*a, b) {
                    (None, b) => b,
                    (a, None) => a,
                    (Some(a), Some(b)) => Some(a + b),
                }
            }
            (Accumulator::Avg { sum, count }, Accumulator::Avg { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (Accumulator::Value(a), Accumulator::Value(b)) => {
                let take = match (&*a, &b, self.function) {
                    (_, None, _) => false,
                    (None, Some(_), _) => true,
                    (Some(x), Some(y), Function::Min) => y < x,
                    (Some(x), Some(y), Function::Max) => y > x,
                    (Some(_), Some(_), Function::Last) => true,
                    _ => false,
                };
                if take {
                    *a = b;
                }
            }
            (Accumulator::Distinct(a), Accumulator::Distinct(b)) => a.extend(b),
            (Accumulator::List(a), Accumulator::List(b)) => {
                let room = self.max_items.saturating_sub(a.len());
                a.extend(b.into_iter().take(room));
            }
            _ => {}
        }
    }

    /// The output column for `accumulators`, in order.
    pub(crate) fn finish<'a>(
        &self,
        accumulators: impl Iterator<Item = &'a Accumulator>,
    ) -> ArrayRef {
        let kind = self.kind.unwrap_or(ValueKind::Int);
        match self.function {
            Function::Count | Function::CountDistinct => {
                let mut out = Int64Builder::new();
                for acc in accumulators {
                    out.append_option(match acc {
                        Accumulator::Count(n) => Some(*n),
                        Accumulator::Distinct(set) => Some(set.len() as i64),
                        _ => None,
                    });
                }
                Arc::new(out.finish())
            }
            Function::Avg => {
                let mut out = Float64Builder::new();
                for acc in accumulators {
                    out.append_option(match acc {
                        Accumulator::Avg { sum, count } if *count > 0 => Some(sum / *count as f64),
                        _ => None,
                    });
                }
                Arc::new(out.finish())
            }
            Function::CollectList => {
                let mut out = ListBuilder::new(ScalarBuilder::new(kind));
                for acc in accumulators {
                    if let Accumulator::List(items) = acc {
                        for item in items {
                            out.values().append(Some(item));
                        }
                    }
                    out.append(true);
                }
                let array = out.finish();
                Arc::new(array)
            }
            _ => {
                let mut out = ScalarBuilder::new(kind);
                for acc in accumulators {
                    match acc {
                        Accumulator::SumInt(v) => out.append(v.map(Scalar::Int).as_ref()),
                        Accumulator::SumFloat(v) => out.append(v.map(Scalar::Float).as_ref()),
                        Accumulator::Value(v) => out.append(v.as_ref()),
                        _ => out.append(None),
                    }
                }
                out.finish()
            }
        }
    }
}
