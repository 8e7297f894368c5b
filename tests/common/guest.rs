//! A guest root for the tests: busybox-static as the userland, a copy of
//! vsbox, device nodes, /etc files. Removed when dropped.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::tempdir::TempDir;

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

pub struct GuestRoot {
    dir: TempDir,
}

impl GuestRoot {
    pub fn new(tag: &str) -> Self {
        let dir = TempDir::new(&format!("guest-{tag}"));
        let root = dir.path();
        for d in [
            "bin", "sbin", "etc", "proc", "dev", "tmp", "root", "var/run", "mnt", "usr/bin",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt-get install busybox-static (test.sh does)"
        );
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        // The host's busybox, not the fresh copy: another test thread that
        // forks meanwhile can hold the copy open for writing (ETXTBSY).
        let out = Command::new(BUSYBOX).arg("--list").output().unwrap();
        for applet in String::from_utf8(out.stdout).unwrap().lines() {
            let link = root.join("bin").join(applet);
            if !link.exists() {
                symlink("busybox", link).unwrap();
            }
        }
        std::fs::copy(super::vsbox_bin(), root.join("bin/vsbox")).unwrap();
        for (name, major, minor) in [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ] {
            let path = root.join("dev").join(name);
            let dev = rustix::fs::makedev(major, minor);
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &path,
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o666),
                dev,
            )
            .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nguest:x:1000:1000::/tmp:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\ntty:x:5:\nguest:x:1000:\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/hostname"), "guest\n").unwrap();
        GuestRoot { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an executable script at `rel` in the guest.
    pub fn script(&self, rel: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.join(rel);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}
