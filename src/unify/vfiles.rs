//! vfiles (U5): the entries of a guest that are not unified with its
//! reference, for moving a guest: archive only these, then unify the copy
//! with an identical reference on the target machine.
//!
//! A regular file is unified when it is the same inode as the file at the
//! same path in the reference. Everything else of the guest is listed:
//! regular files of its own, symlinks, FIFOs, device nodes and sockets
//! (never unified), and with `dirs` the directories too (for an archiver
//! that does not recurse). The two trees are walked side by side by
//! descriptor: no symlink of either is followed, and the walk stays on the
//! guest's filesystem (the contents of mount points inside it are left
//! out).

use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Stat};

use super::scan::{self, Visitor};
use crate::Result;

/// Counts for a summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FilesReport {
    /// Regular files shared with the reference (not listed).
    pub unified: u64,
    /// Entries listed.
    pub listed: u64,
}

struct Side<'a> {
    /// The reference's directory at the current path, if it has one.
    refs: Vec<Option<OwnedFd>>,
    dirs: bool,
    out: &'a mut dyn FnMut(&Path) -> Result<()>,
    report: FilesReport,
}

impl Visitor for Side<'_> {
    fn enter(&mut self, _: Option<&OwnedFd>, name: &CStr, rel: &Path, _: &Stat) -> Result<bool> {
        if rel.as_os_str().is_empty() {
            return Ok(true);
        }
        let sub = match self.refs.last() {
            Some(Some(r)) => scan::open_subdir(r, name).ok(),
            _ => None,
        };
        self.refs.push(sub);
        if self.dirs {
            self.report.listed += 1;
            (self.out)(rel)?;
        }
        Ok(true)
    }

    fn leave(&mut self, rel: &Path) -> Result<()> {
        if !rel.as_os_str().is_empty() {
            self.refs.pop();
        }
        Ok(())
    }

    /// A mount point is listed as a directory (the guest needs it), its
    /// contents are another filesystem's.
    fn mount_point(&mut self, rel: &Path, _: &Stat) -> Result<()> {
        if self.dirs {
            self.report.listed += 1;
            (self.out)(rel)?;
        }
        Ok(())
    }

    fn entry(&mut self, _: &OwnedFd, name: &CStr, rel: &Path, st: &Stat) -> Result<()> {
        if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
            && let Some(Some(r)) = self.refs.last()
            && let Ok(rst) = rustix::fs::statat(r, name, AtFlags::SYMLINK_NOFOLLOW)
            && (rst.st_dev, rst.st_ino) == (st.st_dev, st.st_ino)
        {
            self.report.unified += 1;
            return Ok(());
        }
        self.report.listed += 1;
        (self.out)(rel)
    }
}

/// Calls `out` with the guest-relative path of every entry of `guest` that
/// is not unified with `reference`, in name order.
pub fn not_unified(
    reference: &Path,
    guest: &Path,
    dirs: bool,
    out: &mut dyn FnMut(&Path) -> Result<()>,
) -> Result<FilesReport> {
    let r = scan::open_dir(reference)?;
    let g = scan::open_dir(guest)?;
    let mut side = Side {
        refs: vec![Some(r)],
        dirs,
        out,
        report: FilesReport::default(),
    };
    scan::walk(&g, &mut side)?;
    Ok(side.report)
}
