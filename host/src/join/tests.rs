//! The join stage on small tables written by the tests, each expected output spelt out by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_cast::pretty::pretty_format_batches;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{JoinSpec, JoinType, StaticJoin, TableFormat, TableSpec};

/// A scratch folder of its own for each test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-join-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const LOCATIONS: &str = "device_id,zip_code\ncam1,94105\ncam2,10001\ncam1,94107\ncam9,60601\n";

/// Camera events: device ids (one null) and a sequence number.
fn events() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("device_id", DataType::Utf8, true),
        Field::new("seq", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                Some("cam1"),
                Some("cam3"),
                None,
                Some("cam2"),
            ])),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
        ],
    )
    .unwrap()
}

fn join(table: &Path, how: JoinType, rows: &RecordBatch) -> String {
    let spec = JoinSpec::new(TableSpec::new(table), ["device_id"]).with_how(how);
    let stage = StaticJoin::plan(&spec, "transform[0]", &rows.schema()).unwrap();
    let joined = stage.process(rows).unwrap();
    assert_eq!(joined.schema(), *stage.output_schema());
    pretty_format_batches(&[joined]).unwrap().to_string()
}

fn lines(table: &str) -> String {
    table.trim().to_string()
}

#[test]
fn inner_gives_a_row_per_match_in_the_tables_order_and_drops_the_rest() {
    let dir = scratch("inner");
    let table = write(&dir, "locations.csv", LOCATIONS);
    let expected = "\
+-----------+-----+----------+
| device_id | seq | zip_code |
+-----------+-----+----------+
| cam1      | 1   | 94105    |
| cam1      | 1   | 94107    |
| cam2      | 4   | 10001    |
+-----------+-----+----------+";
    assert_eq!(lines(&join(&table, JoinType::Inner, &events())), expected);
}

#[test]
fn left_outer_keeps_rows_without_a_match_with_null_table_columns() {
    let dir = scratch("outer");
    let table = write(&dir, "locations.csv", LOCATIONS);
    let expected = "\
+-----------+-----+----------+
| device_id | seq | zip_code |
+-----------+-----+----------+
| cam1      | 1   | 94105    |
| cam1      | 1   | 94107    |
| cam3      | 2   |          |
|           | 3   |          |
| cam2      | 4   | 10001    |
+-----------+-----+----------+";
    assert_eq!(
        lines(&join(&table, JoinType::LeftOuter, &events())),
        expected
    );
    let spec = JoinSpec::new(TableSpec::new(&table), ["device_id"]).with_how(JoinType::LeftOuter);
    let stage = StaticJoin::plan(&spec, "transform[0]", &events().schema()).unwrap();
    assert!(stage.output_schema().field(2).is_nullable());
}

#[test]
fn semi_keeps_matched_rows_once_and_anti_the_others_with_null_keys() {
    let dir = scratch("semi-anti");
    let table = write(&dir, "locations.csv", LOCATIONS);
    let semi = "\
+-----------+-----+
| device_id | seq |
+-----------+-----+
| cam1      | 1   |
| cam2      | 4   |
+-----------+-----+";
    let anti = "\
+-----------+-----+
| device_id | seq |
+-----------+-----+
| cam3      | 2   |
|           | 3   |
+-----------+-----+";
    assert_eq!(lines(&join(&table, JoinType::LeftSemi, &events())), semi);
    assert_eq!(lines(&join(&table, JoinType::LeftAnti, &events())), anti);
}

#[test]
fn json_lines_and_parquet_tables_join_as_the_csv_one() {
    let dir = scratch("formats");
    let csv = join(&write(&dir, "l.csv", LOCATIONS), JoinType::Inner, &events());
    let json = write(
        &dir,
        "l.jsonl",
        "{\"device_id\":\"cam1\",\"zip_code\":\"94105\"}\n{\"device_id\":\"cam2\",\"zip_code\":\"10001\"}\n\
         {\"device_id\":\"cam1\",\"zip_code\":\"94107\"}\n",
    );
    // The zip codes are strings here and numbers in the CSV: the same text either way.
    let from_json = join(&json, JoinType::Inner, &events());
    assert_eq!(from_json, csv);

    let table = super::table::read_table(&TableSpec::new(dir.join("l.csv"))).unwrap();
    let parquet = dir.join("l.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&parquet).unwrap(),
        table.schema(),
        None,
    )
    .unwrap();
    writer.write(&table).unwrap();
    writer.close().unwrap();
    assert_eq!(join(&parquet, JoinType::Inner, &events()), csv);
}

#[test]
fn keys_of_several_columns_and_of_another_type_match_by_value() {
    let dir = scratch("multi");
    // Inferred as Int64 ids; the rows carry them as strings.
    let table = write(
        &dir,
        "accounts.csv",
        "user,region,tier\n7,eu,gold\n7,us,silver\n8,eu,bronze\n",
    );
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("user", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
    ]));
    let rows = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["7", "7", "8", "9"])),
            Arc::new(StringArray::from(vec!["us", "eu", "us", "eu"])),
        ],
    )
    .unwrap();
    let spec = JoinSpec::new(TableSpec::new(&table), ["user", "region"]);
    let stage = StaticJoin::plan(&spec, "transform[0]", &schema).unwrap();
    let joined = stage.process(&rows).unwrap();
    let tiers = joined
        .column(2)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let users = joined
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(joined.num_rows(), 2);
    assert_eq!((users.value(0), tiers.value(0)), ("7", "silver"));
    assert_eq!((users.value(1), tiers.value(1)), ("7", "gold"));
}

/// The error of planning `spec` for the events, as one line.
fn plan_error(spec: &JoinSpec) -> String {
    match StaticJoin::plan(spec, "transform[1]", &events().schema()) {
        Ok(_) => panic!("planned {spec}"),
        Err(error) => format!("{error:#}"),
    }
}

#[test]
fn planning_names_the_key_the_file_and_the_column_at_fault() {
    let dir = scratch("errors");
    let good = write(&dir, "locations.csv", LOCATIONS);
    let on = |on: &str, table: &Path| JoinSpec::new(TableSpec::new(table), [on]);

    let error = plan_error(&on("device", &good));
    assert!(
        error.contains("`transform[1].join`: no column `device` in the rows"),
        "{error}"
    );
    let other = write(&dir, "other.csv", "id,zip_code\ncam1,1\n");
    let error = plan_error(&on("device_id", &other));
    assert!(
        error.contains("`transform[1].join.on`: no column `device_id` in the join table"),
        "{error}"
    );
    assert!(error.contains("other.csv (it has: id: Utf8"), "{error}");
    let clash = write(&dir, "clash.csv", "device_id,seq\ncam1,1\n");
    let error = plan_error(&on("device_id", &clash));
    assert!(error.contains("both have a column `seq`"), "{error}");
    let error = plan_error(&on("device_id", &dir.join("missing.csv")));
    assert!(
        error.contains("cannot open the join table") && error.contains("missing.csv"),
        "{error}"
    );
    let ragged = write(&dir, "ragged.csv", "device_id,zip_code\ncam1,1\ncam2\n");
    let error = plan_error(&on("device_id", &ragged));
    assert!(
        error.contains("ragged.csv is not readable as csv"),
        "{error}"
    );
    let json = write(
        &dir,
        "bad.jsonl",
        "{\"device_id\":\"cam1\"}\n{\"device_id\":\n",
    );
    let error = plan_error(&on("device_id", &json));
    assert!(
        error.contains("bad.jsonl is not readable as json"),
        "{error}"
    );
    let parquet = write(&dir, "bad.parquet", "not parquet at all");
    let error = plan_error(&on("device_id", &parquet));
    assert!(
        error.contains("bad.parquet is not readable as parquet"),
        "{error}"
    );
}

#[test]
fn a_key_that_does_not_convert_to_the_rows_type_is_refused() {
    let dir = scratch("cast");
    let table = write(&dir, "t.csv", "seq,label\n1,one\nlots,many\n");
    let typed = TableSpec::new(&table).with_format(TableFormat::Csv);
    let error = plan_error(&JoinSpec::new(typed, ["seq"]));
    assert!(
        error.contains("`seq` (Utf8) does not all convert to the rows' Int64"),
        "{error}"
    );
}

#[test]
fn a_changed_table_is_read_again_and_a_changed_schema_is_refused() {
    let dir = scratch("reload");
    let table = write(&dir, "locations.csv", LOCATIONS);
    let spec = JoinSpec::new(TableSpec::new(&table), ["device_id"]);
    let stage = StaticJoin::plan(&spec, "transform[0]", &events().schema()).unwrap();
    assert!(!stage.reload_if_changed().unwrap());
    assert_eq!(stage.process(&events()).unwrap().num_rows(), 3);

    std::fs::write(&table, "device_id,zip_code\ncam3,02139\n").unwrap();
    assert!(stage.reload_if_changed().unwrap());
    let joined = stage.process(&events()).unwrap();
    assert_eq!(joined.num_rows(), 1);
    assert_eq!(stage.table_rows(), 1);

    std::fs::write(&table, "device_id,zip_code,city\ncam1,94105,SF\n").unwrap();
    let error = format!("{:#}", stage.reload_if_changed().unwrap_err());
    assert!(
        error.contains("changed but the version in use stays"),
        "{error}"
    );
    assert!(error.contains("restart the pipeline"), "{error}");
    let joined = stage.process(&events()).unwrap();
    let devices = joined
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!((joined.num_rows(), devices.value(0)), (1, "cam3"));
}
