//! `peak-rss COMMAND [ARGS...]`: runs the command and prints its peak resident memory, as the kernel
//! counted it for that process alone, as the last line of stderr (`peak-rss-kib: N`); exits as it did.
//!
//! It exists because a process's peak counts the memory of whatever started it, up to its `exec`: a
//! command started straight from a test binary running many tests reports that binary's memory. Started
//! from this small program instead, it reports its own.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: peak-rss COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let child = match Command::new(&program).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("peak-rss: starting {}: {e}", program.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    let mut status = 0;
    // SAFETY: rusage is plain data, fully written by wait4 when it returns the child's pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        eprintln!("peak-rss: wait4: {}", std::io::Error::last_os_error());
        return ExitCode::from(2);
    }
    eprintln!("peak-rss-kib: {}", usage.ru_maxrss);
    let status = std::process::ExitStatus::from_raw(status);
    ExitCode::from(status.code().unwrap_or(128) as u8)
}
