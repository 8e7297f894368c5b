//! vbuild (U3): a new guest cloned from a reference guest, sharing the
//! reference's package files by hard links and copying the rest.
//!
//! Linked are the regular files that the reference's package database
//! lists and that are not conffiles, outside /etc, /var, /root, /home and
//! /tmp, and not setuid or setgid (a reference without a database: every
//! such file, as `vserver NAME build --method clone`). Everything else is
//! copied; symlinks are recreated from their text, never followed; device
//! nodes are not copied (/dev gets the fixed list of `vserver build`); the
//! walk stays on the reference's filesystem; `--excldir` directories are
//! copied as structure only. The tree walk is `vserver build`'s
//! (src/vserver/build/copy.rs). The clone gets a new /etc/machine-id and
//! loses the reference's sshd host keys (src/vserver/build/identity.rs);
//! the applet has a configured guest make new ones.
//!
//! The linked inodes get the immutable and immutable-unlink flags (the
//! seed's default), set after the walk: an immutable file cannot get new
//! links on a kernel without the iunlink patch. For the same reason a
//! reference file already immutable (unified by vunify) loses its flags
//! for the one linkat that links it and gets them back at once, as vunify
//! does when it relinks; without that nothing of a unified reference would
//! be linked. All or nothing: the tree is
//! made in NEW.tmp-PID next to NEW and renamed into place at the end; a
//! failure restores the flags it changed and removes the temporary tree.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::guestfs::GuestFs;
use super::pkgdb;
use super::scan::{self, Visitor};
use crate::attr::{self, FlagChange, InodeFlags};
use crate::error::Context;
use crate::progress::Progress;
use crate::vserver::build::BuildReport;
use crate::vserver::build::copy::{COPIED_PREFIXES, FileMode, Walk};
use crate::vserver::build::{identity, tree};
use crate::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Show what would be linked and copied; change nothing.
    pub test: bool,
    /// Flags set on the linked inodes.
    pub flags: InodeFlags,
    /// Guest paths copied as directory structure only.
    pub excluded: Vec<PathBuf>,
}

/// What a vbuild did (or, with `test`, would do).
#[derive(Debug, Default)]
pub struct Report {
    pub build: BuildReport,
    /// Regular files the reference's database gives as linkable; None
    /// without a database.
    pub package_files: Option<u64>,
    /// Inodes whose flags were set.
    pub flagged: u64,
    /// With `test` and `debug`: `link PATH` / `copy PATH` lines.
    pub plan: Vec<String>,
}

impl Report {
    /// The counts of a status line.
    pub fn progress(&self) -> String {
        format!("{}, {} flagged", self.build.progress(), self.flagged)
    }

    /// The seed's --stats lines.
    pub fn stats(&self) -> String {
        let mut s = self.build.stats();
        s.push_str(&format!("Files flagged: {}\n", self.flagged));
        if let Some(n) = self.package_files {
            s.push_str(&format!("Package files in the reference: {n}\n"));
        }
        s
    }
}

/// "/var/log" -> "var/log"; refuses "..", and "/" itself.
pub fn excluded_dir(dir: &str) -> Result<PathBuf> {
    let mut rel = PathBuf::new();
    for c in Path::new(dir).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => rel.push(n),
            _ => {
                return Err(Error::usage(format!(
                    "--excldir '{dir}' must not contain '..'"
                )));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(Error::usage(format!(
            "--excldir '{dir}': not a directory below /"
        )));
    }
    Ok(rel)
}

/// The (device, inode) of the reference's package files that may be
/// shared: regular, not conffiles, resolved inside the reference (merged
/// /usr: /bin/ls is /usr/bin/ls, counted once).
fn package_inodes(reference: &Path) -> Result<HashSet<(u64, u64)>> {
    let fs = GuestFs::open(reference)?;
    let (_, pkgs) = pkgdb::read_packages(&fs)?;
    let mut set = HashSet::new();
    for p in &pkgs {
        for f in &p.files {
            if p.is_conffile(f) {
                continue;
            }
            if let Ok(Some(st)) = fs.stat_nofollow(f)
                && FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
            {
                set.insert((st.st_dev, st.st_ino));
            }
        }
    }
    Ok(set)
}

/// Clones `reference` into the new directory `new`; `progress` shows the
/// phase and counts while it runs.
pub fn vbuild(reference: &Path, new: &Path, opts: &Options, progress: &Progress) -> Result<Report> {
    let src = scan::open_dir(reference)?;
    match rustix::fs::lstat(new) {
        Ok(_) => return Err(Error::failure(format!("{} already exists", new.display()))),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e).context(|| format!("cannot stat {}", new.display())),
    }
    let name = new
        .file_name()
        .ok_or_else(|| Error::usage(format!("{}: not a directory name", new.display())))?;
    let parent = new
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut report = Report::default();
    progress.phase("reading the package list", "");
    let link_only = match package_inodes(reference) {
        Ok(set) => {
            report.package_files = Some(set.len() as u64);
            Some(set)
        }
        Err(e) => {
            report.build.warnings.push(format!(
                "{}; every file outside /etc, /var, /root, /home and /tmp is linked",
                e.message()
            ));
            None
        }
    };
    if opts.test {
        let mut plan = Plan {
            link_only: link_only.as_ref(),
            excluded: &opts.excluded,
            report: &mut report,
        };
        scan::walk(&src, &mut plan)?;
        progress.finish(&report.progress());
        return Ok(report);
    }
    let mut temp_name = name.to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = parent.join(temp_name);
    rustix::fs::mkdir(&temp, Mode::from_raw_mode(0o700))
        .context(|| format!("cannot create {}", temp.display()))?;
    let mut flagged = Vec::new();
    let result = build(
        &src,
        &temp,
        link_only,
        opts,
        &mut report,
        &mut flagged,
        progress,
    )
    .and_then(|()| tree::rename_noreplace(&temp, new));
    if let Err(e) = result {
        let mut why = e.message().to_string();
        if let Ok(dst) = scan::open_dir(&temp) {
            for (rel, old) in flagged.iter().rev() {
                let undo = FlagChange {
                    set: *old,
                    clear: InodeFlags::IMMUTABLE
                        .union(InodeFlags::IUNLINK)
                        .difference(*old),
                };
                if let Err(e) = open_linked(&dst, rel)
                    .and_then(|fd| attr::change_flags(fd.as_fd(), &undo, rel).map(|_| ()))
                {
                    why.push_str(&format!("; and cannot restore the flags: {}", e.message()));
                }
            }
        }
        // std's remove_dir_all does not follow symlinks in the tree.
        if let Err(e) = std::fs::remove_dir_all(&temp) {
            why.push_str(&format!("; and cannot remove {}: {e}", temp.display()));
        }
        return Err(Error::failure(why));
    }
    report.build.path = new.to_path_buf();
    progress.finish(&report.progress());
    Ok(report)
}

fn build(
    src: &OwnedFd,
    temp: &Path,
    link_only: Option<HashSet<(u64, u64)>>,
    opts: &Options,
    report: &mut Report,
    flagged: &mut Vec<(PathBuf, InodeFlags)>,
    progress: &Progress,
) -> Result<()> {
    let dst = scan::open_dir(temp)?;
    let tst = rustix::fs::fstat(&dst).context(|| format!("cannot stat {}", temp.display()))?;
    progress.phase("copying", "");
    let linked = {
        let mut walk = Walk::new(FileMode::Link, &opts.excluded, &mut report.build);
        walk.skip = vec![(tst.st_dev, tst.st_ino)];
        walk.link_only = link_only;
        walk.record_links = !opts.flags.is_empty();
        walk.unlock_immutable = true;
        walk.progress = Some(progress);
        walk.copy_dir(src, &dst)?;
        std::mem::take(&mut walk.linked)
    };
    // One line for all the device nodes instead of one each.
    let before = report.build.warnings.len();
    report
        .build
        .warnings
        .retain(|w| !w.starts_with("device node "));
    let devices = before - report.build.warnings.len();
    if rustix::fs::statat(&dst, "dev", AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    {
        report.build.specials += tree::make_dev(&dst)?;
    }
    // A clone is another machine: a new machine-id, and none of the
    // reference's sshd host keys (the caller has the guest make new ones).
    identity::machine_id(&dst, true)?;
    report.build.ssh_keys_removed += identity::remove_ssh_host_keys(&dst)?;
    if devices > 0 {
        report.build.warnings.push(format!(
            "{devices} device nodes not copied; /dev has the fixed list of vserver build"
        ));
    }
    // The new root gets the reference's owner, mode and times.
    let rst = rustix::fs::fstat(src).context(|| "cannot stat the reference")?;
    rustix::fs::fchown(
        &dst,
        Some(rustix::fs::Uid::from_raw(rst.st_uid)),
        Some(rustix::fs::Gid::from_raw(rst.st_gid)),
    )
    .context(|| format!("cannot set the owner of {}", temp.display()))?;
    rustix::fs::fchmod(&dst, Mode::from_raw_mode(rst.st_mode & 0o7777))
        .context(|| format!("cannot set the mode of {}", temp.display()))?;

    let mut flags = opts.flags;
    if flags.contains(InodeFlags::IUNLINK) && !linked.is_empty() && !iunlink_works(&dst, temp)? {
        flags = flags.difference(InodeFlags::IUNLINK);
        report.build.warnings.push(format!(
            "{}: the linked files get the immutable flag only, so neither guest can \
             upgrade or remove them (their package managers fail on them); --noflags \
             sets no flag",
            attr::LACKS_IUNLINK
        ));
    }
    if !flags.is_empty() {
        progress.phase("setting flags", &report.progress());
        let change = FlagChange {
            set: flags,
            clear: InodeFlags::default(),
        };
        for rel in &linked {
            let fd = open_linked(&dst, rel)?;
            let changed = attr::change_flags(fd.as_fd(), &change, &Path::new("/").join(rel))?;
            if changed.old != changed.new {
                flagged.push((rel.clone(), changed.old));
            }
            report.flagged += 1;
            progress.tick(|| report.progress());
        }
    }
    Ok(())
}

/// Opens a file the walk linked, by its path in the new tree (made by the
/// walk: no symlink on it, none followed).
fn open_linked(dst: &OwnedFd, rel: &Path) -> Result<OwnedFd> {
    let fd = rustix::fs::openat2(
        dst,
        rel,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
    )
    .context(|| format!("cannot open the new /{}", rel.display()))?;
    let st = rustix::fs::fstat(&fd).context(|| format!("cannot stat /{}", rel.display()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::failure(format!(
            "/{} is no longer a regular file",
            rel.display()
        )));
    }
    Ok(fd)
}

/// Probes the iunlink flag on an empty file of the new tree (same
/// filesystem as the linked files).
fn iunlink_works(dst: &OwnedFd, temp: &Path) -> Result<bool> {
    let name = ".vbuild-probe";
    let fd = rustix::fs::openat(
        dst,
        name,
        OFlags::RDONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .context(|| format!("cannot create {}/{name}", temp.display()))?;
    let r = attr::iunlink_supported(fd.as_fd());
    let _ = rustix::fs::unlinkat(dst, name, AtFlags::empty());
    r.map_err(|e| {
        Error::sys(
            format!(
                "cannot probe for the immutable-unlink flag in {}",
                temp.display()
            ),
            e,
        )
    })
}

/// --test: the walk's decisions, made on the reference alone.
struct Plan<'a> {
    link_only: Option<&'a HashSet<(u64, u64)>>,
    excluded: &'a [PathBuf],
    report: &'a mut Report,
}

impl Visitor for Plan<'_> {
    fn enter(
        &mut self,
        _: Option<&OwnedFd>,
        _: &std::ffi::CStr,
        rel: &Path,
        _: &rustix::fs::Stat,
    ) -> Result<bool> {
        if !rel.as_os_str().is_empty() {
            self.report.build.dirs += 1;
        }
        Ok(true)
    }

    fn mount_point(&mut self, _: &Path, _: &rustix::fs::Stat) -> Result<()> {
        self.report.build.dirs += 1;
        self.report.build.skipped += 1;
        Ok(())
    }

    fn entry(
        &mut self,
        _: &OwnedFd,
        _: &std::ffi::CStr,
        rel: &Path,
        st: &rustix::fs::Stat,
    ) -> Result<()> {
        let b = &mut self.report.build;
        let excluded = self.excluded.iter().any(|e| rel.starts_with(e));
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile if excluded => b.skipped += 1,
            FileType::RegularFile => {
                let link = st.st_mode & 0o6000 == 0
                    && !rel
                        .components()
                        .next()
                        .is_some_and(|c| COPIED_PREFIXES.iter().any(|p| c.as_os_str() == *p))
                    && self
                        .link_only
                        .is_none_or(|s| s.contains(&(st.st_dev, st.st_ino)));
                if link {
                    b.files_linked += 1;
                } else {
                    b.files_copied += 1;
                    b.bytes_copied += st.st_size as u64;
                }
                let verb = if link { "link" } else { "copy" };
                self.report
                    .plan
                    .push(format!("{verb} {}", scan::shown(rel)));
            }
            FileType::Symlink => b.symlinks += 1,
            FileType::Fifo if !excluded => b.specials += 1,
            _ => b.skipped += 1,
        }
        Ok(())
    }
}
