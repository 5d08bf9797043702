//! What every `weir-bench` command starts from: the broker to measure on, topic names of its own, the
//! binaries it runs (built beforehand), and the commit it measures, for the report.

use std::time::SystemTime;

use weir_tests::Broker;

use crate::variant::Variant;

/// The broker to measure on: `KAFKA_BOOTSTRAP_SERVERS`, or a tansu started here; and its description.
pub fn broker() -> (Broker, String) {
    match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
        Ok(bootstrap) => (
            Broker::external(&bootstrap),
            format!("broker at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)"),
        ),
        Err(_) => {
            let binary = weir_tests::tansu_binary();
            (
                weir_tests::tansu(),
                format!(
                    "tansu 0.6.0 at {} (in-memory storage, started here)",
                    binary.display()
                ),
            )
        }
    }
}

/// Topic names unique to this invocation, so a shared broker never mixes runs.
pub fn topic_prefix(what: &str) -> anyhow::Result<String> {
    Ok(format!(
        "{what}{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_secs()
    ))
}

/// Fails with the build command when the `weir` binary or a module the `variants` run is missing.
pub fn check_built(variants: &[&Variant]) -> anyhow::Result<()> {
    let root = weir_tests::workspace();
    let weir = root.join("target/release/weir");
    anyhow::ensure!(
        weir.exists(),
        "{} is missing: run `cargo build --release --bin weir`",
        weir.display()
    );
    for module in variants.iter().flat_map(|v| v.modules()) {
        let path = root.join(format!("target/wasm32-wasip1/release/{module}.wasm"));
        anyhow::ensure!(
            path.exists(),
            "{} is missing: run `bash bench/run.sh`, or `bash scripts/build-udfs.sh`",
            path.display()
        );
    }
    Ok(())
}

/// The measured commit, for the report ("unknown" outside a git checkout), marked when the working tree
/// differs from it.
pub fn git_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(weir_tests::workspace())
            .output()
            .ok()
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]).filter(|o| o.status.success()) else {
        return "unknown".into();
    };
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let changed = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|o| !o.stdout.is_empty());
    if changed {
        format!("{head} with uncommitted changes")
    } else {
        head
    }
}
