//! `weir run`: one pipeline, or several in one process, as Spark runs several queries in one session
//! (one query per sink: to archive raw records and write aggregates from the same topic, give two files).
//! Each keeps its own checkpoint and progress; Ctrl-C or SIGTERM stops all of them after their current
//! batch, and a pipeline that fails stops the others the same way.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::watch;
use weir::progress::{BatchProgress, ErrorCounts, ProgressListener};

use crate::{redacted, ProgressMode};

/// Runs the pipelines of `files` until each reaches its bounded input's end, Ctrl-C or SIGTERM, or one
/// fails; with progress as asked.
pub(crate) async fn run(
    files: &[PathBuf],
    progress: ProgressMode,
    reload: bool,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    if metrics.is_some() && files.len() > 1 {
        anyhow::bail!(
            "--metrics serves one pipeline; with several files, give each its own [metrics] listen"
        );
    }
    let mut pipelines = Vec::with_capacity(files.len());
    for file in files {
        pipelines.push(plan(file, reload, metrics)?);
    }
    let terminal = std::io::stderr().is_terminal();
    // The console sink prints batches on stdout: JSON progress lines there would split its tables.
    let console = pipelines
        .iter()
        .any(|p| matches!(p.plan().spec().sink.target, weir::SinkTarget::Console(_)));
    let (json, human) = match progress {
        ProgressMode::Auto => (!terminal && !console, terminal),
        ProgressMode::Json => (true, false),
        ProgressMode::Human => (false, true),
        ProgressMode::Both => (true, true),
    };
    let (stop, stopped) = watch::channel(false);
    // Ctrl-C or SIGTERM (service managers, `kill`) ends every run after its current batch.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let signals = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        signals.send_replace(true);
    });
    let bars = MultiProgress::new();
    let several = files.len() > 1;
    let runs = pipelines.into_iter().zip(files).map(|(pipeline, file)| {
        let name = several.then(|| pipeline.plan().spec().name.clone());
        let mut listener = Printer::new(json, human.then_some(&bars), name);
        let (stop, mut stopped) = (stop.clone(), stopped.clone());
        async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let ran = pipeline
                .run_with_progress(shutdown, &mut listener)
                .await
                .with_context(|| format!("{}: running the pipeline", file.display()));
            listener.finish();
            if ran.is_err() {
                stop.send_replace(true);
            }
            ran.map(|summary| (file, summary))
        }
    });
    let mut failed = None;
    for ran in futures_util::future::join_all(runs).await {
        match ran {
            Ok((file, summary)) => eprintln!(
                "{}done: {} batches, {} records in, {} out, {} dead-lettered, {} dropped",
                if several {
                    format!("{}: ", file.display())
                } else {
                    String::new()
                },
                summary.batches,
                summary.input_rows,
                summary.output_rows,
                summary.errors.dead_lettered,
                summary.errors.deserializer_dropped + summary.errors.transform_dropped
            ),
            Err(error) if failed.is_none() => failed = Some(error),
            Err(error) => eprintln!("error: {}", redacted::redact(&format!("{error:#}"))),
        }
    }
    drop(stopped);
    failed.map_or(Ok(()), Err)
}

/// Loads and plans the pipeline of `file`.
fn plan(
    file: &Path,
    reload: bool,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<weir::Pipeline> {
    let mut spec = weir::config::load(file)?;
    redacted::hide(&spec.secrets);
    if let Some(listen) = metrics {
        spec.metrics = Some(weir::MetricsSpec::new(listen));
    }
    Ok(weir::Pipeline::new(spec)
        .with_context(|| format!("{}: planning the pipeline", file.display()))?
        .reload_modules(reload))
}

/// Prints a pipeline's progress as JSON lines and/or a one-line status.
struct Printer {
    json: bool,
    bar: Option<ProgressBar>,
    /// With several pipelines, the status line starts with the pipeline's name.
    name: Option<String>,
    total_rows: u64,
    errors: ErrorCounts,
}

impl Printer {
    fn new(json: bool, bars: Option<&MultiProgress>, name: Option<String>) -> Self {
        let bar = bars.map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"),
            );
            bar
        });
        Printer {
            json,
            bar,
            name,
            total_rows: 0,
            errors: ErrorCounts::default(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

impl ProgressListener for Printer {
    fn on_progress(&mut self, progress: &BatchProgress) {
        self.total_rows += progress.num_input_rows;
        self.errors.add(&progress.errors);
        if self.json {
            if let Ok(line) = serde_json::to_string(progress) {
                println!("{}", redacted::redact(&line));
            }
        }
        if let Some(bar) = &self.bar {
            let name = self
                .name
                .as_deref()
                .map(|n| format!("{n}: "))
                .unwrap_or_default();
            bar.set_message(format!(
                "{name}batch {} | {} records | {:.0} records/s | {} out | dead-lettered {} dropped {}",
                progress.batch_id,
                self.total_rows,
                progress.processed_rows_per_second,
                progress.sink.num_output_rows,
                self.errors.dead_lettered,
                self.errors.deserializer_dropped + self.errors.transform_dropped
            ));
            bar.tick();
        }
    }
}
