//! The table of `weir-bench group`: medians of the single-instance baseline and of 1, 2 and 3 instances in
//! group mode, with the changelog's cost, the restore rate and the failover time.

use std::fmt::Write;

use super::{GroupMeasure, Mode, Restore, SESSION_TIMEOUT_MS};
use crate::report::{median, thousands, Setting};

/// Every run of one `weir-bench group`.
pub struct GroupResults {
    /// The runs, in the order they ran.
    pub runs: Vec<GroupMeasure>,
    /// The restores of a large state ([`crate::group::GroupRun::restore_at_scale`]).
    pub large_restores: Vec<Restore>,
}

impl GroupResults {
    /// Whether every run's alerts were exact.
    pub fn all_exact(&self) -> bool {
        self.runs.iter().all(|m| m.exactness.is_exact())
    }

    fn with(&self, mode: Mode) -> impl Iterator<Item = &GroupMeasure> {
        self.runs.iter().filter(move |m| m.mode == mode)
    }

    /// The modes run, assign mode first, then by instances.
    fn modes(&self) -> Vec<Mode> {
        let mut modes: Vec<Mode> = self.runs.iter().map(|m| m.mode).collect();
        modes.sort_unstable();
        modes.dedup();
        modes
    }
}

/// The markdown report.
pub fn markdown(setting: &Setting, results: &GroupResults) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = format!(
        "## Instances sharing a consumer group (`weir-bench group`)\n\n\
         {} transactions, {} runs (configurations interleaved), medians; {} cores; {}; commit {}. \
         Every instance runs on this one machine, so more instances share the same cores.\n\n\
         | configuration | records/s from start | records/s from the first partition read | CPU s per 1M records | alerts |\n\
         |---|---:|---:|---:|---|\n",
        thousands(setting.n as f64),
        setting.runs,
        cores,
        setting.broker,
        setting.commit
    );
    for mode in results.modes() {
        let runs: Vec<&GroupMeasure> = results.with(mode).collect();
        let _ = writeln!(
            out,
            "| {mode} | {} | {} | {:.2} | {} |",
            thousands(median_of(runs.iter().map(|m| m.records_per_second()))),
            thousands(median_of(
                runs.iter().map(|m| m.records_per_second_after_join())
            )),
            median_of(runs.iter().map(|m| m.cpu_per_million())),
            exact_count(runs.iter().map(|m| m.exactness.is_exact()))
        );
    }
    // One instance in group mode writes a changelog; assign mode writes none.
    let changelog = "changelog's cost, one instance in group mode against assign mode";
    cost(&mut out, results, (Mode::Group(1), Mode::Assign), changelog);
    let repartition = "repartition's cost, one instance repartitioning against one with the input \
                       declared partitioned by user";
    cost(
        &mut out,
        results,
        (Mode::Repartitioned(1), Mode::Group(1)),
        repartition,
    );
    let after_run: Vec<Restore> = results.runs.iter().filter_map(|m| m.restore).collect();
    restores(
        &mut out,
        "an instance started after the single member stopped",
        &after_run,
    );
    restores(
        &mut out,
        "a large state (every transaction counted per user in 20-minute windows, 20,000-record batches)",
        &results.large_restores,
    );
    failovers(&mut out, results);
    out
}

/// The cost of `what`: the runs of `mode` against those of `base` (medians), when there are both.
fn cost(out: &mut String, results: &GroupResults, (mode, base): (Mode, Mode), what: &str) {
    let (base, runs): (Vec<_>, Vec<_>) =
        (results.with(base).collect(), results.with(mode).collect());
    if base.is_empty() || runs.is_empty() {
        return;
    }
    let rate =
        |runs: &[&GroupMeasure]| median_of(runs.iter().map(|m| m.records_per_second_after_join()));
    let cpu = |runs: &[&GroupMeasure]| median_of(runs.iter().map(|m| m.cpu_per_million()));
    let _ = writeln!(
        out,
        "\nThe {what} (medians): throughput from the first partition read {:+.0}%, CPU per record {:+.0}%.",
        (rate(&runs) / rate(&base) - 1.0) * 100.0,
        (cpu(&runs) / cpu(&base) - 1.0) * 100.0
    );
}

/// Below this many groups a restore's rates are not reported.
const MEANINGFUL_GROUPS: f64 = 1_000.0;

/// The medians of `restores`, restored by `what`.
fn restores(out: &mut String, what: &str, restores: &[Restore]) {
    if restores.is_empty() {
        return;
    }
    let median_by = |f: fn(&Restore) -> f64| median_of(restores.iter().map(f));
    let groups = median_by(|r| r.groups as f64);
    // Rates of almost nothing say nothing: then the time is the restore's fixed cost.
    let rates = match groups < MEANINGFUL_GROUPS {
        true => "too little state for a rate: the time is the fixed cost".to_string(),
        false => format!(
            "{} groups/s, {:.0} MB/s",
            thousands(median_by(Restore::groups_per_second)),
            median_by(|r| r.bytes as f64 / 1e6 / r.seconds)
        ),
    };
    let _ = writeln!(
        out,
        "\nRestore, {what}: {} partitions rebuilt from the changelog, {} groups from {} records ({:.1} MB) in \
         {:.2} s: {rates} (medians of {}).",
        restores[0].partitions,
        thousands(groups),
        thousands(median_by(|r| r.read as f64)),
        median_by(|r| r.bytes as f64) / 1e6,
        median_by(|r| r.seconds),
        restores.len()
    );
}

fn failovers(out: &mut String, results: &GroupResults) {
    for mode in results.modes() {
        let mut seconds: Vec<f64> = results
            .with(mode)
            .filter_map(|m| m.failover)
            .map(|d| d.as_secs_f64())
            .collect();
        if seconds.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\nFailover, {mode}: {:.1} s from SIGKILL of one to its partitions being assigned to another, \
             their state restored (median of {}; `session.timeout.ms = {SESSION_TIMEOUT_MS}`).",
            median(&mut seconds),
            seconds.len()
        );
    }
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    median(&mut values.collect::<Vec<_>>())
}

fn exact_count(exact: impl Iterator<Item = bool>) -> String {
    let (mut yes, mut all) = (0, 0);
    for e in exact {
        all += 1;
        yes += usize::from(e);
    }
    format!("exact in {yes} of {all}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore(groups: u64) -> Restore {
        Restore {
            partitions: 4,
            read: 100,
            bytes: 2_000_000,
            groups,
            seconds: 0.5,
        }
    }

    #[test]
    fn a_restore_of_almost_nothing_reports_no_rate() {
        let mut out = String::new();
        restores(&mut out, "empty", &[restore(0)]);
        assert!(out.contains("too little state for a rate"), "{out}");
        assert!(!out.contains("groups/s"), "{out}");
        let mut out = String::new();
        restores(&mut out, "large", &[restore(10_000)]);
        assert!(out.contains("20,000 groups/s, 4 MB/s"), "{out}");
    }
}
