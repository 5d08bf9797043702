//! What a stream-static join is, as the pipeline file and the builder say it.

use std::fmt;
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;

/// A join of the rows with a table read from a file, as Spark's `stream.join(static_df, "device_id",
/// "left_outer")`: the `on` columns are matched by equality, appear once in the output, and the table's
/// other columns follow the rows' own.
///
/// ```
/// use weir::{JoinSpec, JoinType, TableSpec};
/// let join = JoinSpec::new(TableSpec::new("device_locations.csv"), ["device_id"])
///     .with_how(JoinType::LeftOuter);
/// assert_eq!(join.to_string(), "left_outer join device_locations.csv (csv) on device_id");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JoinSpec {
    /// The table.
    pub table: TableSpec,
    /// The columns matched by equality, named alike in the rows and in the table.
    pub on: Vec<String>,
    /// Which rows the join keeps.
    pub how: JoinType,
}

impl JoinSpec {
    /// An inner join with `table` on `on`.
    pub fn new<S: Into<String>>(table: TableSpec, on: impl IntoIterator<Item = S>) -> JoinSpec {
        JoinSpec {
            table,
            on: on.into_iter().map(Into::into).collect(),
            how: JoinType::Inner,
        }
    }

    /// The same join keeping other rows.
    pub fn with_how(mut self, how: JoinType) -> JoinSpec {
        self.how = how;
        self
    }
}

impl fmt::Display for JoinSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} join {} ({}) on {}",
            self.how,
            self.table.path.display(),
            self.table.format,
            self.on.join(", ")
        )
    }
}

/// Which rows a join keeps, with Spark's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    /// `inner`: a row for each match; rows without a match are dropped.
    Inner,
    /// `left_outer`: as inner, and rows without a match once, with the table's columns null.
    LeftOuter,
    /// `left_semi`: the rows that have a match, once each, with no table columns.
    LeftSemi,
    /// `left_anti`: the rows that have no match (a null key has none), with no table columns.
    LeftAnti,
}

impl JoinType {
    /// Every join type with its pipeline-file name.
    pub const NAMES: [(&'static str, JoinType); 4] = [
        ("inner", JoinType::Inner),
        ("left_outer", JoinType::LeftOuter),
        ("left_semi", JoinType::LeftSemi),
        ("left_anti", JoinType::LeftAnti),
    ];

    /// Whether the output has the table's columns.
    pub(crate) fn adds_columns(self) -> bool {
        matches!(self, JoinType::Inner | JoinType::LeftOuter)
    }
}

impl fmt::Display for JoinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = JoinType::NAMES
            .iter()
            .find(|(_, how)| how == self)
            .map_or("inner", |(name, _)| name);
        f.write_str(name)
    }
}

/// A table in a file: CSV with a header line, JSON lines, or Parquet.
///
/// ```
/// use weir::{TableFormat, TableSpec};
/// assert_eq!(TableSpec::new("zips.parquet").format, TableFormat::Parquet);
/// assert_eq!(TableSpec::new("zips.jsonl").format, TableFormat::Json);
/// let typed = TableSpec::new("zips.txt")
///     .with_format(TableFormat::Csv)
///     .with_schema(weir::parse_ddl_schema("device_id STRING, zip_code STRING").unwrap());
/// assert_eq!(typed.schema.unwrap().fields().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// The file.
    pub path: PathBuf,
    /// Its format (by default from the file's extension; CSV when it has none known).
    pub format: TableFormat,
    /// The columns of a CSV or JSON table; without it they are inferred from the file (Parquet files
    /// carry their own).
    pub schema: Option<SchemaRef>,
}

impl TableSpec {
    /// The table in `path`, its format from the extension.
    pub fn new(path: impl Into<PathBuf>) -> TableSpec {
        let path = path.into();
        TableSpec {
            format: TableFormat::from_extension(&path).unwrap_or(TableFormat::Csv),
            path,
            schema: None,
        }
    }

    /// The same table in another format.
    pub fn with_format(mut self, format: TableFormat) -> TableSpec {
        self.format = format;
        self
    }

    /// The same table with its columns given rather than inferred.
    pub fn with_schema(mut self, schema: SchemaRef) -> TableSpec {
        self.schema = Some(schema);
        self
    }
}

/// The formats a table file may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Json,
    /// Apache Parquet.
    Parquet,
}

impl TableFormat {
    /// Every format with its pipeline-file name.
    pub const NAMES: [(&'static str, TableFormat); 3] = [
        ("csv", TableFormat::Csv),
        ("json", TableFormat::Json),
        ("parquet", TableFormat::Parquet),
    ];

    /// The format a file's extension names: `.csv`; `.json`, `.jsonl`, `.ndjson`; `.parquet`.
    pub fn from_extension(path: &Path) -> Option<TableFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(TableFormat::Csv),
            "json" | "jsonl" | "ndjson" => Some(TableFormat::Json),
            "parquet" => Some(TableFormat::Parquet),
            _ => None,
        }
    }
}

impl fmt::Display for TableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = TableFormat::NAMES
            .iter()
            .find(|(_, format)| format == self)
            .map_or("csv", |(name, _)| name);
        f.write_str(name)
    }
}
