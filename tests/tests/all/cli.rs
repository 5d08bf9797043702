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
