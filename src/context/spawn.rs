//! Creating a context and running a command in it; joining a running one.
//!
//! New context: the parent claims a context number, then clone3 makes the
//! context's pid 1 in new mount, pid, ipc and uts namespaces (straight into
//! the guest's cgroup). Pid 1 waits until the parent has finished the host
//! side (cgroup v1 joins, run state), makes its cgroup namespace (rooted
//! where it now is in every hierarchy), sets up hostname and mounts, starts
//! the command and supervises it. Any failure before the command's exec
//! travels back to the parent over a close-on-exec pipe, and the parent
//! then kills the context and removes what it made, so a failed start
//! leaves nothing behind.
//!
//! Joining: setns through a pidfd of the context's pid 1 (every namespace in
//! one call), then a child (only a child enters a pid namespace) runs the
//! command.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, Signal, WaitOptions};

use super::cgroup::{Cgroup, CgroupLimits, DEFAULT_PIDS_MAX};
use super::console::{self, Keeper};
use super::environment::GuestEnv;
use super::fdpass;
use super::flags::{ContextFlag, ContextFlags};
use super::init;
use super::initkind::InitKind;
use super::mounts;
use super::notify;
use super::privileges::{Prepared, Privileges};
use super::relay::{self, Connected, Forward, GuestEnd};
use super::rlimit::{LimitValue, Resource};
use super::runstate::{self, ContextRecord, FileId, RunDir};
use super::scope;
use super::sealed::SealedBinary;
use super::user::GuestUser;
use super::userns::{self, Handoff};
use crate::conf::guest::DomainName;
use crate::error::Context;
use crate::net::ipv4root::{self, Policy};
use crate::sys::process::{
    Forked, SingleThreaded, cloexec_from, clone_process, keep_across_exec, ns, setns_pidfd,
    single_threaded, unshare_namespaces,
};
use crate::sys::signal;
use crate::{Error, Result};

/// The namespaces of a context. Network stays the host's: guests share its
/// stack and are confined to their addresses by ipv4root (as in the seed).
pub const NAMESPACES: u64 = ns::MOUNT | ns::PID | ns::IPC | ns::UTS | ns::CGROUP;
/// What clone3 makes: all but the cgroup namespace. One made by clone3
/// would have the caller's v1 cgroups (the host's) as its v1 roots, as
/// CLONE_INTO_CGROUP joins v2 only; pid 1 makes it once the parent has moved
/// it into the guest's v1 cgroups.
const CLONED_NAMESPACES: u64 = NAMESPACES & !ns::CGROUP;

/// What a context runs with: the privilege drop, the cgroup limits and the
/// addresses its sockets may use (None: the host's, unrestricted).
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub privileges: Privileges,
    pub limits: CgroupLimits,
    pub addresses: Option<Policy>,
}

/// The host side of one start or join: the guest's cgroup (pid 1 and every
/// joiner are created straight in its v2 leaf, `dir`, then added to its v1
/// ones), the prepared privilege drop, whether the kernel can scope
/// the guest's abstract unix sockets (`context::scope`), and for a new
/// guest with a user namespace (S_USERNS) the channel its idmapped root
/// goes to pid 1 on.
struct Host {
    cgroup: Cgroup,
    dir: OwnedFd,
    prepared: Prepared,
    scope: bool,
    userns: Option<Handoff>,
}

impl Setup {
    /// What a configured guest runs with: the guest ceiling (S_CAPS on top),
    /// S_FLAGS, ULIMIT without -u; a cgroup with pids.max from ULIMIT -u,
    /// else S_PIDS_MAX, else `DEFAULT_PIDS_MAX`, and S_MEMORY_MAX,
    /// S_CPU_WEIGHT and S_CPU_MAX.
    pub fn for_guest(guest: &crate::conf::GuestConfig) -> Self {
        let mut privileges = Privileges::for_guest(guest);
        // -u is the guest's pids.max instead (what the seed's nproc flag
        // asked for, now always). As RLIMIT_NPROC it would count every
        // process of the uid on the whole host, other guests' included.
        privileges
            .ulimit
            .limits
            .retain(|l| l.resource != Resource::Processes);
        let pids = CgroupLimits::pids_from_ulimit(&guest.ulimit)
            .or(guest.pids_max)
            .unwrap_or(LimitValue::Units(DEFAULT_PIDS_MAX));
        Setup {
            privileges,
            limits: CgroupLimits {
                pids_max: match pids {
                    LimitValue::Units(n) => Some(n),
                    LimitValue::Unlimited => None,
                },
                memory_max: guest.memory_max,
                cpu_weight: guest.cpu_weight,
                cpu_max: guest.cpu_max,
            },
            addresses: Policy::from_iproot(&guest.ip_root, guest.ip_root_mask, guest.ip_root_bcast),
        }
    }
}

impl Host {
    /// A joiner of the running guest whose pid 1 is `init`.
    fn new(cgroup: Cgroup, init: Pid, privileges: &Privileges) -> Result<Self> {
        let dir = cgroup.joiner_dir_fd(init)?;
        Ok(Host {
            cgroup,
            dir,
            prepared: privileges.prepare(),
            scope: scope::available(),
            userns: None,
        })
    }

    /// A new context's cgroup, before anything runs in it: the cgroup
    /// itself, the user id range of a user namespace (recorded in
    /// `record`), its ipv4root programs (freed with the cgroup).
    /// A failure removes the cgroup.
    fn for_new_context(
        cgroup: Cgroup,
        setup: &Setup,
        run: &RunDir,
        record: &mut ContextRecord,
    ) -> Result<Self> {
        // The range first: the bind programs let that root have low ports.
        let base = match setup.privileges.userns {
            true => userns::allocate(run, record).map(Some),
            false => Ok(None),
        };
        // The programs go on the directory above the leaf: they hold for
        // every cgroup below, the guest's own included.
        let attached = base.and_then(|base| match &setup.addresses {
            Some(policy) => cgroup.v2_dir_fd().and_then(|limits| {
                ipv4root::attach(limits.as_fd(), &policy.clone().with_root_uid(base))
            }),
            None => Ok(()),
        });
        let made = attached.and_then(|()| {
            let userns = setup.privileges.userns.then(Handoff::new).transpose()?;
            Ok((cgroup.leaf_dir_fd()?, userns))
        });
        let (dir, userns) = match made {
            Ok(made) => made,
            Err(e) => {
                let _ = cgroup.remove();
                return Err(e);
            }
        };
        Ok(Host {
            cgroup,
            dir,
            prepared: setup.privileges.prepare(),
            scope: scope::available(),
            userns,
        })
    }

    /// In the parent, once the child exists and before it runs: the v1
    /// hierarchies CLONE_INTO_CGROUP cannot reach.
    fn adopt(&self, pid: i32) -> Result<()> {
        let pid = Pid::from_raw(pid).ok_or_else(|| Error::failure("bad pid"))?;
        self.cgroup.add_process_v1(pid)
    }

    /// The namespaces clone3 makes for a new context: with a user
    /// namespace, that too, so that it owns all the others.
    fn cloned_namespaces(&self) -> u64 {
        match self.userns {
            Some(_) => CLONED_NAMESPACES | ns::USER,
            None => CLONED_NAMESPACES,
        }
    }

    /// In the parent, before pid 1 goes on: the host side of a user
    /// namespace, with the range `for_new_context` recorded (see `userns`).
    fn give_userns(&self, pid: i32, root: Option<&Path>, record: &ContextRecord) -> Result<()> {
        let Some(handoff) = &self.userns else {
            return Ok(());
        };
        let root = root.ok_or_else(|| Error::failure("a user namespace needs a guest root"))?;
        let base = record
            .userns
            .ok_or_else(|| Error::failure("no user id range for the guest"))?;
        handoff.prepare(pid, base, root, &self.cgroup.leaves()?)
    }

    /// In a guest's pid 1 before it starts anything (so the whole guest
    /// shares its domain), and in a joiner's child: the Landlock domain,
    /// while CAP_SYS_ADMIN still lets the kernel take it without
    /// no_new_privs. Each joiner's domain is a sibling of the guest's.
    fn enter_scope(&self) -> Result<()> {
        if !self.scope {
            return Ok(());
        }
        scope::restrict()
            .map_err(|e| Error::sys("cannot scope abstract unix sockets to the guest", e))
    }

    /// In the child, last thing before exec.
    fn before_exec(&self) -> Result<()> {
        self.prepared.apply().map_err(Error::from)
    }
}

/// What runs in a context once it is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entry<'a> {
    /// The program and its arguments; empty with `login` for the user's
    /// login shell.
    pub command: &'a [OsString],
    /// Run as this user of the guest (a name or number from the guest's own
    /// /etc/passwd); None stays root.
    pub user: Option<&'a str>,
    /// A login: the user's shell from /etc/passwd (as "-sh"), in the user's
    /// home, with HOME, SHELL, USER, LOGNAME set.
    pub login: bool,
    /// The environment of the command (and of the context's init); None
    /// keeps the caller's (chcontext on the host's own files).
    pub env: Option<&'a GuestEnv>,
    /// On a pseudo-terminal of the guest's own, relayed to the caller's
    /// (enter, exec -t); else on pipes (see `relay`).
    pub terminal: bool,
}

impl<'a> Entry<'a> {
    pub fn command(command: &'a [OsString]) -> Self {
        Entry {
            command,
            user: None,
            login: false,
            env: None,
            terminal: false,
        }
    }
}

pub struct NewContext<'a> {
    /// The context number; None takes a free dynamic one.
    pub number: Option<u32>,
    pub name: &'a str,
    /// The guest root to pivot into; None keeps the host's filesystem (with
    /// a procfs of the new pid namespace over /proc).
    pub root: Option<&'a Path>,
    /// The configuration root of the guest (None: no guest's), kept in the
    /// run state: NAME under another root is another guest.
    pub config_root: Option<&'a Path>,
    pub hostname: Option<&'a str>,
    pub domainname: &'a DomainName,
    pub flags: &'a ContextFlags,
    /// The context dies with the process that made it (chcontext).
    pub die_with_parent: bool,
    /// Pid 1 runs the guest's runlevel scripts (`vinit --rc`) instead of a
    /// command (which is then ignored); a guest without an init of its own.
    pub runlevels: bool,
    /// What pid 1 is: with the guest's own init, the command itself is pid
    /// 1 (no vinit above it); kept in the run state for the stop.
    pub init: InitKind,
    /// Regenerate the guest's /etc/mtab from its mounts (GENERATEMTAB).
    pub generate_mtab: bool,
    /// The context outlives its starter (vserver start): with a root, its
    /// init's stdio is the guest's /dev/console (`console`), never the
    /// starter's terminal or pipe, and the start waits until the runlevel
    /// scripts are done (or systemd has booted), at most `start_timeout`.
    pub detach: bool,
    /// How long a detached start waits for the runlevel scripts before it
    /// gives up and kills the context (S_START_TIMEOUT).
    pub start_timeout: Duration,
    pub entry: Entry<'a>,
}

/// How long a detached start waits for the guest's start scripts unless
/// S_START_TIMEOUT says otherwise.
pub const START_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a stop waits for the guest's own shutdown unless S_STOP_TIMEOUT
/// says otherwise: vinit's stop scripts plus its 5 s for the daemons left,
/// or a systemd shutdown, with room to spare.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Context 1, the spectator: the host's own view of every process.
pub const SPECTATOR: u32 = 1;

/// Runs `command` in the spectator context: no new namespace, the host's
/// view of every guest, only the privileges reduced. Returns only on failure.
pub fn run_spectator(command: &[OsString], privileges: &Privileges) -> Result<ExitCode> {
    privileges.prepare().apply()?;
    let Some((program, args)) = command.split_first() else {
        return Err(Error::usage("no command to run"));
    };
    let err = std::process::Command::new(program).args(args).exec();
    Err(Error::io(
        format!("cannot run {}", program.to_string_lossy()),
        &err,
    ))
}

/// Runs `command` on the host, born inside the cgroup `dir` (so the
/// cgroup's programs see its first socket), waits for it and returns its
/// exit status: chbind and the v_ services.
pub fn run_in_cgroup(dir: BorrowedFd<'_>, command: &[OsString]) -> Result<ExitCode> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::usage("no command to run"));
    };
    let one = single_threaded().context(|| "cannot start a command from a threaded process")?;
    let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC).context(|| "cannot create a pipe")?;
    match clone_process(&one, 0, Some(dir)).context(|| "cannot start the command")? {
        Forked::Child => {
            drop(err_read);
            let err = std::process::Command::new(program).args(args).exec();
            let e = Error::io(format!("cannot run {}", program.to_string_lossy()), &err);
            fail(&err_write, &e)
        }
        Forked::Parent { pid, pidfd } => {
            drop(err_write);
            if let Some(e) = read_failure(err_read) {
                let _ = wait_for(pid);
                return Err(e);
            }
            relay::wait(pid, &pidfd, Forward::JoinedCommand, None)
        }
    }
}

/// A command's exit status, as a shell reports it.
pub type ExitCode = u8;

/// Creates a context, runs `spec.command` as its main process, waits for it
/// and removes the context (its processes, cgroup and run state). `started`
/// is called with the context number once the command runs.
pub fn run_new(spec: &NewContext<'_>, setup: &Setup, started: &dyn Fn(u32)) -> Result<ExitCode> {
    let run = RunDir::from_env();
    let mut record = run.claim(spec.number, claim_for(spec))?;
    record.cgroup = cgroup_name(spec, &record);
    let result = Cgroup::create(&record.cgroup, &setup.limits).and_then(|cgroup| {
        let host = Host::for_new_context(cgroup, setup, &run, &mut record)?;
        let code = start_and_wait(spec, &host, &run, &mut record, started);
        // pid 1 has ended, so the kernel is ending the rest: make sure, and
        // remove the cgroup.
        let removed = host.cgroup.remove();
        let code = code?;
        removed.map(|()| code)
    });
    let removed = run.remove(record.number);
    let code = result?;
    removed?;
    Ok(code)
}

fn start_and_wait(
    spec: &NewContext<'_>,
    host: &Host,
    run: &RunDir,
    record: &mut ContextRecord,
    started: &dyn Fn(u32),
) -> Result<ExitCode> {
    // A command in a guest root is the guest's: it gets none of the
    // caller's descriptors.
    let (to_guest, from_guest) = match spec.root {
        Some(_) => {
            let (guest, host) = relay::link(spec.entry.terminal)?;
            (Some(guest), Some(host))
        }
        None => (None, None),
    };
    let Launched { pid, pidfd, .. } = launch(spec, host, run, record, to_guest)?;
    started(record.number);
    relay::wait(pid, &pidfd, Forward::Context, from_guest)
}

/// Makes the context and waits until its command (or init) runs and it is
/// published in the run state; `stdio`: the command's standard descriptors
/// (None: pid 1's). On failure the context is killed.
fn launch(
    spec: &NewContext<'_>,
    host: &Host,
    run: &RunDir,
    record: &mut ContextRecord,
    stdio: Option<GuestEnd>,
) -> Result<Launched> {
    let (go_read, go_write) = pipe_with(PipeFlags::CLOEXEC).context(|| "cannot create a pipe")?;
    let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC).context(|| "cannot create a pipe")?;
    // A detached guest's /dev/console: pid 1 sends the master.
    let (console_child, console_parent) = match (spec.detach, spec.root) {
        (true, Some(_)) => {
            let (sender, receiver) = fdpass::channel(CONSOLE)?;
            (Some(sender), Some(receiver))
        }
        _ => (None, None),
    };
    // How a detached start learns that the guest is up: vinit writes a
    // byte on a pipe and closes it once the runlevel scripts are done;
    // systemd says READY=1 on a socket pid 1 hands over.
    let (ready_child, ready_parent) = match (spec.detach, spec.runlevels, spec.init) {
        (true, true, _) => {
            let (r, w) = pipe_with(PipeFlags::CLOEXEC).context(|| "cannot create a pipe")?;
            (Some(Ready::Vinit(w)), Some(ReadyWait::Vinit(r)))
        }
        (true, false, InitKind::Systemd) => {
            let (sender, receiver) = fdpass::channel(NOTIFY_SOCKET)?;
            (
                Some(Ready::Systemd(sender)),
                Some(ReadyWait::Systemd(receiver)),
            )
        }
        _ => (None, None),
    };
    let one = single_threaded().context(|| "cannot create a context from a threaded process")?;
    let (pid, pidfd) = match clone_process(&one, host.cloned_namespaces(), Some(host.dir.as_fd()))
        .context(|| format!("cannot create context {}", record.number))?
    {
        Forked::Child => {
            drop((go_write, err_read, ready_parent, console_parent));
            let ends = PidOneEnds {
                go: go_read,
                err: err_write,
                ready: ready_child,
                console: console_child,
            };
            context_init(spec, host, &one, ends, stdio)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop((go_read, err_write, stdio, ready_child, console_child));
    let mut keeper = None;

    let host_side = (|| {
        host.adopt(pid)?;
        host.give_userns(pid, spec.root, record)?;
        let mut go = std::fs::File::from(go_write);
        go.write_all(b"g").context(|| "cannot start the context")
    })();
    let failure = match host_side {
        Err(e) => Some(e),
        // EOF: the command and vinit were exec'd (their copies close on
        // exec); bytes: an error message from the child.
        Ok(()) => read_failure(err_read),
    };
    // Only a context that is fully set up is published: a tool that joined
    // earlier would find the mounts half made.
    let failure = failure
        .or_else(|| {
            // Sent before the exec, which is behind us now.
            let master = console_parent?.receive(CONSOLE);
            match master.and_then(|m| Keeper::new(m, run, &record.name)) {
                Ok(k) => {
                    keeper = Some(k);
                    None
                }
                Err(e) => Some(e),
            }
        })
        .or_else(|| {
            record.init_pid = pid;
            record.init_start = runstate::start_time(pid).unwrap_or(0);
            run.update(record).err()
        })
        .or_else(|| match ready_parent? {
            ReadyWait::Vinit(pipe) => wait_ready(pipe, spec.start_timeout, keeper.as_mut()).err(),
            // Sent before the exec, which is behind us now.
            ReadyWait::Systemd(receiver) => receiver
                .receive(NOTIFY_SOCKET)
                .and_then(|socket| {
                    notify::wait_ready(&socket, pidfd.as_fd(), spec.start_timeout, keeper.as_mut())
                })
                .err(),
        });
    if let Some(e) = failure {
        let _ = rustix::process::pidfd_send_signal(&pidfd, Signal::KILL);
        let _ = wait_for(pid);
        return Err(e);
    }
    Ok(Launched {
        pid,
        pidfd,
        console: keeper,
    })
}

/// A context made by `launch`: its pid 1, and the host's end of its
/// console (detached guests).
struct Launched {
    pid: i32,
    pidfd: OwnedFd,
    console: Option<Keeper>,
}

/// What pid 1 gets from `launch`: the go pipe, the error pipe, its end of
/// the readiness signal and of the console channel.
struct PidOneEnds {
    go: OwnedFd,
    err: OwnedFd,
    ready: Option<Ready>,
    console: Option<fdpass::FdSender>,
}

/// What the console channel carries, for its errors.
const CONSOLE: &str = "the guest's console";

/// Pid 1's end of the start's readiness signal.
enum Ready {
    /// vinit's pipe (see `wait_ready`).
    Vinit(OwnedFd),
    /// Where pid 1 sends the socket systemd notifies (see `notify`).
    Systemd(fdpass::FdSender),
}

/// The starter's end of it.
enum ReadyWait {
    Vinit(OwnedFd),
    Systemd(fdpass::FdReceiver),
}

/// What the systemd readiness channel carries, for its errors.
const NOTIFY_SOCKET: &str = "systemd's notify socket";

/// Waits until vinit says on the readiness pipe that the start scripts are
/// done, at most `timeout`: a start script that never ends must not hold
/// the starter (and the boot-time `vservers start`). The pipe closed with
/// nothing said is a vinit that died.
fn wait_ready(ready: OwnedFd, timeout: Duration, mut keeper: Option<&mut Keeper>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    let mut said = false;
    loop {
        let input = console::wait_input(&[ready.as_fd()], deadline, keeper.as_deref_mut())?;
        if !input[0] {
            return Err(Error::failure(format!(
                "the guest's start scripts did not finish within {} s (S_START_TIMEOUT): the guest was stopped",
                timeout.as_secs()
            )));
        }
        match rustix::io::read(&ready, &mut buf) {
            Ok(0) if said => return Ok(()),
            Ok(0) => {
                return Err(Error::failure(
                    "the guest's init (vinit) ended before its start scripts were done (see `vserver NAME log`)",
                ));
            }
            Ok(_) => said = true,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(e) => return Err(e).context(|| "cannot wait for the guest's start scripts"),
        }
    }
}

/// The per-guest monitor's command (an argument vector, the applet name
/// first, run as this very binary on the host), to which the monitor adds
/// `restart` when the guest's pid 1 ends by SIGHUP (reboot(2) with
/// LINUX_REBOOT_CMD_RESTART) or with status 129 (vinit after a reboot
/// inside the guest), and `stop` when it ends by SIGINT (CMD_HALT,
/// CMD_POWER_OFF) or with status 130.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub command: Vec<OsString>,
}

/// Starts a context that outlives the caller (vserver start): returns its
/// run-state record once its init runs. A failure leaves nothing behind.
///
/// With `monitor`, the context is made by a monitor process forked first:
/// it becomes the parent of the context's pid 1 and stays, outside the
/// guest (in the caller's cgroup, its own session, stdio on /dev/null,
/// not dumpable), waiting for pid 1 to end; see `monitor`.
pub fn start_detached(
    spec: &NewContext<'_>,
    setup: &Setup,
    monitor: Option<&Monitor>,
) -> Result<ContextRecord> {
    let run = RunDir::from_env();
    let mut record = run.claim(spec.number, claim_for(spec))?;
    record.cgroup = cgroup_name(spec, &record);
    let launch_here = |record: &mut ContextRecord| {
        Cgroup::create(&record.cgroup, &setup.limits).and_then(|cgroup| {
            let host = Host::for_new_context(cgroup, setup, &run, record)?;
            launch(spec, &host, &run, record, None).inspect_err(|_| {
                let _ = host.cgroup.remove();
            })
        })
    };
    let Some(monitor) = monitor else {
        return match launch_here(&mut record) {
            Ok(_) => Ok(record),
            Err(e) => {
                let _ = run.remove(record.number);
                Err(e)
            }
        };
    };
    let number = record.number;
    let failed = |e: Error| {
        let _ = run.remove(number);
        Err(e)
    };
    let forked = (|| {
        let one = single_threaded().context(|| "cannot start a monitor from a threaded process")?;
        let (err_read, err_write) =
            pipe_with(PipeFlags::CLOEXEC).context(|| "cannot create a pipe")?;
        let forked = clone_process(&one, 0, None).context(|| "cannot start the guest's monitor")?;
        Ok((forked, err_read, err_write))
    })();
    let (forked, err_read, err_write) = match forked {
        Ok(f) => f,
        Err(e) => return failed(e),
    };
    match forked {
        Forked::Child => {
            drop(err_read);
            if let Err(e) = become_monitor() {
                fail(&err_write, &e)
            }
            match launch_here(&mut record) {
                Ok(launched) => {
                    drop((err_write, launched.pidfd));
                    exec_monitor(
                        launched.pid,
                        record.number,
                        &monitor.command,
                        launched.console,
                    )
                }
                Err(e) => fail(&err_write, &e),
            }
        }
        Forked::Parent { pid, .. } => {
            drop(err_write);
            if let Some(e) = read_failure(err_read) {
                let _ = wait_for(pid);
                return failed(e);
            }
            match run.read(record.number)? {
                Some(r) => Ok(r),
                None => Err(Error::failure(format!(
                    "context {} ended as soon as it started",
                    record.number
                ))),
            }
        }
    }
}

/// The monitor's own setup, before it makes the context: no core dumps or
/// ptrace, out of the caller's session (a hangup of its terminal does not
/// reach it), stdio on /dev/null (the caller's pipes and terminal close
/// when the caller ends).
fn become_monitor() -> Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context(|| "cannot make the monitor non-dumpable")?;
    let _ = rustix::process::setsid();
    relay::standard_to_null()?;
    let _ = rustix::thread::set_name(c"vsbox-monitor");
    Ok(())
}

/// The monitor goes on as a fresh `vinit --monitor` (small, and with
/// none of the descriptors the caller let it inherit): pid 1 stays its
/// child across the exec.
fn exec_monitor(pid: i32, number: u32, command: &[OsString], console: Option<Keeper>) -> ! {
    let _ = cloexec_from(3);
    // Keeps no directory of the caller's busy.
    let _ = rustix::process::chdir("/");
    let master = console.map(Keeper::into_master);
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0("vinit")
        .arg("--monitor")
        .arg(pid.to_string())
        .arg("--context")
        .arg(number.to_string());
    if let Some(m) = master
        .as_ref()
        .filter(|m| keep_across_exec(m.as_fd()).is_ok())
    {
        cmd.arg("--console-fd").arg(m.as_raw_fd().to_string());
    }
    let _ = cmd.arg("--").args(command).exec();
    // No exec: monitor from here.
    monitor(pid, number, command, master.map(|m| m.as_raw_fd()))
}

/// `vinit --monitor PID --context N -- COMMAND...`: waits for the guest's
/// pid 1 (a child of this process) to end. When it ended by a reboot
/// inside the guest (SIGHUP or status 129: restart; SIGINT or status 130:
/// halt) and no host stop is under way (the run state's stop marker), it
/// becomes COMMAND with `restart` or `stop` added; otherwise it exits (a
/// host stop cleans up by itself). With `console` (the master of the
/// guest's /dev/console, an inherited descriptor), it keeps the guest's
/// console meanwhile (`console::serve`).
pub fn monitor(pid: i32, number: u32, command: &[OsString], console: Option<i32>) -> ! {
    use rustix::process::{WaitId, WaitIdOptions};
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let _ = rustix::thread::set_name(c"vsbox-monitor");
    let Some(child) = Pid::from_raw(pid) else {
        std::process::exit(2)
    };
    if let Some(master) = console.and_then(crate::sys::process::take_inherited_fd) {
        serve_console(master, pid, number);
    }
    // Look without reaping: a stopper waits for pid 1 to be gone before it
    // removes the stop marker, so the marker is still there to be seen.
    let status = loop {
        match rustix::process::waitid(
            WaitId::Pid(child),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Ok(Some(status)) => break Some(status),
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break None,
        }
    };
    let code = status.map(|s| match (s.exit_status(), s.terminating_signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => 1,
    });
    let asked_by_host = RunDir::from_env().stopping(number);
    let _ = wait_for(pid);
    let action = match code {
        _ if asked_by_host => std::process::exit(0),
        Some(129) => "restart",
        Some(130) => "stop",
        _ => std::process::exit(0),
    };
    let Some((applet, args)) = command.split_first() else {
        std::process::exit(0)
    };
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(applet)
        .args(args)
        .arg(action)
        .exec();
    eprintln!(
        "vinit --monitor: cannot run {}: {err}",
        applet.to_string_lossy()
    );
    std::process::exit(127)
}

/// The guest's console until its pid 1 ends; on any failure the monitor
/// goes on without it (the guest then writes to a console nobody reads,
/// which blocks it only once the terminal's buffer is full).
fn serve_console(master: OwnedFd, pid: i32, number: u32) {
    let run = RunDir::from_env();
    let Ok(Some(record)) = run.read(number) else {
        return;
    };
    let pidfd = Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let (Some(pidfd), Ok(keeper)) = (pidfd, Keeper::new(master, &run, &record.name)) else {
        return;
    };
    if let Err(e) = console::serve(keeper, &run, &record.name, pidfd.as_fd()) {
        eprintln!("{}", e.report("vinit --monitor"));
    }
}

/// What `stop` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Init ended within the grace time.
    Cleanly,
    /// The grace time passed: every process left was killed.
    Killed,
}

/// Stops context `record`: `request` (its init's own shutdown signal, see
/// `InitKind::halt_signal`; None: the caller has asked already) to its
/// init, `grace` for it to end, then every process left in its cgroup is
/// killed; the cgroup and the run state are removed.
pub fn stop(
    record: &ContextRecord,
    request: Option<Signal>,
    grace: std::time::Duration,
) -> Result<Stopped> {
    let run = RunDir::from_env();
    let alive = || runstate::start_time(record.init_pid) == Some(record.init_start);
    // Before init is told: its monitor must not take its end for a reboot.
    run.mark_stopping(record.number)?;
    if let Some(pid) = Pid::from_raw(record.init_pid).filter(|_| alive()) {
        if let Ok(pidfd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            if let Some(signal) = request.filter(|_| alive()) {
                let _ = rustix::process::pidfd_send_signal(&pidfd, signal);
            }
        }
    }
    let deadline = std::time::Instant::now() + grace;
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let outcome = if alive() {
        Stopped::Killed
    } else {
        Stopped::Cleanly
    };
    // Ended counts a zombie (the host's init may be slow to reap an
    // orphan), but the guest's monitor reads the stop marker before it
    // reaps its pid 1: the marker stays until then, else the monitor would
    // take this stop for a reboot. At most a moment when the monitor is
    // there, the host init's reaping delay when it is not.
    let reap_deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while outcome == Stopped::Cleanly
        && Path::new(&format!("/proc/{}", record.init_pid)).exists()
        && std::time::Instant::now() < reap_deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    match Cgroup::open(&record.cgroup) {
        Ok(cgroup) => cgroup.remove()?,
        Err(e) if e.errno().and_then(|n| n.name()) == Some("ENOENT") => {}
        Err(e) => return Err(e),
    }
    run.remove(record.number)?;
    Ok(outcome)
}

fn claim_for(spec: &NewContext<'_>) -> ContextRecord {
    ContextRecord {
        number: 0,
        name: spec.name.to_string(),
        cgroup: String::new(),
        init_pid: 0,
        init_start: 0,
        owner_pid: std::process::id() as i32,
        flags: spec.flags.to_string(),
        init: spec.init.name().to_string(),
        // A directory that cannot be looked at fails the start later.
        root: spec.root.and_then(|p| FileId::of(p).ok()),
        config_root: spec.config_root.and_then(|p| FileId::of(p).ok()),
        // Allocated once the context's pid 1 exists (`Host::give_userns`).
        userns: None,
    }
}

/// A guest's cgroup is named after the guest; an anonymous context's after
/// its number.
fn cgroup_name(spec: &NewContext<'_>, record: &ContextRecord) -> String {
    if spec.name.is_empty() {
        format!("ctx{}", record.number)
    } else {
        spec.name.to_string()
    }
}

/// Reads the child's error pipe to its end: None if it closed with nothing
/// said.
fn read_failure(pipe: OwnedFd) -> Option<Error> {
    let mut bytes = Vec::new();
    let _ = std::fs::File::from(pipe).read_to_end(&mut bytes);
    let (status, message) = bytes.split_first()?;
    Some(Error::reported(
        *status,
        String::from_utf8_lossy(message).into_owned(),
    ))
}

/// The exit status of `pid`, which has ended (or is killed and ends).
pub(super) fn wait_for(pid: i32) -> Result<ExitCode> {
    let pid = Pid::from_raw(pid).ok_or_else(|| Error::failure("bad pid"))?;
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(init::exit_code(status)),
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).context(|| "cannot wait for the context"),
        }
    }
}

/// Pid 1 of a new context. Never returns: it supervises the command, or
/// reports why it could not start it and exits.
fn context_init(
    spec: &NewContext<'_>,
    host: &Host,
    one: &SingleThreaded,
    ends: PidOneEnds,
    stdio: Option<GuestEnd>,
) -> ! {
    let PidOneEnds {
        go,
        err,
        ready,
        console,
    } = ends;
    let mut byte = [0u8; 1];
    // No byte: the parent gave up (or died) before starting us.
    if !matches!(std::fs::File::from(go).read(&mut byte), Ok(1)) {
        std::process::exit(1);
    }
    let setup = (|| {
        // The cgroup namespace only now, once the host side has moved this
        // process into its v1 cgroups: its root is then the guest's leaf in
        // every hierarchy.
        unshare_namespaces(ns::CGROUP).context(|| "cannot create the cgroup namespace")?;
        // Its own session and process group: nothing in the guest shares
        // one with a host process (the monitor, the caller), so kill(0) and
        // kill(-pgrp) in the guest reach only the guest.
        new_session()?;
        if spec.die_with_parent {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                .context(|| "cannot tie the context to its parent")?;
        }
        // Nothing the caller left open may reach the guest.
        cloexec_from(3).context(|| "cannot mark inherited descriptors close-on-exec")?;
        if spec.detach {
            // Nor its stdio, until the console below takes it over.
            relay::standard_to_null()?;
        }
        // Before anything of the guest is reachable: no dumping, no ptrace
        // by guest root, and a sealed copy of ourselves to live on.
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .context(|| "cannot make the context's pid 1 non-dumpable")?;
        let sealed = SealedBinary::of_self()?;
        host.enter_scope()?;
        set_names(spec)?;
        mounts::make_private()?;
        if let Some(root) = spec.root {
            let sys = match host.userns.as_ref() {
                Some(handoff) => {
                    // Taken while the host's /dev is in reach; the masks
                    // too, since procfs is mounted before the pivot there.
                    let devices = mounts::HostDevices::take()?;
                    let masks = mounts::Masks::take()?;
                    let trees = handoff.enter()?;
                    mounts::pivot_into_idmapped(root, trees.root, masks)?;
                    mounts::mount_dev(Some(devices))?;
                    Some(trees.sys)
                }
                None => {
                    mounts::pivot_into(root)?;
                    // The guest's own /dev first: the /proc masks are its
                    // /dev/null.
                    mounts::mount_dev(None)?;
                    mounts::mount_proc("/proc", mounts::Masks::take()?)?;
                    None
                }
            };
            mounts::mount_run_and_sys(sys)?;
            if spec.generate_mtab {
                mounts::generate_mtab();
            }
            // The console, the init's stdio from now on, held by the host.
            if let Some(sender) = console {
                sender.send(&console::make_in_guest()?, CONSOLE)?;
            }
        } else {
            mounts::mount_proc("/proc", mounts::Masks::take()?)?;
        }
        // Once the guest's devpts is there: a terminal is made in it.
        let connected = stdio.map(GuestEnd::connect).transpose()?;
        if let Some(Ready::Systemd(sender)) = &ready {
            sender.send(&notify::bind_in_guest()?, NOTIFY_SOCKET)?;
        }
        Ok((sealed, connected))
    })();
    let (sealed, connected) = match setup {
        Ok(s) => s,
        Err(e) => fail(&err, &e),
    };

    // A guest without init of its own: vinit runs its runlevel scripts.
    if spec.runlevels {
        let mut args = vec!["--rc".to_string()];
        if let Some(Ready::Vinit(fd)) = &ready {
            if let Err(e) = keep_across_exec(fd.as_fd()) {
                fail(&err, &Error::sys("cannot hand on the readiness pipe", e));
            }
            args.extend(["--ready-fd".to_string(), fd.as_raw_fd().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let e = host
            .before_exec()
            .err()
            .unwrap_or_else(|| exec_vinit(&sealed, &args, spec.entry.env));
        fail(&err, &e)
    }
    // The guest's own init (the command) is pid 1 itself.
    if spec.init.is_guest_init() {
        drop(sealed);
        let e = exec_entry(&spec.entry, host, connected.as_ref());
        fail(&err, &e)
    }
    // The command waits until vinit has made itself non-dumpable again
    // after its exec (it closes `released` then): until that, the guest's
    // first process could read or trace pid 1.
    let (hold, released) = match pipe_with(PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => fail(&err, &Error::sys("cannot create a pipe", e.into())),
    };
    let unblocked = init::block_signals();
    match clone_process(one, 0, None) {
        Ok(Forked::Child) => {
            let _ = signal::set_mask(unblocked);
            drop(released);
            let _ = std::fs::File::from(hold).read(&mut [0u8; 1]);
            let e = exec_entry(&spec.entry, host, connected.as_ref());
            fail(&err, &e)
        }
        Ok(Forked::Parent { pid, .. }) => {
            drop(hold);
            // Pid 1 goes on as the sealed copy, as weak as the guest.
            let main = pid.to_string();
            let released_fd = released.as_raw_fd().to_string();
            let e = keep_across_exec(released.as_fd())
                .map_err(|e| Error::sys("cannot hand on the release pipe", e))
                .and_then(|()| host.before_exec())
                .err()
                .unwrap_or_else(|| {
                    exec_vinit(
                        &sealed,
                        &["--supervise", &main, "--ready-fd", &released_fd],
                        spec.entry.env,
                    )
                });
            // The command runs already: take it down with us.
            let _ = rustix::process::kill_process(Pid::from_raw(pid).unwrap(), Signal::KILL);
            fail(&err, &e)
        }
        Err(e) => fail(&err, &Error::sys("cannot start the command", e)),
    }
}

fn set_names(spec: &NewContext<'_>) -> Result<()> {
    if let Some(h) = spec.hostname {
        rustix::system::sethostname(h.as_bytes())
            .context(|| format!("cannot set the host name to {h}"))?;
    }
    match spec.domainname {
        DomainName::Host => Ok(()),
        DomainName::None => {
            rustix::system::setdomainname(b"").context(|| "cannot clear the NIS domain name")
        }
        DomainName::Name(d) => rustix::system::setdomainname(d.as_bytes())
            .context(|| format!("cannot set the NIS domain name to {d}")),
    }
}

/// Makes the calling process the leader of a new session and process
/// group, unless it already leads its session (a context's pid 1 running
/// the guest's own init).
fn new_session() -> Result<()> {
    match rustix::process::setsid() {
        Ok(_) => Ok(()),
        Err(rustix::io::Errno::PERM)
            if rustix::process::getsid(None).ok() == Some(rustix::process::getpid()) =>
        {
            Ok(())
        }
        Err(e) => Err(e).context(|| "cannot start a new session"),
    }
}

/// Drops privileges, becomes the entry's user, and execs; returns only on
/// failure. Runs inside the guest, so the user comes from its own files.
/// The command leads a session of its own (see `new_session`).
/// `connected`: the standard descriptors were replaced by the command's.
fn exec_entry(entry: &Entry<'_>, host: &Host, connected: Option<&Connected>) -> Error {
    if let Err(e) = new_session() {
        return e;
    }
    let user = match (entry.user, entry.login) {
        (None, false) => None,
        (name, _) => match GuestUser::lookup(name.unwrap_or("root")) {
            Ok(u) => Some(u),
            Err(e) => return e,
        },
    };
    if let Err(e) = host.before_exec() {
        return e;
    }
    let mut cmd = match (entry.command.split_first(), &user) {
        (Some((program, args)), _) => {
            let mut c = std::process::Command::new(program);
            c.args(args);
            c
        }
        (None, Some(u)) if entry.login => {
            let mut c = std::process::Command::new(&u.shell);
            let base = u.shell.rsplit('/').next().unwrap_or("sh");
            c.arg0(format!("-{base}"));
            c
        }
        (None, _) => return Error::usage("no command to run"),
    };
    if let Some(env) = entry.env {
        env.apply(&mut cmd);
    }
    if let Some(u) = &user {
        cmd.env("HOME", &u.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .env("SHELL", &u.shell);
        if entry.login {
            cmd.current_dir(if Path::new(&u.home).is_dir() {
                u.home.as_str()
            } else {
                "/"
            });
        }
        if let Err(e) = u.switch_to() {
            return e;
        }
    }
    if let Some(Err(e)) = connected.map(Connected::before_exec) {
        return e;
    }
    let err = cmd.exec();
    Error::not_run(
        format!("cannot run {}", cmd.get_program().to_string_lossy()),
        &err,
    )
}

/// Replaces pid 1 with the sealed copy of vsbox running vinit with `args`.
/// Returns only on failure.
fn exec_vinit(sealed: &SealedBinary, args: &[&str], env: Option<&GuestEnv>) -> Error {
    let mut cmd = std::process::Command::new(sealed.exec_path());
    cmd.arg0("vinit").args(args);
    if let Some(env) = env {
        env.apply(&mut cmd);
    }
    let err = cmd.exec();
    Error::io("cannot start the context's init", &err)
}

/// Sends the error to the parent and exits: the parent cleans up.
fn fail(pipe: &OwnedFd, e: &Error) -> ! {
    // Its exit status first, then the message, in one write.
    let mut report = vec![e.exit_status()];
    report.extend_from_slice(e.to_string().as_bytes());
    let _ = rustix::io::write(pipe, &report);
    std::process::exit(127)
}

/// Runs `entry` inside the running context `number` with `privileges`,
/// waits for it and returns its exit status. With `generate_mtab` the
/// guest's /etc/mtab is regenerated first (GENERATEMTAB).
pub fn run_in(
    number: u32,
    entry: &Entry<'_>,
    privileges: &Privileges,
    generate_mtab: bool,
) -> Result<ExitCode> {
    let run = RunDir::from_env();
    let record = run
        .read(number)?
        .ok_or_else(|| Error::failure(format!("context {number} is not running")))?;
    let flags = ContextFlags::parse(&record.flags).unwrap_or_default();
    if flags.contains(ContextFlag::Private) {
        return Err(Error::failure(format!(
            "context {number} is private: it cannot be entered"
        )));
    }
    let pid = Pid::from_raw(record.init_pid)
        .ok_or_else(|| Error::failure(format!("context {number} is starting")))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .context(|| format!("cannot open pid {pid} of context {number}"))?;
    // The pid could have been reused between reading the record and opening
    // the pidfd: check the start time once the pidfd pins the process.
    if runstate::start_time(record.init_pid) != Some(record.init_start) {
        return Err(Error::failure(format!("context {number} is not running")));
    }
    let userns = record.userns.is_some();
    let host = Host::new(
        Cgroup::open(&record.cgroup)?,
        pid,
        &privileges.in_userns(userns),
    )?;
    let one = single_threaded().context(|| "cannot enter a context from a threaded process")?;
    // The child is vsbox until it execs, inside the guest: keep guest root
    // away from its /proc entries (exe, mem, fd).
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context(|| "cannot make this process non-dumpable")?;
    // Made on the host, before the join: the pipes (or the terminal's
    // socket) and the /dev/null on a standard descriptor the caller closed.
    let (to_guest, from_guest) = relay::link(entry.terminal)?;
    join(pidfd.as_fd(), number)?;
    let (go_read, go_write) = pipe_with(PipeFlags::CLOEXEC).context(|| "cannot create a pipe")?;
    let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC).context(|| "cannot create a pipe")?;
    match clone_process(&one, 0, Some(host.dir.as_fd()))
        .context(|| format!("cannot enter context {number}"))?
    {
        Forked::Child => {
            drop((go_write, err_read, from_guest));
            let mut byte = [0u8; 1];
            if !matches!(std::fs::File::from(go_read).read(&mut byte), Ok(1)) {
                std::process::exit(1);
            }
            // Only now, in the guest's cgroup (the clone into it was made
            // with the host's credentials, which may move a process there).
            if let Err(e) = userns.then(|| userns::enter(pidfd.as_fd())).transpose() {
                fail(&err_write, &e);
            }
            if let Err(e) = cloexec_from(3) {
                fail(
                    &err_write,
                    &Error::sys("cannot mark inherited descriptors close-on-exec", e),
                );
            }
            let connected = match to_guest.connect() {
                Ok(c) => c,
                Err(e) => fail(&err_write, &e),
            };
            if generate_mtab {
                mounts::generate_mtab();
            }
            if let Err(e) = host.enter_scope() {
                fail(&err_write, &e);
            }
            let e = exec_entry(entry, &host, Some(&connected));
            fail(&err_write, &e)
        }
        Forked::Parent { pid, pidfd } => {
            drop((go_read, err_write, to_guest));
            let started = host.adopt(pid).and_then(|()| {
                std::fs::File::from(go_write)
                    .write_all(b"g")
                    .context(|| "cannot start the command")
            });
            if let Some(e) = started.err().or_else(|| read_failure(err_read)) {
                let _ = rustix::process::kill_process(Pid::from_raw(pid).unwrap(), Signal::KILL);
                let _ = wait_for(pid);
                return Err(e);
            }
            relay::wait(pid, &pidfd, Forward::JoinedCommand, Some(from_guest))
        }
    }
}

/// `run_in` from a child process, for a caller that goes on on the host
/// afterwards: run_in joins the context's namespaces in the calling
/// process, after which host paths no longer resolve.
pub fn run_in_child(number: u32, entry: &Entry<'_>, privileges: &Privileges) -> Result<ExitCode> {
    let one = single_threaded().context(|| "cannot fork from a threaded process")?;
    match clone_process(&one, 0, None).context(|| format!("cannot enter context {number}"))? {
        Forked::Child => {
            let code = match run_in(number, entry, privileges, false) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("{}", e.report("vserver"));
                    125
                }
            };
            std::process::exit(code.into())
        }
        Forked::Parent { pid, .. } => wait_for(pid),
    }
}

/// Joins every namespace of the context whose pid 1 is `pidfd` but its user
/// namespace, if it has one (the joiner's child enters it: `userns::enter`).
/// setns of
/// the mount namespace also moves root and working directory to the
/// context's root: the cwd is never left outside it.
fn join(pidfd: BorrowedFd<'_>, number: u32) -> Result<()> {
    setns_pidfd(pidfd, NAMESPACES)
        .context(|| format!("cannot enter the namespaces of context {number}"))?;
    rustix::process::chdir("/").context(|| format!("cannot change to the root of context {number}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::GuestConfig;
    use crate::conf::vars::Variables;

    fn guest(assignments: &[(&str, &str)]) -> GuestConfig {
        let mut vars = Variables::default();
        for (k, v) in assignments {
            vars.fix(k, v, "test");
        }
        GuestConfig::from_vars("g", None, vars).unwrap()
    }

    #[test]
    fn ulimit_u_is_the_guest_wide_pids_max_never_rlimit_nproc() {
        let no_nproc = |s: &Setup| {
            s.privileges
                .ulimit
                .limits
                .iter()
                .all(|l| l.resource != Resource::Processes)
        };
        for flags in ["nproc", ""] {
            let s = Setup::for_guest(&guest(&[
                ("S_FLAGS", flags),
                ("ULIMIT", "-HS -u 50 -n 100"),
                ("S_PIDS_MAX", "70"),
            ]));
            assert_eq!(s.limits.pids_max, Some(50), "{flags:?}");
            assert!(no_nproc(&s));
            assert_eq!(s.privileges.ulimit.limits.len(), 1);
        }
        let s = Setup::for_guest(&guest(&[("ULIMIT", "-u unlimited"), ("S_PIDS_MAX", "70")]));
        assert_eq!(s.limits.pids_max, None);
        assert!(no_nproc(&s));
        let s = Setup::for_guest(&guest(&[("S_PIDS_MAX", "70")]));
        assert_eq!(s.limits.pids_max, Some(70));
        let s = Setup::for_guest(&guest(&[("S_PIDS_MAX", "max")]));
        assert_eq!(s.limits.pids_max, None);
        let s = Setup::for_guest(&guest(&[]));
        assert_eq!(s.limits.pids_max, Some(DEFAULT_PIDS_MAX));
    }

    #[test]
    fn guests_get_the_secure_ceiling_and_their_limits() {
        let s = Setup::for_guest(&guest(&[
            ("S_MEMORY_MAX", "64M"),
            ("S_CPU_WEIGHT", "50"),
            ("S_CPU_MAX", "25%"),
        ]));
        assert!(s.privileges.secure);
        assert_eq!(s.limits.memory_max, Some(64 << 20));
        assert_eq!(s.limits.cpu_weight, Some(50));
        assert_eq!(s.limits.cpu_max, Some((25_000, 100_000)));
    }

    #[test]
    fn guests_keep_sys_boot_unless_their_s_caps_removes_it() {
        let sys_boot = 1u64 << 22;
        let secure = Setup::for_guest(&guest(&[])).privileges;
        assert_eq!(
            secure.ceiling(),
            crate::context::privileges::secure_ceiling() | sys_boot
        );
        let without = Setup::for_guest(&guest(&[("S_CAPS", "!CAP_SYS_BOOT")])).privileges;
        assert_eq!(without.ceiling() & sys_boot, 0);
        // reducecap and chcontext --secure: the ceiling without it.
        assert_eq!(crate::context::privileges::secure_ceiling() & sys_boot, 0);
    }
}
