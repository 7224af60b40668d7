//! Ctrl-C and SIGTERM during a run or a rollback: the batch in flight finishes, and the
//! command stops between batches, saying where the run stands. Killed by the default
//! handler it stopped as consistently (every committed batch whole), but silently: the
//! progress bar stopped, and nothing said what state the run was in or what to do next.
//! A second signal ends the process at once, as the default handler would have.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The signal that asked the command to stop; 0 while none has.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    if STOP.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: `_exit` is async-signal-safe; the second signal ends the process as
        // the default action would, with the shell's code for it.
        unsafe { libc::_exit(128 + signal) }
    }
}

/// Catches SIGINT and SIGTERM for a command that stops between batches.
pub fn catch_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores into an atomic or calls `_exit`.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The signal that asked the command to stop, if one has.
pub fn requested() -> Option<Signal> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        number => Some(Signal(number)),
    }
}

/// Sleeps `length`, or less where a stop is requested meanwhile: a `pause 1m` between batches
/// kept Ctrl-C waiting for the rest of the minute, as if the command hung.
pub fn sleep(length: Duration) {
    let until = Instant::now() + length;
    while requested().is_none() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(SLICE));
    }
}

/// How long a stop may wait for a sleep to notice it.
const SLICE: Duration = Duration::from_millis(20);

/// A signal that stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub i32);

impl Signal {
    /// The exit code a shell gives a process this signal ended.
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.0).unwrap_or(u8::MAX)
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            libc::SIGINT => write!(f, "SIGINT (Ctrl-C)"),
            libc::SIGTERM => write!(f, "SIGTERM"),
            other => write!(f, "signal {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_named_and_coded_as_the_shell_codes_its_signal() {
        assert_eq!(Signal(libc::SIGINT).exit_code(), 130);
        assert_eq!(Signal(libc::SIGTERM).exit_code(), 143);
        assert_eq!(Signal(libc::SIGINT).to_string(), "SIGINT (Ctrl-C)");
    }
}
