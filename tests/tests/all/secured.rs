//! Secured clusters: the fraud pipeline over TLS with the broker's certificate verified, and over SASL_SSL
//! with a password, each exact with the right settings and refused, by name, with a wrong one. How the
//! broker demands TLS and SASL is in `weir_tests::secured`.

use std::path::{Path, PathBuf};
use std::process::Output;

use weir::internal::demo::{demo_records, produce_with, read_topic_with, MALFORMED_EVERY};
use weir_tests::secured::{secured_tansu, Security, TestCertificates};
use weir_tests::*;

use super::fraud::{create_fraud_topics, expected_results};

/// `examples/fraud/secured.toml`, or a variant of it, written into `dir` as `name`.
fn secured_pipeline(dir: &Path, name: &str, edits: &[(&str, String)]) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, example_variant("fraud/secured.toml", edits)).unwrap();
    file
}

/// `weir run file` with the pipeline's environment (`KAFKA_*`).
fn weir_run(file: &Path, env: &[(&str, String)]) -> Output {
    let mut command = weir_command();
    command.arg("run").arg(file);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// The fraud workload in, the pipeline run, and the results and dead letters exact.
fn assert_exact_run(broker: &Broker, file: &Path, env: &[(&str, String)], n: u64) {
    let output = weir_run(file, env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "weir run failed: {stderr}");
    let mut results = values(&read_topic_with(broker.client_config(), "results").unwrap());
    results.sort();
    assert_eq!(results, expected_results(n));
    let dead = read_topic_with(broker.client_config(), "transactions-dead-letter").unwrap();
    assert_eq!(dead.len() as u64, n / MALFORMED_EVERY);
}

/// A failed run whose error says `cause` and names `key`, the option to check.
fn assert_refused(file: &Path, env: &[(&str, String)], cause: &str, key: &str) -> String {
    let output = weir_run(file, env);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "the run should fail: {stderr}");
    assert!(stderr.contains(cause), "no {cause:?} in: {stderr}");
    assert!(stderr.contains(key), "no {key:?} in: {stderr}");
    stderr
}

fn fraud_input(broker: &Broker, n: u64) {
    create_fraud_topics(broker);
    produce_with(broker.client_config(), "transactions", demo_records(n)).unwrap();
}

#[test]
fn tls_verifies_the_brokers_certificate() {
    udf_module("json_transactions");
    udf_module("fraud_flagged");
    let dir = scratch_dir();
    let certificates = TestCertificates::generate(&dir).unwrap();
    let tls = Security {
        tls: Some(&certificates),
        sasl: None,
    };
    let broker = secured_tansu(tls, &dir);
    let n = 20_000;
    fraud_input(&broker, n);
    // The example without SASL: TLS only.
    let sasl_lines = [
        "kafka.sasl.mechanism = \"${KAFKA_SASL_MECHANISM:-PLAIN}\"\n",
        "kafka.sasl.username = \"${KAFKA_USERNAME}\"\n",
        "kafka.sasl.password = \"${KAFKA_PASSWORD}\"\n",
    ];
    let mut edits: Vec<(&str, String)> = sasl_lines.iter().map(|l| (*l, String::new())).collect();
    edits.push(("\"SASL_SSL\"", "\"SSL\"".to_string()));
    let file = secured_pipeline(&dir, "secured.toml", &edits);

    let env = |ca: &PathBuf| {
        vec![
            ("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap.clone()),
            ("KAFKA_CA", ca.display().to_string()),
        ]
    };
    let wrong_ca = env(&certificates.wrong_ca);
    assert_refused(
        &file,
        &wrong_ca,
        "certificate verify failed",
        "kafka.ssl.ca.location",
    );

    let right = env(&certificates.ca);
    assert_exact_run(&broker, &file, &right, n);
}

#[test]
fn sasl_ssl_logs_in_with_the_right_password_only() {
    udf_module("json_transactions");
    udf_module("fraud_flagged");
    let dir = scratch_dir();
    let certificates = TestCertificates::generate(&dir).unwrap();
    let password = "s3cret-Passw0rd";
    let security = Security {
        tls: Some(&certificates),
        sasl: Some(("weir", password)),
    };
    let broker = secured_tansu(security, &dir);
    let n = 20_000;
    fraud_input(&broker, n);
    let file = secured_pipeline(&dir, "secured.toml", &[]);
    let env = |password: &str| {
        vec![
            ("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap.clone()),
            ("KAFKA_CA", certificates.ca.display().to_string()),
            ("KAFKA_USERNAME", "weir".to_string()),
            ("KAFKA_PASSWORD", password.to_string()),
        ]
    };
    let wrong = env("not-the-password");
    let stderr = assert_refused(
        &file,
        &wrong,
        "Authentication failed",
        "kafka.sasl.password",
    );
    assert!(
        !stderr.contains("not-the-password"),
        "the password was printed: {stderr}"
    );

    let right = env(password);
    assert_exact_run(&broker, &file, &right, n);
}

/// The secrets of a pipeline run over SASL: a password and a username from the environment, the broker
/// address from the environment, and a secret-named key written in the file itself.
struct RunSecrets {
    password: &'static str,
    user: &'static str,
    key_password: &'static str,
}

const SECRETS: RunSecrets = RunSecrets {
    password: "pl41n-Secret-pw",
    user: "analyst-7",
    key_password: "in-file-k3y-pass",
};

/// Fails if `text`, printed by `what`, shows any of `secrets`.
fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

/// A successful `weir run --progress json` whose progress and log lines show none of `hidden` and stay
/// JSON, and whose librdkafka broker debugging shows the broker as `***`.
fn assert_run_hides(run: &Output, json_logs: bool, hidden: &[&str]) {
    let (progress, logs) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{logs}");
    assert_hidden("the progress lines", &progress, hidden);
    for line in progress.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("progress stays JSON");
    }
    assert_hidden("the log lines", &logs, hidden);
    // librdkafka's broker debugging named the broker: masked, not missing.
    assert!(logs.contains("sasl_plaintext://***/bootstrap"), "{logs}");
    if json_logs {
        for line in logs.lines().filter(|l| l.starts_with('{')) {
            serde_json::from_str::<serde_json::Value>(line).expect("log lines stay JSON");
        }
    }
}

/// Every file under `folders` (checkpoints) holds none of `hidden`; there is at least one.
fn assert_files_hide(folders: &[PathBuf], hidden: &[&str]) {
    let mut folders = folders.to_vec();
    let mut files = 0;
    while let Some(folder) = folders.pop() {
        for path in std::fs::read_dir(folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
        {
            if path.is_dir() {
                folders.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let what = format!("checkpoint file {}", path.display());
                assert_hidden(&what, &String::from_utf8_lossy(&bytes), hidden);
                files += 1;
            }
        }
    }
    assert!(files > 0, "no checkpoint was written");
}

#[test]
fn secrets_are_never_printed_nor_kept() {
    udf_module("json_transactions");
    udf_module("fraud_flagged");
    let dir = scratch_dir();
    let sasl = Security {
        tls: None,
        sasl: Some((SECRETS.user, SECRETS.password)),
    };
    let broker = secured_tansu(sasl, &dir);
    fraud_input(&broker, 5_000);
    // SASL_PLAINTEXT, checkpointed (one checkpoint per run), with librdkafka's broker debugging on: its
    // lines name the broker.
    let pipeline_file = |run: &str| {
        secured_pipeline(
            &dir,
            &format!("{run}.toml"),
            &[
                ("\"SASL_SSL\"", "\"SASL_PLAINTEXT\"".to_string()),
                ("kafka.ssl.ca.location = \"${KAFKA_CA}\"\n", String::new()),
                (
                    "name = \"fraud-secured\"",
                    format!(
                        "name = \"fraud-secured-{run}\"\ncheckpointLocation = \"{}\"",
                        dir.join(run).display()
                    ),
                ),
                (
                    "[sink]\n",
                    format!(
                        "[sink]\nkafka.debug = \"broker\"\nkafka.ssl.key.password = \"{}\"\n",
                        SECRETS.key_password
                    ),
                ),
            ],
        )
    };
    let env = |password: &str| {
        vec![
            ("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap.clone()),
            ("KAFKA_USERNAME", SECRETS.user.to_string()),
            ("KAFKA_PASSWORD", password.to_string()),
            ("WEIR_LOG", "debug".to_string()),
        ]
    };
    let hidden = [
        SECRETS.password,
        SECRETS.user,
        SECRETS.key_password,
        &broker.bootstrap,
    ];

    let file = pipeline_file("text");
    let validate = weir_command()
        .arg("validate")
        .arg(&file)
        .envs(env(SECRETS.password))
        .output()
        .unwrap();
    assert!(validate.status.success());
    let plan = String::from_utf8_lossy(&validate.stdout);
    assert!(plan.contains("ok:"), "{plan}");
    assert_hidden("weir validate", &plan, &hidden);
    assert_hidden(
        "weir validate's log",
        &String::from_utf8_lossy(&validate.stderr),
        &hidden,
    );

    for log_format in ["text", "json"] {
        let run = weir_command()
            .args(["--log-format", log_format, "run", "--progress", "json"])
            .arg(pipeline_file(log_format))
            .envs(env(SECRETS.password))
            .output()
            .unwrap();
        assert_run_hides(&run, log_format == "json", &hidden);
    }
    assert_files_hide(&[dir.join("text"), dir.join("json")], &hidden);

    // An error that names the broker and follows a wrong password shows neither.
    let wrong = weir_command()
        .arg("run")
        .arg(&file)
        .envs(env("a-Wrong-passw0rd"))
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(error.contains("Authentication failed"), "{error}");
    assert_hidden("the error", &error, &hidden);
    assert_hidden("the error", &error, &["a-Wrong-passw0rd"]);
}
