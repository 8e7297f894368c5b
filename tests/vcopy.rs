//! vserver-copy (U9) to a local destination directory (no network, no
//! ssh): the tree keeps its hard links, xattrs and numeric owners, the
//! configuration follows, a dry run copies nothing, a running guest is
//! refused without --stop or --live.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tempdir::TempDir;
use common::vserver::{Setup, text};
use common::{is_root, vsbox_bin};

fn ready() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if Command::new("rsync").arg("--version").output().is_err() {
        eprintln!("skipped: rsync is not installed");
        return false;
    }
    true
}

fn copy(s: &Setup, args: &[&str]) -> Output {
    Command::new(vsbox_bin())
        .arg("vserver-copy")
        .args(args)
        .env("VSBOX_CONFIG_ROOT", s.etc.path())
        .env("VSBOX_RUN_DIR", s.run.path())
        .output()
        .unwrap()
}

/// `path` (absolute) as it lands under the destination root `dest`.
fn under(dest: &Path, path: &Path) -> PathBuf {
    dest.join(path.strip_prefix("/").unwrap())
}

#[test]
fn copies_tree_links_xattrs_and_configuration() {
    if !ready() {
        return;
    }
    let s = Setup::new("vcopy", "", "#!/bin/sh\n");
    let g = s.guest.path();
    std::fs::create_dir_all(g.join("usr/bin")).unwrap();
    std::fs::write(g.join("usr/bin/perl"), "perl").unwrap();
    std::fs::hard_link(g.join("usr/bin/perl"), g.join("usr/bin/perl5.36.0")).unwrap();
    std::fs::write(g.join("etc/owned"), "x").unwrap();
    std::os::unix::fs::chown(g.join("etc/owned"), Some(4321), Some(8765)).unwrap();
    rustix::fs::setxattr(
        g.join("etc/owned"),
        "user.vsbox",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let dest = TempDir::new("vcopy-dest");

    let out = copy(&s, &[&s.name, dest.path().to_str().unwrap()]);
    assert!(out.status.success(), "vserver-copy: {}", text(&out.stderr));

    let d = under(dest.path(), g);
    let (a, b) = (
        std::fs::metadata(d.join("usr/bin/perl")).unwrap(),
        std::fs::metadata(d.join("usr/bin/perl5.36.0")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "hard link kept");
    let owned = std::fs::metadata(d.join("etc/owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid()),
        (4321, 8765),
        "numeric owner kept"
    );
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(d.join("etc/owned"), "user.vsbox", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"kept", "xattr kept");
    let guests = s.etc.path().join("vservers");
    for f in [format!("{}.conf", s.name), format!("{}.sh", s.name)] {
        assert_eq!(
            std::fs::read(under(dest.path(), &guests.join(&f))).unwrap(),
            std::fs::read(guests.join(&f)).unwrap(),
            "{f} copied"
        );
    }
}

#[test]
fn dry_run_prints_the_command_and_copies_nothing() {
    if !ready() {
        return;
    }
    let s = Setup::new("vcopy-n", "", "#!/bin/sh\n");
    let dest = TempDir::new("vcopy-n-dest");
    let out = copy(&s, &["--dry-run", &s.name, dest.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "vserver-copy -n: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("rsync -aHAX --numeric-ids --one-file-system --relative -n -v ")
            && first.contains(&format!("{}/ ", s.guest.path().display()))
            && first.contains(&format!("{}.conf", s.name))
            && first.ends_with(&format!("{}/", dest.path().display())),
        "dry-run command: {first}"
    );
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}

#[test]
fn bad_destination_and_unknown_guest_are_refused() {
    if !ready() {
        return;
    }
    let s = Setup::new("vcopy-bad", "", "#!/bin/sh\n");
    let out = copy(&s, &[&s.name, "host:relative"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = copy(&s, &["no-such-guest", "/tmp/x"]);
    assert!(!out.status.success());
}

#[test]
fn running_guest_needs_stop_or_live() {
    if !ready() {
        return;
    }
    let rc = "#!/bin/sh\nif [ \"$1\" != 6 ]; then sleep 300 </dev/null >/dev/null 2>&1 & fi\n";
    let s = Setup::new("vcopy-run", "", rc);
    s.ok(&["start"]);
    let dest = TempDir::new("vcopy-run-dest");
    let d = dest.path().to_str().unwrap();
    let out = copy(&s, &[&s.name, d]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is running"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);

    let out = copy(&s, &["--live", &s.name, d]);
    assert!(out.status.success(), "--live: {}", text(&out.stderr));
    assert!(
        s.ok(&["status"]).contains("running"),
        "--live leaves it running"
    );

    let out = copy(&s, &["--stop", "--delete", &s.name, d]);
    assert!(out.status.success(), "--stop: {}", text(&out.stderr));
    assert!(s.cgroup_gone(), "--stop stopped the guest");
    assert!(
        under(dest.path(), s.guest.path())
            .join("etc/init.d/rc")
            .is_file()
    );
}
