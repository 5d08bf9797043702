//! The `weir` binary: `validate` prints the plan, and a bad pipeline key is named with its file.

use std::process::Command;

use weir_tests::*;

fn weir() -> Command {
    weir_command()
}

#[test]
fn validate_prints_the_plan() {
    udf_module("json_transactions");
    let stdout = successful_stdout(
        weir()
            .args(["validate", "examples/fraud/pipeline.toml"])
            .current_dir(workspace()),
        "weir validate",
    );
    assert!(
        stdout.contains("WebAssembly deserializer `json_transactions`"),
        "{stdout}"
    );
    assert!(stdout.contains("-> id: Utf8, name: Utf8"), "{stdout}");
}

/// A checkpointed pipeline validates with no broker to ask, and its checkpoint is not created.
#[test]
fn validate_needs_no_broker_and_creates_nothing() {
    udf_module("nest_cameras");
    let dir = scratch_dir();
    std::fs::copy(
        workspace().join("examples/nest-cameras/device_locations.csv"),
        dir.join("device_locations.csv"),
    )
    .unwrap();
    for name in ["stats.toml", "archive.toml", "report.toml"] {
        let file = dir.join(name);
        std::fs::write(&file, example_variant(&format!("nest-cameras/{name}"), &[])).unwrap();
        let stdout = successful_stdout(
            weir()
                .arg("validate")
                .arg(&file)
                .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1"),
            "weir validate",
        );
        assert!(stdout.contains("is valid"), "{stdout}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".toml") && !name.ends_with(".csv"))
        .collect();
    assert!(left.is_empty(), "validate created {left:?}");
}

#[test]
fn a_bad_key_is_named_with_the_file() {
    let dir = scratch_dir();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[source]\nkafka.bootstrap.servers = \"x:1\"\nsubscribe = \"t\"\nstartingOffset = \"earliest\"\n").unwrap();
    let output = weir().arg("validate").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "{}: `source.startingOffset`: unknown source option",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("did you mean `startingOffsets`?"),
        "{stderr}"
    );
}

#[test]
fn help_shows_examples() {
    let output = weir().arg("--help").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("weir demo examples/fraud/pipeline.toml"),
        "{stdout}"
    );
}

#[test]
fn udf_inspect_works_on_every_module_in_udfs() {
    // (folder in udfs/, kind, data interface, config)
    let modules = [
        ("json-transactions", "deserializer", "Arrow IPC", "{}"),
        ("nest-cameras", "deserializer", "Arrow IPC", "{}"),
        ("fraud-flagged", "transform", "Arrow IPC", "{}"),
        (
            "fraud-flagged-component",
            "transform",
            "Arrow buffers by column",
            "{}",
        ),
        (
            "filter",
            "transform",
            "Arrow IPC",
            r#"{"column":"count","greater_than":1}"#,
        ),
        ("c-transactions", "deserializer", "rows", "{}"),
        ("zig-amount-cents", "transform", "rows", "{}"),
        ("as-threshold", "transform", "rows", r#"{"min_cents":100}"#),
        (
            "py-fraud-flagged",
            "transform",
            "Arrow buffers by column",
            "{}",
        ),
        (
            "py-json-transactions",
            "deserializer",
            "Arrow buffers by column",
            "{}",
        ),
        ("py-hostile", "transform", "Arrow buffers by column", "{}"),
        (
            "js-filter",
            "transform",
            "Arrow buffers by column",
            r#"{"column":"count","greater_than":1}"#,
        ),
        (
            "js-fraud-flagged",
            "transform",
            "Arrow buffers by column",
            "{}",
        ),
        ("js-hostile", "transform", "Arrow buffers by column", "{}"),
    ];
    // A transform's input: the transaction columns, plus `amount_cents` for the one that reads it.
    let schema = |folder: &str| {
        let base = "name STRING, surname STRING, amount STRING, flag INT, count BIGINT";
        if folder == "as-threshold" {
            format!("{base}, amount_cents BIGINT")
        } else {
            base.to_string()
        }
    };
    let mut folders: Vec<String> = std::fs::read_dir(workspace().join("udfs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut listed: Vec<String> = modules.iter().map(|m| m.0.to_string()).collect();
    listed.sort();
    assert_eq!(folders, listed, "every folder in udfs/ is inspected here");
    for (folder, kind, interface, config) in modules {
        let stdout = successful_stdout(
            weir()
                .args(["udf", "inspect"])
                .arg(udf_module(&folder.replace('-', "_")))
                .args(["--input-schema", &schema(folder)])
                .args(["--config", config]),
            folder,
        );
        let version = if interface == "Arrow buffers by column" {
            format!("world    weir:udf/{kind}@1.0.0 (component)")
        } else {
            "ABI      v1.".to_string()
        };
        assert!(stdout.contains(&version), "{folder}: {stdout}");
        assert!(
            stdout.contains(&format!("kind     {kind}")),
            "{folder}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("data     {interface}")),
            "{folder}: {stdout}"
        );
        assert!(stdout.contains("output   "), "{folder}: {stdout}");
    }
}

#[test]
fn udf_inspect_explains_a_foreign_abi() {
    let dir = scratch_dir();
    let module = wat_module(&dir, "v2", &echo_transform_wat("weir_abi_v2", 2, ""));
    let output = weir()
        .args(["udf", "inspect"])
        .arg(&module)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ABI      not usable: the module is built for Weir UDF ABI v2"),
        "{stdout}"
    );
    assert!(stdout.contains("weir_abi_v2: func () -> (i32)"), "{stdout}");
}

#[test]
fn udf_test_prints_rows_and_the_rejected_lines() {
    let dir = scratch_dir();
    let input = dir.join("sample.jsonl");
    std::fs::write(
        &input,
        "{\"name\":\"ann\",\"surname\":\"lee\",\"amount\":\"1.50\",\"delta_t\":\"3\",\"flag\":1}\nnot json\n",
    )
    .unwrap();
    let stdout = successful_stdout(
        weir()
            .args(["udf", "test"])
            .arg(udf_module("json_transactions"))
            .arg("--input")
            .arg(&input),
        "weir udf test",
    );
    assert!(stdout.contains("| ann  | lee"), "{stdout}");
    assert!(
        stdout.contains("2 input rows, 1 output rows, 1 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sample.jsonl line 2: not a transaction"),
        "{stdout}"
    );
}

#[test]
fn udf_test_runs_the_c_zig_and_assemblyscript_guests() {
    let dir = scratch_dir();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // (module, input file, input schema, config, expected in stdout)
    let cases = [
        (
            "c_transactions",
            write(
                "records.txt",
                "{\"name\":\"ann\",\"surname\":\"lee\",\"amount\":\"1.50\",\"delta_t\":\"3\",\"flag\":1,\"ts\":7}\n{\"name\":1}\n",
            ),
            None,
            "{}",
            vec!["| ann  | lee     | 1.50   | 3       | 1    | 7  |", "2 input rows, 1 output rows, 1 rejected", "line 2: name, surname, amount and delta_t must be strings"],
        ),
        (
            "zig_amount_cents",
            write("amounts.jsonl", "{\"amount\":\"12.5\"}\n{\"amount\":\"-3\"}\n{\"amount\":\"1.234\"}\n"),
            Some("amount STRING"),
            "{}",
            vec!["| 12.5   | 1250         |", "| -3     | -300         |", "line 3: `amount` is not a decimal with at most two fraction digits: \"1.234\""],
        ),
        (
            "as_threshold",
            write("cents.jsonl", "{\"amount_cents\":99}\n{\"amount_cents\":100}\n{}\n"),
            Some("amount_cents BIGINT"),
            r#"{"min_cents":100}"#,
            vec!["| 100          |", "3 input rows, 1 output rows, 0 rejected"],
        ),
    ];
    for (module, input, schema, config, expected) in cases {
        let mut command = weir();
        command
            .args(["udf", "test"])
            .arg(udf_module(module))
            .arg("--input")
            .arg(&input)
            .args(["--config", config]);
        if let Some(schema) = schema {
            command.args(["--input-schema", schema]);
        }
        let stdout = successful_stdout(&mut command, module);
        for line in expected {
            assert!(
                stdout.contains(line),
                "{module}: expected {line:?} in\n{stdout}"
            );
        }
    }
}
