//! A `weir run` process watched through its JSON log lines and its progress lines: when each log line
//! arrived (a partition assigned, a restore finished), how many input rows its batches reported, and its
//! CPU time.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use crate::footprint::cpu_time;

/// A JSON log line's fields, with when it was read.
pub(super) type LogLine = (Instant, serde_json::Map<String, Value>);

/// A running `weir run` whose JSON log lines are copied to a file and kept, with when each arrived.
pub(super) struct Instance {
    child: Child,
    log: PathBuf,
    /// CPU time at the last look, kept because /proc forgets a process once it is reaped.
    cpu: Duration,
    /// Input rows of the batches it reported.
    input_rows: Arc<AtomicU64>,
    events: Arc<Mutex<Vec<LogLine>>>,
}

impl Instance {
    pub(super) fn start(
        weir: &Path,
        pipeline: &Path,
        bootstrap: &str,
        log: &Path,
    ) -> anyhow::Result<Instance> {
        let mut child = std::process::Command::new(weir)
            .args(["--log-format", "json", "run", "--progress", "json"])
            .arg(pipeline)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("WEIR_LOG", "warn,weir::source=info,weir::pipeline=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} run {}", weir.display(), pipeline.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let input_rows = Arc::new(AtomicU64::new(0));
        let (stdout, counted) = (
            child.stdout.take().expect("stdout is piped"),
            input_rows.clone(),
        );
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Progress {
                    num_input_rows: u64,
                }
                if let Ok(progress) = serde_json::from_str::<Progress>(&line) {
                    counted.fetch_add(progress.num_input_rows, Ordering::Relaxed);
                }
            }
        });
        let mut file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let into = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let at = Instant::now();
                let _ = writeln!(file, "{line}");
                let fields = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|mut line| line.get_mut("fields").map(Value::take));
                if let Some(Value::Object(fields)) = fields {
                    into.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((at, fields));
                }
            }
        });
        Ok(Instance {
            child,
            log: log.to_path_buf(),
            cpu: Duration::ZERO,
            input_rows,
            events,
        })
    }

    pub(super) fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Its CPU time so far (as last seen, once it has exited).
    pub(super) fn cpu(&mut self) -> Duration {
        self.cpu = self.cpu.max(cpu_time(self.pid()));
        self.cpu
    }

    /// The first log line since `since` whose message starts with `message`: when, and its fields.
    pub(super) fn event(&self, message: &str, since: Instant) -> Option<LogLine> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events
            .iter()
            .find(|(at, fields)| {
                *at >= since
                    && fields
                        .get("message")
                        .and_then(Value::as_str)
                        .is_some_and(|m| m.starts_with(message))
            })
            .cloned()
    }

    /// Waits for the log line `message` (since `since`), for at most `timeout`.
    pub(super) fn wait_for(
        &self,
        message: &str,
        since: Instant,
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Map<String, Value>> {
        while since.elapsed() < timeout {
            if let Some((_, fields)) = self.event(message, since) {
                return Ok(fields);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        anyhow::bail!(
            "no \"{message}\" log line within {timeout:?}; see {}",
            self.log.display()
        )
    }

    /// Fails with the log's end if the process has failed (a bounded run's success is its end).
    pub(super) fn check_running(&mut self) -> anyhow::Result<()> {
        self.cpu();
        if let Some(status) = self.child.try_wait()?.filter(|s| !s.success()) {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            anyhow::bail!(
                "an instance failed ({status}) before the alerts were complete; the end of {}:\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Waits until its batches have reported `records` input rows, for at most `timeout`.
    pub(super) fn wait_for_input(&mut self, records: u64, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.input_rows.load(Ordering::Relaxed) < records {
            self.check_running()?;
            anyhow::ensure!(
                started.elapsed() < timeout,
                "{} of {records} records processed after {timeout:?}; see {}",
                self.input_rows.load(Ordering::Relaxed),
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Sends `signal` and waits for the exit (SIGKILL after 60 s).
    pub(super) fn stop(mut self, signal: i32) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // SAFETY: signalling our own child, not yet reaped.
        unsafe { libc::kill(self.pid(), signal) };
        let sent = Instant::now();
        while self.child.try_wait()?.is_none() {
            if sent.elapsed() > Duration::from_secs(60) {
                self.child.kill()?;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}
