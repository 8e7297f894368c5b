//! Inode flags by name: what `setattr` changes and `showattr` prints, and
//! what unification uses to protect shared files.
//!
//! The flags are the chattr flags (FS_IOC_GETFLAGS / FS_IOC_SETFLAGS) plus
//! Linux-VServer's immutable-unlink flag (`iunlink`, FS_IXUNLINK_FL), which
//! needs the kernel/ patch. A kernel without the patch refuses to set that bit
//! with EOPNOTSUPP; [`change_flags`] turns that into [`LACKS_IUNLINK`] and
//! [`iunlink_supported`] probes for it.
//!
//! Files are opened without following a final symbolic link, and only
//! regular files and directories are opened at all: opening a device or FIFO
//! to read its flags could have side effects.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use linux_raw_sys::general as uapi;
use rustix::fs::{FileType, Mode, OFlags};

use crate::error::Context;
use crate::sys::errno::Errno;
use crate::sys::fsflags;
use crate::{Error, Result};

/// What setattr says when the kernel refuses the iunlink bit.
pub const LACKS_IUNLINK: &str =
    "this kernel lacks the immutable-unlink flag (FS_IXUNLINK_FL): see kernel/README.md";

const EOPNOTSUPP: Errno = Errno::from_raw(linux_raw_sys::errno::EOPNOTSUPP as i32);
const ELOOP: Errno = Errno::from_raw(linux_raw_sys::errno::ELOOP as i32);

/// One inode flag: its bit, its lsattr letter, its name here and whether a
/// user may change it (the others are set by the filesystem).
#[derive(Debug)]
pub struct Flag {
    pub bit: u32,
    pub letter: char,
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub settable: bool,
    pub about: &'static str,
}

macro_rules! flag {
    ($bit:expr, $letter:literal, $name:literal, [$($alias:literal),*], $settable:literal, $about:literal) => {
        Flag {
            bit: $bit,
            letter: $letter,
            name: $name,
            aliases: &[$($alias),*],
            settable: $settable,
            about: $about,
        }
    };
}

/// Every flag with a name, in the order showattr prints them (lsattr's order,
/// with iunlink next to immutable).
pub static FLAGS: &[Flag] = &[
    flag!(
        uapi::FS_SECRM_FL,
        's',
        "secrm",
        ["secure-deletion"],
        true,
        "secure deletion (not implemented by ext4)"
    ),
    flag!(
        uapi::FS_UNRM_FL,
        'u',
        "unrm",
        ["undelete"],
        true,
        "undeletable (not implemented by ext4)"
    ),
    flag!(
        uapi::FS_SYNC_FL,
        'S',
        "sync",
        [],
        true,
        "synchronous updates"
    ),
    flag!(
        uapi::FS_DIRSYNC_FL,
        'D',
        "dirsync",
        [],
        true,
        "synchronous directory updates"
    ),
    flag!(
        uapi::FS_IMMUTABLE_FL,
        'i',
        "immutable",
        [],
        true,
        "no change at all: content, attributes, names, links"
    ),
    flag!(
        fsflags::FS_IXUNLINK_FL,
        'U',
        "iunlink",
        ["ixunlink", "immutable-mayunlink"],
        true,
        "an immutable file may still be unlinked, renamed and linked (kernel/ patch)"
    ),
    flag!(
        uapi::FS_APPEND_FL,
        'a',
        "append",
        ["append-only"],
        true,
        "writes only append"
    ),
    flag!(
        uapi::FS_NODUMP_FL,
        'd',
        "nodump",
        [],
        true,
        "skipped by dump(8)"
    ),
    flag!(
        uapi::FS_NOATIME_FL,
        'A',
        "noatime",
        [],
        true,
        "access time not updated"
    ),
    flag!(
        uapi::FS_COMPR_FL,
        'c',
        "compress",
        ["compr"],
        true,
        "compressed by the filesystem"
    ),
    flag!(
        uapi::FS_ENCRYPT_FL,
        'E',
        "encrypted",
        [],
        false,
        "encrypted (fscrypt)"
    ),
    flag!(
        uapi::FS_JOURNAL_DATA_FL,
        'j',
        "journal-data",
        [],
        true,
        "data journalled (ext3/ext4)"
    ),
    flag!(
        uapi::FS_INDEX_FL,
        'I',
        "indexed",
        [],
        false,
        "hashed directory index"
    ),
    flag!(
        uapi::FS_NOTAIL_FL,
        't',
        "notail",
        [],
        true,
        "no tail merging"
    ),
    flag!(
        uapi::FS_TOPDIR_FL,
        'T',
        "topdir",
        [],
        true,
        "top of a directory hierarchy"
    ),
    flag!(
        uapi::FS_EXTENT_FL,
        'e',
        "extents",
        [],
        false,
        "uses extents"
    ),
    flag!(
        uapi::FS_NOCOW_FL,
        'C',
        "nocow",
        [],
        true,
        "no copy on write"
    ),
    flag!(uapi::FS_DAX_FL, 'x', "dax", [], true, "direct access"),
    flag!(
        uapi::FS_CASEFOLD_FL,
        'F',
        "casefold",
        [],
        true,
        "case-insensitive directory"
    ),
    flag!(
        uapi::FS_INLINE_DATA_FL,
        'N',
        "inline-data",
        [],
        false,
        "data stored in the inode"
    ),
    flag!(
        uapi::FS_PROJINHERIT_FL,
        'P',
        "projinherit",
        [],
        true,
        "new files inherit the project id"
    ),
    flag!(
        uapi::FS_VERITY_FL,
        'V',
        "verity",
        [],
        false,
        "fs-verity protected"
    ),
    flag!(
        uapi::FS_NOCOMP_FL,
        'm',
        "nocompress",
        [],
        true,
        "not compressed"
    ),
];

/// Looks a flag up by name or alias.
pub fn flag_by_name(name: &str) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| f.name == name || f.aliases.contains(&name))
}

/// A set of inode flags. Bits without a name are kept as they are, so a
/// read-modify-write never loses what this program does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct InodeFlags(u32);

impl InodeFlags {
    pub const EMPTY: InodeFlags = InodeFlags(0);
    pub const IMMUTABLE: InodeFlags = InodeFlags(uapi::FS_IMMUTABLE_FL);
    pub const IUNLINK: InodeFlags = InodeFlags(fsflags::FS_IXUNLINK_FL);
    pub const APPEND: InodeFlags = InodeFlags(uapi::FS_APPEND_FL);
    pub const NODUMP: InodeFlags = InodeFlags(uapi::FS_NODUMP_FL);

    pub const fn from_bits(bits: u32) -> Self {
        InodeFlags(bits)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn contains(self, other: InodeFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: InodeFlags) -> Self {
        InodeFlags(self.0 | other.0)
    }

    pub const fn difference(self, other: InodeFlags) -> Self {
        InodeFlags(self.0 & !other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the set flags in showattr's order; bits without a name
    /// come last as one hexadecimal number.
    pub fn names(self) -> Vec<String> {
        let mut names: Vec<String> = FLAGS
            .iter()
            .filter(|f| self.0 & f.bit != 0)
            .map(|f| f.name.to_string())
            .collect();
        let unnamed = self.0 & !FLAGS.iter().fold(0, |all, f| all | f.bit);
        if unnamed != 0 {
            names.push(format!("{unnamed:#x}"));
        }
        names
    }

    /// lsattr-style: one column per named flag, its letter or `-`.
    pub fn letters(self) -> String {
        FLAGS
            .iter()
            .map(|f| if self.0 & f.bit != 0 { f.letter } else { '-' })
            .collect()
    }
}

/// Comma-separated names, or `-` for none: `immutable,iunlink,extents`.
impl fmt::Display for InodeFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&self.names().join(","))
        }
    }
}

/// Flags to turn on and flags to turn off; everything else stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlagChange {
    pub set: InodeFlags,
    pub clear: InodeFlags,
}

impl FlagChange {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.clear.is_empty()
    }

    pub fn apply(&self, old: InodeFlags) -> InodeFlags {
        old.union(self.set).difference(self.clear)
    }

    /// Adds one flag, on or off. Asking for both is a usage error, and so is
    /// a flag the filesystem owns.
    pub fn add(&mut self, flag: &Flag, on: bool) -> Result<()> {
        if !flag.settable {
            return Err(Error::usage(format!(
                "{} is set by the filesystem and cannot be changed",
                flag.name
            )));
        }
        let bit = InodeFlags(flag.bit);
        let (this, other) = if on {
            (&mut self.set, self.clear)
        } else {
            (&mut self.clear, self.set)
        };
        if other.contains(bit) {
            return Err(Error::usage(format!(
                "{} is both set and cleared",
                flag.name
            )));
        }
        *this = this.union(bit);
        Ok(())
    }

    /// Parses one setattr option: `--NAME` sets, `--!NAME`, `--~NAME` and
    /// `--no-NAME` clear. None if the argument is not of that shape at all.
    pub fn parse_option(&mut self, arg: &str) -> Option<Result<()>> {
        let rest = arg.strip_prefix("--")?;
        let (on, name) = match rest.strip_prefix(['!', '~']) {
            Some(name) => (false, name),
            None => match rest.strip_prefix("no-") {
                Some(name) if flag_by_name(rest).is_none() => (false, name),
                _ => (true, rest),
            },
        };
        Some(match flag_by_name(name) {
            Some(flag) => self.add(flag, on),
            None => Err(Error::usage(format!(
                "unknown flag '{}' in '{}'",
                crate::error::shown(name),
                crate::error::shown(arg)
            ))),
        })
    }
}

/// Reads the flags of an open file.
pub fn flags_of(fd: BorrowedFd<'_>) -> std::result::Result<InodeFlags, Errno> {
    fsflags::get(fd).map(InodeFlags)
}

/// The flags before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    pub old: InodeFlags,
    pub new: InodeFlags,
}

/// Applies a change to an open file; `path` is for messages. A change that
/// changes nothing makes no call. A refused iunlink bit on a filesystem that
/// otherwise takes flags is reported as [`LACKS_IUNLINK`].
pub fn change_flags(fd: BorrowedFd<'_>, change: &FlagChange, path: &Path) -> Result<Changed> {
    let old = flags_of(fd).context(|| format!("cannot read the flags of {}", path.display()))?;
    let new = change.apply(old);
    if new == old {
        return Ok(Changed { old, new });
    }
    match fsflags::set(fd, new.bits()) {
        Ok(()) => Ok(Changed { old, new }),
        // Setting the flags the file already has tells a kernel that lacks
        // the bit from a filesystem that takes no flags at all.
        Err(e)
            if e == EOPNOTSUPP
                && new.difference(old).contains(InodeFlags::IUNLINK)
                && fsflags::set(fd, old.bits()).is_ok() =>
        {
            Err(Error::failure(format!(
                "{}: {LACKS_IUNLINK}",
                path.display()
            )))
        }
        Err(e) => Err(Error::sys(
            format!(
                "cannot change the flags of {} from {old} to {new}",
                path.display()
            ),
            e,
        )),
    }
}

/// Whether the kernel and filesystem of an open file know the iunlink flag.
///
/// Probes by setting the bit and putting the old flags back (the bit alone,
/// without immutable, has no effect meanwhile), so it needs the same rights as
/// setting it: ownership and CAP_LINUX_IMMUTABLE. A patched kernel answers a
/// caller without the capability with EPERM, which is an error here, not a
/// "no".
pub fn iunlink_supported(fd: BorrowedFd<'_>) -> std::result::Result<bool, Errno> {
    let old = fsflags::get(fd)?;
    if old & fsflags::FS_IXUNLINK_FL != 0 {
        return Ok(true);
    }
    match fsflags::set(fd, old | fsflags::FS_IXUNLINK_FL) {
        Ok(()) => fsflags::set(fd, old).map(|()| true),
        Err(e) if e == EOPNOTSUPP => fsflags::set(fd, old).map(|()| false),
        Err(e) => Err(e),
    }
}

/// A file opened to read or change its flags.
#[derive(Debug)]
pub struct AttrFile {
    fd: OwnedFd,
    path: PathBuf,
}

impl AttrFile {
    /// Opens a regular file or directory without following a final symbolic
    /// link. Symbolic links, devices, FIFOs and sockets are refused with a
    /// message that says so.
    pub fn open(path: &Path) -> Result<Self> {
        let cwd = rustix::fs::CWD;
        let shown = path.display();
        let before = rustix::fs::statat(cwd, path, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .context(|| format!("cannot open {shown}"))?;
        check_type(path, FileType::from_raw_mode(before.st_mode))?;
        let fd = rustix::fs::openat(
            cwd,
            path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match Errno::from(e) {
            ELOOP => symlink_error(path),
            e => Error::sys(format!("cannot open {shown}"), e),
        })?;
        let after = rustix::fs::fstat(&fd).context(|| format!("cannot stat {shown}"))?;
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) {
            return Err(Error::failure(format!(
                "{shown}: replaced while being opened"
            )));
        }
        check_type(path, FileType::from_raw_mode(after.st_mode))?;
        Ok(AttrFile {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn flags(&self) -> Result<InodeFlags> {
        flags_of(self.fd.as_fd())
            .context(|| format!("cannot read the flags of {}", self.path.display()))
    }

    pub fn change(&self, change: &FlagChange) -> Result<Changed> {
        change_flags(self.fd.as_fd(), change, &self.path)
    }

    pub fn iunlink_supported(&self) -> Result<bool> {
        iunlink_supported(self.fd.as_fd()).context(|| {
            format!(
                "cannot probe for the immutable-unlink flag on {}",
                self.path.display()
            )
        })
    }
}

impl AsFd for AttrFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn symlink_error(path: &Path) -> Error {
    Error::failure(format!(
        "{}: is a symbolic link (not followed)",
        path.display()
    ))
}

fn check_type(path: &Path, kind: FileType) -> Result<()> {
    match kind {
        FileType::RegularFile | FileType::Directory => Ok(()),
        FileType::Symlink => Err(symlink_error(path)),
        _ => Err(Error::failure(format!(
            "{}: not a regular file or directory",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_letters_and_bits_are_unique() {
        for (i, a) in FLAGS.iter().enumerate() {
            assert_eq!(a.bit.count_ones(), 1, "{}", a.name);
            for b in &FLAGS[i + 1..] {
                assert_ne!(a.bit, b.bit, "{} {}", a.name, b.name);
                assert_ne!(a.letter, b.letter, "{} {}", a.name, b.name);
                assert_ne!(a.name, b.name);
                for n in std::iter::once(&a.name).chain(a.aliases) {
                    assert!(
                        b.name != *n && !b.aliases.contains(n),
                        "{n} names two flags"
                    );
                }
            }
            // No name may read as a negation of another.
            assert!(!a.name.starts_with("no-"), "{}", a.name);
        }
    }

    #[test]
    fn display_names_and_unknown_bits() {
        assert_eq!(InodeFlags::EMPTY.to_string(), "-");
        let f = InodeFlags::from_bits(
            uapi::FS_IMMUTABLE_FL | fsflags::FS_IXUNLINK_FL | uapi::FS_EXTENT_FL | 0x40000,
        );
        assert_eq!(f.to_string(), "immutable,iunlink,extents,0x40000");
        let letters = f.letters();
        assert_eq!(letters.len(), FLAGS.len());
        assert_eq!(
            letters.chars().filter(|&c| c != '-').collect::<String>(),
            "iUe"
        );
    }

    fn parse(args: &[&str]) -> Result<FlagChange> {
        let mut c = FlagChange::default();
        for a in args {
            c.parse_option(a).expect("an option")?;
        }
        Ok(c)
    }

    #[test]
    fn options_set_and_clear() {
        let c = parse(&[
            "--immutable",
            "--iunlink",
            "--!append",
            "--~nodump",
            "--no-noatime",
        ])
        .unwrap();
        assert_eq!(c.set, InodeFlags::IMMUTABLE.union(InodeFlags::IUNLINK));
        assert_eq!(
            c.clear,
            InodeFlags::from_bits(uapi::FS_APPEND_FL | uapi::FS_NODUMP_FL | uapi::FS_NOATIME_FL)
        );
        let old = InodeFlags::from_bits(uapi::FS_APPEND_FL | uapi::FS_EXTENT_FL | 0x40000);
        assert_eq!(
            c.apply(old),
            InodeFlags::from_bits(
                uapi::FS_IMMUTABLE_FL | fsflags::FS_IXUNLINK_FL | uapi::FS_EXTENT_FL | 0x40000
            )
        );
        assert_eq!(
            parse(&["--immutable-mayunlink"]).unwrap().set,
            InodeFlags::IUNLINK
        );
        assert_eq!(parse(&["--nodump"]).unwrap().set, InodeFlags::NODUMP);
    }

    #[test]
    fn bad_options_are_usage_errors() {
        for args in [
            &["--immutable", "--!immutable"][..],
            &["--!iunlink", "--iunlink"],
            &["--bogus"],
            &["--!bogus"],
            &["--extents"],
            &["--no-"],
        ] {
            let err = parse(args).expect_err(&format!("{args:?}"));
            assert_eq!(err.exit_status(), 2, "{args:?}: {err}");
        }
        let mut c = FlagChange::default();
        assert!(c.parse_option("-i").is_none());
        assert!(c.parse_option("file").is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn open_refuses_symlinks_and_special_files() {
        let dir = std::env::temp_dir().join(format!("vsbox-attr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        let err = AttrFile::open(&link).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a symbolic link (not followed)"),
            "{err}"
        );
        let err = AttrFile::open(Path::new("/dev/null")).unwrap_err();
        assert!(
            err.to_string().contains("not a regular file or directory"),
            "{err}"
        );
        let err = AttrFile::open(&dir.join("missing")).unwrap_err();
        assert_eq!(err.errno().and_then(Errno::name), Some("ENOENT"));
        assert!(AttrFile::open(&dir).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
