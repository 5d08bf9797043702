//! A stream-stream join's condition, read for what bounds its state: the equality keys between the two
//! sides, and how far the right side's event time may be from the left's.
//!
//! Spark's `expr("clickAdId = adId AND clickTime BETWEEN impressionTime AND impressionTime + interval 1
//! hour")` says a click can only match an impression of the hour before it, so once the watermark has
//! passed an impression's time by an hour, no click still to come can match it, and it leaves the state.
//! The whole condition is still evaluated on every candidate pair; this reading only finds the bounds.

use std::collections::BTreeSet;

use arrow_schema::Schema;
use datafusion_common::{DFSchema, ScalarValue};
use datafusion_expr::utils::split_conjunction;
use datafusion_expr::{BinaryExpr, Expr, Operator};

use super::compile::Functions;

/// What a join condition says about the state it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinCondition {
    /// Column pairs that must be equal, (left, right).
    pub(crate) keys: Vec<(String, String)>,
    /// The right event time minus the left one is at least this (ms)...
    pub(crate) lower_ms: i64,
    /// ...and at most this.
    pub(crate) upper_ms: i64,
}

/// The two sides' columns and event-time columns.
pub(crate) struct Sides<'a> {
    pub(crate) left: &'a Schema,
    pub(crate) right: &'a Schema,
    pub(crate) left_time: &'a str,
    pub(crate) right_time: &'a str,
}

/// Reads `sql`, a condition over the columns of both sides, for its keys and its time range.
pub(crate) fn read_join_condition(sql: &str, sides: &Sides<'_>) -> Result<JoinCondition, String> {
    let joined = Schema::try_merge([sides.left.clone(), sides.right.clone()])
        .map_err(|e| format!("the two sides' columns do not go together: {e}"))?;
    let schema = DFSchema::try_from(joined).map_err(|e| e.to_string())?;
    let (expr, _) = Functions::new()
        .compile(sql, &schema)
        .map_err(|e| e.to_string())?;
    let left: BTreeSet<&str> = sides
        .left
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let mut condition = JoinCondition {
        keys: Vec::new(),
        lower_ms: i64::MIN,
        upper_ms: i64::MAX,
    };
    for conjunct in split_conjunction(&expr) {
        match conjunct {
            Expr::Between(between) if !between.negated => {
                condition.bound(sides, &between.expr, Operator::GtEq, &between.low);
                condition.bound(sides, &between.expr, Operator::LtEq, &between.high);
            }
            Expr::BinaryExpr(BinaryExpr {
                left: a,
                op,
                right: b,
            }) => {
                // An equality of the two event times is a bound; another between the streams, a key.
                let bounded = condition.bound(sides, a, *op, b);
                if !bounded && *op == Operator::Eq {
                    condition.key(&left, a, b);
                }
            }
            _ => {}
        }
    }
    condition.check(sides)?;
    Ok(condition)
}

impl JoinCondition {
    /// Records `a op b` when it compares the two event times; returns whether it did.
    fn bound(&mut self, sides: &Sides<'_>, a: &Expr, op: Operator, b: &Expr) -> bool {
        let (Some((a_column, a_offset)), Some((b_column, b_offset))) = (linear(a), linear(b))
        else {
            return false;
        };
        // right + r_offset  op  left + l_offset, as right - left  op  l_offset - r_offset.
        let (op, difference) = if (a_column.as_str(), b_column.as_str())
            == (sides.right_time, sides.left_time)
        {
            (op, b_offset - a_offset)
        } else if (a_column.as_str(), b_column.as_str()) == (sides.left_time, sides.right_time) {
            match op.swap() {
                Some(swapped) => (swapped, a_offset - b_offset),
                None => return false,
            }
        } else {
            return false;
        };
        match op {
            Operator::Gt | Operator::GtEq => self.lower_ms = self.lower_ms.max(difference),
            Operator::Lt | Operator::LtEq => self.upper_ms = self.upper_ms.min(difference),
            Operator::Eq => {
                self.lower_ms = self.lower_ms.max(difference);
                self.upper_ms = self.upper_ms.min(difference);
            }
            _ => return false,
        }
        true
    }

    /// Records `a = b` when it compares a column of each side.
    fn key(&mut self, left: &BTreeSet<&str>, a: &Expr, b: &Expr) {
        let (Some(a), Some(b)) = (column(a), column(b)) else {
            return;
        };
        match (left.contains(a.as_str()), left.contains(b.as_str())) {
            (true, false) => self.keys.push((a, b)),
            (false, true) => self.keys.push((b, a)),
            _ => {}
        }
    }

    fn check(&self, sides: &Sides<'_>) -> Result<(), String> {
        let (left, right) = (sides.left_time, sides.right_time);
        if self.keys.is_empty() {
            return Err(
                "needs an equality between a column of each side (e.g. `clickAdId = adId`): rows are matched by it"
                    .into(),
            );
        }
        if self.lower_ms == i64::MIN || self.upper_ms == i64::MAX {
            return Err(format!(
                "needs `{right}` bounded on both sides by `{left}` (e.g. `{right} BETWEEN {left} AND {left} + \
                 interval 1 hour`): without both bounds a row could match forever, and the state would never \
                 shrink"
            ));
        }
        if self.lower_ms > self.upper_ms {
            return Err(format!(
                "the range of `{right}` from `{left}` is empty: no row can ever match"
            ));
        }
        Ok(())
    }
}

/// A column, maybe cast.
fn column(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Column(column) => Some(column.name.clone()),
        Expr::Cast(cast) => column(&cast.expr),
        Expr::TryCast(cast) => column(&cast.expr),
        _ => None,
    }
}

/// `column`, `column + duration` or `column - duration`, as the column and the offset in ms.
fn linear(expr: &Expr) -> Option<(String, i64)> {
    if let Some(name) = column(expr) {
        return Some((name, 0));
    }
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return None;
    };
    match op {
        Operator::Plus => match (linear(left), millis(right)) {
            (Some((name, offset)), Some(ms)) => Some((name, offset + ms)),
            _ => linear(right)
                .zip(millis(left))
                .map(|((name, offset), ms)| (name, offset + ms)),
        },
        Operator::Minus => linear(left)
            .zip(millis(right))
            .map(|((name, offset), ms)| (name, offset - ms)),
        _ => None,
    }
}

/// A literal interval or duration in ms (an integer counts as ms, for BIGINT event times); months have
/// no fixed length and are not read.
fn millis(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else {
        return match expr {
            Expr::Cast(cast) => millis(&cast.expr),
            _ => None,
        };
    };
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds))
        }
        ScalarValue::DurationSecond(Some(s)) => Some(s * 1_000),
        ScalarValue::DurationMillisecond(Some(ms)) | ScalarValue::Int64(Some(ms)) => Some(*ms),
        ScalarValue::DurationMicrosecond(Some(us)) => Some(us / 1_000),
        ScalarValue::DurationNanosecond(Some(ns)) => Some(ns / 1_000_000),
        ScalarValue::Int32(Some(ms)) => Some(i64::from(*ms)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_ddl_schema;

    fn read(sql: &str) -> Result<JoinCondition, String> {
        let left = parse_ddl_schema("adId STRING, impressionTime TIMESTAMP").unwrap();
        let right = parse_ddl_schema("clickAdId STRING, clickTime TIMESTAMP").unwrap();
        let sides = Sides {
            left: &left,
            right: &right,
            left_time: "impressionTime",
            right_time: "clickTime",
        };
        read_join_condition(sql, &sides)
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn spark_s_example_gives_its_keys_and_range() {
        let condition = read(
            "clickAdId = adId AND clickTime BETWEEN impressionTime AND impressionTime + interval 1 hour",
        )
        .unwrap();
        assert_eq!(
            condition.keys,
            [("adId".to_string(), "clickAdId".to_string())]
        );
        assert_eq!((condition.lower_ms, condition.upper_ms), (0, HOUR));
    }

    #[test]
    fn comparisons_either_way_round_and_other_conditions_are_read_too() {
        let condition = read(
            "adId = clickAdId AND impressionTime <= clickTime + interval '10 minutes' \
             AND clickTime < impressionTime + interval 2 hours AND length(adId) > 1",
        )
        .unwrap();
        assert_eq!(
            (condition.lower_ms, condition.upper_ms),
            (-600_000, 2 * HOUR)
        );
    }

    #[test]
    fn a_condition_that_cannot_bound_the_state_is_refused_and_says_why() {
        let error = read("clickAdId = adId AND clickTime >= impressionTime").unwrap_err();
        assert!(error.contains("bounded on both sides"), "{error}");
        let error = read("clickTime BETWEEN impressionTime AND impressionTime + interval 1 hour")
            .unwrap_err();
        assert!(error.contains("needs an equality"), "{error}");
        let error = read("clickAdId = adId AND clickTime BETWEEN impressionTime + interval 2 hours AND impressionTime")
            .unwrap_err();
        assert!(error.contains("empty"), "{error}");
        let error = read("clickAdId = nope").unwrap_err();
        assert!(error.contains("nope"), "{error}");
    }
}
