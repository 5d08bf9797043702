//! `weir-bench`: the reference workload `fraud-window` end to end, with one command.
//!
//! `weir-bench suite` starts tansu (or uses `KAFKA_BOOTSTRAP_SERVERS`), writes the workload once, then
//! for each run measures the consume-only ceiling and every pipeline configuration on fresh alert topics,
//! checks every run's alerts exactly, measures latency at a fixed rate, and writes the tables (markdown,
//! CSV) and a chart (PNG). It exits non-zero if any run's alerts were not exact.
//! `weir-bench group` measures 1, 2 and 3 instances sharing a consumer group against one instance, with a
//! restore and a failover. `weir-bench generate` only writes the workload.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir_bench::ceiling::consume_only;
use weir_bench::environment::{broker, check_built, git_commit, topic_prefix};
use weir_bench::generator::{generate, Pace};
use weir_bench::group::measure_groups;
use weir_bench::latency::measure_latency;
use weir_bench::measure::{AlertWatch, Ending, Expected, Run, RunMeasure};
use weir_bench::report::{self, Sample, Setting, CEILING};
use weir_bench::soak::{run_soaks, SoakConfiguration};
use weir_bench::variant::{Variant, VARIANTS};
use weir_tests::Broker;

#[derive(Parser)]
#[command(
    version,
    about = "Weir's end-to-end benchmark on the fraud-window reference workload"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every configuration, checks the alerts exactly, and writes the tables and the chart.
    Suite {
        /// Transactions per run (the spec's N).
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
        /// Runs per configuration; the tables give the median.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Where results.md, runs.csv, latency.csv and throughput.png go.
        #[arg(long, default_value = "target/bench-results")]
        out: PathBuf,
        /// Input rate of the latency run, records/s (0 skips it).
        #[arg(long, default_value_t = 50_000)]
        latency_rate: u64,
        /// Transactions in the latency run.
        #[arg(long, default_value_t = 500_000)]
        latency_n: u64,
        /// Another `weir` binary (e.g. a release build of an earlier commit) to run every configuration
        /// with as well, interleaved with this one in each run, as "<configuration> (baseline)".
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Only these configurations, by name (e.g. `--only "wasm exactly-once" --only "wasm + sql
        /// exactly-once"`); all of them when absent.
        #[arg(long)]
        only: Vec<String>,
    },
    /// Runs the pipeline unbounded while writing a long input at a fixed rate, sampling its memory and
    /// checkpoint folder every second; checks that both stay flat and the alerts exact.
    Soak {
        /// Transactions to write.
        #[arg(long, default_value_t = 50_000_000)]
        n: u64,
        /// Records per second (at 100,000/s tansu's in-memory engine fell behind on 50M records).
        #[arg(long, default_value_t = 80_000)]
        rate: u64,
        /// Where soak.md, soak.csv and soak.png go.
        #[arg(long, default_value = "target/bench-soak")]
        out: PathBuf,
        /// Only check that the alerts are exact (for short runs, too short to show a plateau).
        #[arg(long)]
        exact_only: bool,
        /// Soak one configuration instead of both (each takes ~20 minutes at the defaults).
        #[arg(long, value_enum)]
        only: Option<SoakConfiguration>,
    },
    /// Runs the workload on 1, 2 and 3 instances in group mode and on one in assign mode, interleaved;
    /// measures throughput, CPU, a changelog restore and a failover, and checks the alerts exactly.
    Group {
        /// Transactions per run.
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
        /// Runs per configuration; the table gives the median.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The most instances to run together.
        #[arg(long, default_value_t = 3)]
        instances: usize,
        /// Where group.md goes.
        #[arg(long, default_value = "target/bench-group")]
        out: PathBuf,
    },
    /// Writes the workload to a topic (with 4 partitions: `--create` makes it).
    Generate {
        /// Bootstrap servers.
        #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
        bootstrap: String,
        /// The topic.
        #[arg(long, default_value = "tx")]
        topic: String,
        /// Transactions.
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
        /// Records per second, in real time; as fast as possible when absent.
        #[arg(long)]
        rate: Option<u64>,
        /// Create the topic first, with the workload's 4 partitions.
        #[arg(long)]
        create: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate {
            bootstrap,
            topic,
            n,
            rate,
            create,
        } => {
            if create {
                Broker::external(&bootstrap)
                    .try_create_topic(&topic, weir::internal::workload::PARTITIONS)?;
            }
            let pace = rate.map_or(Pace::Fastest, Pace::Rate);
            let generated = generate(&bootstrap, &topic, n, pace)?;
            println!(
                "wrote {} records to {topic} in {:.2} s",
                generated.records,
                generated.elapsed.as_secs_f64()
            );
            Ok(())
        }
        Command::Suite {
            n,
            runs,
            out,
            latency_rate,
            latency_n,
            baseline,
            only,
        } => suite(
            n,
            runs,
            &out,
            (latency_rate, latency_n),
            baseline.as_deref(),
            &only,
        ),
        Command::Soak {
            n,
            rate,
            out,
            exact_only,
            only,
        } => run_soaks(n, rate, &out, exact_only, only),
        Command::Group {
            n,
            runs,
            instances,
            out,
        } => measure_groups(n, runs, instances, &out),
    }
}

fn suite(
    n: u64,
    runs: usize,
    out: &std::path::Path,
    (latency_rate, latency_n): (u64, u64),
    baseline: Option<&std::path::Path>,
    only: &[String],
) -> anyhow::Result<()> {
    let variants: Vec<&Variant> = VARIANTS
        .iter()
        .filter(|v| only.is_empty() || only.iter().any(|name| v.name == name))
        .collect();
    if let Some(unknown) = only
        .iter()
        .find(|name| VARIANTS.iter().all(|v| v.name != *name))
    {
        let names: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
        anyhow::bail!("--only {unknown:?}: no such configuration; there are {names:?}");
    }
    check_built(&variants)?;
    if let Some(baseline) = baseline {
        anyhow::ensure!(
            baseline.is_file(),
            "--baseline {}: no such file",
            baseline.display()
        );
    }
    let current = weir_tests::weir_binary();
    let (broker, broker_words) = broker();
    let prefix = topic_prefix("bench")?;
    let input = format!("{prefix}-tx");
    broker.try_create_topic(&input, weir::internal::workload::PARTITIONS)?;
    let generated = generate(&broker.bootstrap, &input, n, Pace::Fastest)?;
    println!(
        "generated {} records in {:.2} s ({} records/s) on {broker_words}",
        generated.records,
        generated.elapsed.as_secs_f64(),
        report::thousands(generated.records as f64 / generated.elapsed.as_secs_f64())
    );
    let expected = Expected::fraud_window(n);
    let timeout = Duration::from_secs(120 + n / 50_000);
    let mut samples = Vec::new();
    for run in 1..=runs {
        let (records, wall) = consume_only(
            &broker.bootstrap,
            &input,
            weir::internal::workload::PARTITIONS,
        )?;
        anyhow::ensure!(
            records == generated.records,
            "the consume-only client read {records} records, not {}",
            generated.records
        );
        let sample = Sample {
            config: CEILING.to_string(),
            run,
            records,
            wall,
            pipeline: None,
        };
        println!(
            "run {run}: {CEILING}: {} records/s",
            report::thousands(sample.records_per_second())
        );
        samples.push(sample);
        // With a baseline, the two binaries alternate which goes first, so drift during a run is shared.
        let mut binaries = vec![(current.as_path(), "", "")];
        if let Some(baseline) = baseline {
            binaries.push((baseline, " (baseline)", "-baseline"));
            if run % 2 == 1 {
                binaries.reverse();
            }
        }
        for &variant in &variants {
            for &(weir, label, slug) in &binaries {
                let config = format!("{}{label}", variant.name);
                let measure = measure_run(
                    &broker,
                    (&input, generated.records),
                    (variant, weir),
                    (&expected, timeout),
                    &format!("{prefix}-alerts-{}{slug}-{run}", variant.slug()),
                )
                .with_context(|| format!("run {run} of {config}"))?;
                println!(
                    "run {run}: {config}: {} records/s, {}, peak RSS {:.0} MiB, CPU {:.2} s, {} batches",
                    report::thousands(measure.records_per_second()),
                    measure.exactness,
                    measure.peak_rss_kib as f64 / 1024.0,
                    (measure.cpu_user + measure.cpu_system).as_secs_f64(),
                    measure.batches
                );
                samples.push(Sample {
                    config,
                    run,
                    records: measure.records,
                    wall: measure.wall,
                    pipeline: Some(measure),
                });
            }
        }
    }
    let mut latency = Vec::new();
    if latency_rate > 0 {
        let topics = (
            format!("{prefix}-latency-tx"),
            format!("{prefix}-latency-alerts"),
        );
        broker.try_create_topic(&topics.0, weir::internal::workload::PARTITIONS)?;
        broker.try_create_topic(&topics.1, 1)?;
        let dir = weir_tests::scratch_dir();
        let measured = measure_latency(
            &broker.bootstrap,
            &VARIANTS[0],
            (&topics.0, &topics.1),
            latency_n,
            latency_rate,
            &dir,
        )
        .with_context(|| format!("the latency run of {}", VARIANTS[0].name))?;
        println!(
            "latency at {} records/s: p50 {} ms, p99 {} ms over {} alerts (slowest: the window ending {} s into the workload), {}",
            latency_rate,
            measured.p50.as_millis(),
            measured.p99.as_millis(),
            measured.measured,
            measured.slowest_window_s.map_or("-".into(), |s| format!("{s:.0}")),
            measured.exactness
        );
        for wait in &measured.fetch_waits {
            println!("latency: {}", report::fetch_wait_words(wait));
        }
        latency.push(measured);
    }

    let setting = Setting {
        n,
        runs,
        broker: broker_words,
        commit: match baseline {
            None => git_commit(),
            Some(path) => format!(
                "{}; \"(baseline)\" rows ran {}, interleaved",
                git_commit(),
                path.display()
            ),
        },
    };
    let markdown = report::markdown(&setting, &samples, &latency);
    println!("\n{markdown}");
    report::write_files(out, &markdown, &samples, &latency)?;
    let chart = out.join("throughput.png");
    weir_bench::plot::throughput_chart(
        &chart,
        &format!(
            "fraud-window, {} records, median of {runs}",
            report::thousands(n as f64)
        ),
        &samples,
    )?;
    println!(
        "written: {0}/results.md, {0}/runs.csv, {0}/latency.csv, {1}",
        out.display(),
        chart.display()
    );

    let inexact = samples
        .iter()
        .filter_map(|s| s.pipeline.as_ref())
        .filter(|p| !p.exactness.is_exact())
        .count()
        + latency.iter().filter(|l| !l.exactness.is_exact()).count();
    anyhow::ensure!(
        inexact == 0,
        "{inexact} runs did not produce exactly the expected alerts"
    );
    Ok(())
}

/// One measured run of `variant` with the `weir` binary `weir`, reading `input` (its `records`) and
/// writing to a new topic `alerts`; the run's files are kept when its alerts are not exact.
fn measure_run(
    broker: &Broker,
    (input, records): (&str, u64),
    (variant, weir): (&Variant, &std::path::Path),
    (expected, timeout): (&Expected, Duration),
    alerts: &str,
) -> anyhow::Result<RunMeasure> {
    broker.try_create_topic(alerts, 1)?;
    let bootstrap = broker.bootstrap.as_str();
    let dir = weir_tests::scratch_dir();
    let pipeline = variant.write_pipeline(&dir, input, alerts, true)?;
    let log = dir.join("weir.log");
    let watch = AlertWatch::start(bootstrap, alerts, Duration::from_millis(20))?;
    let measure = Run {
        weir,
        pipeline: &pipeline,
        bootstrap,
        expected,
        records,
        ending: Ending::Exits,
        timeout,
        log: &log,
        env: &[],
        footprint: None,
    }
    .measure(watch)?;
    if measure.exactness.is_exact() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("  its files are kept in {}", dir.display());
    }
    Ok(measure)
}
