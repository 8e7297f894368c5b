//! The inode flags vunify puts on shared files, as the seed did: immutable
//! (no guest can change the file every guest shares) and immutable-unlink
//! (a guest may still remove or replace its name, so its package manager
//! can upgrade), the latter only with the kernel/ patch.
//!
//! Options as the seed's: none given means both; `--noflags` means none;
//! `--immutable` and `--immutable-mayunlink` name the flags wanted (the
//! latter means both: the unlink bit alone restricts nothing), so the seed's
//! `--noflags --immutable` still means immutable only.
//!
//! Without the kernel patch the default falls back to immutable alone, with
//! one warning ([`LACKS_IUNLINK_WARNING`]); an explicit
//! `--immutable-mayunlink` is an error before any file changes.

use std::os::fd::BorrowedFd;

use crate::attr::{self, InodeFlags};
use crate::sys::fsflags;
use crate::{Error, Result};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagRequest {
    /// Both flags where the kernel has the unlink bit, else immutable only.
    Default,
    /// Exactly these (possibly none).
    Explicit(InodeFlags),
}

impl FlagRequest {
    /// From the seed's options.
    pub fn from_options(noflags: bool, immutable: bool, mayunlink: bool) -> Self {
        if !(noflags || immutable || mayunlink) {
            return FlagRequest::Default;
        }
        let mut f = InodeFlags::EMPTY;
        if immutable || mayunlink {
            f = f.union(InodeFlags::IMMUTABLE);
        }
        if mayunlink {
            f = f.union(InodeFlags::IUNLINK);
        }
        FlagRequest::Explicit(f)
    }
}

/// Said once when the default cannot have the unlink bit.
pub const LACKS_IUNLINK_WARNING: &str = "\
warning: this kernel lacks the immutable-unlink flag (FS_IXUNLINK_FL; see \
kernel/README.md). Shared files get the immutable flag only: a guest cannot \
upgrade or remove a package that owns them until 'vunify --undo' gives it its \
own copies again. --noflags shares files without any flag (then root in a \
guest can change a file that every guest runs: trusted guests only).";

/// The flags policy of one run: the request and what the kernel can do.
#[derive(Debug)]
pub struct FlagPolicy {
    request: FlagRequest,
    /// Whether the unlink bit works, once probed.
    iunlink: Option<bool>,
}

const LOCK: InodeFlags = InodeFlags::IMMUTABLE.union(InodeFlags::IUNLINK);

impl FlagPolicy {
    pub fn new(request: FlagRequest) -> Self {
        FlagPolicy {
            request,
            iunlink: None,
        }
    }

    /// Whether any flag will be set at all.
    pub fn sets_flags(&self) -> bool {
        self.request != FlagRequest::Explicit(InodeFlags::EMPTY)
    }

    /// The flags to add to a shared inode. The first call probes the kernel
    /// on `fd` (a file about to be shared; the probe leaves its flags as
    /// they were) and returns the warning to print when the default has to
    /// do without the unlink bit.
    pub fn wanted(
        &mut self,
        fd: BorrowedFd<'_>,
        shown: &str,
    ) -> Result<(InodeFlags, Option<&'static str>)> {
        let asked = match self.request {
            FlagRequest::Default => LOCK,
            FlagRequest::Explicit(f) => f,
        };
        if !asked.contains(InodeFlags::IUNLINK) {
            return Ok((asked, None));
        }
        let mut warning = None;
        if self.iunlink.is_none() {
            let ok = attr::iunlink_supported(fd).map_err(|e| {
                Error::sys(
                    format!(
                        "cannot set inode flags on {shown} (--noflags shares files without them)"
                    ),
                    e,
                )
            })?;
            if !ok {
                if let FlagRequest::Explicit(_) = self.request {
                    return Err(Error::failure(format!(
                        "--immutable-mayunlink: {}; use --immutable or --noflags",
                        attr::LACKS_IUNLINK
                    )));
                }
                warning = Some(LACKS_IUNLINK_WARNING);
            }
            self.iunlink = Some(ok);
        }
        if self.iunlink == Some(true) {
            Ok((asked, warning))
        } else {
            Ok((asked.difference(InodeFlags::IUNLINK), warning))
        }
    }
}

/// Clears the immutable and unlink bits of an inode so it can get another
/// link or lose one; returns the flags it had.
pub fn unlock(fd: BorrowedFd<'_>, shown: &str) -> Result<InodeFlags> {
    let old = attr::flags_of(fd)
        .map_err(|e| Error::sys(format!("cannot read the flags of {shown}"), e))?;
    if old.contains(InodeFlags::IMMUTABLE) || old.contains(InodeFlags::IUNLINK) {
        fsflags::set(fd, old.difference(LOCK).bits())
            .map_err(|e| Error::sys(format!("cannot clear the flags of {shown}"), e))?;
    }
    Ok(old)
}

/// Sets an inode's flags to `target` if they differ.
pub fn set(fd: BorrowedFd<'_>, target: InodeFlags, shown: &str) -> Result<()> {
    let now = attr::flags_of(fd)
        .map_err(|e| Error::sys(format!("cannot read the flags of {shown}"), e))?;
    if now != target {
        fsflags::set(fd, target.bits()).map_err(|e| {
            Error::sys(
                format!("cannot change the flags of {shown} from {now} to {target}"),
                e,
            )
        })?;
    }
    Ok(())
}

/// The flags a shared inode ends with: what it had plus what is wanted.
pub fn lock_target(had: InodeFlags, wanted: InodeFlags) -> InodeFlags {
    had.union(wanted)
}

/// The flags an inode no longer shared ends with: without the lock bits.
pub fn unlock_target(had: InodeFlags) -> InodeFlags {
    had.difference(LOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_as_the_seed() {
        let both = InodeFlags::IMMUTABLE.union(InodeFlags::IUNLINK);
        assert_eq!(
            FlagRequest::from_options(false, false, false),
            FlagRequest::Default
        );
        assert_eq!(
            FlagRequest::from_options(true, false, false),
            FlagRequest::Explicit(InodeFlags::EMPTY)
        );
        assert_eq!(
            FlagRequest::from_options(true, true, false),
            FlagRequest::Explicit(InodeFlags::IMMUTABLE)
        );
        assert_eq!(
            FlagRequest::from_options(false, true, false),
            FlagRequest::Explicit(InodeFlags::IMMUTABLE)
        );
        assert_eq!(
            FlagRequest::from_options(false, false, true),
            FlagRequest::Explicit(both)
        );
        assert_eq!(
            FlagRequest::from_options(true, true, true),
            FlagRequest::Explicit(both)
        );
        assert!(!FlagPolicy::new(FlagRequest::Explicit(InodeFlags::EMPTY)).sets_flags());
    }
}
