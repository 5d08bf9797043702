//! Helpers for Weir's integration tests: brokers, topics, UDF modules and pipelines.
//!
//! Every test gets its own broker (tansu starts in milliseconds; the mock cluster lives in-process), so
//! tests share nothing and run in parallel.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

pub mod avro;
pub mod kafka_log;
pub mod registry;
pub mod secured;
pub mod sink_files;
pub use weir::internal::demo::{produce, read_topic, ReadRecord};

/// A Kafka-protocol broker for one test, stopped when dropped.
pub struct Broker {
    /// `host:port` for clients.
    pub bootstrap: String,
    /// Client options beyond `bootstrap.servers` that the broker demands (TLS, SASL).
    pub client_options: Vec<(String, String)>,
    /// The broker and the processes in front of it, stopped last to first.
    processes: Vec<Child>,
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        for child in self.processes.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The tansu 0.6.0 binary: `$WEIR_TANSU`, or where `.ci/install-tansu` puts it.
pub fn tansu_binary() -> PathBuf {
    if let Ok(path) = std::env::var("WEIR_TANSU") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let path = PathBuf::from(home).join(".cache/weir/tansu-0.6.0");
    assert!(
        path.exists(),
        "the tansu broker is not installed at {}: run `bash .ci/install-tansu` (or set WEIR_TANSU)",
        path.display()
    );
    path
}

/// Starts a tansu broker with in-memory storage on a free loopback port.
pub fn tansu() -> Broker {
    tansu_advertising_to(None)
}

/// Starts a tansu broker on a free loopback port (its `bootstrap`) that tells clients to connect to
/// `advertised` instead: the address of a front (TLS, SASL) that passes connections on to it.
pub fn tansu_advertising(advertised: &str) -> Broker {
    tansu_advertising_to(Some(advertised))
}

fn tansu_advertising_to(advertised: Option<&str>) -> Broker {
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let advertised = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
    let child = Command::new(tansu_binary())
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(broker_log(port))
        .stderr(Stdio::null())
        .spawn()
        .expect("starting tansu");
    let bootstrap = format!("127.0.0.1:{port}");
    for _ in 0..200 {
        if std::net::TcpStream::connect(&bootstrap).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Broker {
        bootstrap,
        processes: vec![child],
        client_options: Vec::new(),
        _mock: None,
    }
}

/// Where a test broker's own log goes: `$WEIR_TEST_BROKER_LOGS/tansu-<port>.log` when that folder is set
/// (to follow the broker's side of a failure, with `RUST_LOG` for its level), else nowhere.
fn broker_log(port: u16) -> Stdio {
    let Some(folder) = std::env::var_os("WEIR_TEST_BROKER_LOGS") else {
        return Stdio::null();
    };
    let path = PathBuf::from(folder).join(format!("tansu-{port}.log"));
    std::fs::File::create(&path).map_or_else(|_| Stdio::null(), Stdio::from)
}

/// Starts librdkafka's in-process mock cluster with one broker.
pub fn mock_cluster() -> Broker {
    let mock = MockCluster::new(1).expect("starting the mock cluster");
    Broker {
        bootstrap: mock.bootstrap_servers(),
        processes: Vec::new(),
        client_options: Vec::new(),
        _mock: Some(mock),
    }
}

/// A TCP port nothing listens on now, on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

impl Broker {
    /// A broker that is already running at `bootstrap` (e.g. `KAFKA_BOOTSTRAP_SERVERS`); left running.
    pub fn external(bootstrap: &str) -> Broker {
        Broker {
            bootstrap: bootstrap.to_string(),
            processes: Vec::new(),
            client_options: Vec::new(),
            _mock: None,
        }
    }

    /// A client configuration for this broker: `bootstrap.servers` and the options it demands.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = weir::internal::demo::client_config(&self.bootstrap);
        for (key, value) in &self.client_options {
            config.set(key, value);
        }
        config
    }

    /// Stops `process` (a front in front of the broker) with the broker.
    pub fn keep_running(&mut self, process: Child) {
        self.processes.push(process);
    }

    /// The in-process mock cluster, for fault injection (`broker_down`, `request_errors`).
    pub fn mock(&self) -> Option<&MockCluster<'static, DefaultProducerContext>> {
        self._mock.as_ref()
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.try_create_topic(name, partitions)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Creates a topic with `partitions` partitions, or says why it could not (e.g. it exists).
    pub fn try_create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Some(mock) = &self._mock {
            return mock
                .create_topic(name, partitions, 1)
                .with_context(|| format!("creating the mock topic {name}"));
        }
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .context("creating an admin client")?;
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = futures_executor::block_on(admin.create_topics([&topic], &options))
            .with_context(|| format!("creating topic {name} on {}", self.bootstrap))?;
        for result in results {
            result.map_err(|(topic, code)| {
                anyhow::anyhow!("creating topic {topic} on {}: {code}", self.bootstrap)
            })?;
        }
        Ok(())
    }
}

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The built `.wasm` of a UDF crate in `udfs/` (underscored name, e.g. `json_transactions`).
pub fn udf_module(name: &str) -> PathBuf {
    let path = workspace()
        .join("target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the UDFs first with `cargo build --release --target wasm32-wasip1 --workspace --exclude weir --exclude weir-tests`",
        path.display()
    );
    path
}

/// A number from the environment (for measurement and long runs, e.g. `WEIR_N`), or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The path of this workspace's release `weir` binary.
pub fn weir_binary() -> PathBuf {
    workspace().join("target/release/weir")
}

/// The `weir` binary of this workspace (`cargo build --release --bin weir` first).
pub fn weir_command() -> std::process::Command {
    let path = weir_binary();
    assert!(
        path.exists(),
        "{} is missing: build with `cargo build --release --bin weir`",
        path.display()
    );
    std::process::Command::new(path)
}

/// A fresh folder for one test's files.
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("creating a scratch folder");
    dir
}

/// Writes a WebAssembly module from WAT text into `dir` and returns its path.
pub fn wat_module(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let bytes = wat::parse_str(wat).unwrap_or_else(|e| panic!("WAT of {name}: {e}"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).expect("writing a module");
    path
}

/// Runs `command` (a `weir` invocation), asserts that it succeeded (the failure message carries `what`, its
/// stdout and its stderr), and returns its stdout.
pub fn successful_stdout(command: &mut std::process::Command, what: &str) -> String {
    let output = command.output().expect("starting the command");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Parses pipeline TOML as if it were the file `dir/pipeline.toml`, with `${BROKER}` set to `bootstrap`.
pub fn pipeline_spec(
    dir: &Path,
    bootstrap: &str,
    toml: &str,
) -> Result<weir::PipelineSpec, weir::config::ConfigError> {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, toml).expect("writing the pipeline file");
    let file = path.display().to_string();
    weir::config::parse(toml, &file, dir, "test", |name| match name {
        "BROKER" => Some(bootstrap.to_string()),
        _ => std::env::var(name).ok(),
    })
}

/// Plans and runs a bounded pipeline to its end.
pub async fn run_pipeline(spec: weir::PipelineSpec) -> anyhow::Result<weir::RunSummary> {
    let pipeline = weir::Pipeline::new(spec)?;
    tokio::time::timeout(
        Duration::from_secs(300),
        pipeline.run(std::future::pending()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the pipeline did not finish within 300 s"))?
}

/// The values of `records` as UTF-8 strings.
pub fn values(records: &[ReadRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// A WAT transform that echoes its input, with hooks to misbehave. `process_body` runs first inside
/// `weir_process` (params `$ptr $len $ret`); it may `return` a status itself.
pub fn echo_transform_wat(abi_export: &str, kind: i32, process_body: &str) -> String {
    format!(
        r#"(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "{abi_export}") (result i32) (i32.const 0))
  (func (export "weir_kind") (result i32) (i32.const {kind}))
  (func $alloc (export "weir_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then (return (i32.const 0))))
        (br $grow)))
    (local.get $p))
  (func (export "weir_free") (param i32 i32))
  ;; init: the output schema is the input schema
  (func (export "weir_init") (param $cp i32) (param $cl i32) (param $sp i32) (param $sl i32) (param $ret i32) (result i32)
    (local $out i32)
    (local.set $out (call $alloc (local.get $sl)))
    (memory.copy (local.get $out) (local.get $sp) (local.get $sl))
    (i32.store (local.get $ret) (local.get $out))
    (i32.store offset=4 (local.get $ret) (local.get $sl))
    (i32.const 0))
  ;; process: envelope = len | input IPC | 0 row errors
  (func (export "weir_process") (param $ptr i32) (param $len i32) (param $ret i32) (result i32)
    (local $out i32)
    {process_body}
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 8))))
    (i32.store (local.get $out) (local.get $len))
    (memory.copy (i32.add (local.get $out) (i32.const 4)) (local.get $ptr) (local.get $len))
    (i32.store (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $len)) (i32.const 0))
    (i32.store (local.get $ret) (local.get $out))
    (i32.store offset=4 (local.get $ret) (i32.add (local.get $len) (i32.const 8)))
    (i32.const 0))
  (data (i32.const 512) "the guest says no")
)"#
    )
}

/// Produces `values` to one partition, each with the given headers; waits for acknowledgements.
pub fn produce_to(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    values: &[String],
    headers: &[(&str, Option<&str>)],
) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::BaseRecord;
    let mut producer = weir::internal::CheckedProducer::new(
        ClientConfig::new().set("bootstrap.servers", bootstrap),
        &format!("the test's records for {topic}-{partition}"),
    )
    .unwrap();
    for value in values {
        let mut record = BaseRecord::to(topic)
            .partition(partition)
            .key(value.as_str())
            .payload(value.as_str());
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new();
            for (key, value) in headers {
                owned = owned.insert(Header { key, value: *value });
            }
            record = record.headers(owned);
        }
        producer.send(record).unwrap();
    }
    producer.finish(Duration::from_secs(30)).unwrap();
}

/// Parses `examples/<path>` as the `weir` binary would, with `KAFKA_BOOTSTRAP_SERVERS` set to `bootstrap`.
pub fn example_spec(path: &str, bootstrap: &str) -> weir::PipelineSpec {
    let path = workspace().join("examples").join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    weir::config::parse(
        &text,
        &path.display().to_string(),
        path.parent().unwrap(),
        "example",
        |name| (name == "KAFKA_BOOTSTRAP_SERVERS").then(|| bootstrap.to_string()),
    )
    .unwrap()
}

/// The text of `examples/<path>` with each `(from, to)` edit applied and the modules' relative paths made
/// absolute, for a variant of an example written elsewhere. Panics if the example no longer contains an
/// edit's `from`, so a changed example cannot silently produce a different variant.
pub fn example_variant(path: &str, edits: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(workspace().join("examples").join(path))
        .unwrap_or_else(|e| panic!("reading examples/{path}: {e}"));
    let modules = (
        "\"../../target/",
        format!("\"{}/target/", workspace().display()),
    );
    for (from, to) in edits {
        assert!(text.contains(from), "examples/{path} has no {from:?}");
        text = text.replace(from, to);
    }
    // Module paths, where the example has any (an all-SQL one has none).
    text.replace(modules.0, &modules.1)
}
