//! The values aggregates keep: the kinds of input column they read (integers, floats and strings, widened),
//! one value as a [`Scalar`] with a total order (so `min`, `max` and `count_distinct` work on floats too),
//! and the builder that writes scalars back as an Arrow column.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::ArrayRef;
use arrow_schema::DataType;
use serde::{Deserialize, Serialize};

/// The kind of values an aggregate reads, after widening (all integers to Int64, floats to Float64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// 64-bit integers (and timestamps, as their integer value).
    Int,
    /// 64-bit floats.
    Float,
    /// UTF-8 strings.
    Str,
}

impl ValueKind {
    /// The kind for an input column type, if aggregates can read it.
    pub(crate) fn of(data_type: &DataType) -> Option<ValueKind> {
        match data_type {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Timestamp(_, _)
            | DataType::Date32 => Some(ValueKind::Int),
            DataType::Float32 | DataType::Float64 => Some(ValueKind::Float),
            DataType::Utf8 | DataType::LargeUtf8 => Some(ValueKind::Str),
            _ => None,
        }
    }

    pub(super) fn data_type(self) -> DataType {
        match self {
            ValueKind::Int => DataType::Int64,
            ValueKind::Float => DataType::Float64,
            ValueKind::Str => DataType::Utf8,
        }
    }
}

/// One value held in state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Scalar {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scalar {}

impl PartialOrd for Scalar {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scalar {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Scalar::Int(a), Scalar::Int(b)) => a.cmp(b),
            (Scalar::Float(a), Scalar::Float(b)) => a.total_cmp(b),
            (Scalar::Str(a), Scalar::Str(b)) => a.cmp(b),
            // One aggregate only ever sees one kind; order kinds for totality.
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl Scalar {
    fn rank(&self) -> u8 {
        match self {
            Scalar::Int(_) => 0,
            Scalar::Float(_) => 1,
            Scalar::Str(_) => 2,
        }
    }
}

/// Builds an array of one value kind from scalars.
pub(super) struct ScalarBuilder {
    ints: Int64Builder,
    floats: Float64Builder,
    strings: StringBuilder,
    kind: ValueKind,
}

impl ScalarBuilder {
    pub(super) fn new(kind: ValueKind) -> Self {
        ScalarBuilder {
            ints: Int64Builder::new(),
            floats: Float64Builder::new(),
            strings: StringBuilder::new(),
            kind,
        }
    }

    pub(super) fn append(&mut self, value: Option<&Scalar>) {
        match (self.kind, value) {
            (ValueKind::Int, Some(Scalar::Int(i))) => self.ints.append_value(*i),
            (ValueKind::Float, Some(Scalar::Float(f))) => self.floats.append_value(*f),
            (ValueKind::Str, Some(Scalar::Str(s))) => self.strings.append_value(s),
            (ValueKind::Int, _) => self.ints.append_null(),
            (ValueKind::Float, _) => self.floats.append_null(),
            (ValueKind::Str, _) => self.strings.append_null(),
        }
    }

    pub(super) fn finish(&mut self) -> ArrayRef {
        match self.kind {
            ValueKind::Int => Arc::new(self.ints.finish()),
            ValueKind::Float => Arc::new(self.floats.finish()),
            ValueKind::Str => Arc::new(self.strings.finish()),
        }
    }
}

impl arrow_array::builder::ArrayBuilder for ScalarBuilder {
    fn len(&self) -> usize {
        match self.kind {
            ValueKind::Int => self.ints.len(),
            ValueKind::Float => self.floats.len(),
            ValueKind::Str => self.strings.len(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        ScalarBuilder::finish(self)
    }

    fn finish_cloned(&self) -> ArrayRef {
        match self.kind {
            ValueKind::Int => Arc::new(self.ints.finish_cloned()),
            ValueKind::Float => Arc::new(self.floats.finish_cloned()),
            ValueKind::Str => Arc::new(self.strings.finish_cloned()),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn into_box_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}
