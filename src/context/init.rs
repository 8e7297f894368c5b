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
use std::time::{Duration, Instant};

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
/// SIGTERM, SIGINT, SIGHUP or SIGPWR runs the stop runlevel, ends what is
/// left (`end_the_rest`) and exits.
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
    // Every command is made now: the loops below allocate nothing.
    let mut start = runlevel::change_commands(level, b'N');
    let mut stop = runlevel::change_commands(runlevel::STOP_RUNLEVEL, level);
    let mut halt = runlevel::change_commands(b'0', level);
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
    // The start scripts, each to its end, then say so (on `ready`). A stop
    // asked for meanwhile is kept, not lost: no further script starts, and
    // it is acted on as soon as the running one is done.
    let mut asked = None;
    for cmd in &mut start {
        if asked.is_some() {
            break;
        }
        if let Some(pid) = spawn(cmd) {
            run_to_end(pid, all, |got| asked = asked.or(end_asked(got)));
        }
    }
    // A byte, then the close: the close alone is also what the death of
    // vinit looks like to the starter.
    if let Some(ready) = ready {
        let _ = rustix::io::write(&ready, b"r");
    }
    let end = loop {
        if let Some(end) = asked {
            break end;
        }
        let Ok(got) = signal::wait(all) else { continue };
        if got.signo == SIGCHLD {
            reap(0);
        }
        asked = end_asked(got);
    };
    let scripts = if end == End::Halt {
        &mut halt
    } else {
        &mut stop
    };
    for cmd in scripts {
        if let Some(pid) = spawn(cmd) {
            run_to_end(pid, all, |_| {});
        }
    }
    end_the_rest(all);
    // A reboot(2) of a pid namespace's init ends it by SIGHUP (restart)
    // or SIGINT (halt); vinit, which may lack CAP_SYS_BOOT, says the
    // same with 128 + that signal as its status: the guest's monitor
    // on the host restarts or stops the guest.
    Ok(match end {
        End::Stop => 0,
        End::Reboot => 128 + SIGHUP as u8,
        End::Halt => 128 + SIGINT as u8,
    })
}

/// Reaps every ended child until the script `pid` is among them; `seen`
/// gets every signal taken meanwhile.
fn run_to_end(pid: i32, all: SigSet, mut seen: impl FnMut(signal::Received)) {
    while let Ok(got) = signal::wait(all) {
        seen(got);
        if got.signo == SIGCHLD && reap_until(pid) {
            return;
        }
    }
}

/// The seed's grace at stop: the time the guest's processes have between
/// SIGTERM and SIGKILL to flush and end on their own.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often the grace looks whether anyone is left: a process that
/// `vserver exec` put in the guest has its parent outside, so its end sends
/// vinit no SIGCHLD.
const GRACE_POLL: Duration = Duration::from_millis(50);

/// After the stop scripts: SIGTERM to every process left in the guest,
/// reaping them, until none is left or STOP_GRACE has passed; then SIGKILL
/// to what remains. kill(-1) from the init of a pid namespace reaches every
/// process of that namespace (and of the ones nested in it) but itself, and
/// kill(-1, 0) fails with ESRCH once there is none.
fn end_the_rest(all: SigSet) {
    use rustix::process::{kill_process_group, test_kill_process_group};
    let _ = kill_process_group(Pid::INIT, Signal::TERM);
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        reap(0);
        if test_kill_process_group(Pid::INIT) == Err(rustix::io::Errno::SRCH) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Woken early by SIGCHLD; any other signal now changes nothing.
        let _ = signal::wait_for(all, left.min(GRACE_POLL));
    }
    let _ = kill_process_group(Pid::INIT, Signal::KILL);
}

/// How a guest run by `vinit --rc` is asked to end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The host's stop (SIGTERM from outside the guest; SIGINT, SIGHUP,
    /// SIGPWR): the stop runlevel, the grace, then exit 0.
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
