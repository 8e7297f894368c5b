//! Run state: which context numbers are in use, by which guest, with which
//! pid 1 — files under /run/vserver/contexts/N, one per running context,
//! so that every tool maps number <-> guest <-> cgroup the same way.
//!
//! A record names the pid of the context's init and that process's start
//! time; a record whose process is gone (or whose pid was reused) is stale
//! and may be taken over.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

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
}

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
                Ok(()) => return Ok(record),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if self.read(n)?.is_none() {
                        // It was stale and is now removed: try once more.
                        if self.create(&record).is_ok() {
                            return Ok(record);
                        }
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

    /// Creates the record whole or not at all: written under a temporary
    /// name, then hard-linked to its own, which fails if that exists. A
    /// reader never sees an empty or half-written record.
    fn create(&self, record: &ContextRecord) -> std::io::Result<()> {
        let temp = self
            .contexts()
            .join(format!(".{}.{}.claim", record.number, std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&temp)
            .and_then(|mut file| file.write_all(record.serialize().as_bytes()))
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
        std::fs::write(&temp, record.serialize())
            .context(|| format!("cannot write {}", temp.display()))?;
        std::fs::rename(&temp, &path).context(|| format!("cannot write {}", path.display()))
    }

    /// The live record of context `number`; a stale one is removed.
    pub fn read(&self, number: u32) -> Result<Option<ContextRecord>> {
        let path = self.path(number);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), &e)),
        };
        let record = ContextRecord::parse(number, &text)
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
        std::fs::write(&path, b"").context(|| format!("cannot write {}", path.display()))
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
                if let Some(record) = self.read(n)? {
                    out.push(record);
                }
            }
        }
        out.sort_by_key(|r| r.number);
        Ok(out)
    }
}

impl ContextRecord {
    fn serialize(&self) -> String {
        format!(
            "name={}\ncgroup={}\ninit_pid={}\ninit_start={}\nowner_pid={}\nflags={}\n",
            self.name, self.cgroup, self.init_pid, self.init_start, self.owner_pid, self.flags
        )
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
        live.init_pid = me;
        live.init_start = start_time(me).unwrap();
        run.update(&live).unwrap();
        assert_eq!(run.read(7).unwrap(), Some(live.clone()));
        assert_eq!(run.list().unwrap(), vec![live]);
        run.remove(7).unwrap();
        assert_eq!(run.read(7).unwrap(), None);
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
