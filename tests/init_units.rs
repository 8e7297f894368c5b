//! The systemd units of docs/init pass `systemd-analyze verify` with no
//! complaint: the binaries they name are this build's applets.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::tempdir::TempDir;
use common::vsbox_bin;
use common::vserver::text;

const UNITS: &[(&str, &str)] = &[
    ("vservers.service", "vservers"),
    ("rebootmgr.service", "rebootmgr"),
];

#[test]
fn units_verify_cleanly() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        // test.sh installs systemd; the test VM has no systemd.
        eprintln!("skipped: no systemd-analyze");
        return;
    }
    let dir = TempDir::new("units");
    let bin = dir.path().join("sbin");
    std::fs::create_dir(&bin).unwrap();
    let mut paths = Vec::new();
    for (unit, applet) in UNITS {
        symlink(vsbox_bin(), bin.join(applet)).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/init")
            .join(unit);
        let text = std::fs::read_to_string(&source).unwrap();
        assert!(text.contains("/usr/local/sbin/"), "{unit}: no binary path");
        let path = dir.path().join(unit);
        std::fs::write(
            &path,
            text.replace("/usr/local/sbin/", &format!("{}/", bin.display())),
        )
        .unwrap();
        paths.push(path);
    }
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .unwrap();
    // systemd-analyze exits 0 on many complaints: its output must be empty.
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
