//! Managing guests as lxc-destroy, lxc-ls -f and machinectl do: `vserver
//! NAME delete`, `vserver NAME rename NEW`, `vserver list` /
//! `vserver-stat --all`, and every --json output checked by python3's json
//! module. Real busybox guests, as root.

mod common;

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::tempdir::TempDir;
use common::vsbox_bin;
use common::vserver::{Setup, text};
use vsbox::attr::InodeFlags;
use vsbox::sys::fsflags;

/// An rc that keeps a service running.
const RC: &str = "#!/bin/sh\nif [ \"$1\" != 6 ]; then sleep 300 </dev/null >/dev/null 2>&1 & fi\n";

fn skip_unless_root(test: &str) -> bool {
    if common::is_root() {
        return false;
    }
    eprintln!("{test}: skipped: needs root");
    true
}

fn applet_ok<S: AsRef<OsStr>>(s: &Setup, name: &str, args: &[S]) -> String {
    let out = s.applet(name, args);
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Whether python3 is there (on the host; the test VM has only busybox).
fn have_python() -> bool {
    Command::new("python3")
        .arg("-c")
        .arg("")
        .status()
        .is_ok_and(|s| s.success())
}

/// Parses `json` with python3's json module and prints `expr` of it (`d`
/// is the document); panics if it is not valid JSON.
fn python(json: &str, expr: &str) -> String {
    let mut child = Command::new("python3")
        .args([
            "-c",
            &format!("import json,sys; d=json.load(sys.stdin); print(json.dumps({expr}))"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not valid JSON ({}):\n{json}",
        text(&out.stderr)
    );
    text(&out.stdout).trim_end().to_string()
}

fn flags(path: &Path) -> InodeFlags {
    let f = File::open(path).unwrap();
    vsbox::attr::flags_of(std::os::fd::AsFd::as_fd(&f)).unwrap()
}

fn set_flags(path: &Path, flags: InodeFlags) {
    let f = File::open(path).unwrap();
    fsflags::set(&f, flags.bits())
        .unwrap_or_else(|e| panic!("cannot set {flags} on {}: {e}", path.display()));
}

/// Clears the lock flags of files when dropped, so that the temporary
/// directories can go even when a test fails.
struct Unlock(Vec<PathBuf>);

impl Drop for Unlock {
    fn drop(&mut self) {
        for p in &self.0 {
            if let Ok(f) = File::open(p) {
                let _ = fsflags::set(&f, 0);
            }
        }
    }
}

/// Removes what a failed delete left hidden next to a guest tree.
struct RemoveHidden(PathBuf);

impl RemoveHidden {
    fn of(tree: &Path) -> Self {
        let base = tree.file_name().unwrap().to_str().unwrap();
        RemoveHidden(tree.parent().unwrap().join(format!(".{base}.deleting")))
    }
}

impl Drop for RemoveHidden {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the inode flags work where the test guests live (ext4 here; a
/// filesystem of the test VM may lack them).
fn flags_supported(dir: &Path) -> bool {
    let probe = dir.join(".flags-probe");
    std::fs::write(&probe, "x").unwrap();
    let f = File::open(&probe).unwrap();
    let ok = vsbox::attr::flags_of(std::os::fd::AsFd::as_fd(&f)).is_ok();
    drop(f);
    std::fs::remove_file(&probe).unwrap();
    ok
}

/// The lock flags vunify gives a shared file on this kernel.
fn shared_lock(probe: &Path) -> InodeFlags {
    let f = File::open(probe).unwrap();
    if vsbox::attr::iunlink_supported(std::os::fd::AsFd::as_fd(&f)).unwrap() {
        InodeFlags::IMMUTABLE.union(InodeFlags::IUNLINK)
    } else {
        InodeFlags::IMMUTABLE
    }
}

#[test]
fn delete_refuses_a_running_guest_and_force_stops_it() {
    if skip_unless_root("delete_refuses_a_running_guest_and_force_stops_it") {
        return;
    }
    let s = Setup::new("del-run", "", RC);
    let tree = s.guest.path().to_path_buf();
    let conf = s.etc.path().join(format!("vservers/{}.conf", s.name));
    let script = s.etc.path().join(format!("vservers/{}.sh", s.name));
    s.ok(&["start"]);

    let refused = s.vserver(&["delete"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("is running: stop it first"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(s.vserver(&["running"]).status.code(), Some(0));
    assert!(tree.join("bin/busybox").exists() && conf.exists());

    let out = s.ok(&["delete", "--force"]);
    assert!(
        out.contains(&format!("Server {} is deleted", s.name)),
        "{out}"
    );
    assert!(!tree.exists(), "the tree is left");
    assert!(!conf.exists() && !script.exists(), "conf or .sh left");
    assert!(s.cgroup_gone(), "cgroup left");
    assert!(!s.run.path().join(format!("{}.ctx", s.name)).exists());
    let hidden = tree.parent().unwrap().join(format!(
        ".{}.deleting",
        tree.file_name().unwrap().to_str().unwrap()
    ));
    assert!(!hidden.exists());
    // No such guest any more.
    let gone = s.vserver(&["status"]);
    assert_eq!(gone.status.code(), Some(2), "{}", text(&gone.stderr));
}

#[test]
fn delete_keeps_a_file_shared_with_another_guest() {
    if skip_unless_root("delete_keeps_a_file_shared_with_another_guest") {
        return;
    }
    let a = Setup::new("del-a", "", RC);
    let b = Setup::new("del-b", "", RC);
    if !flags_supported(a.guest.path()) {
        eprintln!(
            "skipped: no inode flags on the filesystem of {}",
            a.guest.path().display()
        );
        return;
    }
    // B's file, hard-linked into A as vunify shares it, locked.
    let theirs = b.guest.join("usr/bin/shared");
    std::fs::write(&theirs, "shared content\n").unwrap();
    let ours = a.guest.join("usr/bin/shared");
    std::fs::hard_link(&theirs, &ours).unwrap();
    let lock = shared_lock(&theirs);
    // A's own files: immutable alone, and an immutable pair of links both
    // in A; an immutable directory.
    let own = a.guest.join("etc/own");
    std::fs::write(&own, "own\n").unwrap();
    std::fs::create_dir(a.guest.join("etc/frozen")).unwrap();
    let pair = a.guest.join("etc/frozen/pair");
    std::fs::write(&pair, "pair\n").unwrap();
    std::fs::hard_link(&pair, a.guest.join("etc/pair2")).unwrap();
    let hidden = RemoveHidden::of(a.guest.path());
    let _unlock = Unlock(vec![
        hidden.0.join("usr/bin/shared"),
        theirs.clone(),
        ours.clone(),
        own.clone(),
        pair.clone(),
        a.guest.join("etc/frozen"),
    ]);
    set_flags(&theirs, lock);
    set_flags(&own, InodeFlags::IMMUTABLE);
    set_flags(&pair, InodeFlags::IMMUTABLE);
    set_flags(&a.guest.join("etc/frozen"), InodeFlags::IMMUTABLE);
    // B runs meanwhile, as a guest sharing files would.
    b.ok(&["start"]);

    let out = a.vserver(&["delete"]);
    let err = text(&out.stderr);
    // B's file: its content, its flags, and only its own link left.
    assert_eq!(
        std::fs::read_to_string(&theirs).unwrap(),
        "shared content\n"
    );
    assert_eq!(
        flags(&theirs).bits() & lock.bits(),
        lock.bits(),
        "B's flags cleared"
    );
    assert_eq!(
        b.ok(&["exec", "cat", "/usr/bin/shared"]),
        "shared content\n"
    );
    assert!(!own.exists() && !pair.exists() && !a.guest.join("etc/pair2").exists());
    let conf = a.etc.path().join(format!("vservers/{}.conf", a.name));
    if lock.contains(InodeFlags::IUNLINK) {
        // The patched kernel lets A's name go and keeps the inode locked.
        assert!(out.status.success(), "{err}");
        assert!(!a.guest.path().exists() && !conf.exists());
        assert_eq!(std::fs::metadata(&theirs).unwrap().nlink(), 1);
    } else {
        // Without the unlink bit, the shared inode is kept rather than
        // unlocked for every guest; the delete says so and can be resumed.
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("files shared with other guests"), "{err}");
        assert!(err.contains("vunify --undo"), "{err}");
        assert_eq!(std::fs::metadata(&theirs).unwrap().nlink(), 2);
        assert!(conf.exists(), "the configuration goes last");
        assert!(
            !a.guest.path().exists(),
            "the tree is hidden, A cannot start"
        );
        assert_eq!(a.vserver(&["start"]).status.code(), Some(1));
        // Once B's file is A's own again, a second delete finishes.
        std::fs::remove_file(&theirs).unwrap_or_else(|_| {
            set_flags(&theirs, InodeFlags::EMPTY);
            std::fs::remove_file(&theirs).unwrap();
        });
        let again = a.vserver(&["delete"]);
        assert!(again.status.success(), "{}", text(&again.stderr));
        assert!(!hidden.0.exists() && !conf.exists());
    }
}

#[test]
fn delete_does_not_follow_symlinks_or_enter_mounts() {
    if skip_unless_root("delete_does_not_follow_symlinks_or_enter_mounts") {
        return;
    }
    let s = Setup::new("del-link", "", RC);
    let host = TempDir::new("del-host");
    let victim = host.write("victim", "host file\n");
    host.write("dir/inner", "host inner\n");
    // Planted by root in the guest, while it runs: links to host paths.
    s.ok(&["start"]);
    for (link, target) in [
        ("etc/to-file", victim.clone()),
        ("etc/to-dir", host.path().join("dir")),
        ("to-host-root", host.path().to_path_buf()),
    ] {
        let out = s.vserver(&[
            "exec",
            "ln",
            "-s",
            target.to_str().unwrap(),
            &format!("/{link}"),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // A host-side bind mount of host files inside the tree.
    let mnt = s.guest.join("mnt/hostbind");
    std::fs::create_dir_all(&mnt).unwrap();
    let bound = Command::new("mount")
        .args([
            "--bind",
            host.path().to_str().unwrap(),
            mnt.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(bound.success());
    let remove_hidden = RemoveHidden::of(s.guest.path());
    let hidden = remove_hidden.0.clone();
    struct Umount(Vec<PathBuf>);
    impl Drop for Umount {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = Command::new("umount").arg(p).stderr(Stdio::null()).status();
            }
        }
    }
    let umount = Umount(vec![mnt.clone(), hidden.join("mnt/hostbind")]);

    let out = s.vserver(&["delete", "--force"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is on another mount"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host file\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("dir/inner")).unwrap(),
        "host inner\n"
    );
    // Finished once the mount is gone; the links were removed, not
    // followed.
    drop(umount);
    let out = s.vserver(&["delete"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!hidden.exists() && !s.guest.path().exists());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host file\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("dir/inner")).unwrap(),
        "host inner\n"
    );
}

#[test]
fn rename_moves_conf_script_and_tree_and_refuses_when_it_must() {
    if skip_unless_root("rename_moves_conf_script_and_tree_and_refuses_when_it_must") {
        return;
    }
    let s = Setup::new("ren", "", RC);
    let dir = s.etc.path().join("vservers");
    let vroot = s.etc.path().join("vservers-root");
    // The tree at its default place, VSERVERS_ROOT/NAME.
    let conf = dir.join(format!("{}.conf", s.name));
    let text_conf = std::fs::read_to_string(&conf).unwrap();
    let without: String = text_conf
        .lines()
        .filter(|l| !l.starts_with("VSERVERDIR="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&conf, without).unwrap();
    std::fs::create_dir_all(&vroot).unwrap();
    std::fs::rename(s.guest.path(), vroot.join(&s.name)).unwrap();

    s.ok(&["start"]);
    let new = format!("{}-new", s.name);
    let running = s.vserver(&["rename", &new]);
    assert_eq!(running.status.code(), Some(1));
    assert!(
        text(&running.stderr).contains("is running"),
        "{}",
        text(&running.stderr)
    );
    s.ok(&["stop"]);

    // NEW taken (a conf, or a tree), or not a name: refused, nothing moved.
    let taken = dir.join(format!("{new}.conf"));
    std::fs::write(&taken, "").unwrap();
    let out = s.vserver(&["rename", &new]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is taken"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_file(&taken).unwrap();
    std::fs::create_dir(vroot.join(&new)).unwrap();
    assert_eq!(s.vserver(&["rename", &new]).status.code(), Some(1));
    std::fs::remove_dir(vroot.join(&new)).unwrap();
    assert_eq!(s.vserver(&["rename", "../x"]).status.code(), Some(2));
    assert!(conf.exists() && vroot.join(&s.name).join("bin/busybox").exists());

    let out = s.ok(&["rename", &new]);
    assert!(out.contains(&format!("is now {new}")), "{out}");
    assert!(!conf.exists() && !dir.join(format!("{}.sh", s.name)).exists());
    assert!(dir.join(format!("{new}.conf")).exists() && dir.join(format!("{new}.sh")).exists());
    assert!(!vroot.join(&s.name).exists());
    assert!(vroot.join(&new).join("bin/busybox").exists());
    // NEW starts from its moved tree and runs the moved script.
    let vserver = |args: &[&str]| {
        Command::new(vsbox_bin())
            .arg("vserver")
            .arg(&new)
            .args(args)
            .env("VSBOX_CONFIG_ROOT", s.etc.path())
            .env("VSBOX_RUN_DIR", s.run.path())
            .output()
            .unwrap()
    };
    let started = vserver(&["start"]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    assert_eq!(
        vserver(&["exec", "cat", "/etc/init.d/rc"]).stdout,
        RC.as_bytes()
    );
    assert!(vserver(&["stop"]).status.success());
    assert!(
        s.companion_log().contains(&format!("pre-start {new}")),
        "{}",
        s.companion_log()
    );

    // An explicit VSERVERDIR stays as it is, with its tree.
    let e = Setup::new("ren-explicit", "", RC);
    let enew = format!("{}-new", e.name);
    e.ok(&["rename", &enew]);
    let econf = e.etc.path().join(format!("vservers/{enew}.conf"));
    assert!(
        std::fs::read_to_string(&econf)
            .unwrap()
            .contains(&format!("VSERVERDIR={}", e.guest.path().display()))
    );
    assert!(e.guest.join("bin/busybox").exists());
}

#[test]
fn list_shows_running_stopped_and_broken_guests() {
    if skip_unless_root("list_shows_running_stopped_and_broken_guests") {
        return;
    }
    let description = "a \"quoted\" \\back\\slash\tand tab";
    let s = Setup::new("list", "IPROOT=127.0.0.62\n", RC);
    let dir = s.etc.path().join("vservers");
    let conf = dir.join(format!("{}.conf", s.name));
    let with_description = std::fs::read_to_string(&conf).unwrap().replace(
        "# Description: test guest",
        &format!("# Description: {description}"),
    );
    std::fs::write(&conf, with_description).unwrap();
    std::fs::write(dir.join("stopped-1.conf"), "S_FLAGS=\"lock fakeinit\"\n").unwrap();
    std::fs::write(
        dir.join("broken-1.conf"),
        "IPROOT=\"not \\\"an\\\" address\"\n",
    )
    .unwrap();
    s.ok(&["--nodev", "start"]);

    let table = applet_ok(&s, "vserver", &["list"]).replace(&s.name, "GUEST");
    let all = applet_ok(&s, "vserver-stat", &["--all"]).replace(&s.name, "GUEST");
    // The same listing; uptime and memory move between the two calls.
    let steady = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .map(|l| {
                let mut words: Vec<String> = l.split_whitespace().map(str::to_string).collect();
                if words.get(1).is_some_and(|w| w == "running") {
                    words.truncate(5);
                }
                words
            })
            .collect()
    };
    assert_eq!(steady(&table), steady(&all), "{table}{all}");
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME",
            "STATE",
            "CONTEXT",
            "ADDRESSES",
            "INIT",
            "UPTIME",
            "MEMORY"
        ]
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l[0] == name)
            .unwrap_or_else(|| panic!("{name} in\n{table}"))
            .clone()
    };
    let g = row("GUEST");
    assert_eq!(g[1], "running", "{table}");
    assert!(g[2].parse::<u32>().is_ok(), "{table}");
    assert_eq!(g[3..5], ["127.0.0.62", "vinit"], "{table}");
    assert_eq!(
        row("stopped-1")[1..],
        ["stopped", "-", "-", "init", "-", "-"]
    );
    assert_eq!(row("broken-1")[1], "broken");

    // JSON, parsed by python3, the same facts (the test VM has no python).
    if !have_python() {
        eprintln!("JSON checks skipped: no python3");
        return;
    }
    let json = applet_ok(&s, "vserver", &["list", "--json"]);
    let steady =
        "[{k: v for k, v in g.items() if k not in ('memory_bytes', 'uptime_secs')} for g in d]";
    assert_eq!(
        python(&json, steady),
        python(&applet_ok(&s, "vserver-stat", &["--all", "--json"]), steady)
    );
    let by_name = "{g['name']: [g['state'], g['init'], g['addresses'], g['running']] for g in d}";
    let facts = python(&json, by_name);
    assert!(
        facts.contains(&format!(
            "\"{}\": [\"running\", \"vinit\", [\"127.0.0.62\"], true]",
            s.name
        )),
        "{facts}"
    );
    assert!(
        facts.contains("\"stopped-1\": [\"stopped\", \"init\", [], false]"),
        "{facts}"
    );
    let broken = python(
        &json,
        "[g['error'] for g in d if g['name'] == 'broken-1'][0]",
    );
    assert!(
        broken.starts_with('"') && broken.contains("IPROOT"),
        "{broken}"
    );
    assert!(
        python(
            &json,
            &format!(
                "[g['uptime_secs'] is not None and g['context'] > 0 for g in d if g['name'] == '{}']",
                s.name
            )
        ) == "[true]"
    );

    // vserver-stat --json and status --json: the description with quotes,
    // backslashes and a tab comes back as it was.
    let stat = applet_ok(&s, "vserver-stat", &["--json"]);
    let got = python(
        &stat,
        &format!(
            "[g['description'] for g in d if g['name'] == '{}'][0]",
            s.name
        ),
    );
    // What python's own json.dumps gives for the description.
    assert_eq!(got, "\"a \\\"quoted\\\" \\\\back\\\\slash\\tand tab\"");
    let status = s.ok(&["status", "--json"]);
    assert_eq!(
        python(&status, "[d['running'], d['name']]"),
        format!("[true, \"{}\"]", s.name)
    );
    let stopped = s.applet("vserver", &["stopped-1", "status", "--json"]);
    assert_eq!(python(&text(&stopped.stdout), "d['context']"), "null");
    let sockets = applet_ok(&s, "vnetstat", &["--json"]);
    python(&sockets, "d");
}

#[test]
fn json_outputs_escape_and_share_one_schema() {
    if skip_unless_root("json_outputs_escape_and_share_one_schema") {
        return;
    }
    if !have_python() {
        eprintln!("skipped: no python3 to parse the JSON (the test VM)");
        return;
    }
    let s = Setup::new("json", "", RC);
    // One schema: status has the keys of a list entry, with vserver-stat's
    // name for the uptime.
    s.ok(&["start"]);
    let status = s.ok(&["status", "--json"]);
    assert_eq!(
        python(&status, "sorted(d.keys())"),
        "[\"context\", \"memory_bytes\", \"name\", \"processes\", \"running\", \"uptime_secs\"]"
    );
    let list = applet_ok(&s, "vserver", &["list", "--json"]);
    assert_eq!(
        python(
            &list,
            "set(d[0].keys()) >= set(['context', 'memory_bytes', 'name', 'processes', 'running', 'uptime_secs'])"
        ),
        "true"
    );
    let stat = applet_ok(&s, "vserver-stat", &["--json"]);
    assert_eq!(
        python(
            &stat,
            &format!(
                "[type(g['uptime_secs']).__name__ for g in d if g['name'] == '{}']",
                s.name
            )
        ),
        "[\"int\"]"
    );
    s.ok(&["stop"]);

    // Arguments are UTF-8; names found in a tree need not be.
    let weird = OsStr::from_bytes(b"a\"b\\c\x01d\te\nf\x7f\xff\xfe");
    let top = s.guest.path().join("weird");
    std::fs::create_dir_all(top.join(weird)).unwrap();
    std::fs::write(top.join(weird).join(weird), "12345").unwrap();
    let end = "a\\\"b\\\\c\\u0001d\\te\\nf\\u007f\\ufffd\\ufffd\"";
    let vdu = applet_ok(&s, "vdu", &[OsStr::new("--json"), top.as_os_str()]);
    let paths = python(&vdu, "[g['path'] for g in d]");
    assert!(paths.contains(end), "{paths}");
    // Every control character escaped; bytes that are not UTF-8 are
    // U+FFFD.
    if !flags_supported(s.guest.path()) {
        eprintln!(
            "showattr skipped: no inode flags on {}",
            s.guest.path().display()
        );
        return;
    }
    let utf8 = top.join("q\"b\\s\x01\t\n\u{7f}");
    std::fs::write(&utf8, "").unwrap();
    let attr = applet_ok(&s, "showattr", &[OsStr::new("--json"), utf8.as_os_str()]);
    let path = python(&attr, "d[0]['path']");
    assert!(
        path.ends_with("q\\\"b\\\\s\\u0001\\t\\n\\u007f\""),
        "{path}"
    );
}
