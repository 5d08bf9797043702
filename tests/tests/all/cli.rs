//! The `weir` binary: `validate` prints the plan, and a bad pipeline key is named with its file.

use std::process::Command;

use weir_tests::*;

fn weir() -> Command {
    let path = workspace().join("target/release/weir");
    assert!(
        path.exists(),
        "{} is missing: build with `cargo build --release`",
        path.display()
    );
    Command::new(path)
}

#[test]
fn validate_prints_the_plan() {
    udf_module("json_transactions");
    let output = weir()
        .args(["validate", "examples/fraud/pipeline.toml"])
        .current_dir(workspace())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("WebAssembly deserializer `json_transactions`"),
        "{stdout}"
    );
    assert!(stdout.contains("-> id: Utf8, name: Utf8"), "{stdout}");
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
    for (module, kind) in [
        ("json_transactions", "deserializer"),
        ("nest_cameras", "deserializer"),
        ("fraud_flagged", "transform"),
        ("filter", "transform"),
    ] {
        let output = weir()
            .args(["udf", "inspect"])
            .arg(udf_module(module))
            .args([
                "--input-schema",
                "name STRING, surname STRING, flag INT, count BIGINT",
            ])
            .args(["--config", r#"{"column":"count","greater_than":1}"#])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{module}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("ABI      v1.0"), "{module}: {stdout}");
        assert!(
            stdout.contains(&format!("kind     {kind}")),
            "{module}: {stdout}"
        );
        assert!(stdout.contains("output   "), "{module}: {stdout}");
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
    let output = weir()
        .args(["udf", "test"])
        .arg(udf_module("json_transactions"))
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
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
