//! Run state: which context numbers are in use, by which guest, with which
//! pid 1 — files under /run/vserver/contexts/N, one per running context,
//! so that every tool maps number <-> guest <-> cgroup the same way.
//!
//! A record names the pid of the context's init and that process's start
//! time; a record whose process is gone (or whose pid was reused) is stale
//! and may be taken over. It also names the context's root directory and
//! the configuration root of the guest, each by device and inode: two
//! contexts never share a root (a start clears the guest's /var/run), and
//! guest NAME of one configuration root is not NAME of another.
//!
//! An entry that is not a record (a directory, a FIFO, garbage) is skipped
//! with a warning: it must not stop the tools for every other guest.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::guestfile;
use crate::conf::guest::DYNAMIC_CONTEXTS;
use crate::error::Context;
use crate::{Error, Result};

/// The directory of run state: /run/vserver, or $VSBOX_RUN_DIR.
#[derive(Debug, Clone)]
pub struct RunDir(PathBuf);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRecord {
    pub number: u32,
    pub name: String,
    /// The context's cgroup (a name under vsbox/ in each hierarchy).
    pub cgroup: String,
    /// pid (in the host's pid namespace) of the context's pid 1; 0 while it
    /// is being created.
    pub init_pid: i32,
    /// Start time of init_pid (field 22 of /proc/PID/stat), against reuse.
    pub init_start: u64,
    /// The process creating the context, for records with no init yet.
    pub owner_pid: i32,
    pub flags: String,
    /// What runs as pid 1 (`InitKind::name`): how a stop asks it to end.
    pub init: String,
    /// The context's root directory; None: the host's (chcontext).
    pub root: Option<FileId>,
    /// The configuration root of the guest; None: no guest's (chcontext),
    /// or a record written before vsbox kept it.
    pub config_root: Option<FileId>,
    /// The first host id of the context's user namespace (its root); None:
    /// no user namespace of its own (see `userns`).
    pub userns: Option<u32>,
}

/// A directory by device and inode: the same whatever path (symbolic
/// links, bind mounts of the same filesystem, `..`) leads to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    /// The identity of `path`, symbolic links followed.
    pub fn of(path: &Path) -> Result<FileId> {
        let meta =
            std::fs::metadata(path).context(|| format!("cannot look at {}", path.display()))?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    fn parse(text: &str) -> Option<FileId> {
        let (dev, ino) = text.split_once(':')?;
        Some(FileId {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
        })
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// Records are a few lines: anything larger is not one.
const RECORD_LIMIT: u64 = 64 * 1024;

impl RunDir {
    pub const DEFAULT: &'static str = "/run/vserver";
    pub const ENV: &'static str = "VSBOX_RUN_DIR";

    pub fn from_env() -> Self {
        let dir = std::env::var_os(Self::ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        RunDir(dir.unwrap_or_else(|| PathBuf::from(Self::DEFAULT)))
    }

    fn contexts(&self) -> PathBuf {
        self.0.join("contexts")
    }

    fn path(&self, number: u32) -> PathBuf {
        self.contexts().join(number.to_string())
    }

    /// Reserves context `number` (or the first free dynamic one) for
    /// `record`, atomically: two tools cannot take the same number.
    pub fn claim(&self, number: Option<u32>, mut record: ContextRecord) -> Result<ContextRecord> {
        let dir = self.contexts();
        std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
        let candidates: Box<dyn Iterator<Item = u32>> = match number {
            Some(n) => Box::new(std::iter::once(n)),
            None => Box::new(DYNAMIC_CONTEXTS),
        };
        for n in candidates {
            record.number = n;
            match self.create(&record) {
                Ok(()) => return self.alone_on_root(record),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A stale record is removed by read: try once more. A
                    // live one, or an entry that is no record, is in use.
                    if matches!(self.read(n), Ok(None)) && self.create(&record).is_ok() {
                        return self.alone_on_root(record);
                    }
                    if number.is_some() {
                        return Err(Error::failure(format!("context {n} is in use")));
                    }
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot create {}", self.path(n).display()),
                        &e,
                    ));
                }
            }
        }
        Err(Error::failure("no free context number"))
    }

    /// Keeps the just-claimed `record` unless another live context has its
    /// root. Checked after the claim, so that of two starts on one root at
    /// the same time at least one fails.
    fn alone_on_root(&self, record: ContextRecord) -> Result<ContextRecord> {
        let Some(root) = record.root else {
            return Ok(record);
        };
        match self.on_root(root, Some(record.number))? {
            None => Ok(record),
            Some(other) => {
                let _ = self.remove(record.number);
                Err(Error::failure(shared_root_message(&other)))
            }
        }
    }

    /// The live context, other than number `except`, whose root is `root`.
    pub fn on_root(&self, root: FileId, except: Option<u32>) -> Result<Option<ContextRecord>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|r| r.root == Some(root) && Some(r.number) != except))
    }

    /// Creates the record whole or not at all: written under a temporary
    /// name, then hard-linked to its own, which fails if that exists. A
    /// reader never sees an empty or half-written record.
    fn create(&self, record: &ContextRecord) -> std::io::Result<()> {
        let temp = self
            .contexts()
            .join(format!(".{}.{}.claim", record.number, std::process::id()));
        let written = write_new(&temp, record.serialize().as_bytes())
            .and_then(|()| std::fs::hard_link(&temp, self.path(record.number)));
        let _ = std::fs::remove_file(&temp);
        if written.is_ok() {
            // A stop marker left by a stop that crashed is not this run's.
            let _ = std::fs::remove_file(self.stop_marker(record.number));
        }
        written
    }

    /// Replaces a record (after the init pid is known), atomically.
    pub fn update(&self, record: &ContextRecord) -> Result<()> {
        let path = self.path(record.number);
        let temp = self.contexts().join(format!(".{}.tmp", record.number));
        write_new(&temp, record.serialize().as_bytes())
            .context(|| format!("cannot write {}", temp.display()))?;
        std::fs::rename(&temp, &path).context(|| format!("cannot write {}", path.display()))
    }

    /// The live record of context `number`; a stale one is removed.
    pub fn read(&self, number: u32) -> Result<Option<ContextRecord>> {
        let path = self.path(number);
        let Some(bytes) = guestfile::read_regular(&path, RECORD_LIMIT, || {
            format!("cannot read {}", path.display())
        })?
        else {
            return Ok(None);
        };
        let record = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| ContextRecord::parse(number, text))
            .ok_or_else(|| Error::failure(format!("{}: not a context record", path.display())))?;
        if record.is_alive() {
            Ok(Some(record))
        } else {
            let _ = std::fs::remove_file(&path);
            Ok(None)
        }
    }

    pub fn remove(&self, number: u32) -> Result<()> {
        let _ = std::fs::remove_file(self.stop_marker(number));
        let path = self.path(number);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), &e)),
        }
    }

    /// contexts/.N.stop: made by a stop before it signals the context's
    /// init, gone with the record. The guest's monitor then knows that the
    /// end of init was asked for by the host, not by a reboot in the guest.
    fn stop_marker(&self, number: u32) -> PathBuf {
        self.contexts().join(format!(".{number}.stop"))
    }

    /// Marks context `number` as being stopped by the host.
    pub fn mark_stopping(&self, number: u32) -> Result<()> {
        let path = self.stop_marker(number);
        write_new(&path, b"").context(|| format!("cannot write {}", path.display()))
    }

    /// Whether a stop of context `number` is under way (`mark_stopping`).
    pub fn stopping(&self, number: u32) -> bool {
        self.stop_marker(number).exists()
    }

    /// The live context of guest `name`, if it runs.
    pub fn find(&self, name: &str) -> Result<Option<ContextRecord>> {
        Ok(self.list()?.into_iter().find(|r| r.name == name))
    }

    /// Where guest `name`'s start-time facts are kept (the seed's
    /// /var/run/vserver/NAME.ctx: the active profile and the context).
    pub fn guest_file(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.ctx"))
    }

    /// Guest `name`'s file `NAME.KIND` in the run state (its console's log
    /// and socket).
    pub fn guest_file_of(&self, name: &str, kind: &str) -> PathBuf {
        self.0.join(format!("{name}.{kind}"))
    }

    /// Runs `f` holding the run state's lock `name` (contexts/.NAME.lock,
    /// an exclusive flock): what it reads of the records and writes back is
    /// not raced by another tool doing the same.
    pub fn locked<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let dir = self.contexts();
        std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!(".{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .mode(0o600)
            .open(&path)
            .context(|| format!("cannot open {}", path.display()))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .context(|| format!("cannot lock {}", path.display()))?;
        // The lock goes with the file, closed on return.
        f()
    }

    /// Every live context.
    pub fn list(&self) -> Result<Vec<ContextRecord>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(self.contexts()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot list {}", self.contexts().display()),
                    &e,
                ));
            }
        };
        for entry in entries.flatten() {
            if let Some(n) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                match self.read(n) {
                    Ok(Some(record)) => out.push(record),
                    Ok(None) => {}
                    Err(e) => eprintln!("vsbox: warning: skipped in the run state: {e}"),
                }
            }
        }
        out.sort_by_key(|r| r.number);
        Ok(out)
    }
}

/// Why a context may not have a running context's root.
pub fn shared_root_message(other: &ContextRecord) -> String {
    let owner = if other.name.is_empty() {
        format!("context {}", other.number)
    } else {
        format!("guest {} (context {})", other.name, other.number)
    };
    format!("its root directory is the root of running {owner}: two guests never share a root")
}

/// Writes a new file `path` (one left there is removed first): O_EXCL, so
/// whatever was there (a FIFO, a symbolic link) is neither opened nor
/// followed.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
}

impl ContextRecord {
    fn serialize(&self) -> String {
        let mut text = format!(
            "name={}\ncgroup={}\ninit_pid={}\ninit_start={}\nowner_pid={}\nflags={}\ninit={}\n",
            self.name,
            self.cgroup,
            self.init_pid,
            self.init_start,
            self.owner_pid,
            self.flags,
            self.init
        );
        for (key, id) in [("root", self.root), ("config_root", self.config_root)] {
            if let Some(id) = id {
                text.push_str(&format!("{key}={id}\n"));
            }
        }
        if let Some(base) = self.userns {
            text.push_str(&format!("userns={base}\n"));
        }
        text
    }

    fn parse(number: u32, text: &str) -> Option<Self> {
        let mut r = ContextRecord {
            number,
            name: String::new(),
            cgroup: String::new(),
            init_pid: 0,
            init_start: 0,
            owner_pid: 0,
            flags: String::new(),
            init: String::new(),
            root: None,
            config_root: None,
            userns: None,
        };
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            match k {
                "name" => r.name = v.to_string(),
                "cgroup" => r.cgroup = v.to_string(),
                "init_pid" => r.init_pid = v.parse().ok()?,
                "init_start" => r.init_start = v.parse().ok()?,
                "owner_pid" => r.owner_pid = v.parse().ok()?,
                "flags" => r.flags = v.to_string(),
                "init" => r.init = v.to_string(),
                "root" => r.root = Some(FileId::parse(v)?),
                "config_root" => r.config_root = Some(FileId::parse(v)?),
                "userns" => r.userns = Some(v.parse().ok()?),
                _ => {}
            }
        }
        Some(r)
    }

    /// Whether the context still runs (or is still being created).
    fn is_alive(&self) -> bool {
        if self.init_pid > 0 {
            start_time(self.init_pid) == Some(self.init_start)
        } else {
            self.owner_pid > 0 && start_time(self.owner_pid).is_some()
        }
    }
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks
/// since boot. With the pid it names one process for good. None for a
/// process that is gone, or has ended and waits to be reaped (a zombie: its
/// parent may be an init that is slow to reap, or none at all).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_run_dir(tag: &str) -> RunDir {
        let dir = std::env::temp_dir().join(format!("vsbox-run-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        RunDir(dir)
    }

    fn record(owner: i32) -> ContextRecord {
        ContextRecord {
            number: 0,
            name: "g".into(),
            cgroup: "g".into(),
            init_pid: 0,
            init_start: 0,
            owner_pid: owner,
            flags: String::new(),
            init: String::new(),
            root: None,
            config_root: None,
            userns: None,
        }
    }

    #[test]
    fn claim_update_read_remove() {
        let run = temp_run_dir("claim");
        let me = std::process::id() as i32;
        let r = run.claim(Some(7), record(me)).unwrap();
        assert_eq!(r.number, 7);
        assert!(
            run.claim(Some(7), record(me))
                .unwrap_err()
                .to_string()
                .contains("context 7 is in use")
        );
        let mut live = r.clone();
        live.root = Some(FileId { dev: 8, ino: 2 });
        live.config_root = Some(FileId { dev: 8, ino: 3 });
        live.userns = Some(1 << 30);
        live.init_pid = me;
        live.init_start = start_time(me).unwrap();
        run.update(&live).unwrap();
        assert_eq!(run.read(7).unwrap(), Some(live.clone()));
        assert_eq!(run.list().unwrap(), vec![live.clone()]);
        // A second context on the same root is refused, and leaves no record.
        let mut sharer = record(me);
        sharer.root = live.root;
        let refused = run.claim(Some(8), sharer).unwrap_err().to_string();
        assert!(
            refused.contains("root of running guest g (context 7)"),
            "{refused}"
        );
        assert_eq!(run.read(8).unwrap(), None);
        run.remove(7).unwrap();
        assert_eq!(run.read(7).unwrap(), None);
        let _ = std::fs::remove_dir_all(&run.0);
    }

    #[test]
    fn entries_that_are_no_records_are_skipped() {
        let run = temp_run_dir("bad");
        let me = std::process::id() as i32;
        std::fs::create_dir_all(run.contexts().join("49152")).unwrap();
        std::fs::write(run.contexts().join("49153"), b"\xff\x00 junk").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", run.contexts().join("49154")).unwrap();
        assert!(run.read(49152).is_err() && run.read(49153).is_err() && run.read(49154).is_err());
        // Skipped by a claim of a dynamic number, and by the listing.
        let r = run.claim(None, record(me)).unwrap();
        assert_eq!(r.number, 49155);
        assert_eq!(run.list().unwrap(), vec![r]);
        let _ = std::fs::remove_dir_all(&run.0);
    }

    #[test]
    fn dynamic_numbers_and_stale_records() {
        let run = temp_run_dir("dynamic");
        let me = std::process::id() as i32;
        let a = run.claim(None, record(me)).unwrap();
        let b = run.claim(None, record(me)).unwrap();
        assert_eq!((a.number, b.number), (49152, 49153));
        // A record whose init is gone (pid reused: wrong start time) is stale.
        let mut dead = a.clone();
        dead.init_pid = me;
        dead.init_start = 1;
        run.update(&dead).unwrap();
        assert_eq!(run.read(a.number).unwrap(), None);
        assert_eq!(run.claim(None, record(me)).unwrap().number, 49152);
        let _ = std::fs::remove_dir_all(&run.0);
    }
}
