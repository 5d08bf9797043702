//! The soak: the reference pipeline runs unbounded while the generator writes a long input at a fixed
//! rate, and the pipeline's resident memory and checkpoint folder are sampled every second. A stream
//! processor runs for months, so both must reach a plateau and stay there: the check is that the peak RSS
//! of the run's last quarter is within 10% of its second quarter's, and that the checkpoint folder stays
//! under a bound, with every alert exact.

use std::fmt::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use plotters::prelude::*;

use crate::environment::{broker, check_built, topic_prefix};
use crate::footprint::{peak_rss_between, Footprint, Sampler};
use crate::generator::{generate, Pace};
use crate::latency::wait_until_ready;
use crate::measure::{AlertWatch, Ending, Exactness, Expected, Run};
use crate::report::thousands;
use crate::variant::{Variant, VARIANTS};

/// The most the last quarter's peak RSS may exceed the second quarter's.
pub const FLAT_TOLERANCE: f64 = 0.10;

/// The bound on the checkpoint folder, bytes (with the reference workload's small open state).
pub const CHECKPOINT_BOUND: u64 = 50_000_000;

/// How often the footprint is sampled.
const EVERY: Duration = Duration::from_secs(1);

/// What one soak run showed.
pub struct Soak {
    /// The configuration.
    pub variant: &'static str,
    /// Transactions written.
    pub records: u64,
    /// Records per second written.
    pub rate: u64,
    /// The footprint over time.
    pub samples: Vec<Footprint>,
    /// The alert check.
    pub exactness: Exactness,
}

impl Soak {
    /// The run's duration as sampled.
    fn length(&self) -> Duration {
        self.samples.last().map_or(Duration::ZERO, |s| s.at)
    }

    /// Peak RSS (KiB) in quarter `q` (1 to 4) of the run.
    pub fn quarter_peak(&self, q: u32) -> u64 {
        let quarter = self.length() / 4;
        peak_rss_between(&self.samples, quarter * (q - 1), quarter * q + EVERY)
    }

    /// The largest checkpoint folder seen, bytes.
    pub fn checkpoint_peak(&self) -> u64 {
        self.samples
            .iter()
            .map(|s| s.checkpoint_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Whether memory stayed flat: the last quarter's peak within [`FLAT_TOLERANCE`] of the second's.
    pub fn is_flat(&self) -> bool {
        self.quarter_peak(4) as f64 <= self.quarter_peak(2) as f64 * (1.0 + FLAT_TOLERANCE)
    }

    /// Whether the run passed: exact, flat, and the checkpoint under [`CHECKPOINT_BOUND`].
    pub fn passed(&self) -> bool {
        self.exactness.is_exact() && self.is_flat() && self.checkpoint_peak() <= CHECKPOINT_BOUND
    }
}

/// Runs `variant` unbounded on `input` (empty, 4 partitions) while writing `n` transactions to it at
/// `rate` per second; alerts go to `alerts` (one partition). Files go to `dir`.
pub fn soak(
    bootstrap: &str,
    variant: &Variant,
    (input, alerts): (&str, &str),
    n: u64,
    rate: u64,
    dir: &Path,
) -> anyhow::Result<Soak> {
    let pipeline = variant.write_pipeline(dir, input, alerts, false)?;
    let checkpoint = variant.delivery.map(|_| dir.join("checkpoint"));
    let sampler = Mutex::new(Sampler::new(EVERY, checkpoint));
    let expected = Expected::fraud_window(n);
    let log = dir.join("weir.log");
    let watch = AlertWatch::start(bootstrap, alerts, Duration::from_millis(50))?;
    let run = std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            Run {
                weir: &weir_tests::weir_binary(),
                pipeline: &pipeline,
                bootstrap,
                expected: &expected,
                records: n,
                ending: Ending::Terminate,
                // Three times the input's duration: tansu slows as it holds more (50M records at
                // 80,000/s took the pipeline ~2.1 times the generator's 626 s).
                timeout: Duration::from_secs(120) + Duration::from_secs(3 * n / rate.max(1)),
                log: &log,
                // "source ready" in the log tells when to start writing (`wait_until_ready`).
                env: &[("WEIR_LOG", "warn,weir::pipeline=info")],
                footprint: Some(&sampler),
            }
            .measure(watch)
        });
        let generated = wait_until_ready(&log, &running)
            .and_then(|()| generate(bootstrap, input, n, Pace::Rate(rate)));
        let run = running
            .join()
            .map_err(|_| anyhow::anyhow!("the soaked run panicked"))?;
        anyhow::Ok((run?, generated?))
    });
    let (run, generated) = run.with_context(|| format!("the soak of {}", variant.name))?;
    println!(
        "  wrote {} records in {:.0} s ({:.0} records/s)",
        generated.records,
        generated.elapsed.as_secs_f64(),
        generated.records as f64 / generated.elapsed.as_secs_f64()
    );
    let samples = sampler
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .samples;
    Ok(Soak {
        variant: variant.name,
        records: n,
        rate,
        samples,
        exactness: run.exactness,
    })
}

/// The soak's table, in markdown.
pub fn markdown(soaks: &[Soak]) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| configuration | records | rate/s | minutes | peak RSS by quarter (MiB) | last vs second | checkpoint peak | alerts | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for soak in soaks {
        let quarters: Vec<String> = (1..=4)
            .map(|q| format!("{:.0}", mib(soak.quarter_peak(q))))
            .collect();
        let change = soak.quarter_peak(4) as f64 / soak.quarter_peak(2).max(1) as f64 - 1.0;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {:+.1}% | {:.1} MB | {} | {} |",
            soak.variant,
            crate::report::thousands(soak.records as f64),
            crate::report::thousands(soak.rate as f64),
            soak.length().as_secs_f64() / 60.0,
            quarters.join(" / "),
            100.0 * change,
            soak.checkpoint_peak() as f64 / 1e6,
            soak.exactness,
            if soak.passed() { "flat" } else { "NOT flat" }
        );
    }
    out
}

/// The samples as CSV: configuration, seconds, RSS KiB, checkpoint bytes.
pub fn csv(soaks: &[Soak]) -> String {
    let mut out = String::from("configuration,seconds,rss_kib,checkpoint_bytes\n");
    for soak in soaks {
        for s in &soak.samples {
            let _ = writeln!(
                out,
                "{},{:.1},{},{}",
                soak.variant,
                s.at.as_secs_f64(),
                s.rss_kib,
                s.checkpoint_bytes
            );
        }
    }
    out
}

/// Draws RSS (above) and the checkpoint folder (below) over time, one line per configuration, to `path`.
pub fn chart(path: &Path, title: &str, soaks: &[Soak]) -> anyhow::Result<()> {
    crate::plot::register_font()?;
    let root = BitMapBackend::new(path, (1100, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (upper, lower) = root.split_vertically(360);
    let seconds = soaks
        .iter()
        .map(|s| s.length().as_secs_f64())
        .fold(1.0, f64::max);
    let colours = [
        RGBColor(40, 110, 180),
        RGBColor(200, 90, 40),
        RGBColor(60, 150, 60),
    ];
    let series = |pick: &dyn Fn(&Footprint) -> f64| -> Vec<Vec<(f64, f64)>> {
        soaks
            .iter()
            .map(|soak| {
                soak.samples
                    .iter()
                    .map(|s| (s.at.as_secs_f64(), pick(s)))
                    .collect()
            })
            .collect()
    };
    let panels = [
        (
            &upper,
            "resident memory, MiB",
            series(&|s| s.rss_kib as f64 / 1024.0),
        ),
        (
            &lower,
            "checkpoint folder, MB",
            series(&|s| s.checkpoint_bytes as f64 / 1e6),
        ),
    ];
    for (area, label, lines) in panels {
        let top = lines.iter().flatten().map(|(_, v)| *v).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .margin(14)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..seconds, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc(label)
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, (soak, line)) in soaks.iter().zip(lines).enumerate() {
            let colour = colours[i % colours.len()];
            chart
                .draw_series(LineSeries::new(line, colour.stroke_width(2)))?
                .label(soak.variant)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The configurations `weir-bench soak` runs.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum SoakConfiguration {
    /// `wasm exactly-once`.
    ExactlyOnce,
    /// `wasm no checkpoint`.
    NoCheckpoint,
}

impl SoakConfiguration {
    fn variant_name(self) -> &'static str {
        match self {
            SoakConfiguration::ExactlyOnce => "wasm exactly-once",
            SoakConfiguration::NoCheckpoint => "wasm no checkpoint",
        }
    }
}

/// `weir-bench soak`: exactly-once and without a checkpoint, one after the other (or the one asked for),
/// each on a broker of its own; writes soak.md, soak.csv and soak.png to `out`.
pub fn run_soaks(
    n: u64,
    rate: u64,
    out: &std::path::Path,
    exact_only: bool,
    only: Option<SoakConfiguration>,
) -> anyhow::Result<()> {
    let wanted = only.map_or(
        vec![
            SoakConfiguration::ExactlyOnce,
            SoakConfiguration::NoCheckpoint,
        ],
        |one| vec![one],
    );
    let variants: Vec<&Variant> = VARIANTS
        .iter()
        .filter(|v| {
            wanted
                .iter()
                .any(|configuration| configuration.variant_name() == v.name)
        })
        .collect();
    check_built(&variants)?;
    let prefix = topic_prefix("soak")?;
    let mut soaks = Vec::new();
    for variant in variants {
        // A broker of its own per configuration (unless one is given): tansu keeps everything in memory,
        // ~7 GB for 50,000,000 records.
        let (broker, broker_words) = broker();
        println!(
            "soak {}: {n} transactions at {rate} records/s on {broker_words}",
            variant.name
        );
        let topics = (
            format!("{prefix}-{}-tx", variant.slug()),
            format!("{prefix}-{}-alerts", variant.slug()),
        );
        broker.try_create_topic(&topics.0, weir::internal::workload::PARTITIONS)?;
        broker.try_create_topic(&topics.1, 1)?;
        let dir = weir_tests::scratch_dir();
        let soaked = soak(
            &broker.bootstrap,
            variant,
            (&topics.0, &topics.1),
            n,
            rate,
            &dir,
        )?;
        println!(
            "soak {}: peak RSS by quarter {:.0} / {:.0} / {:.0} / {:.0} MiB, checkpoint peak {:.1} MB, {}",
            variant.name,
            soaked.quarter_peak(1) as f64 / 1024.0,
            soaked.quarter_peak(2) as f64 / 1024.0,
            soaked.quarter_peak(3) as f64 / 1024.0,
            soaked.quarter_peak(4) as f64 / 1024.0,
            soaked.checkpoint_peak() as f64 / 1e6,
            soaked.exactness
        );
        let _ = std::fs::remove_dir_all(&dir);
        soaks.push(soaked);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let table = markdown(&soaks);
    println!("\n{table}");
    std::fs::write(out.join("soak.md"), &table)?;
    std::fs::write(out.join("soak.csv"), csv(&soaks))?;
    let title = format!(
        "fraud-window soak: {} records at {} records/s",
        thousands(n as f64),
        thousands(rate as f64)
    );
    chart(&out.join("soak.png"), &title, &soaks)?;
    println!(
        "written: {0}/soak.md, {0}/soak.csv, {0}/soak.png",
        out.display()
    );
    let failed: Vec<&str> = soaks
        .iter()
        .filter(|s| {
            if exact_only {
                !s.exactness.is_exact()
            } else {
                !s.passed()
            }
        })
        .map(|s| s.variant)
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "the soak failed for: {}",
        failed.join(", ")
    );
    Ok(())
}
