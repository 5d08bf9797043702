//! Stream-static joins end to end: `examples/fraud/pipeline-join.toml` enriches flagged transactions with
//! `watchlist.csv`, its output compared with one computed from the workload and the CSV's text (not by
//! Weir's readers); the same exactly-once across crashes; join mistakes refused by `weir validate`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};
use weir::internal::demo::{demo_records, MALFORMED_EVERY};
use weir::internal::workload::transactions;
use weir_tests::kafka_log::read_log;
use weir_tests::*;

use super::checkpoint::{crash_kill_and_finish, EXACTLY_ONCE_CRASH_POINTS};
use super::fraud::create_fraud_topics;

/// The watchlist as plain text: (name, surname) → its (list, listed_on) lines, in the file's order.
fn watchlist() -> BTreeMap<(String, String), Vec<(String, String)>> {
    let text = std::fs::read_to_string(workspace().join("examples/fraud/watchlist.csv")).unwrap();
    let mut lists: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        lists
            .entry((fields[0].to_string(), fields[1].to_string()))
            .or_default()
            .push((fields[2].to_string(), fields[3].to_string()));
    }
    lists
}

/// What the example writes for the first `n` transactions, each row as canonical JSON, sorted.
fn expected_join(n: u64) -> Vec<String> {
    let lists = watchlist();
    let mut rows = Vec::new();
    for t in transactions(n).filter(|t| t.flag == 1) {
        let row = json!({
            "id": format!("{}{}", t.name, t.surname), "name": t.name, "surname": t.surname,
            "amount": t.amount, "delta_t": t.delta_t, "flag": 1, "ts": t.ts,
        });
        match lists.get(&(t.name.clone(), t.surname.clone())) {
            None => rows.push(row),
            Some(entries) => {
                for (list, listed_on) in entries {
                    let mut listed = row.clone();
                    listed["list"] = json!(list);
                    listed["listed_on"] = json!(listed_on);
                    rows.push(listed);
                }
            }
        }
    }
    canonical(rows.iter().map(Value::to_string))
}

/// JSON rows with their keys in one order, sorted, so that two outputs compare as multisets.
fn canonical(rows: impl Iterator<Item = String>) -> Vec<String> {
    let mut rows: Vec<String> = rows
        .map(|row| serde_json::from_str::<Value>(&row).unwrap().to_string())
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watchlist_join_enriches_flagged_transactions_exactly() {
    let broker = mock_cluster();
    create_fraud_topics(&broker);
    let n = 30_000;
    produce(&broker.bootstrap, "transactions", demo_records(n)).unwrap();
    let summary = run_pipeline(example_spec("fraud/pipeline-join.toml", &broker.bootstrap))
        .await
        .unwrap();
    assert_eq!(summary.errors.dead_lettered, n / MALFORMED_EVERY);
    let got = canonical(values(&read_topic(&broker.bootstrap, "results").unwrap()).into_iter());
    let expected = expected_join(n);
    let listed = expected
        .iter()
        .filter(|row| row.contains("\"list\""))
        .count();
    assert!(
        listed > 10,
        "the workload should meet the watchlist: {listed}"
    );
    assert!(
        expected.iter().any(|row| row.contains("sanctions")),
        "name0 sur0 (on two lists) should be flagged at least once"
    );
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the joined rows differ");
}

/// The join example with a checkpoint, exactly-once and small batches, in a scratch folder.
fn checkpointed_join(per_trigger: u64) -> PathBuf {
    let dir = scratch_dir();
    let table = workspace().join("examples/fraud/watchlist.csv");
    let text = example_variant(
        "fraud/pipeline-join.toml",
        &[
            (
                "name = \"fraud-join\"",
                format!(
                    "name = \"fraud-join-crash\"\ncheckpointLocation = \"{}\"",
                    dir.join("checkpoint").display()
                ),
            ),
            (
                "endingOffsets = \"latest\"",
                format!("endingOffsets = \"latest\"\nmaxOffsetsPerTrigger = {per_trigger}"),
            ),
            (
                "join = \"watchlist.csv\"",
                format!("join = \"{}\"", table.display()),
            ),
            (
                "\n[sink]\n",
                "\n[sink]\ndelivery = \"exactly-once\"\n".into(),
            ),
        ],
    );
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn the_join_is_exactly_once_across_crashes_and_kills() {
    let broker = tansu();
    create_fraud_topics(&broker);
    let n = 100_000;
    produce(&broker.bootstrap, "transactions", demo_records(n)).unwrap();
    let file = checkpointed_join(n / 200);
    let killed = crash_kill_and_finish(&file, &broker.bootstrap, EXACTLY_ONCE_CRASH_POINTS, (5, n));
    let log = read_log(&broker.bootstrap, "results", 0).unwrap();
    let got = canonical(log.committed_values().into_iter());
    let expected = expected_join(n);
    println!(
        "{killed} kills; {} committed, {} aborted records",
        log.committed.len(),
        log.aborted()
    );
    assert_eq!(killed, 5, "the kills should land while the pipeline runs");
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "committed rows differ from the offline join"
    );
}

#[test]
fn validate_refuses_join_mistakes_naming_the_key_the_table_and_the_column() {
    let dir = scratch_dir();
    let table = dir.join("watchlist.csv");
    std::fs::write(&table, "name,surname,amount\nname0,sur0,1\n").unwrap();
    let cases = [
        (
            "on = [\"name\", \"surname\"]",
            "on = [\"name\", \"customer\"]",
            "`transform[1].join`: no column `customer` in the rows reaching this stage",
        ),
        (
            "how = \"left_outer\"",
            "how = \"left_outer\"\nschema = \"name STRING, surname STRING, amount STRING\"",
            "the join table",
        ),
    ];
    for (from, to, expected) in cases {
        let mut edits = vec![(from, to.to_string())];
        edits.push((
            "join = \"watchlist.csv\"",
            format!("join = \"{}\"", table.display()),
        ));
        let file = dir.join("pipeline.toml");
        std::fs::write(&file, example_variant("fraud/pipeline-join.toml", &edits)).unwrap();
        let output = weir_command().arg("validate").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{to}: validated");
        assert!(stderr.contains(expected), "{to}: {stderr}");
        if to.contains("schema") {
            assert!(
                stderr.contains("both have a column `amount`"),
                "{to}: {stderr}"
            );
        }
    }
}
