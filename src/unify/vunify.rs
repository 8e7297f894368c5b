//! vunify: share the identical package files of guests with a reference
//! guest (U1, U2), or give the guests their own copies back (`--undo`).
//!
//! For each package installed in REF and in a guest with the same name,
//! version and architecture, each of its files that is not a conffile, not
//! under /etc or /var/log and not excluded is shared when both are regular
//! files on the same filesystem with the same size, mode, owner, group,
//! mtime, extended attributes and bytes. The guest's name then points to
//! REF's inode (`--method link`: a hard link, put in place by link to a
//! temporary name + rename, so the name never goes missing), or the guest's
//! file shares REF's extents (`--method reflink`: FIDEDUPERANGE, the kernel
//! compares and shares atomically, nothing else changes).
//!
//! REF's file list is resolved once (inside REF's root, final components
//! never followed); then each REF file is taken with every guest's copy in
//! one step: REF's file is opened, read and its inode flags changed once for
//! all guests (flags cleared before the first link, set after the last:
//! two ioctls per shared inode, not per link), each guest's copy read once.
//! The files of different directories go to up to [`THREADS`] threads; the
//! results are reported in the order of a serial run (guest by guest, path
//! order). Files are keyed by where they really are, so merged-/usr aliases
//! (/bin/ls and /usr/bin/ls) count once.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use super::compare::{self, Buffers, Difference};
use super::exclude::ExcludeList;
use super::flags::{self, FlagPolicy, FlagRequest};
use super::guestfs::GuestFs;
use super::pkgdb::{self, Package};
use super::replace;
use crate::attr::{self, InodeFlags};
use crate::progress::{self, Progress};
use crate::sys::dedupe::{self, Outcome as Dedupe};
use crate::sys::errno::Errno;
use crate::sys::fsflags;
use crate::{Error, Result};

/// How guests share a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Link,
    Reflink,
}

/// Which packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Names(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Say what would be done, change nothing.
    pub test: bool,
    pub undo: bool,
    /// One line per file decision.
    pub debug: bool,
    pub flags: FlagRequest,
    pub method: Method,
    pub packages: Selection,
    pub exclude: ExcludeList,
}

/// Where messages go: `line` for --test and --debug output, `warn` for
/// warnings and per-file errors.
pub trait Reporter {
    fn line(&mut self, text: &str);
    fn warn(&mut self, text: &str);
}

/// Why a file was left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Conffile,
    Protected,
    Excluded,
    Missing,
    Symlink,
    NotRegular,
    OtherFs,
    Differs(Difference),
    Empty,
    GuestFlagged,
    Changed,
    TooManyLinks,
    NotShared,
    Error,
}

const SKIPS: [Skip; 19] = [
    Skip::Conffile,
    Skip::Protected,
    Skip::Excluded,
    Skip::Missing,
    Skip::Symlink,
    Skip::NotRegular,
    Skip::OtherFs,
    Skip::Differs(Difference::Size),
    Skip::Differs(Difference::Mode),
    Skip::Differs(Difference::Owner),
    Skip::Differs(Difference::Mtime),
    Skip::Differs(Difference::Xattrs),
    Skip::Differs(Difference::Content),
    Skip::Empty,
    Skip::GuestFlagged,
    Skip::Changed,
    Skip::TooManyLinks,
    Skip::NotShared,
    Skip::Error,
];

impl Skip {
    pub fn describe(self) -> &'static str {
        match self {
            Skip::Conffile => "conffile",
            Skip::Protected => "under /etc or /var/log",
            Skip::Excluded => "excluded",
            Skip::Missing => "missing in the guest",
            Skip::Symlink => "a symlink in the guest (not followed)",
            Skip::NotRegular => "not a regular file in the guest",
            Skip::OtherFs => "on another filesystem",
            Skip::Differs(Difference::Size) => "different size",
            Skip::Differs(Difference::Mode) => "different mode",
            Skip::Differs(Difference::Owner) => "different owner",
            Skip::Differs(Difference::Mtime) => "different mtime",
            Skip::Differs(Difference::Xattrs) => "different extended attributes",
            Skip::Differs(Difference::Content) => "different content",
            Skip::Empty => "empty",
            Skip::GuestFlagged => "guest file immutable",
            Skip::Changed => "changed while compared",
            Skip::TooManyLinks => "too many links",
            Skip::NotShared => "not shared with the reference",
            Skip::Error => "error",
        }
    }

    fn index(self) -> usize {
        SKIPS
            .iter()
            .position(|&s| s == self)
            .unwrap_or(SKIPS.len() - 1)
    }
}

/// What a run did (or, with --test, would do).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub guests: u64,
    /// Packages unified (per guest), and packages of the selection that a
    /// guest lacks or has in another version.
    pub packages: u64,
    pub packages_skipped: u64,
    /// Guest names now pointing to REF's inode (link) or sharing its
    /// extents (reflink), or given their own copy back (undo).
    pub files: u64,
    /// Guest names that already pointed to REF's inode.
    pub already: u64,
    /// Bytes of guest files freed (their last link replaced), or deduped.
    pub bytes: u64,
    pub stale_removed: u64,
    pub skipped: [u64; SKIPS.len()],
    pub errors: u64,
    pub elapsed: Duration,
}

impl Stats {
    pub fn skipped(&self, why: Skip) -> u64 {
        self.skipped[why.index()]
    }

    /// The --stats report.
    pub fn report(&self, opts: &Options) -> String {
        let verb = match (opts.undo, opts.method, opts.test) {
            (true, _, false) => "copied back",
            (true, _, true) => "would be copied back",
            (false, Method::Link, false) => "linked",
            (false, Method::Link, true) => "would be linked",
            (false, Method::Reflink, false) => "deduplicated",
            (false, Method::Reflink, true) => "would be deduplicated",
        };
        let bytes = match (opts.undo, opts.method) {
            (true, _) => String::new(),
            (false, Method::Link) => format!(", {} bytes saved", self.bytes),
            (false, Method::Reflink) => format!(", {} bytes deduped", self.bytes),
        };
        let mut s = format!(
            "guests: {}, packages: {} matched, {} not in a guest or another version\n\
             files {verb}: {}{bytes}\nalready shared: {}\n",
            self.guests, self.packages, self.packages_skipped, self.files, self.already
        );
        for skip in SKIPS {
            let n = self.skipped(skip);
            if n > 0 {
                s.push_str(&format!("skipped ({}): {n}\n", skip.describe()));
            }
        }
        if self.stale_removed > 0 {
            s.push_str(&format!(
                "stale temporary files removed: {}\n",
                self.stale_removed
            ));
        }
        s.push_str(&format!(
            "errors: {}\ntime: {:.3} s",
            self.errors,
            self.elapsed.as_secs_f64()
        ));
        s
    }
}

/// A file of REF, found once.
struct RefFile {
    path: String,
    pkg: usize,
    /// Set when the path is never shared (conffile, /etc, excluded).
    skip: Option<Skip>,
    ino: (u64, u64),
}

/// The open parent directory of the last path looked up: paths come sorted,
/// so neighbours share it.
#[derive(Default)]
struct DirCache {
    parent: String,
    dir: Option<(OwnedFd, (u64, u64))>,
}

impl DirCache {
    /// The parent of `path` resolved in `fs` and the final name; errors keep
    /// the errno (missing, other filesystem).
    fn resolve(
        &mut self,
        fs: &GuestFs,
        path: &str,
    ) -> Result<(BorrowedFd<'_>, (u64, u64), String)> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        if self.dir.is_none() || self.parent != parent {
            self.dir = None;
            let (fd, n) = fs.resolve_parent(path)?;
            debug_assert_eq!(n, name);
            let st = rustix::fs::fstat(&fd).map_err(|e| {
                Error::sys(
                    format!("cannot stat {}", fs.display(parent)),
                    Errno::from(e),
                )
            })?;
            self.parent = parent.to_string();
            self.dir = Some((fd, (st.st_dev, st.st_ino)));
        }
        let (fd, key) = self.dir.as_ref().expect("just set");
        Ok((fd.as_fd(), *key, name.to_string()))
    }

    /// The directory last resolved.
    fn dir(&self) -> Option<BorrowedFd<'_>> {
        self.dir.as_ref().map(|(fd, _)| fd.as_fd())
    }
}

fn is_protected(path: &str) -> bool {
    ["/etc", "/var/log"].iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    })
}

fn is_missing(e: &Error) -> bool {
    e.errno().is_some_and(|n| {
        n.raw() == linux_raw_sys::errno::ENOENT as i32
            || n.raw() == linux_raw_sys::errno::ENOTDIR as i32
    })
}

fn is_xdev(e: &Error) -> bool {
    e.errno()
        .is_none_or(|n| n.raw() == linux_raw_sys::errno::EXDEV as i32)
        && e.message().contains("crosses a mount point")
}

fn open_nofollow(dir: BorrowedFd<'_>, name: &str) -> std::result::Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Errno::from)
}

fn is_regular(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

const EPERM: i32 = linux_raw_sys::errno::EPERM as i32;
const EMLINK: i32 = linux_raw_sys::errno::EMLINK as i32;

/// Opens a guest root given as a directory path, or the vserver_dir of a
/// configured guest name (an argument without '/').
pub fn guest_root(arg: &str) -> Result<PathBuf> {
    if arg.contains('/') {
        return Ok(PathBuf::from(arg));
    }
    let root = crate::conf::ConfigRoot::select(None);
    let conf = crate::conf::load(&root, arg, None)
        .map_err(|e| Error::failure(format!("guest {arg}: {e}")))?;
    Ok(conf.vserver_dir)
}

/// The run: REF's files once; then each file of REF with every guest's copy
/// of it (REF's file opened, read and its flags changed once for all
/// guests), the files of different directories on up to [`THREADS`]
/// threads. Files whose REF inode has several names are done last on one
/// thread, so no two threads ever change one inode's flags. `progress`
/// shows the phase and counts while it runs.
pub fn run(
    reference: &Path,
    guests: &[PathBuf],
    opts: &Options,
    out: &mut dyn Reporter,
    progress: &Progress,
) -> Result<Stats> {
    let start = Instant::now();
    let mut stats = Stats::default();
    progress.phase("reading the package lists", "");
    let rfs = GuestFs::open(reference)?;
    let (_, ref_pkgs) = pkgdb::read_packages(&rfs)?;
    let selected: Vec<bool> = match &opts.packages {
        Selection::All => vec![true; ref_pkgs.len()],
        Selection::Names(names) => {
            for n in names {
                if !ref_pkgs.iter().any(|p| &p.name == n) {
                    out.warn(&format!(
                        "warning: package {n} is not installed in {}",
                        reference.display()
                    ));
                }
            }
            ref_pkgs.iter().map(|p| names.contains(&p.name)).collect()
        }
    };
    let (ref_files, ref_names) = ref_table(&rfs, &ref_pkgs, &selected, opts, out, progress)?;
    let mut ref_used = vec![false; ref_pkgs.len()];
    let mut gs = Vec::new();
    for root in guests {
        let g = Guest::open(root, &ref_pkgs, &selected, opts, &mut stats, out)?;
        for (used, m) in ref_used.iter_mut().zip(&g.matched) {
            *used |= m.is_some();
        }
        gs.push(g);
    }
    let threads = if opts.undo {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(THREADS))
    };
    // Groups: runs of files in one REF directory; a file whose inode has
    // several names waits for the serial end when threads share the work.
    let multi = |rf: &RefFile| threads > 1 && ref_names.get(&rf.ino).is_some_and(|&n| n > 1);
    let mut groups = Vec::new();
    let mut serial = Vec::new();
    let parent = |p: &str| p.rsplit_once('/').map_or("", |x| x.0).len();
    for (i, rf) in ref_files.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| ref_files[j].path.as_str());
        if prev.is_none_or(|p| p[..parent(p)] != rf.path[..parent(&rf.path)]) {
            groups.push(i..i);
        }
        if multi(rf) {
            serial.push(i);
        } else if let Some(g) = groups.last_mut() {
            g.end = i + 1;
        }
    }
    let sh = Shared {
        opts,
        rfs: &rfs,
        ref_files: &ref_files,
        ref_names: &ref_names,
        guests: gs,
        policy: Mutex::new(FlagPolicy::new(opts.flags)),
        dedupe_works: AtomicBool::new(false),
        stop: Mutex::new(None),
        stopped: AtomicBool::new(false),
        groups,
        next: AtomicUsize::new(0),
        progress,
        counts: Counts::default(),
    };
    progress.phase("comparing", &sh.counts.line(opts, ref_files.len()));
    let mut workers = std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut w = Worker::new(&sh);
                    w.groups();
                    w
                })
            })
            .collect();
        let mut w = Worker::new(&sh);
        w.groups();
        let mut all = vec![w];
        for h in handles {
            match h.join() {
                Ok(w) => all.push(w),
                Err(_) => sh.stop(Error::failure("a vunify thread failed")),
            }
        }
        all
    });
    for &i in &serial {
        if sh.stopped.load(Ordering::Relaxed) {
            break;
        }
        workers[0].file(i);
    }
    // Ended before the results are printed, in order, below.
    progress.finish(&sh.counts.line(opts, ref_files.len()));
    let mut results = Vec::new();
    for w in &mut workers {
        for warning in w.warnings.drain(..) {
            out.warn(&warning);
        }
        stats.stale_removed += w.stale_removed;
        results.append(&mut w.results);
    }
    results.sort_unstable_by_key(|r| (r.0, r.1));
    for (g, f, outcome) in results {
        let done = match outcome {
            Outcome::Done(d) => d,
            Outcome::Error(e) => {
                stats.errors += 1;
                out.warn(&e.to_string());
                Done::Skipped(Skip::Error)
            }
        };
        let shown = || {
            sh.guests[g as usize]
                .fs
                .display(&ref_files[f as usize].path)
        };
        account(opts, &mut stats, out, shown, done);
    }
    if let Some(e) = sh.stop.lock().ok().and_then(|mut s| s.take()) {
        return Err(e);
    }
    if opts.undo && !opts.test {
        let touched = std::mem::take(&mut workers[0].touched);
        unlock_unshared(&sh, &ref_names, &ref_used, &touched, &mut stats, out);
    }
    stats.elapsed = start.elapsed();
    Ok(stats)
}

/// At most this many threads compare and link (the files of different
/// directories); each keeps its own open directories and buffers.
const THREADS: usize = 4;

/// How many names each of REF's inodes has among REF's package files.
type RefNames = HashMap<(u64, u64), u32>;

/// REF's selected package files that are regular files, each real file
/// once (by parent directory and name), sorted by path; and how many of
/// REF's own names each inode has.
fn ref_table(
    rfs: &GuestFs,
    pkgs: &[Package],
    selected: &[bool],
    opts: &Options,
    out: &mut dyn Reporter,
    progress: &Progress,
) -> Result<(Vec<RefFile>, RefNames)> {
    let mut paths: Vec<(&str, usize)> = Vec::new();
    for (i, p) in pkgs.iter().enumerate().filter(|(i, _)| selected[*i]) {
        paths.extend(p.files.iter().map(|f| (f.as_str(), i)));
    }
    paths.sort_unstable();
    paths.dedup_by(|a, b| a.0 == b.0);
    let mut cache = DirCache::default();
    let mut seen: HashSet<((u64, u64), String)> = HashSet::new();
    let mut names: HashMap<(u64, u64), u32> = HashMap::new();
    let mut files = Vec::new();
    progress.phase("finding the reference's files", "");
    for (path, pkg) in paths {
        progress.tick(|| format!("{} files", files.len()));
        let (dir, key, name) = match cache.resolve(rfs, path) {
            Ok(r) => r,
            Err(e) if is_missing(&e) || is_xdev(&e) => continue,
            Err(e) => {
                out.warn(&format!("warning: {e}"));
                continue;
            }
        };
        let st = match rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if is_regular(&st) => st,
            _ => continue,
        };
        if !seen.insert((key, name)) {
            continue;
        }
        let ino = (st.st_dev, st.st_ino);
        *names.entry(ino).or_default() += 1;
        let skip = if pkgs[pkg].is_conffile(path) {
            Some(Skip::Conffile)
        } else if is_protected(path) {
            Some(Skip::Protected)
        } else if opts.exclude.excludes(path) {
            Some(Skip::Excluded)
        } else {
            None
        };
        files.push(RefFile {
            path: path.to_string(),
            pkg,
            skip,
            ino,
        });
    }
    Ok((files, names))
}

/// A guest of the run.
struct Guest {
    fs: GuestFs,
    pkgs: Vec<Package>,
    /// For each of REF's packages: the guest's package when selected and
    /// the same (name, architecture and version).
    matched: Vec<Option<usize>>,
    /// Directories whose stale temporary files were removed (under the lock,
    /// so no thread makes a temporary name in a directory being cleaned).
    visited: Mutex<HashSet<(u64, u64)>>,
    /// Real names (directory, name) already handled: aliases count once.
    seen: Mutex<HashSet<((u64, u64), String)>>,
}

impl Guest {
    fn open(
        root: &Path,
        ref_pkgs: &[Package],
        selected: &[bool],
        opts: &Options,
        stats: &mut Stats,
        out: &mut dyn Reporter,
    ) -> Result<Guest> {
        let fs = GuestFs::open(root)?;
        let (_, pkgs) = pkgdb::read_packages(&fs)?;
        stats.guests += 1;
        let by_key: HashMap<(&str, &str), usize> = pkgs
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.name.as_str(), p.arch.as_str()), i))
            .collect();
        let mut matched = Vec::with_capacity(ref_pkgs.len());
        for (i, r) in ref_pkgs.iter().enumerate() {
            if !selected[i] {
                matched.push(None);
                continue;
            }
            let g = by_key
                .get(&(r.name.as_str(), r.arch.as_str()))
                .copied()
                .filter(|&g| pkgs[g].version == r.version);
            match g {
                Some(_) => stats.packages += 1,
                None => stats.packages_skipped += 1,
            }
            if opts.debug && g.is_none() {
                out.line(&format!(
                    "{}: package {} {} ({}): not in the guest or another version",
                    root.display(),
                    r.name,
                    r.version,
                    r.arch
                ));
            }
            matched.push(g);
        }
        Ok(Guest {
            fs,
            pkgs,
            matched,
            visited: Mutex::default(),
            seen: Mutex::default(),
        })
    }
}

/// What the threads share.
struct Shared<'a> {
    opts: &'a Options,
    rfs: &'a GuestFs,
    ref_files: &'a [RefFile],
    ref_names: &'a RefNames,
    guests: Vec<Guest>,
    policy: Mutex<FlagPolicy>,
    dedupe_works: AtomicBool,
    /// An error that stops the whole run (not one file's problem).
    stop: Mutex<Option<Error>>,
    stopped: AtomicBool,
    /// Runs of REF files in one directory, taken in turn by the threads.
    groups: Vec<std::ops::Range<usize>>,
    next: AtomicUsize,
    progress: &'a Progress,
    counts: Counts,
}

/// How far the threads are, for the status line.
#[derive(Default)]
struct Counts {
    /// REF files done (with every guest's copy).
    files: AtomicU64,
    /// Guest files shared (or copied back), and their bytes.
    shared: AtomicU64,
    bytes: AtomicU64,
}

impl Counts {
    fn line(&self, opts: &Options, total: usize) -> String {
        format!(
            "{}/{total} files, {} {} ({})",
            self.files.load(Ordering::Relaxed),
            self.shared.load(Ordering::Relaxed),
            shared_verb(opts),
            progress::bytes(self.bytes.load(Ordering::Relaxed)),
        )
    }
}

impl Shared<'_> {
    /// Marks an error as the end of the run.
    fn stop(&self, e: Error) {
        if let Ok(mut s) = self.stop.lock()
            && s.is_none()
        {
            *s = Some(e);
        }
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// The flags wanted on a shared inode (the first call probes the kernel
    /// on `rfd`); a failure stops the run. The warning about a kernel
    /// without the unlink bit goes to `warnings`, once.
    fn wanted(
        &self,
        rfd: BorrowedFd<'_>,
        rshown: &str,
        warnings: &mut Vec<String>,
    ) -> Result<InodeFlags> {
        let mut policy = self
            .policy
            .lock()
            .map_err(|_| Error::failure("a vunify thread failed"))?;
        match policy.wanted(rfd, rshown) {
            Ok((w, warning)) => {
                if let Some(text) = warning {
                    warnings.push(text.to_string());
                }
                Ok(w)
            }
            Err(e) => {
                self.stop(e.clone());
                Err(e)
            }
        }
    }
}

/// One guest file's result (errors printed by the main thread, in order).
enum Outcome {
    Done(Done),
    Error(Error),
}

/// What happened to one file.
enum Done {
    Shared(u64),
    Already,
    Skipped(Skip),
}

/// A guest's name of a REF file, looked at.
struct Cand {
    guest: usize,
    name: String,
    st: Stat,
    fd: Option<OwnedFd>,
}

/// One thread's state: its open directories (REF's and each guest's), its
/// buffers, and what it did.
struct Worker<'s> {
    sh: &'s Shared<'s>,
    bufs: Buffers,
    rcache: DirCache,
    gcaches: Vec<DirCache>,
    results: Vec<(u32, u32, Outcome)>,
    warnings: Vec<String>,
    stale_removed: u64,
    /// Undo: REF inodes whose flags were cleared to replace a name, with the
    /// flags they had.
    touched: HashMap<(u64, u64), InodeFlags>,
    /// Undo: the copy given back to a guest for a REF inode that has
    /// several names in REF (perl / perl5.36.0), by (guest, REF inode): the
    /// guest's other names of it get the same copy, so the guest's own hard
    /// links come back as they were.
    restored: HashMap<(usize, u64, u64), OwnedFd>,
}

const LOCK: InodeFlags = InodeFlags::IMMUTABLE.union(InodeFlags::IUNLINK);

impl<'s> Worker<'s> {
    fn new(sh: &'s Shared<'s>) -> Self {
        Worker {
            sh,
            bufs: Buffers::default(),
            rcache: DirCache::default(),
            gcaches: sh.guests.iter().map(|_| DirCache::default()).collect(),
            results: Vec::new(),
            warnings: Vec::new(),
            stale_removed: 0,
            touched: HashMap::new(),
            restored: HashMap::new(),
        }
    }

    /// Takes groups of files until none is left (or the run stops).
    fn groups(&mut self) {
        let sh = self.sh;
        while !sh.stopped.load(Ordering::Relaxed) {
            let Some(g) = sh.groups.get(sh.next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            for i in g.clone() {
                self.file(i);
            }
        }
    }

    fn put(&mut self, guest: usize, file: usize, o: Outcome) {
        self.results.push((guest as u32, file as u32, o));
    }

    /// One REF file with every guest's copy, counted for the status line.
    fn file(&mut self, fi: usize) {
        let sh = self.sh;
        self.file_inner(fi);
        sh.counts.files.fetch_add(1, Ordering::Relaxed);
        sh.progress
            .tick(|| sh.counts.line(sh.opts, sh.ref_files.len()));
    }

    fn file_inner(&mut self, fi: usize) {
        let sh = self.sh;
        let rf = &sh.ref_files[fi];
        let mut cands = Vec::new();
        for (g, guest) in sh.guests.iter().enumerate() {
            let Some(gpkg) = guest.matched[rf.pkg] else {
                continue;
            };
            let skip = rf.skip.or_else(|| {
                guest.pkgs[gpkg]
                    .is_conffile(&rf.path)
                    .then_some(Skip::Conffile)
            });
            let r = match skip {
                Some(s) => Some(Err(Outcome::Done(Done::Skipped(s)))),
                None => self.look(g, rf),
            };
            match r {
                Some(Ok(c)) => cands.push(c),
                Some(Err(o)) => self.put(g, fi, o),
                None => {}
            }
        }
        if cands.is_empty() {
            return;
        }
        let rshown = sh.rfs.display(&rf.path);
        let opened = self
            .rcache
            .resolve(sh.rfs, &rf.path)
            .and_then(|(rdir, _, rname)| {
                let rfd = open_nofollow(rdir, &rname)
                    .map_err(|e| Error::sys(format!("cannot open {rshown}"), e))?;
                let rst = rustix::fs::fstat(&rfd)
                    .map_err(|e| Error::sys(format!("cannot stat {rshown}"), e.into()))?;
                Ok((rfd, rst))
            });
        let (rfd, rst) = match opened {
            Ok((fd, st)) if (st.st_dev, st.st_ino) == rf.ino && is_regular(&st) => (fd, st),
            r => {
                for c in cands {
                    let o = match &r {
                        Ok(_) => Outcome::Done(Done::Skipped(Skip::Changed)),
                        Err(e) => Outcome::Error(e.clone()),
                    };
                    self.put(c.guest, fi, o);
                }
                return;
            }
        };
        let done = if sh.opts.undo {
            cands
                .into_iter()
                .map(|c| {
                    let r = if (c.st.st_dev, c.st.st_ino) != rf.ino {
                        Ok(Done::Skipped(Skip::NotShared))
                    } else {
                        self.undo_file(rfd.as_fd(), &rst, &c, &rshown)
                    };
                    (c.guest, r)
                })
                .collect()
        } else if sh.opts.method == Method::Reflink {
            cands
                .into_iter()
                .map(|c| {
                    let r = if (c.st.st_dev, c.st.st_ino) == rf.ino {
                        Ok(Done::Already)
                    } else if c.st.st_dev != rst.st_dev {
                        Ok(Done::Skipped(Skip::OtherFs))
                    } else {
                        self.reflink_file(
                            rfd.as_fd(),
                            &rst,
                            &c,
                            &sh.guests[c.guest].fs.display(&rf.path),
                        )
                    };
                    (c.guest, r)
                })
                .collect()
        } else {
            self.link_file(rf, rfd.as_fd(), &rst, cands, &rshown)
        };
        for (g, r) in done {
            if let Ok(Done::Shared(bytes)) = r {
                sh.counts.shared.fetch_add(1, Ordering::Relaxed);
                sh.counts.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            let o = match r {
                Ok(d) => Outcome::Done(d),
                Err(_) if sh.stopped.load(Ordering::Relaxed) => {
                    Outcome::Done(Done::Skipped(Skip::Error))
                }
                Err(e) => Outcome::Error(e),
            };
            self.put(g, fi, o);
        }
    }

    /// Finds a guest's name of a REF file: Ok to go on, Err with what
    /// happened, None for a name already handled (an alias).
    fn look(&mut self, g: usize, rf: &RefFile) -> Option<std::result::Result<Cand, Outcome>> {
        let sh = self.sh;
        let gfs = &sh.guests[g].fs;
        let skip = |s| Some(Err(Outcome::Done(Done::Skipped(s))));
        let (gdir, gkey, gname) = match self.gcaches[g].resolve(gfs, &rf.path) {
            Ok(r) => r,
            Err(e) if is_missing(&e) => return skip(Skip::Missing),
            Err(e) if is_xdev(&e) => return skip(Skip::OtherFs),
            Err(e) => return Some(Err(Outcome::Error(e))),
        };
        if !sh.opts.test
            && let Ok(mut visited) = sh.guests[g].visited.lock()
            && visited.insert(gkey)
        {
            match replace::clean_stale(gdir) {
                Ok(n) => self.stale_removed += n,
                Err(e) => {
                    let parent = rf.path.rsplit_once('/').map_or("/", |p| p.0);
                    self.warnings.push(format!(
                        "warning: cannot remove stale temporary files in {}: {}",
                        gfs.display(parent),
                        e.describe()
                    ));
                }
            }
        }
        if !sh.guests[g]
            .seen
            .lock()
            .is_ok_and(|mut seen| seen.insert((gkey, gname.clone())))
        {
            return None;
        }
        let st = match rustix::fs::statat(gdir, gname.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return skip(Skip::Missing),
            Err(e) => {
                let what = format!("cannot stat {}", gfs.display(&rf.path));
                return Some(Err(Outcome::Error(Error::sys(what, e.into()))));
            }
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Symlink => return skip(Skip::Symlink),
            _ => return skip(Skip::NotRegular),
        }
        Some(Ok(Cand {
            guest: g,
            name: gname,
            st,
            fd: None,
        }))
    }

    /// Link mode: compares every guest's copy with REF's file (REF read
    /// once), links those that are the same, and sets REF's inode flags
    /// once: cleared before the first link when locked, put back (with the
    /// lock wanted) after the last.
    fn link_file(
        &mut self,
        rf: &RefFile,
        rfd: BorrowedFd<'_>,
        rst: &Stat,
        cands: Vec<Cand>,
        rshown: &str,
    ) -> Vec<(usize, Result<Done>)> {
        let sh = self.sh;
        let gshown = |g: usize| sh.guests[g].fs.display(&rf.path);
        let mut done = Vec::with_capacity(cands.len());
        let mut live = Vec::with_capacity(cands.len());
        let mut already = false;
        let mut xref = None;
        for mut c in cands {
            let r = if (c.st.st_dev, c.st.st_ino) == rf.ino {
                already = true;
                Ok(Done::Already)
            } else if c.st.st_dev != rst.st_dev {
                Ok(Done::Skipped(Skip::OtherFs))
            } else if let Some(d) = compare::metadata(rst, &c.st) {
                Ok(Done::Skipped(Skip::Differs(d)))
            } else {
                match self.open_same(rfd, &mut c, &mut xref, rshown, &gshown) {
                    Ok(None) => {
                        live.push(c);
                        continue;
                    }
                    r => r.map(|d| d.unwrap_or(Done::Skipped(Skip::Changed))),
                }
            };
            done.push((c.guest, r));
        }
        if !live.is_empty() {
            let fds: Vec<BorrowedFd<'_>> = live
                .iter()
                .filter_map(|c| c.fd.as_ref())
                .map(|f| f.as_fd())
                .collect();
            let mut same = vec![Ok(true); live.len()];
            let r = self
                .bufs
                .same_content_many(rfd, &fds, rst.st_size as u64, &mut same);
            drop(fds);
            let mut keep = Vec::with_capacity(live.len());
            for (c, s) in live.into_iter().zip(same) {
                let r = match (&r, s) {
                    (Err(e), _) => Err(Error::sys(format!("cannot read {rshown}"), *e)),
                    (Ok(()), Ok(true)) => {
                        keep.push(c);
                        continue;
                    }
                    (Ok(()), Ok(false)) => Ok(Done::Skipped(Skip::Differs(Difference::Content))),
                    (Ok(()), Err(e)) => Err(Error::sys(
                        format!("cannot compare {rshown} and {}", gshown(c.guest)),
                        e,
                    )),
                };
                done.push((c.guest, r));
            }
            live = keep;
        }
        // A guest's last link to its own copy frees its blocks.
        #[allow(clippy::unnecessary_cast)]
        let saved = |c: &Cand| {
            if c.st.st_nlink == 1 {
                c.st.st_size as u64
            } else {
                0
            }
        };
        if sh.opts.test {
            done.extend(live.iter().map(|c| (c.guest, Ok(Done::Shared(saved(c))))));
            return done;
        }
        let sets = sh.opts.flags != FlagRequest::Explicit(InodeFlags::EMPTY);
        if live.is_empty() && !(already && sets) {
            return done;
        }
        let wanted = if sets {
            match sh.wanted(rfd, rshown, &mut self.warnings) {
                Ok(w) => w,
                Err(e) => {
                    done.extend(live.iter().map(|c| (c.guest, Err(e.clone()))));
                    return done;
                }
            }
        } else {
            InodeFlags::EMPTY
        };
        let had = attr::flags_of(rfd).unwrap_or_default();
        let mut now = had;
        let mut shared = already;
        for c in live {
            let r = self.link_over(rfd, &c, &mut now, rshown, &gshown);
            shared |= matches!(r, Ok(Done::Shared(_)));
            let r = r.map(|d| match d {
                Done::Shared(_) => Done::Shared(saved(&c)),
                d => d,
            });
            done.push((c.guest, r));
        }
        let target = if shared && sets {
            flags::lock_target(had, wanted)
        } else {
            had
        };
        if now != target
            && let Err(e) = fsflags::set(rfd, target.bits())
        {
            let e = Error::sys(
                format!("cannot change the flags of {rshown} from {now} to {target}"),
                e,
            );
            for (_, r) in done.iter_mut() {
                if matches!(r, Ok(Done::Shared(_) | Done::Already)) {
                    *r = Err(e.clone());
                }
            }
        }
        done
    }

    /// Opens a guest's copy whose metadata matched and compares extended
    /// attributes: None when it is still a candidate (`c.fd` set).
    fn open_same(
        &self,
        rfd: BorrowedFd<'_>,
        c: &mut Cand,
        xref: &mut Option<compare::Xattrs>,
        rshown: &str,
        gshown: &dyn Fn(usize) -> String,
    ) -> Result<Option<Done>> {
        let Some(gdir) = self.gcaches[c.guest].dir() else {
            return Ok(Some(Done::Skipped(Skip::Changed)));
        };
        let gfd = open_nofollow(gdir, &c.name)
            .map_err(|e| Error::sys(format!("cannot open {}", gshown(c.guest)), e))?;
        match rustix::fs::fstat(&gfd) {
            Ok(st) if (st.st_dev, st.st_ino) == (c.st.st_dev, c.st.st_ino) => {}
            _ => return Ok(Some(Done::Skipped(Skip::Changed))),
        }
        if xref.is_none() {
            *xref =
                Some(compare::xattrs(rfd).map_err(|e| {
                    Error::sys(format!("cannot list the attributes of {rshown}"), e)
                })?);
        }
        let xb = compare::xattrs(&gfd).map_err(|e| {
            Error::sys(
                format!("cannot list the attributes of {}", gshown(c.guest)),
                e,
            )
        })?;
        if xref.as_ref() != Some(&xb) {
            return Ok(Some(Done::Skipped(Skip::Differs(Difference::Xattrs))));
        }
        c.fd = Some(gfd);
        Ok(None)
    }

    /// Links REF's inode over a guest's name (temporary name + rename), the
    /// lock flags cleared first when `now` has them.
    fn link_over(
        &self,
        rfd: BorrowedFd<'_>,
        c: &Cand,
        now: &mut InodeFlags,
        rshown: &str,
        gshown: &dyn Fn(usize) -> String,
    ) -> Result<Done> {
        let Some(gdir) = self.gcaches[c.guest].dir() else {
            return Ok(Done::Skipped(Skip::Changed));
        };
        if now.difference(LOCK) != *now {
            fsflags::set(rfd, now.difference(LOCK).bits())
                .map_err(|e| Error::sys(format!("cannot clear the flags of {rshown}"), e))?;
            *now = now.difference(LOCK);
        }
        let temp = match replace::link_temp(rfd, gdir) {
            Ok(t) => t,
            Err(e) if e.raw() == EPERM => {
                *now = flags::unlock(rfd, rshown)?.difference(LOCK);
                replace::link_temp(rfd, gdir)
                    .map_err(|e| link_error(e, rshown, &gshown(c.guest)))?
            }
            Err(e) if e.raw() == EMLINK => return Ok(Done::Skipped(Skip::TooManyLinks)),
            Err(e) => return Err(link_error(e, rshown, &gshown(c.guest))),
        };
        // Narrow the window for a guest swapping the name after the compare.
        match rustix::fs::statat(gdir, c.name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if (st.st_dev, st.st_ino) == (c.st.st_dev, c.st.st_ino) => {}
            _ => {
                replace::remove_temp(gdir, &temp);
                return Ok(Done::Skipped(Skip::Changed));
            }
        }
        match replace::rename_over(gdir, &temp, &c.name) {
            Ok(()) => Ok(Done::Shared(0)),
            Err(e) if e.raw() == EPERM => Ok(Done::Skipped(Skip::GuestFlagged)),
            Err(e) => Err(Error::sys(format!("cannot replace {}", gshown(c.guest)), e)),
        }
    }

    fn reflink_file(
        &mut self,
        rfd: BorrowedFd<'_>,
        rst: &Stat,
        c: &Cand,
        gshown: &str,
    ) -> Result<Done> {
        let sh = self.sh;
        let gst = &c.st;
        if rst.st_size != gst.st_size {
            return Ok(Done::Skipped(Skip::Differs(Difference::Size)));
        }
        if rst.st_size == 0 {
            return Ok(Done::Skipped(Skip::Empty));
        }
        let Some(gdir) = self.gcaches[c.guest].dir() else {
            return Ok(Done::Skipped(Skip::Changed));
        };
        let gfd = match open_nofollow(gdir, &c.name) {
            Ok(fd) => fd,
            Err(e) => return Err(Error::sys(format!("cannot open {gshown}"), e)),
        };
        match rustix::fs::fstat(&gfd) {
            Ok(st) if (st.st_dev, st.st_ino) == (gst.st_dev, gst.st_ino) => {}
            _ => return Ok(Done::Skipped(Skip::Changed)),
        }
        let size = rst.st_size as u64;
        if sh.opts.test {
            let same = self
                .bufs
                .same_content(rfd, gfd.as_fd(), size)
                .map_err(|e| Error::sys(format!("cannot compare with {gshown}"), e))?;
            return Ok(if same {
                Done::Shared(size)
            } else {
                Done::Skipped(Skip::Differs(Difference::Content))
            });
        }
        const STEP: u64 = 16 << 20;
        let mut offset = 0;
        while offset < size {
            let len = STEP.min(size - offset);
            match dedupe::dedupe_range(rfd, offset, len, gfd.as_fd(), offset) {
                Ok(Dedupe::Same(0)) => break,
                Ok(Dedupe::Same(n)) => {
                    sh.dedupe_works.store(true, Ordering::Relaxed);
                    offset += n;
                }
                Ok(Dedupe::Differs) => {
                    return Ok(Done::Skipped(Skip::Differs(Difference::Content)));
                }
                Err(e)
                    if !sh.dedupe_works.load(Ordering::Relaxed)
                        && [
                            linux_raw_sys::errno::EOPNOTSUPP,
                            linux_raw_sys::errno::EINVAL,
                            linux_raw_sys::errno::ENOTTY,
                        ]
                        .contains(&(e.raw() as u32)) =>
                {
                    let e = Error::sys(
                        format!(
                            "cannot share the extents of {gshown}: the filesystem does not \
                             share extents (FIDEDUPERANGE); use --method link"
                        ),
                        e,
                    );
                    sh.stop(e.clone());
                    return Err(e);
                }
                Err(e) => return Err(Error::sys(format!("cannot deduplicate {gshown}"), e)),
            }
        }
        Ok(Done::Shared(offset))
    }

    fn undo_file(
        &mut self,
        rfd: BorrowedFd<'_>,
        rst: &Stat,
        c: &Cand,
        rshown: &str,
    ) -> Result<Done> {
        let gshown_err = |what: &str, e| Error::sys(format!("{what} {rshown}"), e);
        if self.sh.opts.test {
            return Ok(Done::Shared(0));
        }
        let Some(gdir) = self.gcaches[c.guest].dir() else {
            return Ok(Done::Skipped(Skip::Changed));
        };
        let gname = c.name.as_str();
        let key = (rst.st_dev, rst.st_ino);
        let several = self.sh.ref_names.get(&key).is_some_and(|&n| n > 1);
        let copy_key = (c.guest, rst.st_dev, rst.st_ino);
        let temp = match self.restored.get(&copy_key) {
            Some(copy) => replace::link_temp(copy.as_fd(), gdir)
                .map_err(|e| gshown_err("cannot link the copy of", e))?,
            None => {
                let temp =
                    replace::copy_temp(rfd, rst, gdir).map_err(|e| gshown_err("cannot copy", e))?;
                if several {
                    if let Ok(fd) = open_nofollow(gdir, &temp) {
                        self.restored.insert(copy_key, fd);
                    }
                }
                temp
            }
        };
        match rustix::fs::renameat(gdir, temp.as_str(), gdir, gname) {
            Ok(()) => return Ok(Done::Shared(0)),
            Err(rustix::io::Errno::PERM) => {}
            Err(e) => {
                replace::remove_temp(gdir, &temp);
                return Err(gshown_err("cannot put back a copy of", e.into()));
            }
        }
        // Plain immutable: the shared name cannot be replaced until the
        // flags are off; they are put back (or dropped) at the end.
        match flags::unlock(rfd, rshown) {
            Ok(had) => {
                self.touched.entry(key).or_insert(had);
            }
            Err(e) => {
                replace::remove_temp(gdir, &temp);
                return Err(e);
            }
        }
        replace::rename_over(gdir, &temp, gname)
            .map_err(|e| gshown_err("cannot put back a copy of", e))?;
        Ok(Done::Shared(0))
    }
}

/// Counts one guest file's result (and says it, with --test or --debug).
fn account(
    opts: &Options,
    stats: &mut Stats,
    out: &mut dyn Reporter,
    shown: impl Fn() -> String,
    done: Done,
) {
    let what = match done {
        Done::Shared(bytes) => {
            stats.files += 1;
            stats.bytes += bytes;
            let verb = shared_verb(opts);
            if opts.test && !opts.debug {
                out.line(&format!("would be {verb}: {}", shown()));
            }
            verb.to_string()
        }
        Done::Already => {
            stats.already += 1;
            "already shared".to_string()
        }
        Done::Skipped(s) => {
            stats.skipped[s.index()] += 1;
            format!("skipped: {}", s.describe())
        }
    };
    if opts.debug {
        let would = if opts.test { " (test)" } else { "" };
        out.line(&format!("{}: {what}{would}", shown()));
    }
}

/// What sharing a file is called in this run.
fn shared_verb(opts: &Options) -> &'static str {
    match (opts.undo, opts.method) {
        (true, _) => "copied back",
        (false, Method::Link) => "linked",
        (false, Method::Reflink) => "deduplicated",
    }
}

/// After an undo: the lock flags off REF inodes no guest shares any more;
/// back on those still shared.
fn unlock_unshared(
    sh: &Shared<'_>,
    ref_names: &RefNames,
    ref_used: &[bool],
    touched: &HashMap<(u64, u64), InodeFlags>,
    stats: &mut Stats,
    out: &mut dyn Reporter,
) {
    let mut done: HashSet<(u64, u64)> = HashSet::new();
    let mut cache = DirCache::default();
    for rf in sh
        .ref_files
        .iter()
        .filter(|rf| ref_used[rf.pkg] && rf.skip.is_none())
    {
        if !done.insert(rf.ino) {
            continue;
        }
        let Ok((dir, _, name)) = cache.resolve(sh.rfs, &rf.path) else {
            continue;
        };
        let Ok(fd) = open_nofollow(dir, &name) else {
            continue;
        };
        let Ok(st) = rustix::fs::fstat(&fd) else {
            continue;
        };
        if (st.st_dev, st.st_ino) != rf.ino {
            continue;
        }
        let Ok(now) = attr::flags_of(fd.as_fd()) else {
            continue;
        };
        let had = touched.get(&rf.ino).copied().unwrap_or(now);
        let own = u64::from(ref_names.get(&rf.ino).copied().unwrap_or(1));
        // st_nlink is u32 on some targets.
        #[allow(clippy::unnecessary_cast)]
        let nlink = st.st_nlink as u64;
        let target = if nlink <= own {
            flags::unlock_target(had)
        } else {
            had
        };
        let shown = sh.rfs.display(&rf.path);
        if let Err(e) = flags::set(fd.as_fd(), target, &shown) {
            stats.errors += 1;
            out.warn(&e.to_string());
        }
    }
}

fn link_error(e: Errno, rshown: &str, gshown: &str) -> Error {
    Error::sys(
        format!("cannot link {rshown} into the directory of {gshown}"),
        e,
    )
}
