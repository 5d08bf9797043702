//! The console sink: each batch printed on standard output as Spark prints it, a header with the batch
//! number, then a table of at most `numRows` rows, values cut to 20 characters unless `truncate = false`.

use std::io::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_cast::pretty::pretty_format_batches;
use arrow_schema::{DataType, Field, Schema};

use super::ConsoleSpec;

/// Values longer than this are cut when `truncate` is on (Spark's width).
const TRUNCATE_AT: usize = 20;

/// The open console sink.
pub(crate) struct ConsoleSink {
    spec: ConsoleSpec,
}

impl ConsoleSink {
    pub(crate) fn new(spec: ConsoleSpec) -> ConsoleSink {
        ConsoleSink { spec }
    }

    /// Spark's description of the sink, for progress reports.
    pub(crate) fn description(&self) -> String {
        "ConsoleSink".into()
    }

    /// Prints batch `batch`'s rows.
    pub(crate) fn show(&self, batch: u64, rows: &RecordBatch) -> anyhow::Result<()> {
        let text = render(self.spec, batch, rows)?;
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

/// The text printed for one batch.
fn render(spec: ConsoleSpec, batch: u64, rows: &RecordBatch) -> anyhow::Result<String> {
    let rule = "-------------------------------------------";
    let shown = rows.slice(0, rows.num_rows().min(spec.num_rows));
    let table = pretty_format_batches(&[as_text(&shown, spec.truncate)?])?;
    let mut text = format!("{rule}\nBatch: {batch}\n{rule}\n{table}\n");
    if rows.num_rows() > spec.num_rows {
        let n = spec.num_rows;
        text.push_str(&format!(
            "only showing top {n} row{}\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    text.push('\n');
    Ok(text)
}

/// Every column as its display text (NULL as `NULL`), cut to [`TRUNCATE_AT`] characters with `truncate`.
fn as_text(rows: &RecordBatch, truncate: bool) -> anyhow::Result<RecordBatch> {
    let options = FormatOptions::default().with_null("NULL");
    let mut fields = Vec::with_capacity(rows.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(rows.num_columns());
    for (field, column) in rows.schema().fields().iter().zip(rows.columns()) {
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
        let values: StringArray = (0..rows.num_rows())
            .map(|row| Some(cut(formatter.value(row).to_string(), truncate)))
            .collect();
        fields.push(Field::new(field.name(), DataType::Utf8, false));
        columns.push(Arc::new(values));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// `value`, or its first 17 characters and `...` when `truncate` is on and it is longer than 20.
fn cut(value: String, truncate: bool) -> String {
    if !truncate || value.chars().count() <= TRUNCATE_AT {
        return value;
    }
    let kept: String = value.chars().take(TRUNCATE_AT - 3).collect();
    format!("{kept}...")
}

#[cfg(test)]
mod tests {
    use arrow_array::Int64Array;

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("count", DataType::Int64, false),
        ]));
        let names = StringArray::from(vec![Some("ada"), None, Some("a name longer than twenty")]);
        let counts = Int64Array::from(vec![1, 2, 3]);
        RecordBatch::try_new(schema, vec![Arc::new(names), Arc::new(counts)]).unwrap()
    }

    #[test]
    fn a_batch_prints_as_a_table_under_its_number() {
        let spec = ConsoleSpec::default();
        let text = render(spec, 7, &batch()).unwrap();
        let expected = "\
-------------------------------------------
Batch: 7
-------------------------------------------
+----------------------+-------+
| name                 | count |
+----------------------+-------+
| ada                  | 1     |
| NULL                 | 2     |
| a name longer tha... | 3     |
+----------------------+-------+

";
        assert_eq!(text, expected);
    }

    #[test]
    fn num_rows_limits_the_rows_and_says_so_and_truncate_false_keeps_values_whole() {
        let spec = ConsoleSpec {
            num_rows: 1,
            truncate: false,
        };
        let text = render(spec, 0, &batch()).unwrap();
        assert!(text.contains("| ada  | 1     |"), "{text}");
        assert!(!text.contains("NULL"), "{text}");
        assert!(text.ends_with("only showing top 1 row\n\n"), "{text}");
        let whole = render(spec, 0, &batch().slice(2, 1)).unwrap();
        assert!(whole.contains("a name longer than twenty"), "{whole}");
    }
}
