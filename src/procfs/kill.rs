//! vkill: signal a process wherever it runs, or every process of a guest,
//! through pidfds so a reused pid is never hit, and never a process of a
//! private guest.
//!
//! For one pid: open a pidfd (it pins that process), read the pid's
//! /proc/PID/cgroup to find its guest, then probe the pidfd with signal 0.
//! If the probe succeeds the process was alive all along, so the cgroup
//! read was its own (a pid is only reused once its process is reaped), and
//! the signal goes through the same pidfd.

use std::os::fd::{AsFd, OwnedFd};

use rustix::process::{Pid, PidfdFlags};

use crate::context::cgroup::{Cgroup, parse_proc_cgroup};
use crate::context::runstate::{ContextRecord, RunDir};
use crate::error::Context;
use crate::sys::pidfd::send_signal;
use crate::{Error, Result};

const NAMES: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// A signal as kill(1) takes it: a number (0..=64), a name with or without
/// SIG (any case), or RTMIN+N / RTMAX-N.
pub fn parse_signal(text: &str) -> Result<u32> {
    let bad = || Error::usage(format!("unknown signal '{}'", crate::error::shown(text)));
    if let Ok(n) = text.parse::<u32>() {
        return if n <= 64 { Ok(n) } else { Err(bad()) };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(i) = NAMES.iter().position(|n| *n == name) {
        return Ok(i as u32 + 1);
    }
    let rt = |base: u32, rest: &str, sign: i64| -> Option<u32> {
        let off: i64 = if rest.is_empty() {
            0
        } else {
            rest.parse().ok()?
        };
        let n = i64::from(base) + sign * off;
        (34..=64).contains(&n).then_some(n as u32)
    };
    match name {
        "IOT" => Ok(6),
        "POLL" => Ok(29),
        _ => {
            if let Some(r) = name.strip_prefix("RTMIN") {
                rt(34, r.strip_prefix('+').unwrap_or(r), 1).ok_or_else(bad)
            } else if let Some(r) = name.strip_prefix("RTMAX") {
                rt(64, r.strip_prefix('-').unwrap_or(r), -1).ok_or_else(bad)
            } else {
                Err(bad())
            }
        }
    }
}

/// A signal's name without SIG, for messages.
pub fn signal_name(signo: u32) -> String {
    match signo {
        0 => "0".to_string(),
        1..=31 => NAMES[signo as usize - 1].to_string(),
        _ => format!("RTMIN+{}", signo.saturating_sub(34)),
    }
}

/// Where a signalled process was: its guest (None for the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub guest: Option<String>,
    pub context: Option<u32>,
}

fn refuse_private(record: &ContextRecord) -> Result<()> {
    if record.flags.split_whitespace().any(|f| f == "private") {
        return Err(Error::failure(format!(
            "guest {} (context {}) is private: its processes cannot be signalled from the host",
            record.name, record.number
        )));
    }
    Ok(())
}

fn open_pidfd(pid: i32) -> Result<OwnedFd> {
    let p = Pid::from_raw(pid).ok_or_else(|| Error::usage(format!("'{}' is not a pid", pid)))?;
    rustix::process::pidfd_open(p, PidfdFlags::empty())
        .context(|| format!("cannot open process {pid}"))
}

/// The guest cgroup of `pid` now, from /proc/PID/cgroup.
fn cgroup_of(pid: i32) -> Result<Option<String>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).context(|| format!("cannot read {path}"))?;
    Ok(parse_proc_cgroup(&text).guest().map(str::to_string))
}

/// Sends `signo` to process `pid` (host pid numbering), unless it belongs
/// to a private guest.
pub fn kill_pid(pid: i32, signo: u32) -> Result<Owner> {
    let pidfd = open_pidfd(pid)?;
    let cgroup = cgroup_of(pid)?;
    send_signal(pidfd.as_fd(), 0).map_err(|e| Error::sys(format!("process {pid} ended"), e))?;
    let owner = match &cgroup {
        None => Owner {
            guest: None,
            context: Some(0),
        },
        Some(cg) => {
            let record = RunDir::from_env()
                .list()?
                .into_iter()
                .find(|r| &r.cgroup == cg);
            if let Some(r) = &record {
                refuse_private(r)?;
            }
            Owner {
                guest: Some(record.as_ref().map_or(cg.clone(), |r| r.name.clone())),
                context: record.map(|r| r.number),
            }
        }
    };
    send_signal(pidfd.as_fd(), signo).map_err(|e| {
        Error::sys(
            format!("cannot send SIG{} to process {pid}", signal_name(signo)),
            e,
        )
    })?;
    Ok(owner)
}

/// Sends `signo` to every process of the running guest `record` (its
/// cgroup's members, each through its own pidfd after checking that the
/// pid is still the guest's). Returns how many were signalled.
pub fn kill_guest(record: &ContextRecord, signo: u32) -> Result<usize> {
    refuse_private(record)?;
    let cgroup = Cgroup::open(&record.cgroup)?;
    let mut sent = 0;
    for pid in cgroup.processes()? {
        let pid = pid.as_raw_nonzero().get();
        let Ok(pidfd) = open_pidfd(pid) else {
            continue; // ended meanwhile
        };
        if !matches!(cgroup_of(pid), Ok(Some(cg)) if cg == record.cgroup)
            || send_signal(pidfd.as_fd(), 0).is_err()
        {
            continue;
        }
        match send_signal(pidfd.as_fd(), signo) {
            Ok(()) => sent += 1,
            Err(e) if e.name() == Some("ESRCH") => {}
            Err(e) => {
                return Err(Error::sys(
                    format!(
                        "cannot send SIG{} to process {pid} of guest {}",
                        signal_name(signo),
                        record.name
                    ),
                    e,
                ));
            }
        }
    }
    Ok(sent)
}

/// The running guest with context number `number`.
pub fn guest_by_context(number: u32) -> Result<ContextRecord> {
    RunDir::from_env()
        .read(number)?
        .ok_or_else(|| Error::failure(format!("context {number} is not running")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_like_kill() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("HUP").unwrap(), 1);
        assert_eq!(parse_signal("RTMIN").unwrap(), 34);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), 36);
        assert_eq!(parse_signal("RTMAX-1").unwrap(), 63);
        for bad in ["65", "FOO", "", "RTMIN+40", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
        assert_eq!(signal_name(15), "TERM");
        assert_eq!(signal_name(36), "RTMIN+2");
    }
}
