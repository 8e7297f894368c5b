//! The guest's pid 1 when the guest runs no init of its own: it starts the
//! guest's main command, reaps every orphan (they are reparented to it, so
//! getppid() of an orphan is 1), forwards the polite signals to the main
//! command, and ends the context when the main command ends.
//!
//! The loop takes signals synchronously (all blocked, sigtimedwait), so it
//! has no handler and allocates nothing.

use linux_raw_sys::general::{
    SIGCHLD, SIGHUP, SIGINT, SIGPWR, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

use crate::sys::signal::{self, SigSet};

/// Signals passed on to the main command rather than acted on.
const FORWARDED: [u32; 7] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];

/// The exit status a shell would report for `status`: the code, or 128 plus
/// the signal that ended the process.
pub fn exit_code(status: WaitStatus) -> u8 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => 1,
    }
}

/// vinit's first act, in every mode: execve made it dumpable again (the
/// kernel resets the flag on exec when the uid does not change), and a
/// dumpable pid 1 is open to guest root, the same uid with no fewer
/// capabilities: /proc/1/environ, /proc/1/mem, ptrace. Non-dumpable, only
/// CAP_SYS_PTRACE (which guests lack) reaches it.
pub fn make_undumpable() -> crate::Result<()> {
    use crate::error::Context;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context(|| "cannot make vinit non-dumpable")
}

/// Blocks every signal but the fault ones; returns the mask to restore in a
/// child before it execs.
pub fn block_signals() -> SigSet {
    signal::block(SigSet::all_but_faults()).unwrap_or(SigSet::EMPTY)
}

/// The `vinit --supervise` entry: only a context's pid 1 may supervise.
/// `ready_fd`, closed once vinit is named and non-dumpable, holds the main
/// command back until then.
pub fn run_supervisor(main: i32, ready_fd: Option<i32>) -> crate::Result<u8> {
    if rustix::process::getpid().as_raw_nonzero().get() != 1 {
        return Err(crate::Error::usage(
            "vinit runs only as pid 1 of a context (chcontext and vserver start it)",
        ));
    }
    name_self();
    block_signals();
    drop(ready_fd.and_then(crate::sys::process::take_inherited_fd));
    // The main command may have ended before this exec: reap it first.
    if let Some(code) = reap(main) {
        return Ok(code);
    }
    supervise(main)
}

/// The `vinit --rc` entry: pid 1 of a guest that has no init of its own.
/// Starts the guest's runlevel (see `runlevel`), reaps orphans, and on
/// SIGTERM, SIGINT, SIGHUP or SIGPWR runs the stop runlevel and exits.
pub fn run_runlevels(level: Option<u8>, ready_fd: Option<i32>) -> crate::Result<u8> {
    use crate::context::runlevel;
    use std::os::unix::process::CommandExt;
    if rustix::process::getpid().as_raw_nonzero().get() != 1 {
        return Err(crate::Error::usage(
            "vinit runs only as pid 1 of a context (vserver start runs it)",
        ));
    }
    name_self();
    // Taken (close-on-exec) before anything is started: a service that
    // inherited it would keep the starter waiting.
    let ready = ready_fd.and_then(crate::sys::process::take_inherited_fd);
    let unblocked = block_signals();
    let level = level.unwrap_or_else(runlevel::guest_runlevel);
    runlevel::clear_files(std::path::Path::new("/var/run"));
    if let Err(e) = runlevel::write_utmp("/var/run/utmp", level) {
        eprintln!("vinit: {e}");
    }
    let rc = runlevel::rc_script();
    // Both commands are made now: the loop below allocates nothing.
    // RUNLEVEL and PREVLEVEL as sysvinit gives them ("N": none before):
    // Debian's rc runs the K scripts by PREVLEVEL.
    let rc_command = |to: u8, from: u8| {
        rc.map(|rc| {
            let to = char::from(to).to_string();
            let mut c = std::process::Command::new(rc);
            c.arg(&to)
                .env("RUNLEVEL", &to)
                .env("PREVLEVEL", char::from(from).to_string());
            c
        })
    };
    let mut start = rc_command(level, b'N');
    let mut stop = rc_command(runlevel::STOP_RUNLEVEL, level);
    let mut halt = rc_command(b'0', level);
    // vinit never starts a thread: one proof serves every fork, and the loop
    // does not read /proc for it.
    let one = crate::sys::process::single_threaded()
        .map_err(|e| crate::Error::sys("vinit cannot fork", e))?;
    let spawn = |cmd: &mut std::process::Command| -> Option<i32> {
        match crate::sys::process::clone_process(&one, 0, None).ok()? {
            crate::sys::process::Forked::Child => {
                let _ = signal::set_mask(unblocked);
                let err = cmd.exec();
                eprintln!("vinit: cannot run {:?}: {err}", cmd.get_program());
                std::process::exit(127)
            }
            crate::sys::process::Forked::Parent { pid, .. } => Some(pid),
        }
    };
    let all = SigSet::all_but_faults();
    // Reap until the start scripts are done, then say so (on `ready`).
    // A stop asked for meanwhile is kept, not lost: it is acted on as soon
    // as the start scripts are done.
    let mut asked = None;
    if let Some(pid) = start.as_mut().and_then(spawn) {
        while let Ok(got) = signal::wait(all) {
            asked = asked.or(end_asked(got));
            if got.signo == SIGCHLD && reap_until(pid) {
                break;
            }
        }
    }
    // A byte, then the close: the close alone is also what the death of
    // vinit looks like to the starter.
    if let Some(ready) = ready {
        let _ = rustix::io::write(&ready, b"r");
    }
    loop {
        let end = match asked {
            Some(end) => end,
            None => {
                let Ok(got) = signal::wait(all) else { continue };
                if got.signo == SIGCHLD {
                    reap(0);
                }
                match end_asked(got) {
                    Some(end) => end,
                    None => continue,
                }
            }
        };
        let scripts = if end == End::Halt {
            halt.as_mut()
        } else {
            stop.as_mut()
        };
        if let Some(pid) = scripts.and_then(spawn) {
            // Reap everything until the stop scripts are done.
            while let Ok(got) = signal::wait(all) {
                if got.signo == SIGCHLD && reap_until(pid) {
                    break;
                }
            }
        }
        // A reboot(2) of a pid namespace's init ends it by SIGHUP (restart)
        // or SIGINT (halt); vinit, which may lack CAP_SYS_BOOT, says the
        // same with 128 + that signal as its status: the guest's monitor
        // on the host restarts or stops the guest.
        return Ok(match end {
            End::Stop => 0,
            End::Reboot => 128 + SIGHUP as u8,
            End::Halt => 128 + SIGINT as u8,
        });
    }
}

/// How a guest run by `vinit --rc` is asked to end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The host's stop (SIGTERM from outside the guest; SIGINT, SIGHUP,
    /// SIGPWR): the stop runlevel, then exit 0.
    Stop,
    /// `reboot` inside the guest (busybox and sysvinit send pid 1 SIGTERM):
    /// the stop runlevel, then restart.
    Reboot,
    /// `halt` or `poweroff` inside the guest (SIGUSR1, SIGUSR2): runlevel
    /// 0, then stop.
    Halt,
}

/// Whether signal `got` asks the guest to end, and how. A signal from
/// outside the guest's pid namespace has sender pid 0.
fn end_asked(got: signal::Received) -> Option<End> {
    match got.signo {
        SIGTERM if got.pid != 0 => Some(End::Reboot),
        SIGUSR1 | SIGUSR2 => Some(End::Halt),
        SIGTERM | SIGINT | SIGHUP | SIGPWR => Some(End::Stop),
        _ => None,
    }
}

/// Reaps every ended child; true once `pid` is among them (or gone).
/// Every child, of any process group (wait, not waitpid(None), which is
/// waitpid(0): the caller's group only; a guest command leads a session of
/// its own).
fn reap_until(pid: i32) -> bool {
    loop {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((p, _))) if p.as_raw_nonzero().get() == pid => return true,
            Ok(Some(_)) => continue,
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// Executed from /proc/self/fd/N, the process would be called "N" in ps
/// and top: call it vinit.
fn name_self() {
    let _ = rustix::thread::set_name(c"vinit");
}

/// Supervises `main` until it ends, then exits with its status. Signals
/// must already be blocked (`block_signals`).
pub fn supervise(main: i32) -> ! {
    let all = SigSet::all_but_faults();
    loop {
        let Ok(got) = signal::wait(all) else { continue };
        if got.signo == SIGCHLD {
            if let Some(code) = reap(main) {
                std::process::exit(code as i32);
            }
        } else if FORWARDED.contains(&got.signo) {
            if let (Some(pid), Some(sig)) = (
                Pid::from_raw(main),
                Signal::from_named_raw(got.signo as i32),
            ) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    }
}

/// Reaps every child that has ended; returns main's exit code if it did.
fn reap(main: i32) -> Option<u8> {
    let mut main_code = None;
    loop {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                if pid.as_raw_nonzero().get() == main {
                    main_code = Some(exit_code(status));
                }
            }
            Ok(None) | Err(_) => return main_code,
        }
    }
}
