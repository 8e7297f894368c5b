//! Copying a tree that may be hostile (another guest) or busy (the host),
//! directory descriptor by directory descriptor: nothing is ever opened
//! through a symlink, symlinks are recreated from their text, device nodes
//! and sockets are left out, and the walk does not leave the filesystem of
//! its starting directory (mount points are made as empty directories).

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use super::BuildReport;
use super::interrupt::Interrupts;
use super::tree::{open_dir_at, shown};
use crate::Result;
use crate::error::Context;
use crate::progress::Progress;
use crate::unify::flags;

/// Link or copy the regular files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    Copy,
    /// Hard links, except under `COPIED_PREFIXES` and for setuid/setgid
    /// files, which are copied.
    Link,
}

/// What a clone copies instead of linking: the guest's own configuration
/// and data, which it must be able to change without touching its source.
pub const COPIED_PREFIXES: [&str; 5] = ["etc", "var", "root", "home", "tmp"];

/// The deepest directory copied (a guest's paths fit in PATH_MAX anyway).
pub const MAX_DEPTH: usize = 200;

pub struct Walk<'a> {
    pub mode: FileMode,
    /// Guest-relative directories copied as structure only.
    pub excluded: &'a [PathBuf],
    /// (device, inode) of entries never copied (VSERVERS_ROOT, the build
    /// directory, the host's vservers configuration).
    pub skip: Vec<(u64, u64)>,
    /// Names at the top of the walk that are left out.
    pub skip_top: &'a [&'a str],
    pub report: &'a mut BuildReport,
    /// With `FileMode::Link`: only these (device, inode) are linked (the
    /// reference's package files, for vbuild); None: every eligible file.
    pub link_only: Option<HashSet<(u64, u64)>>,
    /// With `record_links`: the guest paths of the files linked, one per
    /// inode (vbuild sets flags on them after the walk).
    pub record_links: bool,
    pub linked: Vec<PathBuf>,
    /// With `FileMode::Link` (vbuild): a source that is immutable (vunify's
    /// flag; without the kernel's immutable-unlink flag it forbids new
    /// links) loses the flag for the link and gets it back at once, as
    /// vunify itself does; otherwise such files are copied.
    pub unlock_immutable: bool,
    /// A build's signal guard: the walk stops at the next directory when
    /// SIGINT, SIGTERM or SIGHUP came (a host copy takes minutes).
    pub interrupts: Option<&'a Interrupts>,
    /// The status line, told of every entry.
    pub progress: Option<&'a Progress>,
    /// The filesystem of the walk's starting directory.
    dev: u64,
    link_warned: bool,
    /// The new tree's root, where the first copies below are found.
    root: Option<OwnedFd>,
    /// Files with several names copied so far: the first copy's guest
    /// path, so that the other names become links to it (as `cp -a`).
    copied: HashMap<(u64, u64), PathBuf>,
    linked_inodes: HashSet<(u64, u64)>,
}

impl<'a> Walk<'a> {
    pub fn new(mode: FileMode, excluded: &'a [PathBuf], report: &'a mut BuildReport) -> Self {
        Walk {
            mode,
            excluded,
            skip: Vec::new(),
            skip_top: &[],
            report,
            link_only: None,
            record_links: false,
            linked: Vec::new(),
            unlock_immutable: false,
            interrupts: None,
            progress: None,
            dev: 0,
            link_warned: false,
            root: None,
            copied: HashMap::new(),
            linked_inodes: HashSet::new(),
        }
    }

    /// Copies the contents of directory `src` into the new guest's root
    /// `dst`.
    pub fn copy_dir(&mut self, src: &OwnedFd, dst: &OwnedFd) -> Result<()> {
        let rel = Path::new("");
        self.set_root(dst)?;
        let st = rustix::fs::fstat(src).context(|| format!("cannot stat {}", shown(rel)))?;
        self.dev = st.st_dev;
        let structure = self.excluded.iter().any(|e| e == rel);
        let mut rel = rel.to_path_buf();
        self.dir_entries(src, dst, &mut rel, structure)
    }

    /// Copies the entry `name` of `src` (the host's root) into the new
    /// guest's root `dst`; a directory's walk stays on its own filesystem.
    pub fn copy_top(&mut self, src: &OwnedFd, dst: &OwnedFd, name: &str) -> Result<()> {
        self.set_root(dst)?;
        let cname = std::ffi::CString::new(name)
            .map_err(|_| crate::Error::usage(format!("'{name}' is not a file name")))?;
        let st = match rustix::fs::statat(src, cname.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).context(|| format!("cannot stat /{name}")),
        };
        self.dev = st.st_dev;
        let mut rel = PathBuf::from(name);
        let structure = self.excluded.contains(&rel);
        self.entry(src, dst, &cname, &mut rel, structure)
    }

    fn set_root(&mut self, dst: &OwnedFd) -> Result<()> {
        if self.root.is_none() {
            self.root = Some(rustix::io::dup(dst).context(|| "cannot duplicate a descriptor")?);
        }
        Ok(())
    }

    fn dir_entries(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        rel: &mut PathBuf,
        structure: bool,
    ) -> Result<()> {
        if let Some(interrupts) = self.interrupts {
            interrupts.check()?;
        }
        let what = |rel: &Path| format!("cannot list {}", shown(rel));
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(src).context(|| what(rel))? {
            let entry = entry.context(|| what(rel))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(entry.file_name().to_owned());
            }
        }
        names.sort();
        let top = rel.as_os_str().is_empty();
        for name in names {
            let os_name = os(&name);
            if top && self.skip_top.iter().any(|s| *s == os_name) {
                continue;
            }
            rel.push(os_name);
            let r = self.entry(src, dst, &name, rel, structure);
            rel.pop();
            r?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &std::ffi::CStr,
        rel: &mut PathBuf,
        structure: bool,
    ) -> Result<()> {
        let st = match rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Gone meanwhile (a busy host): nothing to copy.
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).context(|| format!("cannot stat {}", shown(rel))),
        };
        if let Some(progress) = self.progress {
            let report = &*self.report;
            progress.tick(|| report.progress());
        }
        if self.skip.contains(&(st.st_dev, st.st_ino)) {
            self.report.skipped += 1;
            return Ok(());
        }
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => self.directory(src, dst, name, rel, structure, &st),
            FileType::RegularFile if structure => {
                self.report.skipped += 1;
                Ok(())
            }
            FileType::RegularFile => self.file(src, dst, name, rel, &st),
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())
                    .context(|| format!("cannot read the symlink {}", shown(rel)))?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name)
                    .context(|| format!("cannot create the symlink {}", shown(rel)))?;
                set_meta_at(dst, name, &st, false, rel)?;
                self.report.symlinks += 1;
                Ok(())
            }
            FileType::Fifo if !structure => {
                rustix::fs::mknodat(dst, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .context(|| format!("cannot create the FIFO {}", shown(rel)))?;
                set_meta_at(dst, name, &st, true, rel)?;
                self.report.specials += 1;
                Ok(())
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                self.report.skipped += 1;
                self.report.warn(format!(
                    "device node {} not copied (a guest gets /dev from a fixed list)",
                    shown(rel)
                ));
                Ok(())
            }
            // Sockets belong to running programs; FIFOs in excluded dirs.
            _ => {
                self.report.skipped += 1;
                Ok(())
            }
        }
    }

    fn directory(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &std::ffi::CStr,
        rel: &mut PathBuf,
        structure: bool,
        st: &Stat,
    ) -> Result<()> {
        rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700))
            .context(|| format!("cannot create {}", shown(rel)))?;
        self.report.dirs += 1;
        let new = open_dir_at(dst, Path::new(os(name)))
            .context(|| format!("cannot open the new {}", shown(rel)))?;
        if st.st_dev != self.dev {
            // Another filesystem (a mount point): only the directory.
            self.report.skipped += 1;
        } else {
            let child = match open_dir_at(src, Path::new(os(name))) {
                Ok(fd) => fd,
                // Gone meanwhile (a busy host): an empty directory.
                Err(Errno::NOENT) => return set_meta_fd(&new, st, rel),
                Err(e) => return Err(e).context(|| format!("cannot open {}", shown(rel))),
            };
            // Re-checked on the descriptor: the entry may have been swapped.
            let now =
                rustix::fs::fstat(&child).context(|| format!("cannot stat {}", shown(rel)))?;
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
                return Err(crate::Error::failure(format!(
                    "{} changed while it was copied",
                    shown(rel)
                )));
            }
            // Two descriptors per level stay open: a bound keeps a hostile
            // nesting from exhausting descriptors or the stack.
            if rel.components().count() > MAX_DEPTH {
                return Err(crate::Error::failure(format!(
                    "{} is nested deeper than {MAX_DEPTH} directories",
                    shown(rel)
                )));
            }
            let structure = structure || self.excluded.iter().any(|e| e == rel);
            self.dir_entries(&child, &new, rel, structure)?;
        }
        set_meta_fd(&new, st, rel)
    }

    fn file(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &std::ffi::CStr,
        rel: &Path,
        st: &Stat,
    ) -> Result<()> {
        let setid = st.st_mode & 0o6000 != 0;
        let copied_prefix = rel
            .components()
            .next()
            .is_some_and(|c| COPIED_PREFIXES.iter().any(|p| c.as_os_str() == *p));
        let listed = self
            .link_only
            .as_ref()
            .is_none_or(|set| set.contains(&(st.st_dev, st.st_ino)));
        if self.mode == FileMode::Link && !setid && !copied_prefix && listed {
            let mut linked = rustix::fs::linkat(src, name, dst, name, AtFlags::empty());
            if linked == Err(Errno::PERM) && self.unlock_immutable {
                linked = link_unlocked(src, dst, name, rel, st)?;
            }
            match linked {
                Ok(()) => {
                    // The link is checked, not the name linked: the source
                    // guest may have swapped in a device node meanwhile.
                    let now = rustix::fs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW)
                        .context(|| format!("cannot stat the new {}", shown(rel)))?;
                    if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
                        || (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)
                    {
                        let _ = rustix::fs::unlinkat(dst, name, AtFlags::empty());
                        return Err(crate::Error::failure(format!(
                            "{} changed while it was linked",
                            shown(rel)
                        )));
                    }
                    self.report.files_linked += 1;
                    if self.record_links && (st.st_nlink == 1 || self.first_link(st)) {
                        self.linked.push(rel.to_path_buf());
                    }
                    return Ok(());
                }
                // Another filesystem, an immutable file (vunify's flag
                // forbids new links), too many links: a copy will do.
                Err(e @ (Errno::XDEV | Errno::PERM | Errno::MLINK)) => {
                    if !self.link_warned {
                        self.link_warned = true;
                        self.report.warn(format!(
                            "cannot link {} ({}): such files are copied instead",
                            shown(rel),
                            crate::sys::errno::Errno::from(e).describe()
                        ));
                    }
                }
                Err(e) => return Err(e).context(|| format!("cannot link {}", shown(rel))),
            }
        }
        self.copy_file(src, dst, name, rel)
    }

    /// Whether this is the first link made to the inode of `st`.
    fn first_link(&mut self, st: &Stat) -> bool {
        self.linked_inodes.insert((st.st_dev, st.st_ino))
    }

    fn copy_file(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &std::ffi::CStr,
        rel: &Path,
    ) -> Result<()> {
        let input = match rustix::fs::openat(
            src,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).context(|| format!("cannot open {}", shown(rel))),
        };
        let st = rustix::fs::fstat(&input).context(|| format!("cannot stat {}", shown(rel)))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(crate::Error::failure(format!(
                "{} changed while it was copied",
                shown(rel)
            )));
        }
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1
            && let (Some(first), Some(root)) = (self.copied.get(&key), &self.root)
        {
            // The first copy's path runs through directories this walk
            // made: there is no symlink on it to follow.
            rustix::fs::linkat(root, first.as_path(), dst, name, AtFlags::empty())
                .context(|| format!("cannot link {} to {}", shown(rel), shown(first)))?;
            self.report.files_copied += 1;
            return Ok(());
        }
        let output = rustix::fs::openat(
            dst,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .context(|| format!("cannot create {}", shown(rel)))?;
        let mut from = std::fs::File::from(input);
        let mut to = std::fs::File::from(output);
        let bytes =
            std::io::copy(&mut from, &mut to).context(|| format!("cannot copy {}", shown(rel)))?;
        let output = OwnedFd::from(to);
        set_meta_fd(&output, &st, rel)?;
        copy_file_caps(&from, &output, rel)?;
        if st.st_nlink > 1 {
            self.copied.insert(key, rel.to_path_buf());
        }
        self.report.files_copied += 1;
        self.report.bytes_copied += bytes;
        Ok(())
    }
}

fn os(name: &std::ffi::CStr) -> &std::ffi::OsStr {
    std::os::unix::ffi::OsStrExt::from_bytes(name.to_bytes())
}

/// Owner, mode (after the owner: chown clears setuid bits) and times.
fn set_meta_fd(fd: &OwnedFd, st: &Stat, rel: &Path) -> Result<()> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    )
    .context(|| format!("cannot set the owner of {}", shown(rel)))?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(st.st_mode & 0o7777))
        .context(|| format!("cannot set the mode of {}", shown(rel)))?;
    rustix::fs::futimens(fd, &times(st))
        .context(|| format!("cannot set the times of {}", shown(rel)))
}

/// The same for an entry that cannot be opened (symlink, FIFO) in the new
/// tree, which only the build writes to.
fn set_meta_at(
    dir: &OwnedFd,
    name: &std::ffi::CStr,
    st: &Stat,
    chmod: bool,
    rel: &Path,
) -> Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .context(|| format!("cannot set the owner of {}", shown(rel)))?;
    if chmod {
        rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(st.st_mode & 0o7777),
            AtFlags::empty(),
        )
        .context(|| format!("cannot set the mode of {}", shown(rel)))?;
    }
    rustix::fs::utimensat(dir, name, &times(st), AtFlags::SYMLINK_NOFOLLOW)
        .context(|| format!("cannot set the times of {}", shown(rel)))
}

fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// File capabilities (ping's cap_net_raw): the one extended attribute a
/// system needs to work. Set after the owner, which clears it.
fn copy_file_caps(from: &impl AsFd, to: &OwnedFd, rel: &Path) -> Result<()> {
    const NAME: &str = "security.capability";
    let mut buf = [0u8; 64];
    match rustix::fs::fgetxattr(from, NAME, &mut buf[..]) {
        Ok(n) => rustix::fs::fsetxattr(to, NAME, &buf[..n], XattrFlags::empty())
            .context(|| format!("cannot set the file capabilities of {}", shown(rel))),
        Err(Errno::NODATA | Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e).context(|| format!("cannot read the file capabilities of {}", shown(rel))),
    }
}

/// Links `name` from `src` into `dst` with the source's immutable and
/// immutable-unlink flags cleared for the link and restored right after
/// (a window of one linkat in which the inode is writable, as in vunify's
/// own relinking). The source is checked to be the inode the walk saw.
/// The outer error is a flag change that failed, the inner one the link's.
fn link_unlocked(
    src: &OwnedFd,
    dst: &OwnedFd,
    name: &std::ffi::CStr,
    rel: &Path,
    st: &Stat,
) -> Result<std::result::Result<(), Errno>> {
    let fd = rustix::fs::openat(
        src,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("cannot open {}", shown(rel)))?;
    let now = rustix::fs::fstat(&fd).context(|| format!("cannot stat {}", shown(rel)))?;
    if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
        || (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)
    {
        return Err(crate::Error::failure(format!(
            "{} changed while it was linked",
            shown(rel)
        )));
    }
    let path = shown(rel).to_string();
    let old = flags::unlock(fd.as_fd(), &path)?;
    let linked = rustix::fs::linkat(src, name, dst, name, AtFlags::empty());
    flags::set(fd.as_fd(), old, &path)?;
    Ok(linked)
}
