//! The runs of `weir-bench group` on one input: assign mode and 1..=k instances in group mode, interleaved
//! (the order reversed every other run, so drift during the command is shared), then a large state's
//! restore.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use weir_tests::Broker;

use super::report::GroupResults;
use super::{GroupRun, Mode};
use crate::environment::{broker, check_built, git_commit, topic_prefix};
use crate::generator::{generate, Pace};
use crate::measure::Expected;
use crate::report::thousands;
use crate::report::Setting;
use crate::variant::VARIANTS;

/// What every run shares.
pub struct GroupRuns<'a> {
    /// The `weir` binary.
    pub weir: &'a Path,
    /// The broker.
    pub broker: &'a Broker,
    /// Begins every topic name made here.
    pub prefix: &'a str,
    /// The input topic and its records (the workload's `n` transactions and its closing records).
    pub input: (&'a str, u64),
    /// The workload's transactions.
    pub n: u64,
}

impl GroupRuns<'_> {
    /// `runs` rounds of assign mode, 1..=`most` instances and one repartitioning instance, each followed by a
    /// large state's restore.
    pub fn run(&self, runs: usize, most: usize) -> anyhow::Result<GroupResults> {
        let expected = Expected::fraud_window(self.n);
        let mut results = GroupResults {
            runs: Vec::new(),
            large_restores: Vec::new(),
        };
        for run in 1..=runs {
            let mut order: Vec<Mode> = std::iter::once(Mode::Assign)
                .chain((1..=most).map(Mode::Group))
                .chain(std::iter::once(Mode::Repartitioned(1)))
                .collect();
            if run % 2 == 0 {
                order.reverse();
            }
            for mode in order {
                let alerts = format!("{}-alerts-{}", self.prefix, results.runs.len());
                let measure = self
                    .with_run(&alerts, &expected, |group| group.measure(mode))
                    .with_context(|| format!("run {run} of {mode}"))?;
                println!(
                    "run {run}: {mode}: {} records/s ({} from the first partition read), CPU {:.2} s, \
                     restore {:?}, failover {:?}, {}",
                    thousands(measure.records_per_second()),
                    thousands(measure.records_per_second_after_join()),
                    measure.cpu.as_secs_f64(),
                    measure.restore,
                    measure.failover,
                    measure.exactness
                );
                results.runs.push(measure);
            }
            let alerts = format!("{}-large-state-{run}", self.prefix);
            let restore = self
                .with_run(&alerts, &expected, |group| group.restore_at_scale())
                .with_context(|| format!("run {run}'s restore of a large state"))?;
            println!("run {run}: restore of a large state: {restore:?}");
            results.large_restores.push(restore);
        }
        Ok(results)
    }

    /// Runs `measure` on a fresh alerts topic `alerts` and folder; the folder is removed unless it fails.
    fn with_run<T>(
        &self,
        alerts: &str,
        expected: &Expected,
        measure: impl FnOnce(&GroupRun) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.broker.try_create_topic(alerts, 1)?;
        let dir = weir_tests::scratch_dir();
        let measured = measure(&GroupRun {
            weir: self.weir,
            bootstrap: &self.broker.bootstrap,
            input: self.input,
            alerts,
            expected,
            timeout: Duration::from_secs(120 + self.n / 20_000),
            dir: &dir,
        });
        match measured {
            Ok(_) => {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(_) => println!("  its files are kept in {}", dir.display()),
        }
        measured
    }
}

/// `weir-bench group`: assign mode and 1..=`most` group instances, interleaved (the order reversed every
/// other run), on one input of `n` transactions; writes group.md to `out`, and fails unless every run's
/// alerts were exact.
pub fn measure_groups(
    n: u64,
    runs: usize,
    most: usize,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    check_built(&[&VARIANTS[0]])?;
    let weir = weir_tests::weir_binary();
    let (broker, broker_words) = broker();
    let prefix = topic_prefix("group")?;
    let input = format!("{prefix}-tx");
    broker.try_create_topic(&input, weir::internal::workload::PARTITIONS)?;
    let generated = generate(&broker.bootstrap, &input, n, Pace::Fastest)?;
    println!("generated {} records on {broker_words}", generated.records);
    let results = GroupRuns {
        weir: &weir,
        broker: &broker,
        prefix: &prefix,
        input: (&input, generated.records),
        n,
    }
    .run(runs, most)?;
    let setting = Setting {
        n,
        runs,
        broker: broker_words,
        commit: git_commit(),
    };
    let markdown = super::report::markdown(&setting, &results);
    println!("\n{markdown}");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("group.md"), &markdown)?;
    println!("written: {}/group.md", out.display());
    anyhow::ensure!(
        results.all_exact(),
        "some runs did not produce exactly the expected alerts"
    );
    Ok(())
}
