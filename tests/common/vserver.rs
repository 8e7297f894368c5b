//! A configured test guest: NAME.conf in its own configuration root, a
//! run-state directory and a busybox tree; `vserver stop` when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use super::guest::GuestRoot;
use super::tempdir::TempDir;
use super::vsbox_bin;

/// A guest NAME with its configuration root, run-state directory and tree.
pub struct Setup {
    pub name: String,
    pub etc: TempDir,
    pub run: TempDir,
    pub guest: GuestRoot,
    pub log: PathBuf,
}

impl Setup {
    /// `rc` is the guest's /etc/init.d/rc; `conf` extra lines of NAME.conf.
    /// With VSBOX_TEST_USERNS=1 in the environment every guest has a user
    /// namespace of its own (S_USERNS=yes; test.sh runs the escape tests
    /// so a second time).
    pub fn new(tag: &str, conf: &str, rc: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vt{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let etc = TempDir::new(&format!("etc-{tag}"));
        let run = TempDir::new(&format!("run-{tag}"));
        let guest = GuestRoot::new(tag);
        let vroot = etc.path().join("vservers-root");
        etc.write(
            "vservers.conf",
            &format!("VSERVERS_ROOT={}\n", vroot.display()),
        );
        etc.write(
            &format!("vservers/{name}.conf"),
            &format!(
                "# Description: test guest\nsource /etc/vservers.conf\nVSERVERDIR={}\nS_FLAGS=lock\n{}{conf}",
                guest.path().display(),
                if std::env::var_os("VSBOX_TEST_USERNS").is_some_and(|v| v == "1") {
                    "S_USERNS=yes\n"
                } else {
                    ""
                }
            ),
        );
        let log = etc.path().join("companion.log");
        etc.write(
            &format!("vservers/{name}.sh"),
            &format!("echo \"$1 $2 PROFILE=$PROFILE\" >> {}\n", log.display()),
        );
        std::fs::create_dir_all(guest.join("etc/init.d")).unwrap();
        std::fs::create_dir_all(guest.join("var/log")).unwrap();
        std::fs::write(guest.join("etc/init.d/rc"), rc).unwrap();
        std::fs::set_permissions(
            guest.join("etc/init.d/rc"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        Setup {
            name,
            etc,
            run,
            guest,
            log,
        }
    }

    pub fn vserver(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `vserver [OPTIONS] NAME ARGS`: leading `--x` words (and the value of
    /// --profile) are options and go before the name, as the seed had them.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut split = 0;
        while split < args.len() && args[split].starts_with("--") {
            split += if args[split] == "--profile" { 2 } else { 1 };
        }
        let mut cmd = Command::new(vsbox_bin());
        cmd.arg("vserver")
            .args(&args[..split])
            .arg(&self.name)
            .args(&args[split..])
            .env("VSBOX_CONFIG_ROOT", self.etc.path())
            .env("VSBOX_RUN_DIR", self.run.path())
            .env_remove("PROFILE");
        cmd
    }

    /// `vsbox APPLET ARGS` with this guest's configuration root and run
    /// state.
    pub fn applet<S: AsRef<std::ffi::OsStr>>(&self, applet: &str, args: &[S]) -> Output {
        Command::new(vsbox_bin())
            .arg(applet)
            .args(args)
            .env("VSBOX_CONFIG_ROOT", self.etc.path())
            .env("VSBOX_RUN_DIR", self.run.path())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.vserver(args);
        assert!(
            out.status.success(),
            "vserver {} {args:?}: {}",
            self.name,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn cgroup_gone(&self) -> bool {
        vsbox::context::cgroup::Cgroup::open(&self.name).is_err()
    }

    /// pid (on the host) of the guest's init, from the run state.
    pub fn init_pid(&self) -> Option<i32> {
        let dir = std::fs::read_dir(self.run.path().join("contexts")).ok()?;
        for e in dir.flatten() {
            let t = std::fs::read_to_string(e.path()).unwrap_or_default();
            if t.lines().any(|l| l == format!("name={}", self.name)) {
                let pid: i32 = t
                    .lines()
                    .find_map(|l| l.strip_prefix("init_pid="))?
                    .parse()
                    .ok()?;
                if std::path::Path::new(&format!("/proc/{pid}")).exists() && pid > 0 {
                    return Some(pid);
                }
            }
        }
        None
    }

    pub fn companion_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        // Whatever a failed test left running.
        let _ = self.vserver(&["stop"]);
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The host-side process whose child is the guest's init: its monitor.
pub fn monitor_of(init: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
