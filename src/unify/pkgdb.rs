//! Package databases of a guest (dpkg or rpm), read as untrusted input.
//!
//! Every path a database names is checked by [`guest_path`]: absolute,
//! normalized, no `..`, no NUL, at most PATH_MAX. A database that breaks
//! the rules is refused as a whole (an error naming the file and line), so
//! no tool ever acts on a guest whose database tries to leave it.

use std::fmt;

use super::guestfs::{GuestFs, PATH_MAX};
use super::{dpkg, rpm};
use crate::{Error, Result};

/// The packaging system of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Dpkg,
    Rpm,
}

impl DbKind {
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Dpkg => "dpkg",
            DbKind::Rpm => "rpm",
        }
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hash algorithm of a file digest: dpkg has MD5 only; rpm says which
/// (`FILEDIGESTALGO`, MD5 when the tag is absent as in old databases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgo {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgo {
    /// From rpm's PGPHASHALGO number.
    pub fn from_rpm(n: u32) -> Option<DigestAlgo> {
        Some(match n {
            1 => DigestAlgo::Md5,
            2 => DigestAlgo::Sha1,
            8 => DigestAlgo::Sha256,
            9 => DigestAlgo::Sha384,
            10 => DigestAlgo::Sha512,
            11 => DigestAlgo::Sha224,
            _ => return None,
        })
    }

    /// The digest length in bytes.
    pub fn size(self) -> usize {
        match self {
            DigestAlgo::Md5 => 16,
            DigestAlgo::Sha1 => 20,
            DigestAlgo::Sha224 => 28,
            DigestAlgo::Sha256 => 32,
            DigestAlgo::Sha384 => 48,
            DigestAlgo::Sha512 => 64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DigestAlgo::Md5 => "md5",
            DigestAlgo::Sha1 => "sha1",
            DigestAlgo::Sha224 => "sha224",
            DigestAlgo::Sha256 => "sha256",
            DigestAlgo::Sha384 => "sha384",
            DigestAlgo::Sha512 => "sha512",
        }
    }
}

/// A file digest from a package database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub algo: DigestAlgo,
    /// `algo.size()` bytes.
    pub bytes: Vec<u8>,
}

impl Digest {
    /// Parses `hex` as a digest of `algo` (exact length, hex digits only).
    pub fn from_hex(algo: DigestAlgo, hex: &str) -> Option<Digest> {
        let hex = hex.as_bytes();
        if hex.len() != algo.size() * 2 {
            return None;
        }
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let bytes = hex
            .chunks_exact(2)
            .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
            .collect::<Option<Vec<u8>>>()?;
        Some(Digest { algo, bytes })
    }

    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// An installed package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Every path the package owns (files, directories, symlinks), absolute
    /// and normalized guest paths, in database order; the root "/" is left
    /// out. Paths may go through the guest's own symlinks (merged /usr:
    /// /bin/ls is /usr/bin/ls): resolve them with [`GuestFs`].
    pub files: Vec<String>,
    /// The configuration files (never unified), sorted.
    pub conffiles: Vec<String>,
    /// Digests of the regular files (dpkg: from PKG.md5sums, MD5; rpm:
    /// FILEDIGESTS with the package's algorithm), in database order.
    pub digests: Vec<(String, Digest)>,
}

impl Package {
    pub fn is_conffile(&self, path: &str) -> bool {
        self.conffiles
            .binary_search_by(|c| c.as_str().cmp(path))
            .is_ok()
    }

    pub fn digest(&self, path: &str) -> Option<&Digest> {
        self.digests.iter().find(|(p, _)| p == path).map(|(_, d)| d)
    }
}

/// Checks and normalizes a path from a database: `Err(reason)` when it is
/// not absolute, has a `..` component, a NUL byte, a control character
/// newline, or is longer than PATH_MAX. `//`, `/./` and a trailing `/` are
/// normalized away.
pub fn guest_path(p: &str) -> std::result::Result<String, String> {
    let shown = || crate::error::shown(p);
    if !p.starts_with('/') {
        return Err(format!("'{}' is not an absolute path", shown()));
    }
    if p.contains('\0') || p.contains('\n') {
        return Err(format!("'{}' contains a NUL byte or a newline", shown()));
    }
    if p.len() >= PATH_MAX {
        return Err(format!(
            "'{}' is longer than {} bytes",
            shown(),
            PATH_MAX - 1
        ));
    }
    let mut out = String::with_capacity(p.len());
    for c in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return Err(format!("'{}' leaves the guest", shown()));
        }
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// "FILE:LINE: MESSAGE" as a failure.
pub(crate) fn bad(file: &str, line: usize, msg: impl fmt::Display) -> Error {
    Error::failure(format!("{file}:{line}: {msg}"))
}

/// Which database the guest has (dpkg first), if any.
pub fn detect(fs: &GuestFs) -> Option<DbKind> {
    if matches!(fs.stat_nofollow(dpkg::STATUS), Ok(Some(_))) {
        Some(DbKind::Dpkg)
    } else if rpm::db_dir(fs).is_some() {
        Some(DbKind::Rpm)
    } else {
        None
    }
}

fn no_db(fs: &GuestFs) -> Error {
    Error::failure(format!(
        "{}: no package database (neither {} nor an rpm database)",
        fs.path().display(),
        dpkg::STATUS
    ))
}

/// The installed packages of the guest, sorted by name then arch.
pub fn read_packages(fs: &GuestFs) -> Result<(DbKind, Vec<Package>)> {
    let kind = detect(fs).ok_or_else(|| no_db(fs))?;
    let mut pkgs = match kind {
        DbKind::Dpkg => dpkg::read_packages(fs)?,
        DbKind::Rpm => rpm::read_packages(fs)?,
    };
    pkgs.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    Ok((kind, pkgs))
}

/// The installed packages without their files (name, version, arch
/// only): only the status file (or one rpm query without file tags).
pub fn installed(fs: &GuestFs) -> Result<(DbKind, Vec<Package>)> {
    let kind = detect(fs).ok_or_else(|| no_db(fs))?;
    let mut pkgs = match kind {
        DbKind::Dpkg => dpkg::read_status(fs)?
            .into_iter()
            .filter(|e| e.installed())
            .map(|e| Package {
                name: e.name,
                version: e.version,
                arch: e.arch,
                ..Package::default()
            })
            .collect(),
        DbKind::Rpm => rpm::installed(fs)?,
    };
    pkgs.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    Ok((kind, pkgs))
}

/// The installed instances of a package (`NAME` or `NAME:ARCH`; several
/// architectures of a multi-arch package), with their files; empty when it
/// is not installed. Cheaper than [`read_packages`]: only that package's
/// lists are read.
pub fn package(fs: &GuestFs, name: &str) -> Result<Vec<Package>> {
    match detect(fs).ok_or_else(|| no_db(fs))? {
        DbKind::Dpkg => dpkg::package(fs, name),
        DbKind::Rpm => rpm::package(fs, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(guest_path("/usr//bin/./ls/").unwrap(), "/usr/bin/ls");
        assert_eq!(guest_path("/.").unwrap(), "/");
        assert!(guest_path("usr/bin").is_err());
        let e = guest_path("/../../etc/shadow").unwrap_err();
        assert_eq!(e, "'/../../etc/shadow' leaves the guest");
        assert!(guest_path("/a\0b").is_err());
        assert!(guest_path(&"/a".repeat(3000)).is_err());
    }

    #[test]
    fn digests_parse() {
        let d = Digest::from_hex(DigestAlgo::Md5, "00ff10aB00ff10ab00ff10ab00ff10ab").unwrap();
        assert_eq!(d.bytes[..4], [0, 255, 16, 171]);
        assert_eq!(d.to_hex(), "00ff10ab00ff10ab00ff10ab00ff10ab");
        assert!(Digest::from_hex(DigestAlgo::Md5, "00ff").is_none());
        assert!(Digest::from_hex(DigestAlgo::Md5, "g0ff10ab00ff10ab00ff10ab00ff10ab").is_none());
        assert!(Digest::from_hex(DigestAlgo::Md5, "é0ff10ab00ff10ab00ff10ab00ff10a").is_none());
    }
}
