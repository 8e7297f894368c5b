//! The dpkg database of a guest: var/lib/dpkg/status and info/PKG.list,
//! PKG.md5sums, PKG.conffiles (PKG:ARCH.* for Multi-Arch: same packages).
//!
//! Parsed as untrusted input: size limits, every path checked by
//! [`pkgdb::guest_path`], errors naming "FILE:LINE", never a panic. Only
//! the fields the tools need must be UTF-8 (Package, Version,
//! Architecture, Status, Conffiles); a CR (CRLF line ends) is refused.

use super::guestfs::GuestFs;
use super::pkgdb::{self, Digest, DigestAlgo, Package, bad};
use crate::{Error, Result};

/// The status file (guest path).
pub const STATUS: &str = "/var/lib/dpkg/status";
/// The directory of per-package lists (guest path).
pub const INFO: &str = "/var/lib/dpkg/info";
/// Size limit of the status file.
pub const STATUS_MAX: u64 = 64 << 20;
/// Size limit of each .list, .md5sums and .conffiles file.
pub const LIST_MAX: u64 = 16 << 20;

/// One paragraph of the status file (any state).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusEntry {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// "want eflag state", e.g. "install ok installed".
    pub status: String,
    /// From the Conffiles field (absolute guest paths).
    pub conffiles: Vec<String>,
    /// The line of the Package field.
    pub line: usize,
}

impl StatusEntry {
    /// Installed and not half-broken: "install ok installed" (or hold ok
    /// installed, a held package).
    pub fn installed(&self) -> bool {
        let w: Vec<&str> = self.status.split_ascii_whitespace().collect();
        w.len() == 3 && w[1] == "ok" && w[2] == "installed"
    }
}

/// A package name as dpkg allows it (letters, digits, `+-.`, plus `_` of
/// old databases), never a path.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-._".contains(&c))
}

fn valid_arch(s: &str) -> bool {
    s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    data.split(|&c| c == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(move |_| !data.is_empty())
}

fn utf8<'a>(file: &str, n: usize, l: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(l).map_err(|_| bad(file, n, "invalid UTF-8"))
}

/// Parses the status file (every paragraph, installed or not). `file`
/// names it in errors. Duplicate NAME:ARCH paragraphs are an error.
pub fn parse_status(data: &[u8], file: &str) -> Result<Vec<StatusEntry>> {
    let mut out: Vec<StatusEntry> = Vec::new();
    let mut cur: Option<StatusEntry> = None;
    let mut field = Field::Other;
    let mut finish = |e: Option<StatusEntry>| -> Result<()> {
        let Some(e) = e else { return Ok(()) };
        let start = e.line;
        if e.name.is_empty() {
            return Err(bad(file, start, "paragraph without a Package field"));
        }
        if e.status.is_empty() {
            return Err(bad(
                file,
                start,
                format!("package {}: no Status field", e.name),
            ));
        }
        if e.installed() && e.version.is_empty() {
            return Err(bad(
                file,
                start,
                format!("package {}: installed without a Version", e.name),
            ));
        }
        out.push(e);
        Ok(())
    };
    for (n, l) in lines(data) {
        if l.contains(&b'\r') {
            return Err(bad(file, n, "carriage return (CRLF line ends?)"));
        }
        if l.iter().all(|c| *c == b' ' || *c == b'\t') {
            finish(cur.take())?;
            field = Field::Other;
            continue;
        }
        let e = cur.get_or_insert_with(|| StatusEntry {
            line: n,
            ..StatusEntry::default()
        });
        if l[0] == b' ' || l[0] == b'\t' {
            match field {
                Field::Conffiles => {
                    let v = utf8(file, n, l)?.trim();
                    let mut w: Vec<&str> = v.rsplitn(3, ' ').collect();
                    if matches!(w[0], "obsolete" | "remove-on-upgrade") {
                        w = v.rsplitn(4, ' ').skip(1).collect();
                    }
                    if w.len() < 2 {
                        return Err(bad(
                            file,
                            n,
                            format!("bad Conffiles line '{}'", crate::error::shown(v)),
                        ));
                    }
                    let path = w[1..].iter().rev().copied().collect::<Vec<_>>().join(" ");
                    e.conffiles
                        .push(pkgdb::guest_path(&path).map_err(|m| bad(file, n, m))?);
                }
                Field::Other => {}
                _ => return Err(bad(file, n, "continuation line of a one-line field")),
            }
            continue;
        }
        let Some(colon) = l.iter().position(|&c| c == b':') else {
            return Err(bad(
                file,
                n,
                "line is neither 'Field: value' nor a continuation",
            ));
        };
        let name = &l[..colon];
        field = [
            (&b"Package"[..], Field::Package),
            (b"Version", Field::Version),
            (b"Architecture", Field::Arch),
            (b"Status", Field::Status),
            (b"Conffiles", Field::Conffiles),
        ]
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(name))
        .map_or(Field::Other, |(_, f)| *f);
        if field == Field::Other {
            continue;
        }
        let value = utf8(file, n, &l[colon + 1..])?.trim();
        let slot = match field {
            Field::Package => &mut e.name,
            Field::Version => &mut e.version,
            Field::Arch => &mut e.arch,
            Field::Status => &mut e.status,
            _ => {
                if !value.is_empty() {
                    return Err(bad(file, n, "Conffiles has a value on its first line"));
                }
                continue;
            }
        };
        if !slot.is_empty() {
            return Err(bad(file, n, "field given twice in one paragraph"));
        }
        let ok = match field {
            Field::Package => valid_name(value),
            Field::Arch => valid_arch(value),
            _ => !value.is_empty() && value.len() <= 256 && !value.contains('\t'),
        };
        if !ok {
            return Err(bad(
                file,
                n,
                format!("bad value '{}'", crate::error::shown(value)),
            ));
        }
        *slot = value.to_string();
    }
    finish(cur.take())?;
    let mut keys: Vec<(&str, &str)> = out
        .iter()
        .map(|e| (e.name.as_str(), e.arch.as_str()))
        .collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::failure(format!(
            "{file}: package {}:{} is listed twice",
            w[0].0, w[0].1
        )));
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Package,
    Version,
    Arch,
    Status,
    Conffiles,
    Other,
}

/// Parses PKG.list: one absolute path a line ("/." is the root and is left
/// out).
pub fn parse_list(data: &[u8], file: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, l) in lines(data) {
        let p = pkgdb::guest_path(utf8(file, n, l)?).map_err(|m| bad(file, n, m))?;
        if p != "/" {
            out.push(p);
        }
    }
    Ok(out)
}

/// Parses PKG.md5sums: "MD5HEX  path/relative/to/root" lines.
pub fn parse_md5sums(data: &[u8], file: &str) -> Result<Vec<(String, Digest)>> {
    let mut out = Vec::new();
    for (n, l) in lines(data) {
        let l = utf8(file, n, l)?;
        if l.is_empty() {
            continue;
        }
        let (hex, rest) = l.split_at_checked(32).unwrap_or((l, ""));
        let digest = Digest::from_hex(DigestAlgo::Md5, hex)
            .ok_or_else(|| bad(file, n, "not an MD5 sum followed by two spaces and a path"))?;
        let rel = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .filter(|r| !r.is_empty())
            .ok_or_else(|| bad(file, n, "not an MD5 sum followed by two spaces and a path"))?;
        let abs = if rel.starts_with('/') {
            rel.to_string()
        } else {
            format!("/{rel}")
        };
        out.push((
            pkgdb::guest_path(&abs).map_err(|m| bad(file, n, m))?,
            digest,
        ));
    }
    Ok(out)
}

/// Parses PKG.conffiles: absolute paths, optionally after a
/// "remove-on-upgrade " flag.
pub fn parse_conffiles(data: &[u8], file: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, l) in lines(data) {
        let l = utf8(file, n, l)?;
        let l = l.strip_prefix("remove-on-upgrade ").unwrap_or(l);
        if !l.is_empty() {
            out.push(pkgdb::guest_path(l).map_err(|m| bad(file, n, m))?);
        }
    }
    Ok(out)
}

/// Reads the status file of the guest.
pub fn read_status(fs: &GuestFs) -> Result<Vec<StatusEntry>> {
    let data = fs.read_limited(STATUS, STATUS_MAX)?;
    parse_status(&data, STATUS.trim_start_matches('/'))
}

/// The files, digests and conffiles of an installed status entry.
pub fn load(fs: &GuestFs, e: &StatusEntry) -> Result<Package> {
    let mut base = None;
    let mut files = None;
    let names = [format!("{}:{}", e.name, e.arch), e.name.clone()];
    for b in names
        .iter()
        .filter(|_| !e.arch.is_empty())
        .take(1)
        .chain(&names[1..])
    {
        let path = format!("{INFO}/{b}.list");
        if let Some(data) = fs.read_optional(&path, LIST_MAX)? {
            files = Some(parse_list(&data, &path[1..])?);
            base = Some(b);
            break;
        }
    }
    let (Some(base), Some(files)) = (base, files) else {
        return Err(Error::failure(format!(
            "{}: package {} is installed but {INFO}/{}.list is missing",
            fs.path().display(),
            e.name,
            e.name
        )));
    };
    let md5 = format!("{INFO}/{base}.md5sums");
    let digests = match fs.read_optional(&md5, LIST_MAX)? {
        Some(d) => parse_md5sums(&d, &md5[1..])?,
        None => Vec::new(),
    };
    let cf = format!("{INFO}/{base}.conffiles");
    let mut conffiles = e.conffiles.clone();
    if let Some(d) = fs.read_optional(&cf, LIST_MAX)? {
        conffiles.extend(parse_conffiles(&d, &cf[1..])?);
    }
    conffiles.sort_unstable();
    conffiles.dedup();
    Ok(Package {
        name: e.name.clone(),
        version: e.version.clone(),
        arch: e.arch.clone(),
        files,
        conffiles,
        digests,
    })
}

/// Every installed package with its files.
pub fn read_packages(fs: &GuestFs) -> Result<Vec<Package>> {
    read_status(fs)?
        .iter()
        .filter(|e| e.installed())
        .map(|e| load(fs, e))
        .collect()
}

/// The installed instances of `NAME` or `NAME:ARCH` (several architectures
/// for a Multi-Arch: same package).
pub fn package(fs: &GuestFs, name: &str) -> Result<Vec<Package>> {
    let (n, arch) = match name.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (name, None),
    };
    read_status(fs)?
        .iter()
        .filter(|e| e.installed() && e.name == n && arch.is_none_or(|a| a == e.arch))
        .map(|e| load(fs, e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS_OK: &[u8] = b"Package: dpkg\nEssential: yes\nStatus: install ok installed\n\
Priority: required\nArchitecture: amd64\nVersion: 1.21.22\nDescription: x\n y\n .\n z\n\
Conffiles:\n /etc/dpkg/dpkg.cfg f4413ffb515f8f753624ae3bb365b81b\n /etc/old 0123 obsolete\n\
\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\
\nPackage: libc6\nStatus: hold ok installed\nArchitecture: i386\nVersion: 2.36-9\n";

    #[test]
    fn status_parses() {
        let s = parse_status(STATUS_OK, "status").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "dpkg");
        assert_eq!(s[0].version, "1.21.22");
        assert_eq!(s[0].arch, "amd64");
        assert_eq!(s[0].conffiles, ["/etc/dpkg/dpkg.cfg", "/etc/old"]);
        assert!(s[0].installed());
        assert!(!s[1].installed());
        assert!(s[2].installed());
    }

    #[test]
    fn status_refuses() {
        let cases: &[(&[u8], &str)] = &[
            (b"Package: a\r\nStatus: install ok installed\r\n", "status:1: carriage return"),
            (b"Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: a\nStatus: install ok installed\nVersion: 2\n", "listed twice"),
            (b"Package: a\nStatus: install ok installed\nVersion: 1\nConffiles:\n /../../etc/shadow 00\n", "status:5: '/../../etc/shadow' leaves the guest"),
            (b"Package: ../x\nStatus: install ok installed\n", "status:1: bad value"),
            (b"Package: a\nStat", "status:2: line is neither"),
            (b"Package: a\nStatus: install ok installed\n", "installed without a Version"),
            (b"Version: 1\nStatus: install ok installed\n", "without a Package"),
            (b"Package: \xff\n", "status:1: invalid UTF-8"),
            (b"Package: a\nPackage: b\n", "status:2: field given twice"),
            (b"Package: a\nConffiles:\n x\n", "bad Conffiles line"),
        ];
        for (data, want) in cases {
            let e = parse_status(data, "status").unwrap_err().to_string();
            assert!(e.contains(want), "{e} does not contain {want}");
        }
    }

    #[test]
    fn lists_parse_and_refuse() {
        assert_eq!(
            parse_list(b"/.\n/usr\n/usr/bin//x\n", "l").unwrap(),
            ["/usr", "/usr/bin/x"]
        );
        assert!(parse_list(b"", "l").unwrap().is_empty());
        let e = parse_list(b"/usr\n/usr/../../../etc/shadow\n", "info/x.list").unwrap_err();
        assert_eq!(
            e.to_string(),
            "info/x.list:2: '/usr/../../../etc/shadow' leaves the guest"
        );
        assert!(parse_list(b"/a\n\n/b\n", "l").is_err());
        assert!(parse_list(b"relative\n", "l").is_err());
        assert!(parse_list(b"/a\0b\n", "l").is_err());
        assert!(parse_list(b"/\xff\n", "l").is_err());
    }

    #[test]
    fn md5sums_parse_and_refuse() {
        let m = parse_md5sums(b"0123456789abcdef0123456789abcdef  usr/bin/x\n", "m").unwrap();
        assert_eq!(m[0].0, "/usr/bin/x");
        assert_eq!(m[0].1.bytes[0], 1);
        for bad in [
            &b"0123456789abcdef0123456789abcdef  ../etc/shadow\n"[..],
            b"0123456789abcdef0123456789abcdef usr/bin/x\n",
            b"0123456789abcdef0123456789abcdef  \n",
            b"short  usr/bin/x\n",
            b"\xc3\xa9123456789abcdef0123456789abcde  x\n",
        ] {
            assert!(parse_md5sums(bad, "m").is_err());
        }
        assert_eq!(
            parse_conffiles(b"/etc/a\nremove-on-upgrade /etc/b\n", "c").unwrap(),
            ["/etc/a", "/etc/b"]
        );
        assert!(parse_conffiles(b"etc/a\n", "c").is_err());
    }
}
