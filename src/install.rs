//! `vsbox --install [-s] DIR`: a link in DIR for every applet.
//!
//! Idempotent: links that already point at this vsbox are left alone; links
//! to another copy of vsbox (an older binary, a dangling symlink to a file
//! named vsbox) are replaced. Anything else in the way is refused, and then
//! nothing at all is changed. New links are made under temporary names first
//! and renamed into place, so a failure half-way leaves DIR as it was.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Stat};

use crate::error::Context;
use crate::{Error, Result};

/// Bytes present in every vsbox binary, so that a hard link left by an older
/// vsbox (another inode) is known to be ours and may be replaced.
#[used]
pub static BINARY_MARKER: [u8; 32] = *b"vsbox multicall binary marker v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Hard,
    Symbolic,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct InstallReport {
    pub created: Vec<String>,
    pub replaced: Vec<String>,
    pub unchanged: Vec<String>,
}

enum Plan {
    Create,
    Replace,
    Keep,
}

/// Links every name in `names` to `exe` inside `dir`.
pub fn install(dir: &Path, exe: &Path, names: &[&str], kind: LinkKind) -> Result<InstallReport> {
    let exe_stat = rustix::fs::stat(exe).context(|| format!("cannot stat {}", exe.display()))?;
    let dir_stat = rustix::fs::stat(dir).context(|| format!("cannot use {}", dir.display()))?;
    if FileType::from_raw_mode(dir_stat.st_mode) != FileType::Directory {
        return Err(Error::failure(format!(
            "{} is not a directory",
            dir.display()
        )));
    }

    let mut plans = Vec::with_capacity(names.len());
    let mut refused = Vec::new();
    for name in names {
        let path = dir.join(name);
        match plan_for(&path, exe, &exe_stat, kind)? {
            Ok(plan) => plans.push((*name, path, plan)),
            Err(why) => refused.push(format!("{}: {why}", path.display())),
        }
    }
    if !refused.is_empty() {
        return Err(Error::failure(format!(
            "refusing to replace what is not a link to vsbox (nothing was changed):\n  {}",
            refused.join("\n  ")
        )));
    }

    // Make every new link under a temporary name, then rename them all.
    let mut staged: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for (name, path, plan) in &plans {
        if matches!(plan, Plan::Keep) {
            continue;
        }
        let temp = dir.join(format!(".{name}.vsbox-install"));
        let made = remove_if_present(&temp).and_then(|()| make_link(exe, &temp, kind));
        if let Err(e) = made {
            for (t, _) in &staged {
                let _ = rustix::fs::unlink(t);
            }
            return Err(e);
        }
        staged.push((temp, path));
    }
    for (temp, path) in &staged {
        rustix::fs::rename(temp, *path)
            .context(|| format!("cannot rename {} to {}", temp.display(), path.display()))?;
    }

    let mut report = InstallReport::default();
    for (name, _, plan) in plans {
        let list = match plan {
            Plan::Create => &mut report.created,
            Plan::Replace => &mut report.replaced,
            Plan::Keep => &mut report.unchanged,
        };
        list.push(name.to_string());
    }
    Ok(report)
}

/// Decides what to do with `path`: the outer error is a failure to look, the
/// inner one a refusal with its reason.
fn plan_for(
    path: &Path,
    exe: &Path,
    exe_stat: &Stat,
    kind: LinkKind,
) -> Result<std::result::Result<Plan, String>> {
    let st = match rustix::fs::lstat(path) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(Ok(Plan::Create)),
        Err(e) => return Err(e).context(|| format!("cannot stat {}", path.display())),
    };
    let same_inode = |s: &Stat| s.st_dev == exe_stat.st_dev && s.st_ino == exe_stat.st_ino;
    Ok(match FileType::from_raw_mode(st.st_mode) {
        FileType::Symlink => {
            let target = rustix::fs::readlink(path, Vec::new())
                .context(|| format!("cannot read link {}", path.display()))?;
            let target = PathBuf::from(OsString::from(std::ffi::OsStr::from_bytes(
                target.as_bytes(),
            )));
            let resolves_to_us = rustix::fs::stat(path).is_ok_and(|s| same_inode(&s));
            if kind == LinkKind::Symbolic && target == exe {
                Ok(Plan::Keep)
            } else if resolves_to_us || target.file_name().is_some_and(|n| n == "vsbox") {
                Ok(Plan::Replace)
            } else {
                Err(format!(
                    "is a symbolic link to {}, not to vsbox",
                    target.display()
                ))
            }
        }
        FileType::RegularFile if same_inode(&st) => Ok(if kind == LinkKind::Hard {
            Plan::Keep
        } else {
            Plan::Replace
        }),
        FileType::RegularFile if is_vsbox_binary(path) => Ok(Plan::Replace),
        FileType::RegularFile => Err("is a file that is not vsbox".to_string()),
        other => Err(format!("is a {other:?}, not a link to vsbox")),
    })
}

/// Whether the file at `path` is a vsbox binary (of any version).
fn is_vsbox_binary(path: &Path) -> bool {
    // A vsbox is about a megabyte; anything much larger is not one.
    const LIMIT: u64 = 64 << 20;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.len() > LIMIT {
        return false;
    }
    std::fs::read(path).is_ok_and(|bytes| {
        bytes
            .windows(BINARY_MARKER.len())
            .any(|w| w == BINARY_MARKER)
    })
}

fn remove_if_present(path: &Path) -> Result<()> {
    match rustix::fs::unlink(path) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e).context(|| format!("cannot remove {}", path.display())),
    }
}

fn make_link(exe: &Path, at: &Path, kind: LinkKind) -> Result<()> {
    match kind {
        LinkKind::Symbolic => rustix::fs::symlink(exe, at)
            .context(|| format!("cannot create symbolic link {}", at.display())),
        LinkKind::Hard => rustix::fs::link(exe, at).map_err(|e| {
            let hint = if e == rustix::io::Errno::XDEV {
                " (use -s across filesystems)"
            } else {
                ""
            };
            Error::sys(
                format!("cannot link {} to {}{hint}", at.display(), exe.display()),
                e.into(),
            )
        }),
    }
}
