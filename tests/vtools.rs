//! vdu, vfiles, vbuild and vcheck on synthetic trees the tests build (dpkg
//! guests from tests/common/dpkg.rs). Needs root (skips otherwise): vbuild
//! keeps owners and sets flags, trees hold device nodes.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::dpkg::{DpkgTree, clear_flags_tree, inode};
use common::tempdir::TempDir;
use common::tmux::Tmux;

/// A temp dir whose files may carry immutable flags: cleared before removal.
struct Scratch(TempDir);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        Scratch(TempDir::new(tag))
    }
    fn join(&self, p: &str) -> PathBuf {
        self.0.path().join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        clear_flags_tree(self.0.path());
    }
}

fn vsbox(args: &[&str]) -> Output {
    Command::new(common::vsbox_bin())
        .args(args)
        .env("VSBOX_CONFIG_ROOT", "/nonexistent-vsbox-config")
        .output()
        .expect("run vsbox")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = vsbox(args);
    assert!(
        o.status.success(),
        "{args:?}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    text(&o)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// The number after `"key": ` in a one-object JSON text.
fn json_num(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\": "))
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + key.len()
        + 4;
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn vdu_counts_only_data_all_of_whose_links_are_inside() {
    need_root!();
    let t = Scratch::new("vdu");
    let g = t.join("guest");
    let outside = t.join("outside");
    fs::create_dir_all(g.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(g.join("one"), vec![1u8; 1000]).unwrap();
    fs::write(g.join("sub/two"), vec![2u8; 3000]).unwrap();
    fs::hard_link(g.join("sub/two"), g.join("two-again")).unwrap();
    fs::write(g.join("sub/shared"), vec![3u8; 4000]).unwrap();
    fs::hard_link(g.join("sub/shared"), outside.join("shared")).unwrap();
    symlink("/etc/shadow", g.join("sub/link")).unwrap();

    // Hand-computed: the directories, "one", "two" once, the symlink; half
    // of "shared".
    let m = |p: &Path| fs::symlink_metadata(p).unwrap();
    let own = [
        g.clone(),
        g.join("sub"),
        g.join("one"),
        g.join("sub/two"),
        g.join("sub/link"),
    ];
    let bytes: u64 = own.iter().map(|p| m(p).size()).sum();
    let blocks: u64 = own.iter().map(|p| m(p).blocks()).sum();
    assert_eq!(
        bytes,
        m(&g).size() + m(&g.join("sub")).size() + 1000 + 3000 + 11
    );

    let json = ok(&["vdu", "-s", "--json", s(&g)]);
    assert_eq!(json_num(&json, "bytes"), bytes, "{json}");
    assert_eq!(json_num(&json, "kib"), blocks.div_ceil(2), "{json}");
    assert_eq!(json_num(&json, "files"), 3, "{json}");
    assert_eq!(json_num(&json, "shared_bytes"), 2000, "{json}");
    assert_eq!(json_num(&json, "shared_files"), 1, "{json}");

    let shared_kib = (m(&g.join("sub/shared")).blocks() / 2).div_ceil(2);
    assert_eq!(
        ok(&["vdu", "-s", "--shared", s(&g)]),
        format!("{}\t{shared_kib}\t{}\n", blocks.div_ceil(2), s(&g))
    );

    // Without -s: every directory, contents first. "two" is counted in the
    // directory where it was met first (sub/ comes after two-again? no:
    // names sort "one" < "sub" < "two-again").
    let lines = ok(&["vdu", s(&g)]);
    let rows: Vec<&str> = lines.lines().collect();
    assert_eq!(rows.len(), 2, "{lines}");
    let sub_blocks = m(&g.join("sub")).blocks()
        + m(&g.join("sub/two")).blocks()
        + m(&g.join("sub/link")).blocks();
    assert_eq!(
        rows[0],
        format!("{}\t{}", sub_blocks.div_ceil(2), g.join("sub").display())
    );
    assert_eq!(rows[1], format!("{}\t{}", blocks.div_ceil(2), s(&g)));

    let o = vsbox(&["vdu", s(&t.join("missing"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"));
}

#[test]
fn vfiles_lists_what_is_not_shared_with_the_reference() {
    need_root!();
    let t = Scratch::new("vfiles");
    let r = t.join("ref");
    let g = t.join("guest");
    for d in [&r, &g] {
        fs::create_dir_all(d.join("usr/bin")).unwrap();
        fs::create_dir_all(d.join("etc")).unwrap();
    }
    fs::write(r.join("usr/bin/shared"), "same").unwrap();
    fs::hard_link(r.join("usr/bin/shared"), g.join("usr/bin/shared")).unwrap();
    fs::write(r.join("usr/bin/copy"), "same").unwrap();
    fs::write(g.join("usr/bin/copy"), "same").unwrap();
    fs::write(g.join("etc/own\nname"), "x").unwrap();
    symlink("/usr/bin", g.join("bin")).unwrap();
    // A guest symlink to a directory is listed, never followed, and a
    // reference symlink is not walked into either.
    symlink("usr", r.join("etc2")).unwrap();
    fs::create_dir_all(g.join("etc2/bin")).unwrap();
    fs::hard_link(r.join("usr/bin/shared"), g.join("etc2/bin/shared")).unwrap();

    assert_eq!(
        ok(&["vfiles", s(&r), s(&g)]),
        "/bin\n/etc/own\\nname\n/etc2/bin/shared\n/usr/bin/copy\n"
    );
    assert_eq!(
        ok(&["vfiles", "--dirs", s(&r), s(&g)]),
        "/bin\n/etc\n/etc/own\\nname\n/etc2\n/etc2/bin\n/etc2/bin/shared\n/usr\n/usr/bin\n/usr/bin/copy\n"
    );
    assert_eq!(
        vsbox(&["vfiles", "-0", s(&r), s(&g)]).stdout,
        b"/bin\0/etc/own\nname\0/etc2/bin/shared\0/usr/bin/copy\0"
    );
    let o = vsbox(&["vfiles", "nosuchguest", s(&g)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuchguest"));
}

/// A reference with merged /usr, two packages, a conffile, a setuid file,
/// files of its own and a device node.
fn reference(root: &Path) -> DpkgTree {
    let t = DpkgTree::new(root);
    t.merged_usr();
    t.package("coreutils", "9.1-1", "amd64")
        .file("/bin/ls", b"ls binary")
        .file("/usr/bin/cat", b"cat binary")
        .conffile("/etc/coreutils.conf", b"conf")
        .install();
    t.package("login", "1:4.13", "amd64")
        .file("/usr/bin/su", b"su binary")
        .file("/var/lib/login/data", b"var data")
        .install();
    fs::set_permissions(t.path("/usr/bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::create_dir_all(t.path("/opt")).unwrap();
    fs::write(t.path("/opt/own"), "not a package file").unwrap();
    fs::create_dir_all(t.path("/var/log/apt")).unwrap();
    fs::write(t.path("/var/log/apt/history.log"), "log").unwrap();
    fs::create_dir_all(t.path("/dev")).unwrap();
    let st = Command::new("mknod")
        .args([s(&t.path("/dev/null")), "c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success());
    symlink("/etc/shadow", t.path("/etc/evil")).unwrap();
    t
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
fn vbuild_links_package_files_and_copies_the_rest() {
    need_root!();
    let t = Scratch::new("vbuild");
    let r = reference(&t.join("ref"));
    let n = t.join("new");
    let plan = ok(&["vbuild", "--test", "--debug", s(r.root()), s(&n)]);
    assert!(plan.contains("link /usr/bin/ls\n"), "{plan}");
    assert!(plan.contains("copy /opt/own\n"), "{plan}");
    assert!(!n.exists(), "--test makes nothing");

    let stats = ok(&[
        "vbuild",
        "--noflags",
        "--stats",
        "--excldir",
        "/var/log",
        s(r.root()),
        s(&n),
    ]);
    assert!(stats.contains("Files linked: 2\n"), "{stats}");
    assert_eq!(inode(&n.join("usr/bin/ls")), inode(&r.path("/usr/bin/ls")));
    assert_eq!(
        inode(&n.join("usr/bin/cat")),
        inode(&r.path("/usr/bin/cat"))
    );
    for copied in [
        "etc/coreutils.conf",
        "usr/bin/su",
        "opt/own",
        "var/lib/login/data",
    ] {
        assert_ne!(inode(&n.join(copied)), inode(&r.path(copied)), "{copied}");
        assert_eq!(
            fs::read(n.join(copied)).unwrap(),
            fs::read(r.path(copied)).unwrap()
        );
    }
    assert_eq!(
        fs::metadata(n.join("usr/bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert!(n.join("var/log/apt").is_dir());
    assert!(
        !n.join("var/log/apt/history.log").exists(),
        "--excldir keeps no file"
    );
    assert_eq!(fs::read_link(n.join("bin")).unwrap(), Path::new("usr/bin"));
    assert_eq!(
        fs::read_link(n.join("etc/evil")).unwrap(),
        Path::new("/etc/shadow")
    );
    let null = fs::symlink_metadata(n.join("dev/null")).unwrap();
    assert_eq!(
        null.rdev(),
        fs::symlink_metadata("/dev/null").unwrap().rdev()
    );
    assert!(leftovers(&t.join("")).is_empty());

    // NEW exists: refused, nothing touched.
    let o = vsbox(&["vbuild", "--noflags", s(r.root()), s(&n)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));

    // Default flags: the linked inodes become immutable (the iunlink bit
    // when the kernel has it, else a clear message once).
    let n2 = t.join("new2");
    let o = vsbox(&["vbuild", s(r.root()), s(&n2)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let flags = vsbox::attr::AttrFile::open(&n2.join("usr/bin/ls"))
        .unwrap()
        .flags()
        .unwrap();
    assert!(
        flags.contains(vsbox::attr::InodeFlags::IMMUTABLE),
        "{flags}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    if !flags.contains(vsbox::attr::InodeFlags::IUNLINK) {
        assert_eq!(
            err.matches("lacks the immutable-unlink flag").count(),
            1,
            "{err}"
        );
    }
    let copied = vsbox::attr::AttrFile::open(&n2.join("opt/own"))
        .unwrap()
        .flags()
        .unwrap();
    assert!(!copied.contains(vsbox::attr::InodeFlags::IMMUTABLE));
}

#[test]
fn vbuild_links_the_files_of_a_unified_reference() {
    need_root!();
    let t = Scratch::new("vbuild-unified");
    let r = reference(&t.join("ref"));
    // A guest with copies of the reference's files, unified with it: the
    // shared inodes become immutable (no immutable-unlink flag here).
    let g = t.join("guest");
    let st = Command::new("cp")
        .args(["-a", s(r.root()), s(&g)])
        .status()
        .unwrap();
    assert!(st.success());
    assert_ne!(inode(&g.join("usr/bin/ls")), inode(&r.path("/usr/bin/ls")));
    ok(&["vunify", s(r.root()), s(&g), "--", "ALL"]);
    assert_eq!(inode(&g.join("usr/bin/ls")), inode(&r.path("/usr/bin/ls")));
    let immutable = |p: &Path| {
        vsbox::attr::AttrFile::open(p)
            .unwrap()
            .flags()
            .unwrap()
            .contains(vsbox::attr::InodeFlags::IMMUTABLE)
    };
    assert!(immutable(&r.path("/usr/bin/ls")));

    // A new guest from the unified reference shares its package files...
    let n = t.join("new");
    let stats = ok(&["vbuild", "--stats", s(r.root()), s(&n)]);
    assert!(stats.contains("Files linked: 2\n"), "{stats}");
    for linked in ["usr/bin/ls", "usr/bin/cat"] {
        assert_eq!(inode(&n.join(linked)), inode(&r.path(linked)), "{linked}");
        // ...and the shared inodes are immutable again.
        assert!(immutable(&n.join(linked)), "{linked}");
    }
    assert!(leftovers(&t.join("")).is_empty());
}

#[test]
fn vbuild_failure_leaves_nothing() {
    need_root!();
    let t = Scratch::new("vbuild-fail");
    let r = reference(&t.join("ref"));
    // Nesting deeper than the walk allows: an error after much was made.
    let mut deep = r.path("/srv");
    for _ in 0..205 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    let n = t.join("new");
    let o = vsbox(&["vbuild", s(r.root()), s(&n)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("deeper"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!n.exists());
    assert!(leftovers(&t.join("")).is_empty());
    let flags = vsbox::attr::AttrFile::open(&r.path("/usr/bin/cat"))
        .unwrap()
        .flags()
        .unwrap();
    assert!(!flags.contains(vsbox::attr::InodeFlags::IMMUTABLE));
}

fn packages(t: &DpkgTree, a_version: &str, extra: &str) {
    t.merged_usr();
    t.package("a", "1.0", "amd64")
        .file("/usr/bin/a1", b"one")
        .file("/usr/bin/a2", b"two")
        .file("/bin/a3", b"three")
        .file("/usr/bin/a4", b"four")
        .conffile("/etc/a.conf", b"conf")
        .install();
    t.package("b", a_version, "all")
        .file("/usr/share/b", b"b")
        .install();
    t.package(extra, "3", "amd64")
        .file(&format!("/usr/lib/{extra}"), b"x")
        .install();
}

#[test]
fn vcheck_reports_changed_missing_unexpected_and_unverifiable() {
    need_root!();
    let t = Scratch::new("vcheck");
    let r = DpkgTree::new(t.join("ref"));
    packages(&r, "1.0", "refonly");
    let g = DpkgTree::new(t.join("guest"));
    packages(&g, "1.0", "refonly");

    // A clean guest: nothing, status 0.
    let o = vsbox(&["vcheck", "--verify", s(r.root()), s(g.root())]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(text(&o), "");

    fs::write(g.path("/usr/bin/a1"), "trojan").unwrap();
    fs::remove_file(g.path("/usr/bin/a2")).unwrap();
    // A symlink where a package file should be: never followed, even when
    // it points at a file with the right content.
    fs::remove_file(g.path("/usr/bin/a3")).unwrap();
    fs::write(t.join("outside"), "three").unwrap();
    symlink(t.join("outside"), g.path("/usr/bin/a3")).unwrap();
    fs::write(g.path("/etc/a.conf"), "admin's change").unwrap();
    // The guest's own database claims more files, with matching sums.
    let info = g.path("/var/lib/dpkg/info/a.list");
    let mut list = fs::read_to_string(&info).unwrap();
    list.push_str("/usr/bin/extra\n");
    fs::write(&info, list).unwrap();
    let g2 = DpkgTree::new(t.join("guest2"));
    packages(&g2, "2.0", "guestonly");

    let o = vsbox(&["vcheck", "--verify", s(r.root()), s(g.root())]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o),
        "changed /usr/bin/a1 (a)\nmissing /usr/bin/a2 (a)\n\
         changed /bin/a3 (a: a symlink, not a regular file)\nunexpected /usr/bin/extra (a)\n"
    );
    let o = vsbox(&["vcheck", "--verify", s(r.root()), s(g.root()), s(g2.root())]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    let g2s = s(g2.root());
    assert!(
        out.contains(&format!(
            "{g2s}: unverifiable b 2.0 (the reference has 1.0)\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{g2s}: unverifiable guestonly 3 (not in the reference)\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: changed /usr/bin/a1 (a)\n", s(g.root()))),
        "{out}"
    );

    let o = vsbox(&["vcheck", "--diffpkgs", s(r.root()), s(g2.root())]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o),
        "version b (1.0 -> 2.0)\nonly-guest guestonly (3)\nonly-reference refonly (3)\n"
    );
    // One name, two architectures: shown as NAME:ARCH.
    r.package("libm", "1", "amd64")
        .file("/usr/lib/m64", b"m")
        .install();
    g2.package("libm", "1", "i386")
        .file("/usr/lib/m32", b"m")
        .install();
    let o = vsbox(&["vcheck", "--diffpkgs", s(r.root()), s(g2.root())]);
    let out = text(&o);
    assert!(out.contains("only-reference libm:amd64 (1)\n"), "{out}");
    assert!(out.contains("only-guest libm:i386 (1)\n"), "{out}");
    assert!(out.contains("version b (1.0 -> 2.0)\n"), "{out}");
    let o = vsbox(&["vcheck", "--diffpkgs", s(r.root()), s(r.root())]);
    assert_eq!((o.status.code(), text(&o)), (Some(0), String::new()));

    // A guest database naming paths outside the guest is refused: status 2.
    fs::write(&info, "/usr/bin/a1\n/../../etc/shadow\n").unwrap();
    let o = vsbox(&["vcheck", "--verify", s(r.root()), s(g.root())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("leaves the guest"));
    let o = vsbox(&["vcheck", "--verify", "--diffpkgs", s(r.root()), s(g.root())]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn guests_are_named_by_their_configuration() {
    need_root!();
    let t = Scratch::new("vnames");
    let r = reference(&t.join("guests/ref"));
    let conf = t.join("conf/vservers");
    fs::create_dir_all(&conf).unwrap();
    for name in ["ref", "web"] {
        fs::write(
            conf.join(format!("{name}.conf")),
            format!("VSERVERDIR=\"{}\"\n", s(&t.join("guests").join(name))),
        )
        .unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(common::vsbox_bin())
            .args(args)
            .env("VSBOX_CONFIG_ROOT", t.join("conf"))
            .output()
            .unwrap()
    };
    let o = run(&["vbuild", "--noflags", "ref", "web"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let web = t.join("guests/web");
    assert_eq!(
        inode(&web.join("usr/bin/ls")),
        inode(&r.path("/usr/bin/ls"))
    );
    let o = run(&["vfiles", "ref", "web"]);
    let listed = text(&o);
    assert!(
        listed.contains("/opt/own\n") && !listed.contains("/usr/bin/ls\n"),
        "{listed}"
    );
    let o = run(&["vcheck", "--verify", "ref", "web"]);
    assert_eq!((o.status.code(), text(&o)), (Some(0), String::new()));
    let o = run(&["vcheck", "--diffpkgs", "ref", "nosuch"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuch"));
}

/// A tmpfs mounted for a test, unmounted when it ends (pass or fail).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "vsbox-vtools", s(at)])
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs on {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn walks_stay_on_one_filesystem() {
    need_root!();
    let t = Scratch::new("vonefs");
    let r = reference(&t.join("ref"));
    let before = ok(&["vdu", "-s", "--json", s(r.root())]);
    let _proc = Tmpfs::mount(&r.path("/proc"));
    fs::write(r.path("/proc/big"), vec![0u8; 100_000]).unwrap();
    let after = ok(&["vdu", "-s", "--json", s(r.root())]);
    assert_eq!(json_num(&after, "files"), json_num(&before, "files"));
    assert!(
        json_num(&after, "bytes") <= json_num(&before, "bytes"),
        "{after}"
    );

    let other = t.join("other");
    fs::create_dir_all(&other).unwrap();
    let listed = ok(&["vfiles", "--dirs", s(&other), s(r.root())]);
    assert!(
        listed.contains("\n/proc\n"),
        "the mount point itself: {listed}"
    );
    assert!(!listed.contains("/proc/"), "{listed}");

    let n = t.join("new");
    ok(&["vbuild", "--noflags", s(r.root()), s(&n)]);
    assert!(
        n.join("proc").is_dir(),
        "a mount point becomes an empty directory"
    );
    assert_eq!(fs::read_dir(n.join("proc")).unwrap().count(), 0);
}

/// vbuild's status line (src/progress.rs): on a terminal one line ended by
/// a newline before the warnings; through a pipe nothing but the warnings;
/// with --progress through a pipe, plain lines.
#[test]
fn vbuild_shows_progress_on_a_terminal_and_when_asked() {
    need_root!();
    if !Tmux::available() {
        eprintln!("skipped: no tmux");
        return;
    }
    let t = Scratch::new("vbuild-progress");
    let r = reference(&t.join("ref"));
    let device = "vbuild: 1 device nodes not copied; /dev has the fixed list of vserver build\n";

    let piped = vsbox(&["vbuild", "--noflags", s(r.root()), s(&t.join("piped"))]);
    assert!(piped.status.success());
    assert_eq!(
        String::from_utf8_lossy(&piped.stderr),
        device,
        "a pipe gets no progress"
    );

    let lines = vsbox(&[
        "vbuild",
        "--progress",
        "--noflags",
        s(r.root()),
        s(&t.join("lines")),
    ]);
    assert!(lines.status.success());
    let err = String::from_utf8(lines.stderr).unwrap();
    assert!(!err.contains(['\r', '\x1b']), "plain lines only: {err:?}");
    assert!(
        err.starts_with("vbuild: reading the package list\nvbuild: copying\n"),
        "{err:?}"
    );
    assert!(
        err.contains("\nvbuild: done: ") && err.contains(" 2 linked, 0 flagged\n"),
        "{err:?}"
    );
    assert!(err.ends_with(device), "{err:?}");

    let screen = Tmux::run(
        "vbuild",
        &format!(
            "VSBOX_CONFIG_ROOT=/nonexistent-vsbox-config {} vbuild --noflags {} {}",
            common::vsbox_bin().display(),
            s(r.root()),
            s(&t.join("terminal"))
        ),
    );
    let shown: Vec<&str> = screen.lines().filter(|l| l.contains("vbuild: ")).collect();
    assert_eq!(shown.len(), 2, "the status line and the warning: {screen}");
    assert!(shown[0].starts_with("vbuild: done: "), "{screen}");
    assert!(
        shown[0].trim_end().ends_with(" 2 linked, 0 flagged"),
        "{screen}"
    );
    assert_eq!(format!("{}\n", shown[1].trim_end()), device, "{screen}");
    assert!(screen.contains(&format!("{}exit 0", device)), "{screen}");
    assert_eq!(
        inode(&t.join("terminal/usr/bin/ls")),
        inode(&r.path("/usr/bin/ls"))
    );
}
