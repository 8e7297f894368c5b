//! The process table: one scan of /proc that says, for every process, which
//! guest it belongs to (context number and name), with its state, owner,
//! memory, CPU time, start time, terminal and command line.
//!
//! # Which guest a process is in
//!
//! A process belongs to the guest whose cgroup (`<v2>/vsbox/NAME`, or a
//! sub-cgroup the guest made) holds it; the run state (/run/vserver, see
//! `context::runstate`) maps the cgroup to a context number, name and flags.
//! Reading /proc/PID/cgroup for every process costs an open and a read
//! each, so the scan asks the kernel the other way round: it first reads
//! `cgroup.procs` of every directory under `vsbox/` (a handful of files),
//! then walks /proc. A pid can change hands between the two (the guest's
//! process ends and the pid is reused, or a process forks into a guest
//! after its list was read): both only happen to a process that started
//! after the lists were read, so for those alone (start time at or after the
//! moment the lists were read) the scan reads /proc/PID/cgroup itself.
//!
//! # Vanishing processes and hostile ones
//!
//! A process that ends mid-scan (ENOENT, ESRCH, or an empty read) is left
//! out. Command lines are read with one bounded buffer (`CMDLINE_MAX`
//! bytes), kept as bytes (not UTF-8, may hold anything a guest put in its
//! argv) and only escaped when printed (`escape`). The table keeps every
//! name and command line in one byte arena, so a scan allocates per process
//! only when the arena or the process vector grows.

pub mod kill;
pub mod ps;
pub mod stat;
pub mod top;

use std::fmt::Write as _;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno as RawErrno;

use crate::context::cgroup::{Hierarchies, PARENT, parse_proc_cgroup};
use crate::context::runstate::RunDir;
use crate::error::Context;
use crate::{Error, Result};

/// Clock ticks per second of the times in /proc/PID/stat (USER_HZ, 100 on
/// every Linux architecture vsbox builds for).
pub const CLK_TCK: u64 = 100;
/// Most bytes of a command line kept (ps keeps a page too).
pub const CMDLINE_MAX: usize = 4096;

/// A guest with processes (or a run-state record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    /// Context number from the run state; `None` for a cgroup under vsbox/
    /// that no record names (a guest being stopped or a leftover).
    pub number: Option<u32>,
    pub name: String,
    /// The cgroup name under vsbox/.
    pub cgroup: String,
    /// S_FLAGS of the running context (`private` among them).
    pub flags: String,
    /// The guest's pid 1 on the host, 0 if unknown.
    pub init_pid: i32,
}

impl Guest {
    pub fn is_private(&self) -> bool {
        self.flags.split_whitespace().any(|f| f == "private")
    }
}

/// One process (thread group) as /proc shows it from the host.
#[derive(Debug, Clone, Default)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    /// State letter: R, S, D, Z, T, t, I, X.
    pub state: u8,
    pub uid: u32,
    /// tty_nr: the controlling terminal's device number, 0 for none.
    pub tty: u32,
    pub nice: i32,
    pub threads: u32,
    /// Virtual memory size, bytes.
    pub vsz: u64,
    /// Resident set size, bytes.
    pub rss: u64,
    /// User and system CPU time, clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Start time, clock ticks since boot.
    pub start: u64,
    /// Index into `Table::guests`; `None` for the host (context 0).
    pub guest: Option<u16>,
    comm: (u32, u32),
    cmdline: (u32, u32),
}

/// What a scan reads beyond /proc/PID/stat.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    /// /proc/PID/cmdline.
    pub cmdline: bool,
    /// The owner (a stat of /proc/PID).
    pub uid: bool,
}

/// The result of one scan.
#[derive(Debug, Default)]
pub struct Table {
    pub guests: Vec<Guest>,
    pub procs: Vec<Process>,
    /// Seconds since boot when the scan began, in clock ticks.
    pub uptime: u64,
    text: Vec<u8>,
}

impl Table {
    pub fn comm(&self, p: &Process) -> &[u8] {
        &self.text[p.comm.0 as usize..p.comm.1 as usize]
    }

    /// The command line, NUL-separated as the kernel gives it (trailing NULs
    /// left out); empty for kernel threads and zombies.
    pub fn cmdline(&self, p: &Process) -> &[u8] {
        &self.text[p.cmdline.0 as usize..p.cmdline.1 as usize]
    }

    pub fn guest(&self, p: &Process) -> Option<&Guest> {
        p.guest.map(|i| &self.guests[usize::from(i)])
    }

    /// The context number shown for a process: 0 on the host.
    pub fn context(&self, p: &Process) -> Option<u32> {
        match self.guest(p) {
            None => Some(0),
            Some(g) => g.number,
        }
    }

    /// The index of the process with pid `pid` (the table is sorted by pid).
    pub fn find(&self, pid: i32) -> Option<usize> {
        self.procs.binary_search_by_key(&pid, |p| p.pid).ok()
    }

    /// The guest named `name` (by name or by cgroup), if it has processes
    /// or a record.
    pub fn guest_index(&self, name: &str) -> Option<u16> {
        self.guests
            .iter()
            .position(|g| g.name == name || g.cgroup == name)
            .map(|i| i as u16)
    }

    fn guest_for_cgroup(&mut self, cgroup: &str) -> u16 {
        if let Some(i) = self.guests.iter().position(|g| g.cgroup == cgroup) {
            return i as u16;
        }
        self.guests.push(Guest {
            number: None,
            name: cgroup.to_string(),
            cgroup: cgroup.to_string(),
            flags: String::new(),
            init_pid: 0,
        });
        (self.guests.len() - 1) as u16
    }
}

/// Scans /proc once. See the module documentation.
pub fn scan(want: Want) -> Result<Table> {
    let mut table = Table::default();
    for r in RunDir::from_env().list()? {
        table.guests.push(Guest {
            number: Some(r.number),
            name: r.name,
            cgroup: r.cgroup,
            flags: r.flags,
            init_pid: r.init_pid,
        });
    }
    let proc_dir = rustix::fs::open(
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| "cannot open /proc")?;
    // Taken before the cgroup lists: a process started at or after it is
    // checked by its own /proc/PID/cgroup.
    table.uptime = uptime_ticks(&proc_dir)?;
    let members = match Hierarchies::detect()?.v2 {
        Some(v2) => Some(guest_members(&v2.join(PARENT), &mut table)?),
        None => None,
    };
    let mut buf = vec![0u8; CMDLINE_MAX];
    let mut path = String::with_capacity(32);
    let dir = rustix::fs::Dir::read_from(&proc_dir).context(|| "cannot list /proc")?;
    for entry in dir {
        let entry = entry.context(|| "cannot list /proc")?;
        let Some(pid) = parse_pid(entry.file_name().to_bytes()) else {
            continue;
        };
        let Some(mut p) = read_stat(&proc_dir, pid, &mut path, &mut buf, &mut table.text) else {
            continue;
        };
        // Kernel threads (children of kthreadd) are never in a guest.
        let kernel = pid == 2 || p.ppid == 2;
        p.guest = match &members {
            _ if kernel => None,
            Some(m) if p.start + 1 < table.uptime => m
                .binary_search_by_key(&pid, |&(pid, _)| pid)
                .ok()
                .map(|i| m[i].1),
            _ => {
                let Some(cgroup) = read_to(&proc_dir, pid, "cgroup", &mut path, &mut buf) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..cgroup]);
                parse_proc_cgroup(&text)
                    .guest()
                    .map(|name| name.to_string())
                    .map(|name| table.guest_for_cgroup(&name))
            }
        };
        if want.uid {
            path.clear();
            let _ = write!(path, "{pid}");
            match rustix::fs::statat(&proc_dir, path.as_str(), AtFlags::empty()) {
                Ok(st) => p.uid = st.st_uid,
                Err(_) => continue,
            }
        }
        if want.cmdline {
            if let Some(n) = read_to(&proc_dir, pid, "cmdline", &mut path, &mut buf) {
                let mut n = n;
                while n > 0 && buf[n - 1] == 0 {
                    n -= 1;
                }
                let at = table.text.len() as u32;
                table.text.extend_from_slice(&buf[..n]);
                p.cmdline = (at, table.text.len() as u32);
            }
        }
        table.procs.push(p);
    }
    table.procs.sort_unstable_by_key(|p| p.pid);
    Ok(table)
}

fn parse_pid(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name)
        .ok()?
        .parse()
        .ok()
        .filter(|&p| p > 0)
}

/// Seconds since boot (CLOCK_BOOTTIME, as process start times count), in
/// clock ticks.
fn uptime_ticks(proc_dir: &OwnedFd) -> Result<u64> {
    let mut buf = [0u8; 64];
    let n = read_file_at(proc_dir, "uptime", &mut buf).context(|| "cannot read /proc/uptime")?;
    let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
    let first = text.split_whitespace().next().unwrap_or("");
    let (secs, frac) = first.split_once('.').unwrap_or((first, "0"));
    let secs: u64 = secs
        .parse()
        .map_err(|_| Error::failure(format!("/proc/uptime: unexpected value '{first}'")))?;
    let hundredths: u64 = frac.get(..2).and_then(|f| f.parse().ok()).unwrap_or(0);
    Ok(secs * CLK_TCK + hundredths * CLK_TCK / 100)
}

/// Reads `cgroup.procs` of every guest cgroup (and its sub-cgroups) under
/// `parent`: (pid, guest index) sorted by pid.
fn guest_members(parent: &std::path::Path, table: &mut Table) -> Result<Vec<(i32, u16)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(format!("cannot list {}", parent.display()), &e)),
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let index = table.guest_for_cgroup(&name);
        let mut pids = Vec::new();
        procs_tree(&entry.path(), &mut pids, 0);
        out.extend(pids.into_iter().map(|p| (p, index)));
    }
    out.sort_unstable();
    Ok(out)
}

/// The pids in cgroup.procs of `dir` and its sub-cgroups (cgroupfs: no
/// symlinks; depth bounded against a guest that nests cgroups deeply).
fn procs_tree(dir: &std::path::Path, out: &mut Vec<i32>, depth: u32) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if depth >= 32 {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                procs_tree(&entry.path(), out, depth + 1);
            }
        }
    }
}

/// Reads `/proc/PID/FILE` into `buf` (at most its length); `None` when the
/// process is gone or the file cannot be read.
fn read_to(
    proc_dir: &OwnedFd,
    pid: i32,
    file: &str,
    path: &mut String,
    buf: &mut [u8],
) -> Option<usize> {
    path.clear();
    let _ = write!(path, "{pid}/{file}");
    read_file_at(proc_dir, path, buf).ok()
}

fn read_file_at(dir: impl AsFd, path: &str, buf: &mut [u8]) -> rustix::io::Result<usize> {
    let fd = rustix::fs::openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut n = 0;
    while n < buf.len() {
        match rustix::io::read(&fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(RawErrno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Page size for the rss field (in pages).
fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

fn read_stat(
    proc_dir: &OwnedFd,
    pid: i32,
    path: &mut String,
    buf: &mut [u8],
    text: &mut Vec<u8>,
) -> Option<Process> {
    let n = read_to(proc_dir, pid, "stat", path, buf)?;
    let mut p = parse_stat(&buf[..n], text)?;
    p.pid = pid;
    Some(p)
}

/// Parses /proc/PID/stat: `PID (COMM) STATE PPID ...`; COMM may hold
/// spaces and parentheses, so the fields start after the last ')'. The
/// name goes into `text`.
fn parse_stat(line: &[u8], text: &mut Vec<u8>) -> Option<Process> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let rest = std::str::from_utf8(line.get(close + 2..)?).ok()?;
    let mut fields = rest.split(' ');
    let mut next = || fields.next();
    let mut p = Process {
        state: *next()?.as_bytes().first()?,
        ..Process::default()
    };
    let num = |s: Option<&str>| -> Option<u64> { s?.trim_end().parse().ok() };
    p.ppid = next()?.parse().ok()?;
    next()?; // pgrp
    next()?; // session
    p.tty = next()?.parse::<i64>().ok()? as u32;
    for _ in 0..6 {
        next()?; // tpgid flags minflt cminflt majflt cmajflt
    }
    p.utime = num(next())?;
    p.stime = num(next())?;
    next()?; // cutime
    next()?; // cstime
    next()?; // priority
    p.nice = next()?.parse().ok()?;
    p.threads = next()?.parse().ok()?;
    next()?; // itrealvalue
    p.start = num(next())?;
    p.vsz = num(next())?;
    p.rss = num(next())?.saturating_mul(page_size());
    let at = text.len() as u32;
    text.extend_from_slice(&line[open + 1..close]);
    p.comm = (at, text.len() as u32);
    Some(p)
}

/// The terminal name of a tty_nr: pts/N, ttyN, ttySN, or "?".
pub fn tty_name(dev: u32) -> String {
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    match major {
        0 => "?".to_string(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        5 if minor == 1 => "console".to_string(),
        _ => format!("{major}:{minor}"),
    }
}

/// Writes `bytes` (a command line with NUL separators, a name, a
/// description) for a terminal or a script: NULs become spaces; control
/// characters (C0, DEL, C1), Unicode format characters such as bidi
/// overrides, backslashes and bytes that are not UTF-8 become escapes
/// (`\n`, `\t`, `\\`, `\xHH`, `\u{HHHH}`), so a line of output is one
/// process and shows what is really there. Stops after `max_chars`
/// characters of output.
pub fn escape(bytes: &[u8], out: &mut String, max_chars: usize) {
    let mut left = max_chars;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let before = out.len();
            match c {
                '\0' => out.push(' '),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x100 && c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}' => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
            let width = out[before..].chars().count();
            if width > left {
                out.truncate(before);
                return;
            }
            left -= width;
        }
        for b in chunk.invalid() {
            if left < 4 {
                return;
            }
            let _ = write!(out, "\\x{b:02x}");
            left -= 4;
        }
    }
}

/// Host user names from /etc/passwd (size-limited), for processes of
/// context 0. Guests' processes are shown by number: a guest's passwd is
/// the guest's to write, and would let it name its uids after host users.
#[derive(Debug, Default)]
pub struct Users(Vec<(u32, String)>);

impl Users {
    pub fn host() -> Users {
        let mut users = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        if let Ok(n) = read_file_at(rustix::fs::CWD, "/etc/passwd", &mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                let mut f = line.split(':');
                if let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) {
                    if let Ok(uid) = uid.parse() {
                        if !users.iter().any(|(u, _)| *u == uid) {
                            users.push((uid, name.to_string()));
                        }
                    }
                }
            }
        }
        Users(users)
    }

    /// The name for `uid` of a host process, else the number.
    pub fn write(&self, uid: u32, host: bool, out: &mut String) {
        match self.0.iter().find(|(u, _)| *u == uid) {
            Some((_, name)) if host => escape(name.as_bytes(), out, 32),
            _ => {
                let _ = write!(out, "{uid}");
            }
        }
    }
}

/// Finds a running guest by name, or by its directory (an argument with a
/// '/': the guest whose VSERVERDIR it is).
pub fn running_guest(arg: &str) -> Result<crate::context::runstate::ContextRecord> {
    let run = RunDir::from_env();
    if !arg.contains('/') {
        return run
            .find(arg)?
            .ok_or_else(|| Error::failure(format!("guest {arg} is not running")));
    }
    let want = std::fs::canonicalize(arg).context(|| format!("cannot resolve {arg}"))?;
    let root = crate::conf::ConfigRoot::select(None);
    for r in run.list()? {
        if let Ok(conf) = crate::conf::load(&root, &r.name, None) {
            if std::fs::canonicalize(&conf.vserver_dir).is_ok_and(|d| d == want) {
                return Ok(r);
            }
        }
    }
    Err(Error::failure(format!(
        "no running guest has {arg} as its directory"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let mut text = Vec::new();
        let line = b"1234 (a) b) (c) S 1 1234 1234 34816 1234 4194304 100 0 0 0 250 75 0 0 20 0 3 0 98765 1048576 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let p = parse_stat(line, &mut text).unwrap();
        assert_eq!(p.state, b'S');
        assert_eq!(p.ppid, 1);
        assert_eq!((p.utime, p.stime, p.start), (250, 75, 98765));
        assert_eq!(p.threads, 3);
        assert_eq!(p.vsz, 1_048_576);
        assert_eq!(p.rss, 300 * page_size());
        assert_eq!(tty_name(p.tty), "pts/0");
        assert_eq!(&text[p.comm.0 as usize..p.comm.1 as usize], b"a) b) (c");
        assert!(parse_stat(b"12 (x", &mut text).is_none());
        assert!(parse_stat(b"12 (x) S 1", &mut text).is_none());
        assert!(parse_stat(b"", &mut text).is_none());
    }

    #[test]
    fn escapes_hostile_text() {
        let mut out = String::new();
        escape(
            b"sh\0-c\0echo\n\x1b[2J\xff\\ \xe2\x80\xae\xc3\xa9",
            &mut out,
            200,
        );
        assert_eq!(out, "sh -c echo\\n\\x1b[2J\\xff\\\\ \\u{202e}\u{e9}");
        let mut out = String::new();
        escape(&[b'x'; 100], &mut out, 10);
        assert_eq!(out, "xxxxxxxxxx");
        let mut out = String::new();
        escape(b"ab\ncd", &mut out, 3);
        assert_eq!(out, "ab");
    }

    #[test]
    fn terminals_and_pids() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(4 << 8 | 1), "tty1");
        assert_eq!(tty_name(4 << 8 | 65), "ttyS1");
        assert_eq!(tty_name(137 << 8 | 2), "pts/258");
        assert_eq!(parse_pid(b"123"), Some(123));
        assert_eq!(parse_pid(b"self"), None);
        assert_eq!(parse_pid(b"0"), None);
        assert_eq!(parse_pid(b"99999999999"), None);
    }
}
