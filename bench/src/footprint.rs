//! The soak's samples of a running pipeline's footprint: its resident memory and its checkpoint folder's
//! size, over time, read from `/proc` and the file system while it runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Since the process started.
    pub at: Duration,
    /// Resident memory (VmRSS), KiB.
    pub rss_kib: u64,
    /// Bytes in the checkpoint folder (0 without one).
    pub checkpoint_bytes: u64,
}

/// Takes a sample every `every` of a run's time.
pub struct Sampler {
    every: Duration,
    checkpoint: Option<PathBuf>,
    next: Duration,
    /// Prints a line every this many samples, to follow a long run.
    print_every: usize,
    /// The samples so far.
    pub samples: Vec<Footprint>,
}

impl Sampler {
    /// A sampler of the process's memory and, when given, of the `checkpoint` folder.
    pub fn new(every: Duration, checkpoint: Option<PathBuf>) -> Sampler {
        Sampler {
            every,
            checkpoint,
            next: Duration::ZERO,
            print_every: 60,
            samples: Vec::new(),
        }
    }

    /// Samples process `pid` if a sample is due at `at`.
    pub fn tick(&mut self, pid: libc::pid_t, at: Duration) {
        if at < self.next {
            return;
        }
        self.next = at + self.every;
        let Some(rss_kib) = rss_kib(pid) else {
            return;
        };
        let checkpoint_bytes = self.checkpoint.as_deref().map_or(0, folder_bytes);
        self.samples.push(Footprint {
            at,
            rss_kib,
            checkpoint_bytes,
        });
        if self.samples.len().is_multiple_of(self.print_every) {
            println!(
                "  {:.0} s: RSS {:.0} MiB, checkpoint {:.1} MB",
                at.as_secs_f64(),
                rss_kib as f64 / 1024.0,
                checkpoint_bytes as f64 / 1e6
            );
        }
    }
}

/// VmRSS of process `pid`, KiB; `None` once it is gone.
fn rss_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// CPU time (user and kernel) process `pid` has used so far; zero once it is gone.
pub fn cpu_time(pid: libc::pid_t) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // After the command name in parentheses: state is field 3, utime and stime fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

/// The bytes of every file under `path` (0 while it does not exist; files removed while it is read are
/// skipped, as the checkpoint replaces its generations).
fn folder_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => folder_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The largest RSS among the samples taken in `[from, to)` of the run, KiB.
pub fn peak_rss_between(samples: &[Footprint], from: Duration, to: Duration) -> u64 {
    samples
        .iter()
        .filter(|s| s.at >= from && s.at < to)
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process_and_a_folder() {
        let dir = std::env::temp_dir().join(format!("weir-footprint-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("inner")).unwrap();
        std::fs::write(dir.join("inner/f"), vec![0u8; 1000]).unwrap();
        let mut sampler = Sampler::new(Duration::from_secs(1), Some(dir.clone()));
        let me = std::process::id() as libc::pid_t;
        sampler.tick(me, Duration::ZERO);
        sampler.tick(me, Duration::from_millis(500));
        sampler.tick(me, Duration::from_secs(1));
        assert_eq!(sampler.samples.len(), 2);
        assert!(sampler.samples[0].rss_kib > 0);
        assert_eq!(sampler.samples[0].checkpoint_bytes, 1000);
        assert_eq!(
            peak_rss_between(&sampler.samples, Duration::ZERO, Duration::from_millis(1)),
            sampler.samples[0].rss_kib
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The CPU time read from /proc grows while this thread spins (however busy the machine).
    #[test]
    fn cpu_time_counts_work_done() {
        let me = std::process::id() as libc::pid_t;
        let before = cpu_time(me);
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_time(me) < before + Duration::from_millis(200) {
            assert!(
                spin.elapsed() < Duration::from_secs(30),
                "CPU time stuck at {before:?}"
            );
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert_eq!(cpu_time(-1), Duration::ZERO);
    }
}
