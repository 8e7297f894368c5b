//! The rpm database of a guest, read through the host's `rpm` binary
//! (`rpm --root GUEST --dbpath DB -qa --qf ...`): the database formats
//! (Berkeley DB, ndb, sqlite) are rpm's business.
//!
//! rpm runs without a shell, with a clean environment (LC_ALL=C), stdin
//! from /dev/null, its output size-limited; its output is parsed like any
//! guest data (paths checked by [`pkgdb::guest_path`]). rpm opens
//! GUEST/DB itself, by host path resolution: the database directory and
//! every directory above it are first checked to be real directories of
//! the guest (no symlink), so a stopped guest cannot point rpm elsewhere.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::fs::FileType;

use super::guestfs::GuestFs;
use super::pkgdb::{self, Digest, DigestAlgo, Package, bad};
use crate::error::Context;
use crate::{Error, Result};

/// Where rpm databases live (newer rpm: /usr/lib/sysimage/rpm, with
/// /var/lib/rpm a symlink to it), in the order tried.
pub const DB_DIRS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];
/// The files one of which makes a directory an rpm database.
const DB_FILES: [&str; 3] = ["rpmdb.sqlite", "Packages", "Packages.db"];
/// Where the host's rpm is looked for (no PATH search).
const RPM_BINS: [&str; 3] = ["/usr/bin/rpm", "/bin/rpm", "/usr/local/bin/rpm"];
/// Limit of rpm's output (a large distribution lists ~30 MB).
pub const OUTPUT_MAX: u64 = 512 << 20;

/// The query format: one `@P` line a package, one `@F` line a file.
pub const QUERY_FORMAT: &str = "@P\\t%{NAME}\\t%{EPOCH}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{FILEDIGESTALGO}\\n[@F\\t%{FILEFLAGS}\\t%{FILEDIGESTS}\\t%{FILENAMES}\\n]";

/// The RPMFILE_CONFIG bit of FILEFLAGS.
const RPMFILE_CONFIG: u32 = 1;

fn is_dir(fs: &GuestFs, p: &str) -> bool {
    matches!(fs.stat_nofollow(p), Ok(Some(st)) if FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// The guest's rpm database directory: a real directory (every component
/// a directory, not a symlink) holding a database file.
pub fn db_dir(fs: &GuestFs) -> Option<&'static str> {
    DB_DIRS.into_iter().find(|dir| {
        let mut prefix = String::new();
        dir.split('/').skip(1).all(|c| {
            prefix.push('/');
            prefix.push_str(c);
            is_dir(fs, &prefix)
        }) && DB_FILES.iter().any(|f| {
            matches!(fs.stat_nofollow(&format!("{dir}/{f}")),
                Ok(Some(st)) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        })
    })
}

/// The host's rpm binary.
pub fn rpm_binary() -> Option<PathBuf> {
    RPM_BINS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Runs `rpm --root ROOT --dbpath DB ARGS` and returns its standard output
/// (`Ok(None)` when rpm exits 1 without output of ours, e.g. "package X is
/// not installed").
fn query(fs: &GuestFs, args: &[&str]) -> Result<Option<Vec<u8>>> {
    let root = fs.path();
    let rpm = rpm_binary().ok_or_else(|| {
        Error::failure(format!(
            "rpm is not installed on the host: cannot read the rpm database of {}",
            root.display()
        ))
    })?;
    let db = db_dir(fs)
        .ok_or_else(|| Error::failure(format!("{}: no rpm database found", root.display())))?;
    let mut child = Command::new(&rpm)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/bin:/bin")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", db])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| format!("cannot run {}", rpm.display()))?;
    let what = || format!("rpm query of {}", root.display());
    // stderr drained by a thread so that neither pipe can fill and block rpm.
    let stderr = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            let mut err = Vec::new();
            let mut e = e;
            let _ = (&mut e).take(64 << 10).read_to_end(&mut err);
            let _ = std::io::copy(&mut e, &mut std::io::sink());
            err
        })
    });
    let mut out = Vec::new();
    let read = child
        .stdout
        .take()
        .map(|o| o.take(OUTPUT_MAX + 1).read_to_end(&mut out));
    if out.len() as u64 > OUTPUT_MAX {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::failure(format!(
            "{}: output larger than {OUTPUT_MAX} bytes",
            what()
        )));
    }
    let status = child
        .wait()
        .context(|| format!("cannot wait for {}", what()))?;
    if let Some(Err(e)) = read {
        return Err(Error::io(
            format!("cannot read the output of {}", what()),
            &e,
        ));
    }
    let err = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if status.code() == Some(1) && !out.starts_with(b"@P\t") {
        return Ok(None);
    }
    if !status.success() {
        let msg = String::from_utf8_lossy(&err);
        return Err(Error::failure(format!(
            "{} failed ({status}): {}",
            what(),
            msg.trim()
        )));
    }
    Ok(Some(out))
}

/// Parses the output of `rpm -q --qf QUERY_FORMAT`.
pub fn parse_query(data: &[u8], file: &str) -> Result<Vec<Package>> {
    let mut out: Vec<Package> = Vec::new();
    let mut algo = DigestAlgo::Md5;
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    for (i, l) in data
        .split(|&c| c == b'\n')
        .enumerate()
        .filter(|_| !data.is_empty())
    {
        let n = i + 1;
        let l = std::str::from_utf8(l).map_err(|_| bad(file, n, "invalid UTF-8"))?;
        if let Some(rest) = l.strip_prefix("@P\t") {
            let f: Vec<&str> = rest.split('\t').collect();
            let [name, epoch, vr, arch, dalgo] = f[..] else {
                return Err(bad(file, n, "package line without 5 fields"));
            };
            if name.is_empty() || name.starts_with('-') || name.contains('/') {
                return Err(bad(
                    file,
                    n,
                    format!("bad package name '{}'", crate::error::shown(name)),
                ));
            }
            algo = match dalgo {
                "(none)" | "" => DigestAlgo::Md5,
                a => a
                    .parse()
                    .ok()
                    .and_then(DigestAlgo::from_rpm)
                    .ok_or_else(|| {
                        bad(
                            file,
                            n,
                            format!("unknown digest algorithm {}", crate::error::shown(a)),
                        )
                    })?,
            };
            let version = match epoch {
                "(none)" | "" => vr.to_string(),
                e => format!("{e}:{vr}"),
            };
            out.push(Package {
                name: name.to_string(),
                version,
                arch: if arch == "(none)" {
                    String::new()
                } else {
                    arch.to_string()
                },
                ..Package::default()
            });
        } else if let Some(rest) = l.strip_prefix("@F\t") {
            let mut f = rest.splitn(3, '\t');
            let (Some(flags), Some(digest), Some(path)) = (f.next(), f.next(), f.next()) else {
                return Err(bad(file, n, "file line without 3 fields"));
            };
            let Some(p) = out.last_mut() else {
                return Err(bad(file, n, "file line before any package line"));
            };
            let flags: u32 = flags.parse().map_err(|_| {
                bad(
                    file,
                    n,
                    format!("bad FILEFLAGS '{}'", crate::error::shown(flags)),
                )
            })?;
            let path = pkgdb::guest_path(path).map_err(|m| bad(file, n, m))?;
            if !digest.is_empty() {
                let d = Digest::from_hex(algo, digest).ok_or_else(|| {
                    bad(
                        file,
                        n,
                        format!(
                            "bad {} digest '{}'",
                            algo.name(),
                            crate::error::shown(digest)
                        ),
                    )
                })?;
                p.digests.push((path.clone(), d));
            }
            if flags & RPMFILE_CONFIG != 0 {
                p.conffiles.push(path.clone());
            }
            if path != "/" {
                p.files.push(path);
            }
        } else {
            return Err(bad(file, n, "unexpected line"));
        }
    }
    for p in &mut out {
        p.conffiles.sort_unstable();
        p.conffiles.dedup();
    }
    Ok(out)
}

fn shown(root: &Path) -> String {
    format!("rpm -qa of {}", root.display())
}

/// Every installed package with its files.
pub fn read_packages(fs: &GuestFs) -> Result<Vec<Package>> {
    let out = query(fs, &["-qa", "--qf", QUERY_FORMAT])?.unwrap_or_default();
    parse_query(&out, &shown(fs.path()))
}

/// Every installed package, without files.
pub fn installed(fs: &GuestFs) -> Result<Vec<Package>> {
    let qf = QUERY_FORMAT.split('[').next().unwrap_or(QUERY_FORMAT);
    let out = query(fs, &["-qa", "--qf", qf])?.unwrap_or_default();
    parse_query(&out, &shown(fs.path()))
}

/// The installed instances of package `name` (`NAME` or `NAME.ARCH`).
pub fn package(fs: &GuestFs, name: &str) -> Result<Vec<Package>> {
    if name.is_empty() || name.starts_with('-') || name.contains(['/', '\0']) {
        return Err(Error::usage(format!("'{name}': not a package name")));
    }
    match query(fs, &["-q", "--qf", QUERY_FORMAT, "--", name])? {
        Some(out) => parse_query(&out, &shown(fs.path())),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &[u8] = b"@P\tbash\t(none)\t5.2.26-3.fc40\tx86_64\t8\n\
@F\t0\t\t/usr/share/doc/bash\n\
@F\t0\t0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\t/usr/bin/bash\n\
@F\t17\t1111111111111111111111111111111111111111111111111111111111111111\t/etc/skel/.bashrc\n\
@P\tgpg-pubkey\t(none)\tabc-def\t(none)\t(none)\n\
@P\tglibc\t2\t2.39-1\ti686\t(none)\n\
@F\t0\t0123456789abcdef0123456789abcdef\t/usr/lib/libc.so.6\n";

    #[test]
    fn query_output_parses() {
        let p = parse_query(OUT, "q").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].name, "bash");
        assert_eq!(p[0].version, "5.2.26-3.fc40");
        assert_eq!(p[0].files.len(), 3);
        assert_eq!(p[0].conffiles, ["/etc/skel/.bashrc"]);
        assert_eq!(p[0].digests.len(), 2);
        assert_eq!(p[0].digests[0].1.algo, DigestAlgo::Sha256);
        assert_eq!(p[1].arch, "");
        assert_eq!(p[2].version, "2:2.39-1");
        assert_eq!(p[2].digests[0].1.algo, DigestAlgo::Md5);
    }

    #[test]
    fn query_output_refused() {
        for (data, want) in [
            (&b"@F\t0\t\t/x\n"[..], "q:1: file line before"),
            (
                b"@P\ta\t(none)\t1-1\tx86_64\t8\n@F\t0\t\t/../etc/shadow\n",
                "q:2: '/../etc/shadow' leaves the guest",
            ),
            (
                b"@P\ta\t(none)\t1-1\tx86_64\t8\n@F\t0\t00\t/x\n",
                "bad sha256 digest",
            ),
            (
                b"@P\ta\t(none)\t1-1\tx86_64\t99\n",
                "unknown digest algorithm",
            ),
            (b"@P\ta\t1-1\n", "without 5 fields"),
            (
                b"@P\ta\t(none)\t1-1\tx86_64\t8\n@F\tx\t\t/x\n",
                "bad FILEFLAGS",
            ),
            (
                b"@P\ta\t(none)\t1-1\tx86_64\t8\n@F\t0\t\trelative\n",
                "not an absolute path",
            ),
            (b"garbage\n", "unexpected line"),
            (b"@P\t\xff\n", "invalid UTF-8"),
        ] {
            let e = parse_query(data, "q").unwrap_err().to_string();
            assert!(e.contains(want), "{e} does not contain {want}");
        }
    }
}
