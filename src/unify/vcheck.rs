//! vcheck (U6): a guest's package files checked from the host against the
//! database of a trusted reference guest (one that never runs), so that a
//! compromised guest cannot lie about its own files.
//!
//! For each package of the guest whose name, architecture and version the
//! reference has, every file with a digest in the reference's database
//! (dpkg: PKG.md5sums, MD5; rpm: file digests, MD5 or SHA-256;
//! conffiles are left out, admins change them) is read
//! in the guest and compared: `changed` (other content, or not a regular
//! file: a symlink is never followed), `missing`. Paths the guest's own
//! database gives the package but the reference's does not are
//! `unexpected`. A package the reference lacks, or has in another version,
//! is `unverifiable`. Guest files are opened through [`GuestFs`] only:
//! parents resolved inside the guest root, the final name never followed.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::Path;

use rustix::fs::FileType;

use super::guestfs::GuestFs;
use super::md5::Md5;
use super::pkgdb::{self, DbKind, DigestAlgo, Package};
use super::scan;
use super::sha256::Sha256;
use crate::{Error, Result};

/// One line of vcheck's output: `KIND SUBJECT (DETAIL)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// changed, missing, unexpected, unverifiable; for --diffpkgs
    /// only-reference, only-guest, version.
    pub kind: &'static str,
    /// A guest path (escaped, one line) or a package.
    pub subject: String,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.subject)?;
        if self.detail.is_empty() {
            Ok(())
        } else {
            write!(f, " ({})", self.detail)
        }
    }
}

/// The trusted reference: its packages, sorted by name and arch.
pub struct Reference {
    pub kind: DbKind,
    pub packages: Vec<Package>,
}

impl Reference {
    fn get(&self, name: &str, arch: &str) -> Option<&Package> {
        self.packages
            .binary_search_by(|p| (p.name.as_str(), p.arch.as_str()).cmp(&(name, arch)))
            .ok()
            .map(|i| &self.packages[i])
    }
}

/// Reads the package database of the reference at `path`.
pub fn load_reference(path: &Path) -> Result<Reference> {
    let fs = GuestFs::open(path)?;
    let (kind, packages) = pkgdb::read_packages(&fs)?;
    Ok(Reference { kind, packages })
}

fn path_text(p: &str) -> String {
    let mut s = String::new();
    scan::escape_into(&mut s, p.as_bytes());
    s
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "not a regular file",
    }
}

/// The running digest of one of the algorithms vcheck computes.
enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
}

impl Hasher {
    fn new(algo: DigestAlgo) -> Option<Hasher> {
        match algo {
            DigestAlgo::Md5 => Some(Hasher::Md5(Md5::new())),
            DigestAlgo::Sha256 => Some(Hasher::Sha256(Sha256::new())),
            _ => None,
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Md5(h) => h.finish().to_vec(),
            Hasher::Sha256(h) => h.finish().to_vec(),
        }
    }
}

/// The digest of a guest file, or why it cannot be compared (`Ok(Err(why))`,
/// an empty `why` when it does not exist).
fn guest_digest(
    guest: &GuestFs,
    path: &str,
    mut hasher: Hasher,
    buf: &mut [u8],
) -> Result<std::result::Result<Vec<u8>, String>> {
    let st = match guest.stat_nofollow(path) {
        Ok(Some(st)) => st,
        Ok(None) => return Ok(Err(String::new())),
        Err(e) => return Ok(Err(format!("cannot check: {}", e.message()))),
    };
    let t = FileType::from_raw_mode(st.st_mode);
    if t != FileType::RegularFile {
        return Ok(Err(format!("{}, not a regular file", kind_name(t))));
    }
    let fd = match guest.open_file(path) {
        Ok(fd) => fd,
        Err(e) => return Ok(Err(format!("cannot check: {}", e.message()))),
    };
    let mut file = std::fs::File::from(fd);
    loop {
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::io(
                    format!("cannot read {}", guest.display(path)),
                    &e,
                ));
            }
        }
    }
    Ok(Ok(hasher.finish()))
}

/// Verifies the guest at `guest_path` against `reference`, calling `out`
/// for each finding; returns how many there were.
pub fn verify(
    reference: &Reference,
    guest_path: &Path,
    out: &mut dyn FnMut(&Finding) -> Result<()>,
) -> Result<u64> {
    let guest = GuestFs::open(guest_path)?;
    let (kind, pkgs) = pkgdb::read_packages(&guest)?;
    if kind != reference.kind {
        return Err(Error::failure(format!(
            "{}: a {kind} database, the reference has a {} one",
            guest_path.display(),
            reference.kind
        )));
    }
    let mut count = 0;
    let mut buf = vec![0u8; 1 << 16];
    let mut emit = |f: Finding| {
        count += 1;
        out(&f)
    };
    for g in &pkgs {
        let id = format!("{} {}", g.name, g.version);
        let Some(r) = reference.get(&g.name, &g.arch) else {
            emit(Finding {
                kind: "unverifiable",
                subject: id,
                detail: "not in the reference".into(),
            })?;
            continue;
        };
        if r.version != g.version {
            emit(Finding {
                kind: "unverifiable",
                subject: id,
                detail: format!("the reference has {}", r.version),
            })?;
            continue;
        }
        for (path, digest) in &r.digests {
            if r.is_conffile(path) {
                continue;
            }
            let Some(hasher) = Hasher::new(digest.algo) else {
                emit(Finding {
                    kind: "unverifiable",
                    subject: id.clone(),
                    detail: format!("{} digests are not supported", digest.algo.name()),
                })?;
                break;
            };
            let finding = match guest_digest(&guest, path, hasher, &mut buf)? {
                Ok(sum) if sum == digest.bytes => continue,
                Ok(_) => ("changed", g.name.clone()),
                Err(why) if why.is_empty() => ("missing", g.name.clone()),
                Err(why) => ("changed", format!("{}: {why}", g.name)),
            };
            emit(Finding {
                kind: finding.0,
                subject: path_text(path),
                detail: finding.1,
            })?;
        }
        let known: HashSet<&str> = r.files.iter().map(String::as_str).collect();
        for path in g.files.iter().filter(|p| !known.contains(p.as_str())) {
            emit(Finding {
                kind: "unexpected",
                subject: path_text(path),
                detail: g.name.clone(),
            })?;
        }
    }
    Ok(count)
}

/// The package sets of the reference and the guest compared, by name and
/// architecture: `only-reference`, `only-guest` and `version` lines in
/// name order. A name is shown as NAME:ARCH when it has several
/// architectures.
pub fn diff_packages(reference: &Path, guest: &Path) -> Result<Vec<Finding>> {
    let (_, r) = pkgdb::read_packages(&GuestFs::open(reference)?)?;
    let (_, g) = pkgdb::read_packages(&GuestFs::open(guest)?)?;
    // Both lists are sorted by name: a name with several architectures has
    // a neighbour of the same name in one of them, or differs between them.
    let several = |name: &str| {
        fn arches<'a>(l: &'a [Package], name: &str) -> (Option<&'a str>, bool) {
            let mut a = l.iter().filter(|p| p.name == name).map(|p| p.arch.as_str());
            let first = a.next();
            (first, a.next().is_some())
        }
        let ((ra, rm), (ga, gm)) = (arches(&r, name), arches(&g, name));
        rm || gm || matches!((ra, ga), (Some(x), Some(y)) if x != y)
    };
    let shown = |p: &Package| {
        if several(&p.name) {
            format!("{}:{}", p.name, p.arch)
        } else {
            p.name.clone()
        }
    };
    let key = |p: &Package| (p.name.clone(), p.arch.clone());
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < r.len() || j < g.len() {
        let order = match (r.get(i), g.get(j)) {
            (Some(a), Some(b)) => key(a).cmp(&key(b)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.push(Finding {
                    kind: "only-reference",
                    subject: shown(&r[i]),
                    detail: r[i].version.clone(),
                });
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(Finding {
                    kind: "only-guest",
                    subject: shown(&g[j]),
                    detail: g[j].version.clone(),
                });
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if r[i].version != g[j].version {
                    out.push(Finding {
                        kind: "version",
                        subject: shown(&r[i]),
                        detail: format!("{} -> {}", r[i].version, g[j].version),
                    });
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_one_line() {
        let f = Finding {
            kind: "changed",
            subject: path_text("/usr/bin/a\nb"),
            detail: "pkg".into(),
        };
        assert_eq!(f.to_string(), "changed /usr/bin/a\\nb (pkg)");
    }
}
