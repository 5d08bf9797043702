//! The SQL stages on small batches, with expected rows written out by hand.

use std::sync::Arc;

use arrow_array::{Array, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{SqlSpec, SqlStage};

fn transactions() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("surname", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("flag", DataType::Int32, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                Some("ann"),
                Some("bo"),
                None,
                Some("di"),
            ])),
            Arc::new(StringArray::from(vec!["lee", "kim", "ng", "fox"])),
            Arc::new(Float64Array::from(vec![10.0, 250.5, 7.0, 99.0])),
            Arc::new(Int32Array::from(vec![Some(1), Some(0), Some(1), None])),
        ],
    )
    .unwrap()
}

fn plan(spec: SqlSpec, rows: &RecordBatch) -> Result<SqlStage, super::SqlError> {
    SqlStage::plan(&spec, "transform[0]", &rows.schema())
}

fn strings(rows: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = rows.column(rows.schema().index_of(column).unwrap());
    let array = array.as_any().downcast_ref::<StringArray>().unwrap();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
        .collect()
}

fn names(schema: &SchemaRef) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

#[test]
fn where_keeps_the_rows_that_are_true_and_drops_false_and_null() {
    let rows = transactions();
    let stage = plan(SqlSpec::filter("flag = 1"), &rows).unwrap();
    let kept = stage.process(&rows).unwrap();
    assert_eq!(kept.num_rows(), 2);
    assert_eq!(
        strings(&kept, "surname"),
        [Some("lee".into()), Some("ng".into())]
    );
    assert_eq!(kept.schema(), rows.schema());
}

#[test]
fn where_uses_functions_and_coerces_types() {
    let rows = transactions();
    let condition = "upper(surname) LIKE 'K%' OR (amount > 50 AND CAST(flag AS BIGINT) IS NULL)";
    let stage = plan(SqlSpec::filter(condition), &rows).unwrap();
    let kept = stage.process(&rows).unwrap();
    assert_eq!(
        strings(&kept, "surname"),
        [Some("kim".into()), Some("fox".into())]
    );
}

#[test]
fn select_star_keeps_the_other_columns_and_adds_the_named_ones() {
    let rows = transactions();
    let stage = plan(
        SqlSpec::select(["*", "name || surname AS id", "amount * 2 AS amount"]),
        &rows,
    )
    .unwrap();
    let out = stage.process(&rows).unwrap();
    assert_eq!(
        names(stage.output_schema()),
        ["name", "surname", "flag", "id", "amount"]
    );
    assert_eq!(out.schema(), *stage.output_schema());
    // `||` with a NULL is NULL, as in Spark.
    assert_eq!(
        strings(&out, "id"),
        [
            Some("annlee".into()),
            Some("bokim".into()),
            None,
            Some("difox".into())
        ]
    );
    let doubled = out
        .column(4)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(doubled.values(), &[20.0, 501.0, 14.0, 198.0]);
}

#[test]
fn select_without_star_keeps_only_its_columns_in_its_order() {
    let rows = transactions();
    let stage = plan(
        SqlSpec::select(["flag", "surname AS last", "concat(name, '!')"]),
        &rows,
    )
    .unwrap();
    let out = stage.process(&rows).unwrap();
    assert_eq!(
        names(out.schema_ref()),
        ["flag", "last", "concat(name,Utf8(\"!\"))"]
    );
    assert_eq!(out.schema().field(0).data_type(), &DataType::Int32);
    assert_eq!(strings(&out, "last")[3], Some("fox".into()));
}

#[test]
fn column_names_are_matched_as_written() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "zipCode",
        DataType::Utf8,
        true,
    )]));
    let rows = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec!["94107", "10001"]))],
    )
    .unwrap();
    let stage = SqlStage::plan(
        &SqlSpec::filter("zipCode = '10001'"),
        "transform[0]",
        &schema,
    )
    .unwrap();
    assert_eq!(stage.process(&rows).unwrap().num_rows(), 1);
}

#[test]
fn a_missing_column_is_named_with_the_key_and_the_columns_there_are() {
    let rows = transactions();
    let error = match plan(SqlSpec::filter("flagg = 1"), &rows) {
        Err(error) => error,
        Ok(_) => panic!("a missing column was accepted"),
    };
    assert_eq!(error.key, "transform[0].where");
    assert_eq!(error.expression, "flagg = 1");
    assert!(error.message.contains("no column `flagg`"), "{error}");
    assert!(error.message.contains("flag: Int32"), "{error}");
}

#[test]
fn a_condition_that_is_not_boolean_is_refused_with_its_column() {
    let rows = transactions();
    let Err(error) = plan(SqlSpec::filter("amount + 1"), &rows) else {
        panic!("a number was accepted as a condition");
    };
    assert!(
        error.message.contains("is Float64, not a condition"),
        "{error}"
    );
    assert!(error.message.contains("amount Float64"), "{error}");
}

#[test]
fn a_type_error_names_the_columns_it_uses() {
    let rows = transactions();
    let Err(error) = plan(SqlSpec::select(["amount - surname AS x"]), &rows) else {
        panic!("a number minus a string was accepted");
    };
    assert_eq!(error.key, "transform[0].select");
    assert!(error.message.contains("surname Utf8"), "{error}");
    assert!(error.message.contains("amount Float64"), "{error}");
}

#[test]
fn two_output_columns_with_one_name_are_refused() {
    let rows = transactions();
    let Err(error) = plan(SqlSpec::select(["name AS x", "surname AS x"]), &rows) else {
        panic!("two columns named x were accepted");
    };
    assert!(
        error.message.contains("a second column named `x`"),
        "{error}"
    );
}

#[test]
fn a_failed_evaluation_names_the_expression() {
    let rows = transactions();
    let stage = plan(SqlSpec::select(["CAST(surname AS INT) AS n"]), &rows).unwrap();
    let error = stage.process(&rows).unwrap_err();
    assert_eq!(error.key, "transform[0].select");
    assert_eq!(error.expression, "CAST(surname AS INT) AS n");
    assert!(error.message.contains("lee"), "{error}");
}

#[test]
fn try_cast_and_a_guarded_case_do_not_fail_where_cast_would() {
    let rows = transactions();
    let stage = plan(
        SqlSpec::select([
            "TRY_CAST(surname AS DOUBLE) AS tried",
            "CASE WHEN surname ~ '^[0-9.]+$' THEN CAST(surname AS DOUBLE) END AS guarded",
        ]),
        &rows,
    )
    .unwrap();
    let out = stage.process(&rows).unwrap();
    assert_eq!(out.column(0).null_count(), 4);
    assert_eq!(out.column(1).null_count(), 4);
}

#[test]
fn the_documented_syntax_and_functions_plan_and_run() {
    // docs/pipeline-file.md, "SQL stages", lists these; each must plan against the rows and evaluate.
    let rows = transactions();
    let expressions = [
        "flag IN (0, 1) AS a",
        "amount BETWEEN 5 AND 100 AS b",
        "NOT (surname LIKE 'k%') AS c",
        "CASE WHEN amount > 50 THEN 'big' ELSE 'small' END AS d",
        "substr(surname, 1, 2) AS e",
        "split_part('a-b-c', '-', 2) AS f",
        "regexp_replace(surname, '[aeiou]', '_') AS g",
        "coalesce(name, 'nobody') AS h",
        "nullif(flag, 0) AS i",
        "encode(surname, 'hex') AS j",
        "date_trunc('hour', to_timestamp(1700000000)) AS k",
        "extract(year FROM to_timestamp(1700000000)) AS l",
        "abs(amount - 100) AS m",
    ];
    let stage = plan(SqlSpec::select(expressions), &rows).unwrap();
    let out = stage.process(&rows).unwrap();
    assert_eq!(out.num_columns(), expressions.len());
    assert_eq!(strings(&out, "d")[1], Some("big".into()));
    // Without the 'g' flag, the first match only, as in PostgreSQL.
    assert_eq!(strings(&out, "g")[0], Some("l_e".into()));
    assert_eq!(strings(&out, "h")[2], Some("nobody".into()));
    assert_eq!(strings(&out, "j")[0], Some("6c6565".into()));
}

#[test]
fn a_quoted_name_reaches_a_column_that_is_not_an_identifier() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "window start",
        DataType::Int32,
        true,
    )]));
    let rows =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1, 5]))]).unwrap();
    let stage = SqlStage::plan(
        &SqlSpec::filter("\"window start\" > 2"),
        "transform[0]",
        &schema,
    )
    .unwrap();
    assert_eq!(stage.process(&rows).unwrap().num_rows(), 1);
}

#[test]
fn now_is_fixed_when_the_stage_is_planned() {
    let rows = transactions();
    let stage = plan(
        SqlSpec::select(["now() AS t", "current_date() AS d"]),
        &rows,
    )
    .unwrap();
    let first = stage.process(&rows).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = stage.process(&rows).unwrap();
    assert_eq!(first, second);
}
