//! What a file source reads: a directory, the files' format, and how many new files one batch takes.

use std::path::PathBuf;
use std::time::Duration;

use arrow_schema::SchemaRef;

/// How the files of a file source are read.
#[derive(Debug, Clone)]
pub enum FileSourceFormat {
    /// JSON lines: one record per non-blank line, decoded by the `[deserializer]` (`format = "json"` with a
    /// schema, or a WebAssembly UDF), as Kafka values are.
    Json,
    /// CSV: one record per row (a quoted field may span lines), decoded by `format = "csv"` or a UDF;
    /// with `header`, each file's first row is skipped.
    Csv {
        /// Whether each file starts with a header row.
        header: bool,
    },
    /// Text: one record per line, blank lines included, as Spark's text source.
    Text,
    /// Parquet: typed rows already, read into the declared schema (columns matched by name); no
    /// deserializer.
    Parquet {
        /// The rows' schema.
        schema: SchemaRef,
    },
}

impl FileSourceFormat {
    /// Whether the files hold typed rows (Parquet), which need no deserializer.
    pub fn is_typed(&self) -> bool {
        matches!(self, FileSourceFormat::Parquet { .. })
    }

    /// The format's name in the pipeline file.
    pub fn name(&self) -> &'static str {
        match self {
            FileSourceFormat::Json => "json",
            FileSourceFormat::Csv { .. } => "csv",
            FileSourceFormat::Text => "text",
            FileSourceFormat::Parquet { .. } => "parquet",
        }
    }
}

/// Spark's default `maxFileAge`: files older than this, counted back from the newest file seen, are
/// ignored, and forgotten by the checkpoint.
pub const DEFAULT_MAX_FILE_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A file source: new files under a directory, oldest first.
///
/// ```toml
/// [source]
/// path = "landing/cameras"     # read every file under it, subdirectories included
/// format = "json"              # json, csv, text or parquet
/// maxFilesPerTrigger = 100     # optional: new files per micro-batch (default: all)
/// maxFileAge = "7d"            # files older than the newest by more than this are ignored
/// ```
#[derive(Debug, Clone)]
pub struct FileSourceSpec {
    /// The directory.
    pub path: PathBuf,
    /// How its files are read.
    pub format: FileSourceFormat,
    /// `maxFilesPerTrigger`: the most new files one batch reads (`None`: every new file).
    pub max_files_per_trigger: Option<usize>,
    /// `maxFileAge`: how much older than the newest file seen a file may be and still be read.
    pub max_file_age: Duration,
}

impl FileSourceSpec {
    /// Reads every new file of `format` under `path`, Spark's defaults otherwise.
    ///
    /// ```
    /// use weir::{FileSourceFormat, FileSourceSpec};
    /// let spec = FileSourceSpec::new("landing", FileSourceFormat::Json);
    /// assert_eq!(spec.description(), "FileStreamSource[json landing]");
    /// ```
    pub fn new(path: impl Into<PathBuf>, format: FileSourceFormat) -> FileSourceSpec {
        FileSourceSpec {
            path: path.into(),
            format,
            max_files_per_trigger: None,
            max_file_age: DEFAULT_MAX_FILE_AGE,
        }
    }

    /// The source as the plan and progress name it, after Spark's.
    pub fn description(&self) -> String {
        format!(
            "FileStreamSource[{} {}]",
            self.format.name(),
            self.path.display()
        )
    }
}
