//! distrib-info on a synthetic dpkg guest built by the test (by directory
//! and by configured name), on hostile databases, and on the host's own
//! dpkg database (read-only) against dpkg-query when the host has one.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::process::{Command, Output};

use common::dpkg::{DpkgTree, md5_hex};
use common::tempdir::TempDir;

fn distrib_info(args: &[&str]) -> Output {
    Command::new(common::vsbox_bin())
        .arg("distrib-info")
        .args(args)
        .env_remove("VSBOX_CONFIG_ROOT")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = distrib_info(args);
    assert!(
        out.status.success(),
        "distrib-info {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str], code: i32) -> String {
    let out = distrib_info(args);
    assert_eq!(out.status.code(), Some(code), "distrib-info {args:?}");
    String::from_utf8(out.stderr).unwrap()
}

fn guest(dir: &TempDir) -> String {
    let t = DpkgTree::new(dir.path().join("g"));
    t.merged_usr();
    t.package("libfoo", "1:1.0-1", "amd64")
        .file("/usr/lib/libfoo.so.1", b"ELF")
        .conffile("/etc/foo.conf", b"x=1\n")
        .install();
    t.package("bar", "2", "all")
        .file("/bin/bar", b"#!/bin/sh\n")
        .install();
    t.root().display().to_string()
}

#[test]
fn synthetic_dpkg_guest() {
    let dir = TempDir::new("distrib-info");
    let g = guest(&dir);
    assert_eq!(ok(&[&g, "kind"]), "dpkg\n");
    assert_eq!(ok(&[&g, "list"]), "bar 2 all\nlibfoo 1:1.0-1 amd64\n");
    assert_eq!(ok(&[&g, "pkgversion", "libfoo", "bar"]), "1:1.0-1\n2\n");
    assert_eq!(ok(&[&g, "pkgversion", "libfoo:amd64"]), "1:1.0-1\n");
    assert_eq!(
        ok(&[&g, "files", "libfoo"]),
        "/etc\n/usr\n/usr/lib\n/usr/lib/libfoo.so.1\n/etc/foo.conf\n"
    );
    assert_eq!(ok(&[&g, "conffiles", "libfoo"]), "/etc/foo.conf\n");
    assert_eq!(
        ok(&[&g, "md5sums", "bar"]),
        format!("{}  /bin/bar\n", md5_hex(b"#!/bin/sh\n"))
    );

    let e = fails(&[&g, "pkgversion", "nope"], 1);
    assert!(e.contains("package nope is not installed in"), "{e}");
    assert!(fails(&[&g, "frobnicate"], 2).contains("unknown command"));
    assert!(fails(&[&g, "files"], 2).contains("takes one package"));
    assert!(fails(&[&g, "list", "x"], 2).contains("takes no package"));
    assert!(fails(&[&g, "pkgversion"], 2).contains("at least one"));
    let e = fails(&["/nonexistent/guest", "kind"], 1);
    assert!(
        e.contains("cannot open the guest root /nonexistent/guest"),
        "{e}"
    );
    let e = fails(&["vsbox-no-such-guest", "kind"], 1);
    assert!(e.contains("not a configured guest"), "{e}");
}

#[test]
fn guest_by_name() {
    let dir = TempDir::new("distrib-info-name");
    let g = guest(&dir);
    let etc = TempDir::new("distrib-info-etc");
    etc.write("vservers.conf", "");
    etc.write("vservers/dtest.conf", &format!("VSERVERDIR={g}\n"));
    let out = Command::new(common::vsbox_bin())
        .args(["distrib-info", "dtest", "pkgversion", "bar"])
        .env("VSBOX_CONFIG_ROOT", etc.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"2\n");
}

#[test]
fn hostile_databases_are_refused() {
    let dir = TempDir::new("distrib-info-bad");
    let t = DpkgTree::new(dir.path().join("g"));
    t.package("evil", "1", "amd64")
        .file("/usr/bin/evil", b"x")
        .listed("/usr/bin/../../../../etc/shadow")
        .install();
    let g = t.root().display().to_string();
    let e = fails(&[&g, "files", "evil"], 1);
    assert!(
        e.contains(
            "var/lib/dpkg/info/evil.list:5: '/usr/bin/../../../../etc/shadow' leaves the guest"
        ),
        "{e}"
    );
    // The whole database a symlink to the host's: resolved in the guest,
    // where there is nothing.
    let dir2 = TempDir::new("distrib-info-link");
    fs::create_dir_all(dir2.path().join("g/var/lib")).unwrap();
    symlink("/var/lib/dpkg", dir2.path().join("g/var/lib/dpkg")).unwrap();
    let g2 = dir2.path().join("g").display().to_string();
    assert!(fails(&[&g2, "kind"], 1).contains("no package database"));
    assert!(fails(&[&g2, "pkgversion", "dpkg"], 1).contains("no package database"));
    // The status file a symlink: not followed.
    fs::remove_file(dir2.path().join("g/var/lib/dpkg")).unwrap();
    fs::create_dir_all(dir2.path().join("g/var/lib/dpkg")).unwrap();
    symlink(
        "/var/lib/dpkg/status",
        dir2.path().join("g/var/lib/dpkg/status"),
    )
    .unwrap();
    let e = fails(&[&g2, "list"], 1);
    assert!(e.contains("is a symbolic link"), "{e}");
    // CRLF status.
    fs::remove_file(dir2.path().join("g/var/lib/dpkg/status")).unwrap();
    fs::write(
        dir2.path().join("g/var/lib/dpkg/status"),
        "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n",
    )
    .unwrap();
    let e = fails(&[&g2, "list"], 1);
    assert!(e.contains("var/lib/dpkg/status:1: carriage return"), "{e}");
}

#[test]
fn host_dpkg_database_matches_dpkg_query() {
    let query = |f: &str| {
        Command::new("dpkg-query")
            .args(["-W", "-f", f])
            .env("LC_ALL", "C")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    if fs::metadata("/var/lib/dpkg/status").is_err() {
        eprintln!("skipped: the host has no dpkg database");
        return;
    }
    let Some(version) = query("${Version}\n") else {
        eprintln!("skipped: no dpkg-query");
        return;
    };
    let _ = version;
    let dpkg = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "dpkg"])
        .output()
        .unwrap();
    assert_eq!(
        ok(&["/", "pkgversion", "dpkg"]),
        format!("{}\n", String::from_utf8_lossy(&dpkg.stdout))
    );
    let mut want: Vec<String> =
        query("${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n")
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("ii  ").or_else(|| l.strip_prefix("hi  ")))
            .map(String::from)
            .collect();
    want.sort();
    let mut got: Vec<String> = ok(&["/", "list"]).lines().map(String::from).collect();
    got.sort();
    assert_eq!(got, want);
    let files = Command::new("dpkg").args(["-L", "dpkg"]).output().unwrap();
    let want: Vec<&str> = std::str::from_utf8(&files.stdout)
        .unwrap()
        .lines()
        .filter(|l| *l != "/.")
        .collect();
    let got = ok(&["/", "files", "dpkg"]);
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
}
