//! vapt / vrpm (U8): the package manager runs inside the guest (a stand-in
//! apt-get script in a busybox guest), its arguments arrive byte for byte,
//! a failure is reported; with --unify REF the packages the command
//! installed are shared with REF.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::dpkg::{DpkgTree, clear_flags_tree};
use common::tempdir::TempDir;
use common::vserver::{Setup, text};
use common::{is_root, vsbox_bin};

/// A stand-in package manager at /usr/bin/NAME in the guest: logs its
/// arguments to /tmp/NAME.log (inside the guest), copies /stage over / when
/// there is one (an "install"), and exits with the status in /tmp/status.
fn fake(guest: &Path, name: &str) {
    let bin = guest.join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(guest.join("tmp")).unwrap();
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done >> /tmp/{name}.log\n\
         [ -d /stage ] && cp -a /stage/. / && rm -rf /stage\n\
         exit $(cat /tmp/status 2>/dev/null || echo 0)\n"
    );
    std::fs::write(bin.join(name), script).unwrap();
    std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn runs_inside_the_guest_with_the_arguments_as_given() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("vapt", "", "#!/bin/sh\n");
    let g = s.guest.path();
    fake(g, "apt-get");
    fake(g, "rpm");
    let out = s.applet("vapt", &[&s.name, "--", "install", "-y", "a b", "--", "x"]);
    assert!(out.status.success(), "vapt: {}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(g.join("tmp/apt-get.log")).unwrap(),
        "[install]\n[-y]\n[a b]\n[--]\n[x]\n",
        "apt-get ran in the guest (its /tmp) with the arguments after the first --"
    );
    let out = s.applet("vrpm", &["ALL", "--", "-q", "bash"]);
    assert!(out.status.success(), "vrpm ALL: {}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(g.join("tmp/rpm.log")).unwrap(),
        "[-q]\n[bash]\n"
    );

    std::fs::write(g.join("tmp/status"), "7").unwrap();
    let out = s.applet("vapt", &[&s.name, "--", "upgrade"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("exited with status 7"));

    let out = s.applet("vapt", &[&s.name, "upgrade"]);
    assert_eq!(out.status.code(), Some(2), "no -- is a usage error");
    let out = s.applet("vapt", &["/some/dir", "--", "upgrade"]);
    assert_eq!(out.status.code(), Some(2), "a directory is refused");
}

#[test]
fn unify_shares_the_installed_package_with_ref() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if !Command::new(vsbox_bin())
        .args(["vunify", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped: no vunify applet");
        return;
    }
    let s = Setup::new("vapt-u", "", "#!/bin/sh\n");
    let g = s.guest.path();
    fake(g, "apt-get");
    let refdir = TempDir::new("vapt-ref");
    let r = DpkgTree::new(refdir.path().join("ref"));
    let lib = b"the same library, long enough to be worth sharing\n".repeat(100);
    r.package("libfoo", "1.0-1", "amd64")
        .file("/usr/lib/libfoo.so.1", &lib)
        .install();
    // What "apt-get install libfoo" will put in place in the guest.
    DpkgTree::new(g).package("base", "1", "amd64").install();
    let stage = DpkgTree::new(g.join("stage"));
    std::fs::copy(
        g.join("var/lib/dpkg/status"),
        stage.path("/var/lib/dpkg/status"),
    )
    .unwrap();
    stage
        .package("libfoo", "1.0-1", "amd64")
        .file("/usr/lib/libfoo.so.1", &lib)
        .install();

    let reference = r.root().to_str().unwrap().to_string();
    let out = s.applet(
        "vapt",
        &["--unify", &reference, &s.name, "--", "install", "libfoo"],
    );
    let (a, b) = (
        std::fs::metadata(r.path("/usr/lib/libfoo.so.1")).unwrap(),
        std::fs::metadata(g.join("usr/lib/libfoo.so.1")).unwrap(),
    );
    clear_flags_tree(r.root());
    clear_flags_tree(g);
    assert!(out.status.success(), "vapt --unify: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unifying 1 changed package"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(a.ino(), b.ino(), "libfoo's file is shared with REF");
}

#[test]
fn joins_a_running_guest() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rc = "#!/bin/sh\nif [ \"$1\" != 6 ]; then sleep 300 </dev/null >/dev/null 2>&1 & fi\n";
    let s = Setup::new("vapt-run", "", rc);
    let g = s.guest.path();
    std::fs::create_dir_all(g.join("usr/bin")).unwrap();
    // Records its pid namespace: joined to the running guest, it is the
    // namespace of the guest's init (a one-shot context would have its own).
    std::fs::write(
        g.join("usr/bin/apt-get"),
        "#!/bin/sh\nreadlink /proc/self/ns/pid > /tmp/pidns\n",
    )
    .unwrap();
    std::fs::set_permissions(
        g.join("usr/bin/apt-get"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(g.join("tmp")).unwrap();
    s.ok(&["start"]);
    let out = s.applet("vapt", &[&s.name, "--", "update"]);
    assert!(out.status.success(), "vapt: {}", text(&out.stderr));
    let ran_in = std::fs::read_to_string(g.join("tmp/pidns")).unwrap();
    let init_pid = std::fs::read_dir(s.run.path().join("contexts"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .find_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("init_pid="))
                .map(str::to_string)
        })
        .expect("the running guest's record");
    let guest_ns = std::fs::read_link(format!("/proc/{init_pid}/ns/pid")).unwrap();
    assert_eq!(
        ran_in.trim(),
        guest_ns.to_string_lossy(),
        "ran in the running guest's pid namespace"
    );
    s.ok(&["stop"]);
}
