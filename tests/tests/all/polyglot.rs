//! UDFs in four languages in one pipeline (`examples/polyglot`): C → Zig → AssemblyScript → Rust, exact.

use weir::internal::demo::{demo_records, MALFORMED_EVERY};
use weir::internal::workload;
use weir_tests::*;

/// What the chain must write for the first `n` workload transactions, computed without any UDF: flagged
/// transactions of at least 500.00, as the fraud rows plus `amount_cents`.
fn expected(n: u64) -> Vec<String> {
    let mut rows: Vec<String> = workload::transactions(n)
        .filter_map(|t| {
            let (whole, cents) = t.amount.split_once('.').unwrap();
            let amount_cents = whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap();
            let row = t.fraud_result()?;
            (amount_cents >= 50_000).then(|| {
                format!(
                    "{},\"amount_cents\":{amount_cents}}}",
                    row.strip_suffix('}').unwrap()
                )
            })
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn c_zig_assemblyscript_and_rust_udfs_chain_exactly() {
    for module in [
        "c_transactions",
        "zig_amount_cents",
        "as_threshold",
        "fraud_flagged",
    ] {
        udf_module(module);
    }
    let broker = tansu();
    broker.create_topic("transactions", 4);
    broker.create_topic("big-fraud", 1);
    broker.create_topic("transactions-dead-letter", 1);
    let n = 50_000;
    let produced = produce(&broker.bootstrap, "transactions", demo_records(n)).unwrap();

    let summary = run_pipeline(example_spec("polyglot/pipeline.toml", &broker.bootstrap))
        .await
        .unwrap();
    assert_eq!(summary.input_rows, produced);

    let mut results = values(&read_topic(&broker.bootstrap, "big-fraud").unwrap());
    results.sort();
    let expected = expected(n);
    assert!(expected.len() > 1_000, "the workload should select rows");
    assert_eq!(results.len(), expected.len());
    assert!(
        results == expected,
        "first difference: {:?}",
        results.iter().zip(&expected).find(|(a, b)| a != b)
    );

    // The C deserializer's row errors reach the dead-letter topic with its reason.
    let dead = read_topic(&broker.bootstrap, "transactions-dead-letter").unwrap();
    assert_eq!(dead.len() as u64, n / MALFORMED_EVERY);
    assert_eq!(dead[0].header("weir.error").unwrap(), "unterminated string");
}
