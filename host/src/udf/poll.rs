//! WASI's one call that can block, `poll_oneoff`, served within the UDF's time limit.
//!
//! Epoch interruption stops guest code at its next loop or call, but not a host call in progress, and
//! wasmtime-wasi's `poll_oneoff` sleeps for as long as the guest asks: a one-hour sleep under a 2 s
//! `limits.timeout` ran until the process was killed. A Weir guest has no files or sockets, so a clock is
//! the only thing it can wait for: stdin is empty (always readable, at its end) and stdout and stderr
//! always take more. This replacement, registered over wasmtime-wasi's, waits for a clock only within what
//! is left of the call's time limit; a sleep that would outlast it ends the call at once with the timeout
//! error ([`RefusedSleep`]).

use std::time::{Duration, Instant, SystemTime};

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::HostMonotonicClock;

use super::instance::GuestState;

/// The guest's monotonic clock (WASI clock 1): nanoseconds since the instance was made. Weir's own rather
/// than wasmtime-wasi's default, so that an absolute monotonic deadline can be turned into a wait here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuestClock {
    origin: Instant,
}

impl GuestClock {
    pub(crate) fn new() -> GuestClock {
        GuestClock {
            origin: Instant::now(),
        }
    }

    pub(crate) fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl HostMonotonicClock for GuestClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.now_nanos()
    }
}

/// A sleep the host would not start, because it would outlast the call's time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedSleep {
    /// How long the guest asked to wait.
    pub asked: Duration,
    /// What was left of the call's `limits.timeout` when it asked.
    pub left: Duration,
    /// The WASI call it asked through: `poll_oneoff` (preview 1) or a monotonic-clock subscription
    /// (preview 2, components).
    pub through: &'static str,
}

impl std::fmt::Display for RefusedSleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the guest asked {} to sleep {:?} with {:?} of the limit left",
            self.through, self.asked, self.left
        )
    }
}

// WASI preview 1 layouts (`subscription`, 48 bytes; `event`, 32 bytes) and codes, from its witx.
const SUBSCRIPTION_LEN: usize = 48;
const EVENT_LEN: usize = 32;
const TAG_CLOCK: u8 = 0;
const TAG_FD_READ: u8 = 1;
const TAG_FD_WRITE: u8 = 2;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const SUBSCRIPTION_CLOCK_ABSTIME: u16 = 1;
const EVENT_FD_READWRITE_HANGUP: u16 = 1;
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: u16 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
/// What a write to stdout or stderr may be at once (the log buffer takes anything; see `log.rs`).
const WRITABLE_BYTES: u64 = 64 * 1024;

/// What one subscription waits for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wait {
    /// A clock, due this long from now.
    Clock(Duration),
    /// An fd event, ready now (or failed at once).
    Ready {
        kind: u8,
        errno: u16,
        nbytes: u64,
        flags: u16,
    },
}

/// Reads one subscription: its userdata and what it waits for; `Err(errno)` for an invalid one.
fn read_subscription(bytes: &[u8], clock: &GuestClock) -> Result<(u64, Wait), i32> {
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let userdata = u64_at(0);
    let wait = match bytes[8] {
        TAG_CLOCK => {
            let (id, timeout) = (u32_at(16), u64_at(24));
            let absolute =
                u16::from_le_bytes([bytes[40], bytes[41]]) & SUBSCRIPTION_CLOCK_ABSTIME != 0;
            let now = match (id, absolute) {
                (CLOCK_REALTIME | CLOCK_MONOTONIC, false) => 0,
                (CLOCK_MONOTONIC, true) => clock.now_nanos(),
                (CLOCK_REALTIME, true) => SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                _ => return Err(ERRNO_INVAL),
            };
            Wait::Clock(Duration::from_nanos(timeout.saturating_sub(now)))
        }
        kind @ (TAG_FD_READ | TAG_FD_WRITE) => {
            let (errno, nbytes, flags) = match (kind, u32_at(16)) {
                (TAG_FD_READ, 0) => (0, 0, EVENT_FD_READWRITE_HANGUP),
                (TAG_FD_WRITE, 1 | 2) => (0, WRITABLE_BYTES, 0),
                _ => (ERRNO_BADF, 0, 0),
            };
            Wait::Ready {
                kind,
                errno,
                nbytes,
                flags,
            }
        }
        _ => return Err(ERRNO_INVAL),
    };
    Ok((userdata, wait))
}

/// The events of the subscriptions that are due within `waited`, as WASI lays them out.
fn events(subscriptions: &[(u64, Wait)], waited: Duration) -> Vec<[u8; EVENT_LEN]> {
    subscriptions
        .iter()
        .filter_map(|(userdata, wait)| {
            let (kind, errno, nbytes, flags) = match *wait {
                Wait::Clock(after) if after <= waited => (TAG_CLOCK, 0, 0, 0),
                Wait::Clock(_) => return None,
                Wait::Ready {
                    kind,
                    errno,
                    nbytes,
                    flags,
                } => (kind, errno, nbytes, flags),
            };
            let mut event = [0u8; EVENT_LEN];
            event[0..8].copy_from_slice(&userdata.to_le_bytes());
            event[8..10].copy_from_slice(&errno.to_le_bytes());
            event[10] = kind;
            event[16..24].copy_from_slice(&nbytes.to_le_bytes());
            event[24..26].copy_from_slice(&flags.to_le_bytes());
            Some(event)
        })
        .collect()
}

/// How long to wait before the first subscription is due: zero when an fd event is ready.
fn first_due(subscriptions: &[(u64, Wait)]) -> Duration {
    subscriptions
        .iter()
        .map(|(_, wait)| match wait {
            Wait::Clock(after) => *after,
            Wait::Ready { .. } => Duration::ZERO,
        })
        .min()
        .unwrap_or(Duration::ZERO)
}

/// Registers this `poll_oneoff` over wasmtime-wasi's, which must already be in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = linker
        .func_wrap("wasi_snapshot_preview1", "poll_oneoff", poll_oneoff)
        .map(|_| ());
    linker.allow_shadowing(false);
    added
}

/// `poll_oneoff(in, out, nsubscriptions, nevents_ptr) -> errno`, within the call's deadline.
fn poll_oneoff(
    mut caller: Caller<'_, GuestState>,
    input: i32,
    output: i32,
    count: i32,
    nevents_ptr: i32,
) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Ok(ERRNO_FAULT);
    };
    let count = count as u32 as usize;
    if count == 0 {
        return Ok(ERRNO_INVAL);
    }
    let span =
        |ptr: i32, len: usize| (ptr as u32 as usize)..(ptr as u32 as usize).saturating_add(len);
    let (input, output, nevents) = (
        span(input, count.saturating_mul(SUBSCRIPTION_LEN)),
        span(output, count.saturating_mul(EVENT_LEN)),
        span(nevents_ptr, 4),
    );
    let size = memory.data_size(&caller);
    if [&input, &output, &nevents].iter().any(|r| r.end > size) {
        return Ok(ERRNO_FAULT);
    }
    let clock = caller.data().clock;
    let subscriptions = match memory.data(&caller)[input]
        .chunks_exact(SUBSCRIPTION_LEN)
        .map(|bytes| read_subscription(bytes, &clock))
        .collect::<Result<Vec<_>, i32>>()
    {
        Ok(subscriptions) => subscriptions,
        Err(errno) => return Ok(errno),
    };
    let wait = first_due(&subscriptions);
    if !wait.is_zero() {
        let left = caller
            .data()
            .deadline
            .saturating_duration_since(Instant::now());
        if wait > left {
            caller.data_mut().refused_sleep = Some(RefusedSleep {
                asked: wait,
                left,
                through: "WASI's poll_oneoff",
            });
            wasmtime::bail!("a sleep past the time limit");
        }
        std::thread::sleep(wait);
    }
    let events = events(&subscriptions, wait);
    let data = memory.data_mut(&mut caller);
    for (i, event) in events.iter().enumerate() {
        let at = output.start + i * EVENT_LEN;
        data[at..at + EVENT_LEN].copy_from_slice(event);
    }
    data[nevents].copy_from_slice(&(events.len() as u32).to_le_bytes());
    Ok(ERRNO_SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock_subscription(userdata: u64, id: u32, timeout: u64, flags: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; SUBSCRIPTION_LEN];
        bytes[0..8].copy_from_slice(&userdata.to_le_bytes());
        bytes[8] = TAG_CLOCK;
        bytes[16..20].copy_from_slice(&id.to_le_bytes());
        bytes[24..32].copy_from_slice(&timeout.to_le_bytes());
        bytes[40..42].copy_from_slice(&flags.to_le_bytes());
        bytes
    }

    fn fd_subscription(userdata: u64, tag: u8, fd: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; SUBSCRIPTION_LEN];
        bytes[0..8].copy_from_slice(&userdata.to_le_bytes());
        bytes[8] = tag;
        bytes[16..20].copy_from_slice(&fd.to_le_bytes());
        bytes
    }

    #[test]
    fn clocks_become_waits_and_fds_are_ready_at_once() {
        let clock = GuestClock::new();
        let relative = read_subscription(&clock_subscription(7, 1, 3_000_000_000, 0), &clock);
        assert_eq!(relative, Ok((7, Wait::Clock(Duration::from_secs(3)))));
        // An absolute monotonic deadline already passed is due now.
        let past = read_subscription(&clock_subscription(1, 1, 0, 1), &clock).unwrap();
        assert_eq!(past.1, Wait::Clock(Duration::ZERO));
        // An absolute realtime deadline an hour ahead is about an hour away.
        let hour_ahead = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            + Duration::from_secs(3600);
        let (_, Wait::Clock(after)) = read_subscription(
            &clock_subscription(2, 0, hour_ahead.as_nanos() as u64, 1),
            &clock,
        )
        .unwrap() else {
            panic!("a clock")
        };
        assert!(after > Duration::from_secs(3590) && after <= Duration::from_secs(3600));
        assert_eq!(
            read_subscription(&clock_subscription(3, 2, 5, 0), &clock),
            Err(ERRNO_INVAL)
        );

        let stdin = read_subscription(&fd_subscription(4, TAG_FD_READ, 0), &clock).unwrap();
        let bad = read_subscription(&fd_subscription(5, TAG_FD_WRITE, 9), &clock).unwrap();
        let subscriptions = [relative.unwrap(), stdin, bad];
        assert_eq!(first_due(&subscriptions), Duration::ZERO);
        let ready = events(&subscriptions, Duration::ZERO);
        assert_eq!(ready.len(), 2, "the clock is not due yet");
        assert_eq!(u64::from_le_bytes(ready[0][0..8].try_into().unwrap()), 4);
        assert_eq!(ready[0][10], TAG_FD_READ);
        assert_eq!(u16::from_le_bytes([ready[1][8], ready[1][9]]), ERRNO_BADF);
    }
}
