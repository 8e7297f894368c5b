//! Synthetic dpkg guests for the unification tests: a guest tree with
//! var/lib/dpkg/status and info/PKG.{list,md5sums,conffiles}, and the package
//! files themselves with a fixed mtime (as debootstrap leaves them).
//!
//! ```ignore
//! let mut g = DpkgTree::new(dir.path().join("ref"));
//! g.merged_usr();
//! g.package("libfoo", "1.0-1", "amd64")
//!     .file("/usr/lib/libfoo.so.1", b"ELF...")
//!     .conffile("/etc/foo.conf", b"x=1\n")
//!     .install();
//! ```
//!
//! Shared inodes get the immutable flags, which stop `remove_dir_all`:
//! [`clear_flags_tree`] removes them (TempDir's drop needs it first).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The mtime every package file gets unless told otherwise.
pub const MTIME: u64 = 1_700_000_000;

pub struct DpkgTree {
    root: PathBuf,
}

pub struct PackageBuilder<'a> {
    tree: &'a DpkgTree,
    name: String,
    version: String,
    arch: String,
    files: Vec<(String, Vec<u8>)>,
    conffiles: Vec<String>,
    extra_list: Vec<String>,
}

impl DpkgTree {
    /// Makes (or reuses) a guest root with an empty dpkg database.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
        let status = root.join("var/lib/dpkg/status");
        if !status.exists() {
            fs::write(&status, "").unwrap();
        }
        DpkgTree { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of a guest path (`/usr/bin/x` -> ROOT/usr/bin/x),
    /// without resolving anything.
    pub fn path(&self, guest_path: &str) -> PathBuf {
        self.root.join(guest_path.trim_start_matches('/'))
    }

    /// Debian's merged /usr: /bin, /sbin, /lib and /lib64 are symlinks into
    /// /usr.
    pub fn merged_usr(&self) {
        for d in ["bin", "sbin", "lib", "lib64"] {
            fs::create_dir_all(self.root.join("usr").join(d)).unwrap();
            let link = self.root.join(d);
            if fs::symlink_metadata(&link).is_err() {
                symlink(format!("usr/{d}"), link).unwrap();
            }
        }
    }

    pub fn package(&self, name: &str, version: &str, arch: &str) -> PackageBuilder<'_> {
        PackageBuilder {
            tree: self,
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            files: Vec::new(),
            conffiles: Vec::new(),
            extra_list: Vec::new(),
        }
    }
}

impl PackageBuilder<'_> {
    /// A package file (written with mode 0644 and mtime [`MTIME`]).
    pub fn file(mut self, path: &str, content: &[u8]) -> Self {
        self.files.push((path.into(), content.into()));
        self
    }

    /// A conffile: written like a file and listed in PKG.conffiles.
    pub fn conffile(mut self, path: &str, content: &[u8]) -> Self {
        self.conffiles.push(path.into());
        self.file(path, content)
    }

    /// A path listed in PKG.list that this builder does not create (the
    /// test makes it itself, or leaves it missing).
    pub fn listed(mut self, path: &str) -> Self {
        self.extra_list.push(path.into());
        self
    }

    /// Writes the files, the info files and the status stanza.
    pub fn install(self) {
        let t = self.tree;
        let mut list = String::new();
        let mut dirs: Vec<String> = Vec::new();
        let mut md5sums = String::new();
        for (path, content) in &self.files {
            let mut parent = Path::new(path).parent();
            while let Some(p) = parent {
                let s = p.to_str().unwrap().to_string();
                if s != "/" && !s.is_empty() && !dirs.contains(&s) {
                    dirs.push(s);
                }
                parent = p.parent();
            }
            let host = t.path(path);
            fs::create_dir_all(host.parent().unwrap()).unwrap();
            fs::write(&host, content).unwrap();
            set_mtime(&host, MTIME);
            let _ = writeln!(md5sums, "{}  {}", md5_hex(content), &path[1..]);
        }
        dirs.sort();
        list.push_str("/.\n");
        for d in &dirs {
            let _ = writeln!(list, "{d}");
        }
        for (path, _) in &self.files {
            let _ = writeln!(list, "{path}");
        }
        for path in &self.extra_list {
            let _ = writeln!(list, "{path}");
        }
        let info = t.root.join("var/lib/dpkg/info");
        fs::write(info.join(format!("{}.list", self.name)), list).unwrap();
        fs::write(info.join(format!("{}.md5sums", self.name)), md5sums).unwrap();
        if !self.conffiles.is_empty() {
            let mut c = String::new();
            for f in &self.conffiles {
                let _ = writeln!(c, "{f}");
            }
            fs::write(info.join(format!("{}.conffiles", self.name)), c).unwrap();
        }
        let mut stanza = format!(
            "Package: {}\nStatus: install ok installed\nPriority: optional\nArchitecture: {}\nVersion: {}\nDescription: test package {}\n",
            self.name, self.arch, self.version, self.name
        );
        if !self.conffiles.is_empty() {
            stanza.push_str("Conffiles:\n");
            for (path, content) in self
                .files
                .iter()
                .filter(|(p, _)| self.conffiles.contains(p))
            {
                let _ = writeln!(stanza, " {path} {}", md5_hex(content));
            }
        }
        let status = t.root.join("var/lib/dpkg/status");
        let mut text = fs::read_to_string(&status).unwrap();
        if !text.is_empty() && !text.ends_with("\n\n") {
            text.push('\n');
        }
        text.push_str(&stanza);
        text.push('\n');
        fs::write(&status, text).unwrap();
    }
}

/// Sets a file's mtime (and atime) to `secs` since the epoch, without
/// following a symlink (the file must be a regular file).
pub fn set_mtime(path: &Path, secs: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
        .unwrap();
}

/// (device, inode) of a path, not following a final symlink.
pub fn inode(path: &Path) -> (u64, u64) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.dev(), m.ino())
}

/// Clears the immutable and immutable-unlink flags of every regular file
/// under `dir` (symlinks are not followed), so that it can be removed.
pub fn clear_flags_tree(dir: &Path) {
    const IMMUTABLE: u32 = 0x10;
    const IUNLINK: u32 = 0x0800_0000;
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            clear_flags_tree(&e.path());
        } else if ft.is_file() {
            if let Ok(f) = fs::File::open(e.path()) {
                if let Ok(flags) = rustix::fs::ioctl_getflags(&f) {
                    let bits = flags.bits();
                    if bits & (IMMUTABLE | IUNLINK) != 0 {
                        let _ = rustix::fs::ioctl_setflags(
                            &f,
                            rustix::fs::IFlags::from_bits_retain(bits & !(IMMUTABLE | IUNLINK)),
                        );
                    }
                }
            }
        }
    }
}

/// MD5 of `data` in hex, as in dpkg's md5sums files (the library's
/// RFC 1321 implementation, checked against the RFC's test vectors).
pub fn md5_hex(data: &[u8]) -> String {
    vsbox::unify::md5::to_hex(&vsbox::unify::md5::digest(data))
}
