//! Ctrl-C, SIGTERM and SIGHUP during a build (issue 14 W8): without care
//! they end the process in the middle of a step, leaving the hidden staging
//! directory (60 MB after a debootstrap) and the hidden configuration.
//!
//! While a build runs the three signals are blocked, so none cuts a step
//! short. The long step, debootstrap, waits for its child and for them at
//! once, and ends the child's whole process group when one comes; the
//! other steps are checked between. The build then fails and removes what
//! it made; when the guard is dropped, after that cleanup, the signals are
//! unblocked and the pending one ends the process as it would have done at
//! once (the shell shows 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
//! A signal the caller ignores (nohup) stays ignored.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use linux_raw_sys::general::{SIGHUP, SIGINT, SIGTERM};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::error::Context;
use crate::sys::signal::{self, SigSet};
use crate::{Error, Result};

/// How long the child gets to clean up after SIGTERM (debootstrap unmounts
/// the /proc and /sys it mounted in the new tree) before SIGKILL.
const CHILD_GRACE: Duration = Duration::from_secs(10);

/// The read end of a pipe a child writes to (non-blocking), and what is
/// done with each piece read.
pub type Output<'a> = (&'a OwnedFd, &'a mut dyn FnMut(&[u8]));

/// SIGINT, SIGTERM and SIGHUP blocked for the guard's lifetime.
pub struct Interrupts {
    signals: OwnedFd,
    old_mask: SigSet,
}

/// The three signals but those the caller ignores: a blocked signal is
/// never discarded, so an ignored one would otherwise interrupt the build.
fn interrupting() -> SigSet {
    [SIGINT, SIGTERM, SIGHUP]
        .into_iter()
        .filter(|&s| !signal::is_ignored(s).unwrap_or(false))
        .fold(SigSet::EMPTY, SigSet::with)
}

impl Interrupts {
    pub fn block() -> Result<Interrupts> {
        let set = interrupting();
        let old_mask = signal::block(set)
            .map_err(|e| Error::sys("cannot block SIGINT, SIGTERM and SIGHUP", e))?;
        let signals = signal::signalfd(set).map_err(|e| {
            let _ = signal::set_mask(old_mask);
            Error::sys("cannot watch SIGINT, SIGTERM and SIGHUP", e)
        })?;
        Ok(Interrupts { signals, old_mask })
    }

    /// Whether one of the signals is pending (it is not taken: the drop
    /// delivers it).
    fn pending(&self, timeout: Option<&Timespec>) -> bool {
        let mut fds = [PollFd::new(&self.signals, PollFlags::IN)];
        matches!(rustix::event::poll(&mut fds, timeout), Ok(n) if n > 0)
    }

    /// Fails when the build was interrupted, so that it stops and cleans up.
    pub fn check(&self) -> Result<()> {
        if self.pending(Some(&Timespec::default())) {
            return Err(interrupted());
        }
        Ok(())
    }

    /// Runs `cmd` in a process group of its own and waits for it; on one
    /// of the signals (or a failure to wait) the group gets SIGTERM, then
    /// SIGKILL after CHILD_GRACE, and the build fails. With `output` (the
    /// read end of a pipe the child writes to, non-blocking), what comes
    /// is given to the callback as it comes.
    pub fn run(
        &self,
        cmd: &mut Command,
        what: &str,
        mut output: Option<Output<'_>>,
    ) -> Result<ExitStatus> {
        let mut child = cmd
            .process_group(0)
            .spawn()
            .context(|| format!("cannot run {what}"))?;
        let pid = Pid::from_child(&child);
        let reap = |child: &mut std::process::Child| {
            child.wait().context(|| format!("cannot wait for {what}"))
        };
        let pidfd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
                let _ = reap(&mut child);
                return Err(e).context(|| format!("cannot watch {what}"));
            }
        };
        loop {
            let mut fds = vec![
                PollFd::new(&self.signals, PollFlags::IN),
                PollFd::new(&pidfd, PollFlags::IN),
            ];
            if let Some((fd, _)) = &output {
                fds.push(PollFd::new(*fd, PollFlags::IN));
            }
            let failed = match rustix::event::poll(&mut fds, None) {
                Ok(_) => None,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => Some(e),
            };
            let signalled = !fds[0].revents().is_empty();
            let exited = !fds[1].revents().is_empty();
            let readable = fds.get(2).is_some_and(|f| !f.revents().is_empty());
            drop(fds);
            if readable && let Some((fd, show)) = &mut output {
                // At the end of the pipe (every writer gone) it is no
                // longer watched: poll would report it at once, forever.
                if !pass_on(fd, *show) {
                    output = None;
                }
            }
            if signalled || failed.is_some() {
                // The unreaped leader keeps the group id from being reused.
                let _ = rustix::process::kill_process_group(pid, Signal::TERM);
                let mut leader = [PollFd::new(&pidfd, PollFlags::IN)];
                let grace = Timespec {
                    tv_sec: CHILD_GRACE.as_secs() as i64,
                    tv_nsec: 0,
                };
                let _ = rustix::event::poll(&mut leader, Some(&grace));
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
                reap(&mut child)?;
                return Err(match failed {
                    Some(e) => Error::sys(format!("cannot wait for {what}"), e.into()),
                    None => interrupted(),
                });
            }
            if exited {
                // What the child wrote last is in the pipe; a process it
                // left behind may hold the pipe open, so this reads what
                // is there and waits for no end.
                if let Some((fd, show)) = &mut output {
                    pass_on(fd, *show);
                }
                return reap(&mut child);
            }
        }
    }
}

/// Gives what the non-blocking `fd` holds to `show`; false at its end (or
/// on an error, which ends the showing, not the child).
fn pass_on(fd: &OwnedFd, show: &mut dyn FnMut(&[u8])) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(fd, &mut buf[..]) {
            Ok(0) => return false,
            Ok(n) => show(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return true,
            Err(_) => return false,
        }
    }
}

fn interrupted() -> Error {
    Error::failure("the build was interrupted (SIGINT, SIGTERM or SIGHUP): removed what it made")
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        // A pending signal is delivered here and ends the process, after
        // the cleanup.
        let _ = signal::set_mask(self.old_mask);
    }
}
