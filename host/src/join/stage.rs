//! A stream-static join stage: the table read and indexed once, when the pipeline is planned, then every
//! batch probed against it. With `weir run --reload`, a table whose file changed is read again and swapped
//! in between batches; a batch always sees one version of the table.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::Context;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_cast::{can_cast_types, cast_with_options, CastOptions};
use arrow_schema::{Field, Schema, SchemaRef};
use arrow_select::filter::filter_record_batch;
use arrow_select::take::take;

use super::index::{Matches, TableIndex};
use super::spec::{JoinSpec, JoinType};
use super::table::read_table;
use crate::schema::column_list;

/// A planned stream-static join.
pub struct StaticJoin {
    key: String,
    spec: JoinSpec,
    /// The schema of the rows the join was planned for (a changed table is checked against it).
    input: SchemaRef,
    /// Where the `on` columns are in the rows.
    row_keys: Vec<usize>,
    output: SchemaRef,
    table: RwLock<Arc<LoadedTable>>,
    /// The file's modification time and length when it was last read, for `--reload`.
    seen: Mutex<Option<(SystemTime, u64)>>,
}

/// One version of the table: its rows (keys cast to the rows' types) and their index.
struct LoadedTable {
    /// The table's columns that the output carries (all but the `on` columns).
    carried: Vec<ArrayRef>,
    index: TableIndex,
    rows: usize,
}

impl StaticJoin {
    /// Reads and indexes the table, and plans the join for rows of `input`; `key` names the stage in errors
    /// (e.g. `transform[2]`).
    pub fn plan(spec: &JoinSpec, key: &str, input: &SchemaRef) -> anyhow::Result<StaticJoin> {
        let key = format!("{key}.join");
        let row_keys = row_key_columns(spec, &key, input)?;
        let seen = file_version(&spec.table.path);
        let table = read_table(&spec.table).with_context(|| format!("`{key}`"))?;
        let output = output_schema(spec, &key, input, table.schema_ref())?;
        let loaded = LoadedTable::new(spec, input, &row_keys, &table)
            .with_context(|| format!("`{key}`: {}", spec.table.path.display()))?;
        Ok(StaticJoin {
            key,
            spec: spec.clone(),
            input: input.clone(),
            row_keys,
            output,
            table: RwLock::new(Arc::new(loaded)),
            seen: Mutex::new(seen),
        })
    }

    /// The schema of the rows the join writes.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// The pipeline-file key of the stage, e.g. `transform[2].join`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The join as planned.
    pub fn spec(&self) -> &JoinSpec {
        &self.spec
    }

    /// How many rows the table in use has.
    pub fn table_rows(&self) -> usize {
        self.current().rows
    }

    /// Joins `rows` with the table.
    pub fn process(&self, rows: &RecordBatch) -> anyhow::Result<RecordBatch> {
        let table = self.current();
        let keys: Vec<ArrayRef> = self
            .row_keys
            .iter()
            .map(|&i| rows.column(i).clone())
            .collect();
        let matches = table.index.probe(&keys)?;
        let joined = match self.spec.how {
            JoinType::LeftSemi => filter_record_batch(rows, &matches.matched())?,
            JoinType::LeftAnti => filter_record_batch(rows, &matches.unmatched())?,
            JoinType::Inner | JoinType::LeftOuter => self.gather(rows, &table, &matches)?,
        };
        Ok(joined)
    }

    /// For `weir run --reload`: reads the table again if its file changed since it was read. `Ok(false)`
    /// when it did not change; on an error the table in use stays.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let input = &self.input;
        let now = file_version(&self.spec.table.path);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let failed = || {
            format!(
                "`{}`: the join table {} changed but the version in use stays",
                self.key,
                self.spec.table.path.display()
            )
        };
        let table = read_table(&self.spec.table).with_context(failed)?;
        let output =
            output_schema(&self.spec, &self.key, input, table.schema_ref()).with_context(failed)?;
        if output.fields() != self.output.fields() {
            anyhow::bail!(
                "{}: its columns are now {}, but the pipeline was planned with {} (restart the pipeline \
                 to change them)",
                failed(),
                column_list(table.schema_ref()),
                column_list(&self.output)
            );
        }
        let loaded =
            LoadedTable::new(&self.spec, input, &self.row_keys, &table).with_context(failed)?;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(true)
    }

    fn current(&self) -> Arc<LoadedTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The rows of every pair of a row and its match, and, left outer, the rows without a match.
    fn gather(
        &self,
        rows: &RecordBatch,
        table: &LoadedTable,
        matches: &Matches,
    ) -> anyhow::Result<RecordBatch> {
        let (row_take, table_take) = matches.pairs(self.spec.how == JoinType::LeftOuter);
        let row_take = UInt32Array::from(row_take);
        let table_take = UInt32Array::from(table_take);
        let mut columns = Vec::with_capacity(self.output.fields().len());
        for column in rows.columns() {
            columns.push(take(column, &row_take, None)?);
        }
        for column in &table.carried {
            columns.push(take(column, &table_take, None)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(row_take.len()));
        Ok(RecordBatch::try_new_with_options(
            self.output.clone(),
            columns,
            &options,
        )?)
    }
}

impl LoadedTable {
    fn new(
        spec: &JoinSpec,
        input: &SchemaRef,
        row_keys: &[usize],
        table: &RecordBatch,
    ) -> anyhow::Result<LoadedTable> {
        let schema = table.schema();
        let mut keys = Vec::with_capacity(spec.on.len());
        for (name, &row_key) in spec.on.iter().zip(row_keys) {
            let column = table.column(schema.index_of(name)?);
            keys.push(cast_key(name, column, input.field(row_key))?);
        }
        let carried = schema
            .fields()
            .iter()
            .zip(table.columns())
            .filter(|(field, _)| !spec.on.contains(field.name()))
            .map(|(_, column)| column.clone())
            .collect();
        Ok(LoadedTable {
            carried,
            index: TableIndex::build(&keys)?,
            rows: table.num_rows(),
        })
    }
}

/// The positions of the `on` columns in the rows.
fn row_key_columns(spec: &JoinSpec, key: &str, input: &SchemaRef) -> anyhow::Result<Vec<usize>> {
    if spec.on.is_empty() {
        anyhow::bail!("`{key}`: `on` names no column to join on");
    }
    spec.on
        .iter()
        .map(|name| {
            input.index_of(name).map_err(|_| {
                anyhow::anyhow!(
                    "`{key}`: no column `{name}` in the rows reaching this stage (they have: {})",
                    column_list(input)
                )
            })
        })
        .collect()
}

/// The rows' columns, then the table's other columns (nullable in a left outer join), or the rows' own
/// alone for a semi or anti join. Refuses a table without an `on` column, and a table column whose name
/// the rows already have.
fn output_schema(
    spec: &JoinSpec,
    key: &str,
    input: &SchemaRef,
    table: &SchemaRef,
) -> anyhow::Result<SchemaRef> {
    let path = spec.table.path.display();
    for name in &spec.on {
        if table.field_with_name(name).is_err() {
            anyhow::bail!(
                "`{key}.on`: no column `{name}` in the join table {path} (it has: {})",
                column_list(table)
            );
        }
    }
    if !spec.how.adds_columns() {
        return Ok(input.clone());
    }
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    for field in table
        .fields()
        .iter()
        .filter(|f| !spec.on.contains(f.name()))
    {
        if input.field_with_name(field.name()).is_ok() {
            anyhow::bail!(
                "`{key}`: the join table {path} and the rows both have a column `{}`; rename it in the rows \
                 with a `select` before the join",
                field.name()
            );
        }
        let nullable = field.is_nullable() || spec.how == JoinType::LeftOuter;
        fields.push(field.as_ref().clone().with_nullable(nullable));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// A table's key column as the rows' key column's type, so that keys compare by value: a CSV's inferred
/// `Int64` device ids meet the rows' `Utf8` ones. A value that does not convert is an error.
fn cast_key(name: &str, column: &ArrayRef, row_field: &Field) -> anyhow::Result<ArrayRef> {
    let to = row_field.data_type();
    if column.data_type() == to {
        return Ok(column.clone());
    }
    if !can_cast_types(column.data_type(), to) {
        anyhow::bail!(
            "its `{name}` is {}, which does not convert to the rows' {to}",
            column.data_type()
        );
    }
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(column, to, &strict).with_context(|| {
        format!(
            "its `{name}` ({}) does not all convert to the rows' {to}",
            column.data_type()
        )
    })
}

/// A file's modification time and length, or `None` when it cannot be read.
///
/// Not a hash of its bytes, as UDF modules have (`udf/stage.rs`): a table may be hundreds of MB, too much
/// to hash once a second. Two rewrites of the same length within one clock tick of the file system look
/// alike; replacing the file by a rename, as the docs advise, gives it a new time.
fn file_version(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}
