//! Real Debian guests with an init and services, for the tests of guests
//! that boot like servers: the trees `bench/debian-guests --build` makes
//! once under .cache/guests/CODENAME/init/ (systemd, sysvinit, rcd; see
//! that script), copied fresh for each test onto a tmpfs of its own (in the
//! test VM: onto its ext4 scratch disk), with a configured guest around the
//! copy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::tempdir::TempDir;
use super::vsbox_bin;

/// Which cached tree.
#[derive(Clone, Copy, Debug)]
pub enum Tree {
    /// debootstrap's default variant: systemd as /sbin/init, nginx-light,
    /// openssh-server, dbus.
    Systemd,
    /// minbase with sysvinit-core (its own /sbin/init, inittab and
    /// /etc/init.d/rc), nginx-light, openssh-server.
    Sysvinit,
    /// minbase with nginx-light: /etc/rcN.d links, no /etc/init.d/rc.
    Rcd,
}

impl Tree {
    fn dir_name(self) -> &'static str {
        match self {
            Tree::Systemd => "systemd",
            Tree::Sysvinit => "sysvinit",
            Tree::Rcd => "rcd",
        }
    }
}

/// The cache directory of the init trees, or None after printing why the
/// test is skipped (not root). Panics when a tree should be there but is
/// not: test.sh builds them first.
pub fn cached(tree: Tree) -> Option<PathBuf> {
    if !super::is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let dir = match std::env::var_os("VSBOX_DISTRO_TREES") {
        // The test VM: the trees as its host made them, shared read-only.
        Some(d) => PathBuf::from(d),
        None => {
            if in_test_vm() {
                eprintln!("skipped: no Debian guest trees in this VM");
                return None;
            }
            let codename = std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
                        .map(|c| c.trim_matches('"').to_string())
                })
                .expect("no VERSION_CODENAME in /etc/os-release: which Debian release?");
            std::env::var_os("GUESTS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/guests"))
                .join(codename)
                .join("init")
        }
    };
    let tree_dir = dir.join(tree.dir_name());
    assert!(
        tree_dir.join(".debootstrap-done").exists(),
        "no cached {} guest in {}: run `bench/debian-guests --build` (as root; \
         debootstrap, needs the network; test.sh does)",
        tree.dir_name(),
        tree_dir.display()
    );
    Some(tree_dir)
}

/// A configured guest on a fresh copy of a cached tree: NAME.conf in its
/// own configuration root, its own run-state directory, the tree on a tmpfs
/// that Drop unmounts after `vserver NAME stop` (in the test VM: on its
/// scratch disk, removed by Drop).
pub struct DistroGuest {
    pub name: String,
    pub etc: TempDir,
    pub run: TempDir,
    /// The tmpfs mount point, None in the test VM; the tree is `root`.
    mnt: Option<PathBuf>,
    pub root: PathBuf,
    _dir: TempDir,
}

/// Whether this runs in the test VM (test-vm/init sets VSBOX_TEST_VM=1).
fn in_test_vm() -> bool {
    std::env::var("VSBOX_TEST_VM").is_ok_and(|v| v == "1")
}

impl DistroGuest {
    /// A copy of `tree` configured with the extra NAME.conf lines `conf`;
    /// None when the test is skipped (see `cached`).
    pub fn new(tree: Tree, tag: &str, conf: &str) -> Option<Self> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let cache = cached(tree)?;
        let name = format!(
            "vd{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = TempDir::new(&format!("distro-{tag}"));
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        // The test VM copies onto its scratch disk (TMPDIR, ext4) instead:
        // it has 1 GiB of memory, less than a tree or two, and its stock 6.1
        // kernel has idmapped mounts (user-namespace guests) on ext4 but
        // not on tmpfs (Linux 6.3).
        let mnt = (!in_test_vm()).then(|| {
            let mounted = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=2g,mode=755", "vsbox-distro"])
                .arg(&mnt)
                .status()
                .is_ok_and(|s| s.success());
            assert!(mounted, "cannot mount a tmpfs on {}", mnt.display());
            mnt
        });
        let etc = TempDir::new(&format!("etc-{tag}"));
        let run = TempDir::new(&format!("run-{tag}"));
        // Built from here on: a failed copy still unmounts (Drop).
        let guest = DistroGuest {
            root: dir.path().join("mnt/root"),
            name,
            etc,
            run,
            mnt,
            _dir: dir,
        };
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&cache)
            .arg(&guest.root)
            .status()
            .is_ok_and(|s| s.success());
        assert!(copied, "cp -a {} failed", cache.display());
        let _ = std::fs::remove_file(guest.root.join(".debootstrap-done"));
        guest.etc.write(
            &format!("vservers/{}.conf", guest.name),
            &format!(
                "# Description: {tag} test guest\nVSERVERDIR={}\n{conf}",
                guest.root.display()
            ),
        );
        Some(guest)
    }

    /// `vserver NAME ARGS`.
    pub fn vserver(&self, args: &[&str]) -> Output {
        self.command("vserver", &[&self.name])
            .args(args)
            .output()
            .unwrap()
    }

    /// `vserver NAME ARGS`, which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.vserver(args);
        assert!(
            out.status.success(),
            "vserver {} {args:?} failed ({}): {}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `vsbox APPLET ARGS` with this guest's configuration root and run
    /// state (not run yet).
    pub fn command(&self, applet: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(vsbox_bin());
        cmd.arg(applet)
            .args(args)
            .env("VSBOX_CONFIG_ROOT", self.etc.path())
            .env("VSBOX_RUN_DIR", self.run.path())
            .env_remove("PROFILE");
        cmd
    }
}

impl Drop for DistroGuest {
    fn drop(&mut self) {
        let _ = self.vserver(&["stop"]);
        let Some(mnt) = &self.mnt else {
            // rm -rf goes on past an error where remove_dir_all stops.
            let _ = Command::new("rm").arg("-rf").arg(&self.root).status();
            return;
        };
        // Unmounting drops the tree, immutable files and all.
        if !Command::new("umount")
            .arg(mnt)
            .status()
            .is_ok_and(|s| s.success())
        {
            let _ = Command::new("umount").arg("-l").arg(mnt).status();
        }
    }
}

/// The first line of an HTTP/1.0 answer from `addr` ("127.0.0.x:80"),
/// trying until `within` has passed (a service may still be starting);
/// None if nothing answered.
pub fn http_status_line(addr: &str, within: std::time::Duration) -> Option<String> {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + within;
    loop {
        let answer = std::net::TcpStream::connect(addr).ok().and_then(|mut s| {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .ok()?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
            let mut text = String::new();
            s.read_to_string(&mut text).ok()?;
            text.lines().next().map(str::to_owned)
        });
        if answer.is_some() || std::time::Instant::now() >= deadline {
            return answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The banner line an SSH server sends first, from `addr`, trying until
/// `within` has passed; None if nothing answered.
pub fn ssh_banner(addr: &str, within: std::time::Duration) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let deadline = std::time::Instant::now() + within;
    loop {
        let banner = std::net::TcpStream::connect(addr).ok().and_then(|s| {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .ok()?;
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).ok()?;
            Some(line.trim_end().to_owned())
        });
        if banner.is_some() || std::time::Instant::now() >= deadline {
            return banner;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
