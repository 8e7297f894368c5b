//! One guest's lifecycle: start, stop, status, and running commands in it
//! (exec, enter, suexec, service), with the companion script's phases and
//! the active profile remembered while it runs (seed 0.22).

use std::ffi::{OsStr, OsString};

use super::companion::{self, Phase};
use crate::conf::{self, ConfigRoot, GuestConfig};
use crate::context::cgroup::Cgroup;
use crate::context::environment::GuestEnv;
use crate::context::flags::ContextFlag;
use crate::context::initkind::InitKind;
use crate::context::runstate::{self, ContextRecord, FileId, RunDir};
use crate::context::spawn::{self, Entry, ExitCode, NewContext, Setup, Stopped};
use crate::context::vroot::check_vservers_root;
use crate::error::Context;
use crate::unify::guestfs::GuestFs;
use crate::{Error, Result};

/// Options of the vserver command that change how it talks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub silent: bool,
    pub verbose: bool,
    /// Leave network devices alone (no IP aliases set up or removed).
    pub nodev: bool,
}

pub struct Guest {
    pub config: GuestConfig,
    pub root: ConfigRoot,
    /// `root` by device and inode, as the run state records it.
    root_id: Option<FileId>,
    run: RunDir,
    options: Options,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub running: bool,
    pub context: Option<u32>,
    pub processes: usize,
    pub uptime_secs: Option<u64>,
    /// The guest cgroup's memory use in bytes (memory.current or v1's
    /// usage), where the host counts it.
    pub memory_bytes: Option<u64>,
}

impl Status {
    /// A guest that does not run.
    pub fn stopped() -> Status {
        Status {
            running: false,
            context: None,
            processes: 0,
            uptime_secs: None,
            memory_bytes: None,
        }
    }
}

impl Guest {
    /// Loads guest `name`. While it runs, the profile it was started with
    /// stays in force unless `profile` names another (seed 0.22).
    pub fn load(
        root: &ConfigRoot,
        name: &str,
        profile: Option<&str>,
        options: Options,
    ) -> Result<Guest> {
        let run = RunDir::from_env();
        let root_id = FileId::of(root.dir()).ok();
        let remembered = if profile.is_none() {
            remembered_profile(&run, name, root_id)
        } else {
            None
        };
        let config = conf::load(root, name, profile.or(remembered.as_deref()))?;
        Ok(Guest {
            config,
            root: root.clone(),
            root_id,
            run,
            options,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    fn say(&self, text: &str) {
        if !self.options.silent {
            println!("{text}");
        }
    }

    fn verbose(&self, text: &str) {
        if self.options.verbose {
            eprintln!("vserver {}: {text}", self.name());
        }
    }

    /// The running context of this guest, if any: NAME started from
    /// another configuration root is another guest, and not running here.
    pub fn context(&self) -> Result<Option<ContextRecord>> {
        Ok(self
            .run
            .find(self.name())?
            .filter(|r| started_from(r, self.root_id)))
    }

    /// Refuses to start, stop or run a command in this guest while a guest
    /// of the same name runs from another configuration root: the two would
    /// share the name's cgroup and run files.
    fn refuse_namesake(&self) -> Result<()> {
        match self.run.find(self.name())? {
            Some(r) if !started_from(&r, self.root_id) => Err(Error::failure(format!(
                "{}: a guest of this name runs in context {} from another configuration root than {}: use that root (--config-root)",
                self.name(),
                r.number,
                self.root.dir().display()
            ))),
            _ => Ok(()),
        }
    }

    fn companion(&self, phase: Phase) -> Result<()> {
        self.verbose(&format!("companion script: {}", phase.name()));
        companion::run(
            &self.root,
            self.name(),
            phase,
            self.config.profile.as_deref(),
        )
    }

    fn spec<'a>(&'a self, entry: Entry<'a>, init: InitKind, detach: bool) -> NewContext<'a> {
        NewContext {
            number: self.config.context,
            name: self.name(),
            root: Some(self.config.vserver_dir.as_path()),
            config_root: Some(self.root.dir()),
            hostname: self.config.hostname.as_deref(),
            domainname: &self.config.domainname,
            flags: &self.config.flags,
            die_with_parent: !detach,
            // vinit runs the runlevel scripts of a started guest; a command
            // run in a stopped one is supervised instead.
            runlevels: detach && init == InitKind::Vinit,
            init,
            generate_mtab: self.config.generate_mtab,
            detach,
            start_timeout: self.config.start_timeout,
            entry,
        }
    }

    /// Starts the guest: its own init (systemd, or any with fakeinit), else
    /// vinit running its runlevel scripts. Fails, changing nothing, if it
    /// already runs.
    pub fn start(&self) -> Result<()> {
        if self.context()?.is_some() {
            return Err(Error::failure(format!(
                "Server {} is already running",
                self.name()
            )));
        }
        self.refuse_namesake()?;
        self.check_root()?;
        for warning in self
            .config
            .host_root_warning()
            .into_iter()
            .chain(crate::context::scope::warning().map(str::to_owned))
        {
            eprintln!("vserver {}: warning: {warning}", self.name());
        }
        self.companion(Phase::PreStart)?;
        let init = [OsString::from("/sbin/init")];
        let kind = self.init_kind()?;
        let env = match kind {
            // The start waits for its READY=1 there (context::notify).
            InitKind::Systemd => self
                .env()
                .with("NOTIFY_SOCKET", crate::context::notify::SOCKET_PATH),
            _ => self.env(),
        };
        let entry = Entry {
            env: Some(&env),
            ..if kind.is_guest_init() {
                Entry::command(&init)
            } else {
                Entry::default()
            }
        };
        self.verbose(&format!(
            "starting in {}",
            self.config.vserver_dir.display()
        ));
        self.add_aliases()?;
        let record = spawn::start_detached(
            &self.spec(entry, kind, true),
            &Setup::for_guest(&self.config),
            Some(&self.monitor()),
        )
        .inspect_err(|_| {
            let _ = self.remove_aliases();
        })?;
        self.confirm_started(&record)?;
        self.remember(&record)?;
        self.companion(Phase::PostStart)?;
        self.say(&format!(
            "Server {} is running in context {}",
            self.name(),
            record.number
        ));
        Ok(())
    }

    /// Stops the guest: asks its init to shut down as that init expects
    /// (`InitKind`), waits S_STOP_TIMEOUT for it, then kills every process
    /// left. Cleans up (cgroup, run files) and runs post-stop even when the
    /// guest was not running.
    pub fn stop(&self) -> Result<()> {
        self.refuse_namesake()?;
        let result = match self.context()? {
            Some(record) => {
                self.companion(Phase::PreStop)?;
                let kind = InitKind::from_name(&record.init);
                let request = kind.halt_signal();
                if request.is_none() {
                    // Marked first: the monitor must not take the halt
                    // that telinit leads to for one from inside.
                    self.run.mark_stopping(record.number)?;
                    self.ask_sysvinit_to_halt(&record);
                }
                let timeout = self.config.stop_timeout;
                let stopped = spawn::stop(&record, request, timeout)?;
                if stopped == Stopped::Killed {
                    self.verbose(&format!(
                        "did not stop within {} s (S_STOP_TIMEOUT): killed what was left",
                        timeout.as_secs()
                    ));
                }
                self.say(&format!("Server {} is stopped", self.name()));
                Ok(())
            }
            None => {
                // Leftovers of a guest that died or a host that crashed.
                if let Ok(cgroup) = Cgroup::open(self.name()) {
                    cgroup.remove()?;
                }
                self.say(&format!("Server {} is not running", self.name()));
                Ok(())
            }
        };
        let _ = std::fs::remove_file(self.run.guest_file(self.name()));
        let removed = self.remove_aliases();
        self.companion(Phase::PostStop)?;
        result.and(removed)
    }

    /// `vserver NAME log`: the guest's console output, kept on the host.
    pub fn console_log(&self, follow: bool) -> Result<()> {
        crate::context::console::print_log(&self.run, self.name(), follow)
    }

    /// `vserver NAME console`: the caller's terminal on the guest's console.
    pub fn attach_console(&self) -> Result<()> {
        self.refuse_namesake()?;
        if self.context()?.is_none() {
            return Err(Error::failure(format!(
                "Server {} is not running",
                self.name()
            )));
        }
        crate::context::console::attach(&self.run, self.name())
    }

    /// What the guest's pid 1 will be: systemd when its /sbin/init is
    /// systemd (whatever S_FLAGS says: it cannot run under vinit), the
    /// guest's own init with fakeinit (sysvinit when it has inittab and
    /// telinit), else vinit. /sbin/init is resolved inside the guest tree.
    pub fn init_kind(&self) -> Result<InitKind> {
        let fakeinit = self.config.flags.contains(ContextFlag::Fakeinit);
        let fs = GuestFs::open(&self.config.vserver_dir)?;
        let target = fs.resolved_name("/sbin/init")?;
        Ok(match target.as_deref() {
            Some("systemd") => InitKind::Systemd,
            _ if !fakeinit => InitKind::Vinit,
            Some("init")
                if fs.stat_nofollow("/etc/inittab")?.is_some()
                    && fs.resolved_name("/sbin/telinit")?.is_some() =>
            {
                InitKind::Sysvinit
            }
            _ => InitKind::Other,
        })
    }

    /// sysvinit shuts down on `telinit 0`: run inside the guest, as the
    /// guest (never the guest's binary on the host). A failure leaves the
    /// guest to the stop timeout.
    fn ask_sysvinit_to_halt(&self, record: &ContextRecord) {
        let command = [OsString::from("/sbin/telinit"), OsString::from("0")];
        let env = self.env();
        let entry = Entry {
            env: Some(&env),
            ..Entry::command(&command)
        };
        let setup = Setup::for_guest(&self.config);
        match spawn::run_in_child(record.number, &entry, &setup.privileges) {
            Ok(0) => {}
            Ok(code) => self.verbose(&format!("telinit 0 exited with {code}")),
            Err(e) => self.verbose(&format!("telinit 0 failed: {e}")),
        }
    }

    /// Says whether the guest that start_detached left running still runs:
    /// a stop may have come while the start scripts ran (the stop cleans
    /// up), or its init may have ended at once (a ULIMIT it cannot run
    /// with): then what the start made is removed here.
    fn confirm_started(&self, record: &ContextRecord) -> Result<()> {
        let stopped = || {
            Error::failure(format!(
                "Server {} was stopped while it started",
                self.name()
            ))
        };
        if self.run.stopping(record.number) {
            return Err(stopped());
        }
        if self
            .run
            .read(record.number)?
            .is_some_and(|r| r.init_pid == record.init_pid)
        {
            return Ok(());
        }
        // A finished stop leaves nothing; an init that died leaves its
        // cgroup (and maybe processes).
        let Ok(cgroup) = Cgroup::open(&record.cgroup) else {
            return Err(stopped());
        };
        let removed = cgroup.remove().and(self.run.remove(record.number));
        let _ = self.remove_aliases();
        removed?;
        Err(Error::failure(format!(
            "Server {name}: its init ended as soon as it started (see `vserver {name} log`)",
            name = self.name()
        )))
    }

    /// What the guest's monitor runs when the guest's init ends by a
    /// reboot(2) inside it: this guest's `vserver restart` or `stop`, with
    /// the same configuration root, profile and options.
    fn monitor(&self) -> spawn::Monitor {
        let mut args: Vec<OsString> = vec!["vserver".into(), "--config-root".into()];
        args.push(self.root.dir().into());
        if let Some(p) = &self.config.profile {
            args.extend(["--profile".into(), p.into()]);
        }
        for (on, flag) in [
            (self.options.silent, "--silent"),
            (self.options.nodev, "--nodev"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        args.push(self.name().into());
        spawn::Monitor { command: args }
    }

    /// The IPROOT addresses on their devices (N6), unless --nodev.
    fn add_aliases(&self) -> Result<()> {
        if self.options.nodev {
            return Ok(());
        }
        self.verbose("adding the IP aliases");
        crate::net::alias::add_aliases(self.name(), &self.config)
    }

    /// Removes what add_aliases added (from its record: the guest need not
    /// run), unless --nodev.
    fn remove_aliases(&self) -> Result<()> {
        if self.options.nodev {
            return Ok(());
        }
        crate::net::alias::remove_aliases(self.name())
    }

    pub fn status(&self) -> Result<Status> {
        let Some(record) = self.context()? else {
            return Ok(Status::stopped());
        };
        let cgroup = Cgroup::open(&record.cgroup).ok();
        let processes = cgroup
            .as_ref()
            .and_then(|c| c.processes().ok())
            .map_or(0, |p| p.len());
        Ok(Status {
            running: true,
            context: Some(record.number),
            processes,
            uptime_secs: uptime_of(record.init_start),
            memory_bytes: cgroup.and_then(|c| c.stats().ok()?.memory_current),
        })
    }

    /// Runs `entry` in the guest: joined to it when it runs, else in a
    /// context of its own made for the command, after the pre-start step,
    /// with the guest's IP aliases while it runs (seed 0.16).
    pub fn run(&self, entry: &Entry<'_>) -> Result<ExitCode> {
        let env = self.env();
        let entry = &Entry {
            env: Some(&env),
            ..*entry
        };
        let setup = Setup::for_guest(&self.config);
        self.refuse_namesake()?;
        if let Some(record) = self.context()? {
            return spawn::run_in(
                record.number,
                entry,
                &setup.privileges,
                self.config.generate_mtab,
            );
        }
        self.check_root()?;
        self.companion(Phase::PreStart)?;
        // The command runs as in a started guest (seed 0.16): with its
        // addresses on their devices, taken off when it ends, ok or not.
        self.add_aliases()?;
        let init = InitKind::from_flags(&self.config.flags);
        let result = spawn::run_new(&self.spec(*entry, init, false), &setup, &|_| {});
        let removed = self.remove_aliases();
        let code = result?;
        removed.map(|()| code)
    }

    /// `service SVC ACTION`: the guest's /etc/init.d/SVC, else the Red Hat
    /// layout's /etc/rc.d/init.d/SVC (the seed looked in both), run with
    /// ACTION like any command in the guest.
    pub fn service(&self, service: &str, action: &OsStr) -> Result<ExitCode> {
        let script = self.service_script(service)?;
        self.run(&Entry::command(&[
            OsString::from(script),
            action.to_owned(),
        ]))
    }

    /// The guest path of SVC's init script, looked up in the guest tree
    /// with the guest's symlinks resolved inside it (RedHat's /etc/init.d
    /// -> rc.d/init.d works, a link out of the guest does not lead out).
    fn service_script(&self, service: &str) -> Result<String> {
        if service.is_empty() || service.contains('/') || service == ".." || service == "." {
            return Err(Error::usage(format!(
                "'{service}' is not a service name (a file name in the guest's /etc/init.d)"
            )));
        }
        let guest = GuestFs::open(&self.config.vserver_dir)?;
        let dirs = ["/etc/init.d", "/etc/rc.d/init.d"];
        for dir in dirs {
            let script = format!("{dir}/{service}");
            if guest.stat_nofollow(&script)?.is_some() {
                return Ok(script);
            }
        }
        Err(Error::failure(format!(
            "{}: no service {service} (neither {} exists in the guest)",
            self.name(),
            dirs.map(|d| format!("{d}/{service}")).join(" nor ")
        )))
    }

    /// The environment of the guest's init and commands: vsbox's clean
    /// one, the active profile, S_ENV.
    fn env(&self) -> GuestEnv {
        GuestEnv::new(self.config.profile.as_deref(), &self.config.env)
    }

    fn check_root(&self) -> Result<()> {
        check_vservers_root(&self.config.vservers_root)?;
        let dir = &self.config.vserver_dir;
        if !dir.is_dir() {
            return Err(Error::failure(format!(
                "{}: no guest tree at {} (vserver {} build makes one)",
                self.name(),
                dir.display(),
                self.name()
            )));
        }
        // Seen here, before the pre-start script runs; the claim of the
        // context checks again, atomically.
        if let Some(other) = self.run.on_root(FileId::of(dir)?, None)? {
            return Err(Error::failure(format!(
                "{}: {}: {}",
                self.name(),
                dir.display(),
                runstate::shared_root_message(&other)
            )));
        }
        Ok(())
    }

    /// /run/vserver/NAME.ctx: the profile and context this run started with.
    fn remember(&self, record: &ContextRecord) -> Result<()> {
        let path = self.run.guest_file(self.name());
        let text = format!(
            "PROFILE={}\nS_CONTEXT={}\n",
            self.config.profile.as_deref().unwrap_or(""),
            record.number
        );
        runstate::write_new(&path, text.as_bytes())
            .context(|| format!("cannot write {}", path.display()))
    }
}

/// Whether `record` is of a guest started from the configuration root
/// `root` (a record that names no root is everyone's, as before roots were
/// recorded).
fn started_from(record: &ContextRecord, root: Option<FileId>) -> bool {
    record.config_root.is_none() || record.config_root == root
}

fn remembered_profile(run: &RunDir, name: &str, root: Option<FileId>) -> Option<String> {
    // Only while the guest runs: a stale file from a crash means nothing.
    run.find(name).ok()?.filter(|r| started_from(r, root))?;
    let path = run.guest_file(name);
    let bytes = crate::context::guestfile::read_regular(&path, 4096, String::new).ok()??;
    let text = String::from_utf8(bytes).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PROFILE="))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// Seconds since a process started at `start_ticks` (clock ticks since
/// boot; Linux reports them at USER_HZ, 100 on every architecture here).
fn uptime_of(start_ticks: u64) -> Option<u64> {
    // Whole seconds: "12345.67 ..." (no float parsing, which costs the
    // binary 17 KB).
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let uptime: u64 = text.split(['.', ' ']).next()?.parse().ok()?;
    Some(uptime.saturating_sub(start_ticks / 100))
}

/// "1:02:03" or "2 days 1:02:03".
pub fn format_uptime(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => clock,
        1 => format!("1 day {clock}"),
        n => format!("{n} days {clock}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_like_the_seed() {
        assert_eq!(format_uptime(5), "0:00:05");
        assert_eq!(format_uptime(3723), "1:02:03");
        assert_eq!(format_uptime(86_400 + 61), "1 day 0:01:01");
        assert_eq!(format_uptime(3 * 86_400), "3 days 0:00:00");
    }
}
