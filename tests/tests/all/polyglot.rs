//! UDFs in many languages in one pipeline (`examples/polyglot`), exact: C → Zig → AssemblyScript → Rust as
//! core modules, and Python → JavaScript → a Rust component → Zig → AssemblyScript across both kinds of file.

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
    let modules = [
        "c_transactions",
        "zig_amount_cents",
        "as_threshold",
        "fraud_flagged",
    ];
    run_exactly("polyglot/pipeline.toml", &modules, "unterminated string").await;
}

/// Components (Python, JavaScript, Rust) and core modules (Zig, AssemblyScript) in one chain give the same
/// rows as the core-module chain.
#[tokio::test(flavor = "multi_thread")]
async fn python_javascript_rust_component_and_core_modules_chain_exactly() {
    let modules = [
        "py_json_transactions",
        "js_filter",
        "fraud_flagged_component",
        "zig_amount_cents",
        "as_threshold",
    ];
    let reason = "not a transaction: Unterminated string starting at: line 1 column 10 (char 9)";
    run_exactly("polyglot/components.toml", &modules, reason).await;
}

/// Runs the example at `path` over 50,000 demo records and checks its output against [`expected`] and its
/// dead letters against the deserializer's `reason` for a malformed record.
async fn run_exactly(path: &str, modules: &[&str], reason: &str) {
    for module in modules {
        udf_module(module);
    }
    let broker = tansu();
    broker.create_topic("transactions", 4);
    broker.create_topic("big-fraud", 1);
    broker.create_topic("transactions-dead-letter", 1);
    let n = 50_000;
    let produced = produce(&broker.bootstrap, "transactions", demo_records(n)).unwrap();

    let summary = run_pipeline(example_spec(path, &broker.bootstrap))
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

    // The deserializer's row errors reach the dead-letter topic with its reason.
    let dead = read_topic(&broker.bootstrap, "transactions-dead-letter").unwrap();
    assert_eq!(dead.len() as u64, n / MALFORMED_EVERY);
    assert_eq!(dead[0].header("weir.error").unwrap(), reason);
}
