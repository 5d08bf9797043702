//! The suite's results: every run as a [`Sample`], the medians per configuration, and the tables printed
//! and written as markdown (`results.md`) and CSV (`runs.csv`, `latency.csv`).

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::fetch_wait::PartitionWait;
use crate::latency::Latency;
use crate::measure::{Exactness, RunMeasure};

/// The name of the consume-only configuration.
pub const CEILING: &str = "consume-only (rdkafka, no processing)";

/// One run of one configuration.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The configuration's name.
    pub config: String,
    /// Run number, from 1.
    pub run: usize,
    /// Records read.
    pub records: u64,
    /// Wall time.
    pub wall: Duration,
    /// The pipeline's measure; `None` for the consume-only ceiling.
    pub pipeline: Option<RunMeasure>,
}

impl Sample {
    /// Records per second of wall time.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }
}

/// The median of `values` (the lower middle one for an even count, so it is always a measured value).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Per configuration, in first-seen order: its samples sorted by records/s, and the median one.
pub fn by_config(samples: &[Sample]) -> Vec<(&str, Vec<&Sample>)> {
    let mut configs: Vec<(&str, Vec<&Sample>)> = Vec::new();
    for sample in samples {
        match configs.iter_mut().find(|(name, _)| *name == sample.config) {
            Some((_, list)) => list.push(sample),
            None => configs.push((&sample.config, vec![sample])),
        }
    }
    for (_, list) in &mut configs {
        list.sort_by(|a, b| a.records_per_second().total_cmp(&b.records_per_second()));
    }
    configs
}

/// The median sample of a sorted list (the lower middle one).
pub fn median_sample<'a>(sorted: &[&'a Sample]) -> &'a Sample {
    sorted[(sorted.len() - 1) / 2]
}

/// What the suite ran on, for the report's header.
pub struct Setting {
    /// Transactions per run.
    pub n: u64,
    /// Runs per configuration.
    pub runs: usize,
    /// The broker, as a sentence.
    pub broker: String,
    /// The commit measured.
    pub commit: String,
}

/// The markdown report: throughput, stage breakdown, latency.
pub fn markdown(setting: &Setting, samples: &[Sample], latency: &[Latency]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# fraud-window, {} transactions, median of {} runs\n\n{}; commit {}; {} cores.\n",
        setting.n,
        setting.runs,
        setting.broker,
        setting.commit,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let configs = by_config(samples);
    let ceiling = configs
        .iter()
        .find(|(name, _)| *name == CEILING)
        .map(|(_, list)| median_sample(list).records_per_second());
    out.push_str(
        "| configuration | runs (records/s) | median records/s | of consume-only | alerts | peak RSS (MiB) | CPU (s) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (name, list) in &configs {
        let runs: Vec<String> = list
            .iter()
            .map(|s| thousands(s.records_per_second()))
            .collect();
        let mid = median_sample(list);
        let share = match ceiling {
            Some(c) if *name != CEILING => format!("{:.0}%", 100.0 * mid.records_per_second() / c),
            _ => "-".into(),
        };
        let (alerts, rss, cpu) = match &mid.pipeline {
            Some(p) => {
                let exact = list
                    .iter()
                    .all(|s| s.pipeline.as_ref().is_some_and(|p| p.exactness.is_exact()));
                let alerts = if exact {
                    format!("exact, every run ({})", p.exactness.expected)
                } else {
                    let wrong: Vec<String> = list
                        .iter()
                        .filter_map(|s| s.pipeline.as_ref())
                        .filter(|p| !p.exactness.is_exact())
                        .map(|p| p.exactness.to_string())
                        .collect();
                    wrong.join("; ")
                };
                let mut rss: Vec<f64> = list
                    .iter()
                    .filter_map(|s| s.pipeline.as_ref())
                    .map(mib)
                    .collect();
                let mut cpu: Vec<f64> = list
                    .iter()
                    .filter_map(|s| s.pipeline.as_ref())
                    .map(cpu_seconds)
                    .collect();
                (
                    alerts,
                    format!("{:.0}", median(&mut rss)),
                    format!("{:.2}", median(&mut cpu)),
                )
            }
            None => ("n/a".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {name} | {} | **{}** | {share} | {alerts} | {rss} | {cpu} |",
            runs.join(" · "),
            thousands(mid.records_per_second())
        );
    }
    out.push_str(
        "\nWhere the median run's wall time went (from the progress lines, as shares of the wall time; \
         decode and UDF split the parallel processing time by their thread time. The next batch is read, and \
         the previous one written, while a batch is processed, so the shares can add up to more than 100%; \
         \"other\" is what is left, start-up above all):\n\n\
         | configuration | poll | decode | UDF | window/state | produce | checkpoint | other | batches |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, list) in &configs {
        let mid = median_sample(list);
        let Some(p) = &mid.pipeline else { continue };
        let shares: Vec<String> = p
            .stages
            .shares_of(p.wall)
            .iter()
            .map(|(_, pct)| format!("{pct:.0}%"))
            .collect();
        let _ = writeln!(out, "| {name} | {} | {} |", shares.join(" | "), p.batches);
    }
    if !latency.is_empty() {
        out.push_str(
            "\nLatency at a fixed input rate: from the moment a window could close (its end plus the 5 s \
             watermark delay, in the generator's send time) to its alert being readable:\n\n\
             | configuration | rate (records/s) | transactions | alerts timed | p50 | p99 | max | slowest window ends at | alerts | peak RSS (MiB) |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for l in latency {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} ms | {} ms | {} ms | {} | {} | {:.0} |",
                l.variant,
                thousands(l.rate as f64),
                thousands(l.records as f64),
                l.measured,
                l.p50.as_millis(),
                l.p99.as_millis(),
                l.max.as_millis(),
                l.slowest_window_s
                    .map_or("-".into(), |s| format!("{s:.0} s of event time")),
                exactness_word(&l.exactness),
                l.peak_rss_kib as f64 / 1024.0
            );
        }
        out.push_str(
            "\nWhat the broker made a bare consumer beside the pipeline wait, from each record's produce \
             timestamp to its poll (src/fetch_wait.rs): when it is as late as the alerts, the broker is \
             the delay.\n\n\
             | configuration | partition | records | p50 | p99 | max | largest gap between receipts |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for l in latency {
            for w in &l.fetch_waits {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} ms | {} ms | {} ms | {} ms |",
                    l.variant,
                    w.partition,
                    thousands(w.records as f64),
                    w.p50.as_millis(),
                    w.p99.as_millis(),
                    w.max.as_millis(),
                    w.largest_gap.as_millis()
                );
            }
        }
    }
    out
}

/// One partition's fetch waits in a line, for the progress output.
pub fn fetch_wait_words(wait: &PartitionWait) -> String {
    format!(
        "a bare consumer's wait on partition {}: p50 {} ms, p99 {} ms, max {} ms over {} records; largest gap between receipts {} ms",
        wait.partition,
        wait.p50.as_millis(),
        wait.p99.as_millis(),
        wait.max.as_millis(),
        wait.records,
        wait.largest_gap.as_millis()
    )
}

fn exactness_word(e: &Exactness) -> String {
    if e.is_exact() {
        "exact".into()
    } else {
        e.to_string()
    }
}

fn mib(p: &RunMeasure) -> f64 {
    p.peak_rss_kib as f64 / 1024.0
}

fn cpu_seconds(p: &RunMeasure) -> f64 {
    (p.cpu_user + p.cpu_system).as_secs_f64()
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Every run as a CSV line.
pub fn runs_csv(samples: &[Sample]) -> String {
    let mut out = String::from(
        "configuration,run,records,wall_s,records_per_s,exact,alerts_read,exit_s,peak_rss_mib,cpu_user_s,cpu_system_s,batches,\
         poll_pct,decode_pct,udf_pct,window_state_pct,produce_pct,checkpoint_pct,other_pct\n",
    );
    for s in samples {
        let _ = write!(
            out,
            "{},{},{},{:.3},{:.0}",
            s.config,
            s.run,
            s.records,
            s.wall.as_secs_f64(),
            s.records_per_second()
        );
        match &s.pipeline {
            Some(p) => {
                let _ = write!(
                    out,
                    ",{},{},{:.3},{:.1},{:.3},{:.3},{}",
                    p.exactness.is_exact(),
                    p.exactness.read,
                    p.exit.as_secs_f64(),
                    mib(p),
                    p.cpu_user.as_secs_f64(),
                    p.cpu_system.as_secs_f64(),
                    p.batches
                );
                for (_, pct) in p.stages.shares_of(p.wall) {
                    let _ = write!(out, ",{pct:.1}");
                }
            }
            None => out.push_str(",,,,,,,,,,,,,,"),
        }
        out.push('\n');
    }
    out
}

/// The latency runs as CSV.
pub fn latency_csv(latency: &[Latency]) -> String {
    let mut out = String::from(
        "configuration,rate,records,alerts_timed,p50_ms,p99_ms,max_ms,slowest_window_end_s,exact,peak_rss_mib\n",
    );
    for l in latency {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{:.1}",
            l.variant,
            l.rate,
            l.records,
            l.measured,
            l.p50.as_millis(),
            l.p99.as_millis(),
            l.max.as_millis(),
            l.slowest_window_s
                .map_or(String::new(), |s| format!("{s:.0}")),
            l.exactness.is_exact(),
            l.peak_rss_kib as f64 / 1024.0
        );
    }
    out
}

/// Writes `results.md`, `runs.csv` and `latency.csv` to `dir`.
pub fn write_files(
    dir: &Path,
    markdown: &str,
    samples: &[Sample],
    latency: &[Latency],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in [
        ("results.md", markdown.to_string()),
        ("runs.csv", runs_csv(samples)),
        ("latency.csv", latency_csv(latency)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_a_measured_value() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(median(&mut [5.0]), 5.0);
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(1_234_567.6), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }

    #[test]
    fn samples_group_by_configuration_sorted_by_throughput() {
        let sample = |config: &str, wall_ms| Sample {
            config: config.to_string(),
            run: 1,
            records: 1000,
            wall: Duration::from_millis(wall_ms),
            pipeline: None,
        };
        let samples = [
            sample("a", 10),
            sample("b", 5),
            sample("a", 20),
            sample("a", 40),
        ];
        let configs = by_config(&samples);
        assert_eq!(
            configs.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(median_sample(&configs[0].1).wall, Duration::from_millis(20));
        let csv = runs_csv(&samples);
        assert_eq!(csv.lines().count(), 5);
        assert!(csv
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("a,1,1000,0.010,100000,"));
    }
}
