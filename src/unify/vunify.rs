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
//! never followed); each guest is then one pass in path order, each file
//! pair read once. Files are keyed by where they really are, so merged-/usr
//! aliases (/bin/ls and /usr/bin/ls) count once.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use super::compare::{self, Buffers, Difference};
use super::exclude::ExcludeList;
use super::flags::{self, FlagPolicy, FlagRequest};
use super::guestfs::GuestFs;
use super::pkgdb::{self, Package};
use super::replace;
use crate::attr::{self, InodeFlags};
use crate::sys::dedupe::{self, Outcome};
use crate::sys::errno::Errno;
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

/// The run: REF's files once, then each guest in turn.
pub fn run(
    reference: &Path,
    guests: &[PathBuf],
    opts: &Options,
    out: &mut dyn Reporter,
) -> Result<Stats> {
    let start = Instant::now();
    let mut stats = Stats::default();
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
    let (ref_files, ref_names) = ref_table(&rfs, &ref_pkgs, &selected, opts, out)?;
    let mut engine = Engine {
        opts,
        rfs: &rfs,
        policy: FlagPolicy::new(opts.flags),
        warned: false,
        dedupe_works: false,
        bufs: Buffers::default(),
        touched: HashMap::new(),
        stop: None,
        stats: &mut stats,
        out,
    };
    let mut ref_used = vec![false; ref_pkgs.len()];
    for guest in guests {
        engine.guest(guest, &ref_pkgs, &selected, &ref_files, &mut ref_used)?;
    }
    if opts.undo && !opts.test {
        engine.unlock_unshared(&ref_files, &ref_names, &ref_used)?;
    }
    stats.elapsed = start.elapsed();
    Ok(stats)
}

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
    for (path, pkg) in paths {
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

struct Engine<'a> {
    opts: &'a Options,
    rfs: &'a GuestFs,
    policy: FlagPolicy,
    warned: bool,
    dedupe_works: bool,
    bufs: Buffers,
    /// Undo: REF inodes whose flags were cleared to replace a name, with the
    /// flags they had.
    touched: HashMap<(u64, u64), InodeFlags>,
    /// An error that stops the whole run (not one file's problem).
    stop: Option<Error>,
    stats: &'a mut Stats,
    out: &'a mut dyn Reporter,
}

/// What happened to one file.
enum Done {
    Shared(u64),
    Already,
    Skipped(Skip),
}

impl Engine<'_> {
    fn guest(
        &mut self,
        root: &Path,
        ref_pkgs: &[Package],
        selected: &[bool],
        ref_files: &[RefFile],
        ref_used: &mut [bool],
    ) -> Result<()> {
        let gfs = GuestFs::open(root)?;
        let (_, gpkgs) = pkgdb::read_packages(&gfs)?;
        self.stats.guests += 1;
        let by_key: HashMap<(&str, &str), &Package> = gpkgs
            .iter()
            .map(|p| ((p.name.as_str(), p.arch.as_str()), p))
            .collect();
        // The guest's package for each selected REF package, when the same.
        let matched: Vec<Option<&Package>> = ref_pkgs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if !selected[i] {
                    return None;
                }
                let g = by_key
                    .get(&(r.name.as_str(), r.arch.as_str()))
                    .filter(|g| g.version == r.version)
                    .copied();
                match g {
                    Some(_) => self.stats.packages += 1,
                    None => self.stats.packages_skipped += 1,
                }
                if self.opts.debug && g.is_none() {
                    self.out.line(&format!(
                        "{}: package {} {} ({}): not in the guest or another version",
                        root.display(),
                        r.name,
                        r.version,
                        r.arch
                    ));
                }
                g
            })
            .collect();
        let mut rcache = DirCache::default();
        let mut gcache = DirCache::default();
        let mut visited: HashSet<(u64, u64)> = HashSet::new();
        let mut seen: HashSet<((u64, u64), String)> = HashSet::new();
        for rf in ref_files {
            let Some(gpkg) = matched[rf.pkg] else {
                continue;
            };
            ref_used[rf.pkg] = true;
            let skip = rf
                .skip
                .or_else(|| gpkg.is_conffile(&rf.path).then_some(Skip::Conffile));
            let done = match skip {
                Some(s) => Some(Done::Skipped(s)),
                None => self.file(&gfs, rf, &mut rcache, &mut gcache, &mut visited, &mut seen),
            };
            let done = match done {
                Some(d) => d,
                None => continue,
            };
            if let Some(e) = self.stop.take() {
                return Err(e);
            }
            self.account(&gfs, rf, done);
        }
        Ok(())
    }

    fn account(&mut self, gfs: &GuestFs, rf: &RefFile, done: Done) {
        let shown = || gfs.display(&rf.path);
        let what = match done {
            Done::Shared(bytes) => {
                self.stats.files += 1;
                self.stats.bytes += bytes;
                let verb = match (self.opts.undo, self.opts.method) {
                    (true, _) => "copied back",
                    (false, Method::Link) => "linked",
                    (false, Method::Reflink) => "deduplicated",
                };
                if self.opts.test && !self.opts.debug {
                    self.out.line(&format!("would be {verb}: {}", shown()));
                }
                verb.to_string()
            }
            Done::Already => {
                self.stats.already += 1;
                "already shared".to_string()
            }
            Done::Skipped(s) => {
                self.stats.skipped[s.index()] += 1;
                format!("skipped: {}", s.describe())
            }
        };
        if self.opts.debug {
            let would = if self.opts.test { " (test)" } else { "" };
            self.out.line(&format!("{}: {what}{would}", shown()));
        }
    }

    fn error(&mut self, e: Error) -> Option<Done> {
        if self.stop.is_some() {
            return Some(Done::Skipped(Skip::Error));
        }
        self.stats.errors += 1;
        self.out.warn(&e.to_string());
        Some(Done::Skipped(Skip::Error))
    }

    /// One file of one guest; None for a name already handled (an alias).
    fn file(
        &mut self,
        gfs: &GuestFs,
        rf: &RefFile,
        rcache: &mut DirCache,
        gcache: &mut DirCache,
        visited: &mut HashSet<(u64, u64)>,
        seen: &mut HashSet<((u64, u64), String)>,
    ) -> Option<Done> {
        let (gdir, gkey, gname) = match gcache.resolve(gfs, &rf.path) {
            Ok(r) => r,
            Err(e) if is_missing(&e) => return Some(Done::Skipped(Skip::Missing)),
            Err(e) if is_xdev(&e) => return Some(Done::Skipped(Skip::OtherFs)),
            Err(e) => return self.error(e),
        };
        if visited.insert(gkey) && !self.opts.test {
            match replace::clean_stale(gdir) {
                Ok(n) => self.stats.stale_removed += n,
                Err(e) => {
                    let parent = rf.path.rsplit_once('/').map_or("/", |p| p.0);
                    self.out.warn(&format!(
                        "warning: cannot remove stale temporary files in {}: {}",
                        gfs.display(parent),
                        e.describe()
                    ));
                }
            }
        }
        if !seen.insert((gkey, gname.clone())) {
            return None;
        }
        let gshown = gfs.display(&rf.path);
        let gst = match rustix::fs::statat(gdir, gname.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Some(Done::Skipped(Skip::Missing)),
            Err(e) => return self.error(Error::sys(format!("cannot stat {gshown}"), e.into())),
        };
        match FileType::from_raw_mode(gst.st_mode) {
            FileType::RegularFile => {}
            FileType::Symlink => return Some(Done::Skipped(Skip::Symlink)),
            _ => return Some(Done::Skipped(Skip::NotRegular)),
        }
        let rshown = self.rfs.display(&rf.path);
        let (rdir, _, rname) = match rcache.resolve(self.rfs, &rf.path) {
            Ok(r) => r,
            Err(e) => return self.error(e),
        };
        let rfd = match open_nofollow(rdir, &rname) {
            Ok(fd) => fd,
            Err(e) => return self.error(Error::sys(format!("cannot open {rshown}"), e)),
        };
        let rst = match rustix::fs::fstat(&rfd) {
            Ok(st) if (st.st_dev, st.st_ino) == rf.ino && is_regular(&st) => st,
            Ok(_) => return Some(Done::Skipped(Skip::Changed)),
            Err(e) => return self.error(Error::sys(format!("cannot stat {rshown}"), e.into())),
        };
        let same_inode = (gst.st_dev, gst.st_ino) == rf.ino;
        let r = if self.opts.undo {
            if !same_inode {
                return Some(Done::Skipped(Skip::NotShared));
            }
            self.undo_file(rfd.as_fd(), &rst, gdir, &gname, &rshown)
        } else if same_inode {
            if self.opts.method == Method::Link && !self.opts.test && self.policy.sets_flags() {
                match self.lock(rfd.as_fd(), &rshown) {
                    Ok(()) => Ok(Done::Already),
                    Err(e) => Err(e),
                }
            } else {
                Ok(Done::Already)
            }
        } else if gst.st_dev != rst.st_dev {
            return Some(Done::Skipped(Skip::OtherFs));
        } else if self.opts.method == Method::Reflink {
            self.reflink_file(rfd.as_fd(), &rst, &gst, gdir, &gname, &gshown)
        } else {
            self.link_file(rfd.as_fd(), &rst, &gst, gdir, &gname, &gshown, &rshown)
        };
        match r {
            Ok(d) => Some(d),
            Err(e) => self.error(e),
        }
    }

    /// Marks an error as the end of the run.
    fn stop(&mut self, e: Error) -> Error {
        self.stop = Some(e.clone());
        e
    }

    /// The flags wanted on a shared inode; warns once when the kernel lacks
    /// the unlink bit.
    fn wanted(&mut self, rfd: BorrowedFd<'_>, rshown: &str) -> Result<InodeFlags> {
        let (wanted, warning) = self.policy.wanted(rfd, rshown)?;
        if let Some(w) = warning
            && !self.warned
        {
            self.warned = true;
            self.out.warn(w);
        }
        Ok(wanted)
    }

    /// Makes sure a shared inode has the wanted flags (a rerun after an
    /// interruption between link and flags).
    fn lock(&mut self, rfd: BorrowedFd<'_>, rshown: &str) -> Result<()> {
        let wanted = match self.wanted(rfd, rshown) {
            Ok(w) => w,
            Err(e) => return Err(self.stop(e)),
        };
        let had = attr::flags_of(rfd)
            .map_err(|e| Error::sys(format!("cannot read the flags of {rshown}"), e))?;
        flags::set(rfd, flags::lock_target(had, wanted), rshown)
    }

    #[allow(clippy::too_many_arguments)]
    fn link_file(
        &mut self,
        rfd: BorrowedFd<'_>,
        rst: &Stat,
        gst: &Stat,
        gdir: BorrowedFd<'_>,
        gname: &str,
        gshown: &str,
        rshown: &str,
    ) -> Result<Done> {
        if let Some(d) = compare::metadata(rst, gst) {
            return Ok(Done::Skipped(Skip::Differs(d)));
        }
        let gfd = match open_nofollow(gdir, gname) {
            Ok(fd) => fd,
            Err(e) => return Err(Error::sys(format!("cannot open {gshown}"), e)),
        };
        match rustix::fs::fstat(&gfd) {
            Ok(st) if (st.st_dev, st.st_ino) == (gst.st_dev, gst.st_ino) => {}
            _ => return Ok(Done::Skipped(Skip::Changed)),
        }
        let xa = compare::xattrs(rfd)
            .map_err(|e| Error::sys(format!("cannot list the attributes of {rshown}"), e))?;
        let xb = compare::xattrs(&gfd)
            .map_err(|e| Error::sys(format!("cannot list the attributes of {gshown}"), e))?;
        if xa != xb {
            return Ok(Done::Skipped(Skip::Differs(Difference::Xattrs)));
        }
        let same = self
            .bufs
            .same_content(rfd, gfd.as_fd(), rst.st_size as u64)
            .map_err(|e| Error::sys(format!("cannot compare {rshown} and {gshown}"), e))?;
        if !same {
            return Ok(Done::Skipped(Skip::Differs(Difference::Content)));
        }
        let saved = if gst.st_nlink == 1 {
            gst.st_size as u64
        } else {
            0
        };
        if self.opts.test {
            return Ok(Done::Shared(saved));
        }
        let wanted = if self.policy.sets_flags() {
            match self.wanted(rfd, rshown) {
                Ok(w) => w,
                Err(e) => return Err(self.stop(e)),
            }
        } else {
            InodeFlags::EMPTY
        };
        let had = attr::flags_of(rfd).unwrap_or_default();
        let mut unlocked = false;
        let r = self.link_over(rfd, gst, gdir, gname, gshown, rshown, &mut unlocked);
        let target = match r {
            Ok(Done::Shared(_)) if self.policy.sets_flags() => flags::lock_target(had, wanted),
            _ => had,
        };
        if unlocked || matches!(r, Ok(Done::Shared(_))) {
            flags::set(rfd, target, rshown)?;
        }
        r.map(|d| match d {
            Done::Shared(_) => Done::Shared(saved),
            d => d,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn link_over(
        &mut self,
        rfd: BorrowedFd<'_>,
        gst: &Stat,
        gdir: BorrowedFd<'_>,
        gname: &str,
        gshown: &str,
        rshown: &str,
        unlocked: &mut bool,
    ) -> Result<Done> {
        let temp = match replace::link_temp(rfd, gdir) {
            Ok(t) => t,
            Err(e) if e.raw() == EPERM => {
                flags::unlock(rfd, rshown)?;
                *unlocked = true;
                replace::link_temp(rfd, gdir).map_err(|e| link_error(e, rshown, gshown))?
            }
            Err(e) if e.raw() == EMLINK => return Ok(Done::Skipped(Skip::TooManyLinks)),
            Err(e) => return Err(link_error(e, rshown, gshown)),
        };
        // Narrow the window for a guest swapping the name after the compare.
        match rustix::fs::statat(gdir, gname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if (st.st_dev, st.st_ino) == (gst.st_dev, gst.st_ino) => {}
            _ => {
                replace::remove_temp(gdir, &temp);
                return Ok(Done::Skipped(Skip::Changed));
            }
        }
        match replace::rename_over(gdir, &temp, gname) {
            Ok(()) => Ok(Done::Shared(0)),
            Err(e) if e.raw() == EPERM => Ok(Done::Skipped(Skip::GuestFlagged)),
            Err(e) => Err(Error::sys(format!("cannot replace {gshown}"), e)),
        }
    }

    fn reflink_file(
        &mut self,
        rfd: BorrowedFd<'_>,
        rst: &Stat,
        gst: &Stat,
        gdir: BorrowedFd<'_>,
        gname: &str,
        gshown: &str,
    ) -> Result<Done> {
        if rst.st_size != gst.st_size {
            return Ok(Done::Skipped(Skip::Differs(Difference::Size)));
        }
        if rst.st_size == 0 {
            return Ok(Done::Skipped(Skip::Empty));
        }
        let gfd = match open_nofollow(gdir, gname) {
            Ok(fd) => fd,
            Err(e) => return Err(Error::sys(format!("cannot open {gshown}"), e)),
        };
        match rustix::fs::fstat(&gfd) {
            Ok(st) if (st.st_dev, st.st_ino) == (gst.st_dev, gst.st_ino) => {}
            _ => return Ok(Done::Skipped(Skip::Changed)),
        }
        let size = rst.st_size as u64;
        if self.opts.test {
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
                Ok(Outcome::Same(0)) => break,
                Ok(Outcome::Same(n)) => {
                    self.dedupe_works = true;
                    offset += n;
                }
                Ok(Outcome::Differs) => {
                    return Ok(Done::Skipped(Skip::Differs(Difference::Content)));
                }
                Err(e)
                    if !self.dedupe_works
                        && [
                            linux_raw_sys::errno::EOPNOTSUPP,
                            linux_raw_sys::errno::EINVAL,
                            linux_raw_sys::errno::ENOTTY,
                        ]
                        .contains(&(e.raw() as u32)) =>
                {
                    return Err(self.stop(Error::sys(
                        format!(
                            "cannot share the extents of {gshown}: the filesystem does not \
                             share extents (FIDEDUPERANGE); use --method link"
                        ),
                        e,
                    )));
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
        gdir: BorrowedFd<'_>,
        gname: &str,
        rshown: &str,
    ) -> Result<Done> {
        let gshown_err = |what: &str, e| Error::sys(format!("{what} {rshown}"), e);
        if self.opts.test {
            return Ok(Done::Shared(0));
        }
        let temp = replace::copy_temp(rfd, rst, gdir).map_err(|e| gshown_err("cannot copy", e))?;
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
        let key = (rst.st_dev, rst.st_ino);
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

    /// After an undo: the lock flags off REF inodes no guest shares any
    /// more; back on those still shared.
    fn unlock_unshared(
        &mut self,
        ref_files: &[RefFile],
        ref_names: &RefNames,
        ref_used: &[bool],
    ) -> Result<()> {
        let mut done: HashSet<(u64, u64)> = HashSet::new();
        let mut cache = DirCache::default();
        for rf in ref_files
            .iter()
            .filter(|rf| ref_used[rf.pkg] && rf.skip.is_none())
        {
            if !done.insert(rf.ino) {
                continue;
            }
            let Ok((dir, _, name)) = cache.resolve(self.rfs, &rf.path) else {
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
            let had = self.touched.get(&rf.ino).copied().unwrap_or(now);
            let own = u64::from(ref_names.get(&rf.ino).copied().unwrap_or(1));
            // st_nlink is u32 on some targets.
            #[allow(clippy::unnecessary_cast)]
            let nlink = st.st_nlink as u64;
            let target = if nlink <= own {
                flags::unlock_target(had)
            } else {
                had
            };
            let shown = self.rfs.display(&rf.path);
            if let Err(e) = flags::set(fd.as_fd(), target, &shown) {
                self.stats.errors += 1;
                self.out.warn(&e.to_string());
            }
        }
        Ok(())
    }
}

fn link_error(e: Errno, rshown: &str, gshown: &str) -> Error {
    Error::sys(
        format!("cannot link {rshown} into the directory of {gshown}"),
        e,
    )
}
