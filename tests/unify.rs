//! vunify against the real kernel, on synthetic dpkg guests (root; skips
//! otherwise): what is linked and what never is, --test, --undo, the flags,
//! other filesystems, reflink on xfs/btrfs and its refusal on ext4, and
//! kill -9 at random moments.
//!
//! VSBOX_EXPECT_IUNLINK=1 (the patched kernel in test-vm) requires the
//! immutable-unlink flag on shared files; otherwise it must be absent and
//! the run must say once that the kernel lacks it.

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::dpkg::{DpkgTree, MTIME, clear_flags_tree, inode, md5_hex, set_mtime};
use common::tempdir::TempDir;
use common::tmux::Tmux;

const IMMUTABLE: u32 = 0x10;
const IUNLINK: u32 = 0x0800_0000;

macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A temp dir of guests whose flags are cleared before it is removed.
struct Area {
    dir: TempDir,
    mounts: Vec<PathBuf>,
}

impl Area {
    fn new(tag: &str) -> Self {
        Area {
            dir: TempDir::new(&format!("unify-{tag}")),
            mounts: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Mounts `fstype` (tmpfs, or an image made by `mkfs`) on `name`.
    fn mount(&mut self, name: &str, fstype: &str, mkfs: Option<&[&str]>) -> Option<PathBuf> {
        let mnt = self.path(name);
        fs::create_dir_all(&mnt).unwrap();
        let mut cmd = Command::new("mount");
        match mkfs {
            None => {
                cmd.args(["-t", fstype, "-o", "size=64m", "tmpfs"])
                    .arg(&mnt);
            }
            Some(mkfs) => {
                let image = self.path(&format!("{name}.img"));
                fs::File::create(&image)
                    .unwrap()
                    .set_len(320 << 20)
                    .unwrap();
                let ok = Command::new(mkfs[0])
                    .args(&mkfs[1..])
                    .arg(&image)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    return None;
                }
                cmd.args(["-t", fstype, "-o", "loop,nodiscard"])
                    .arg(&image)
                    .arg(&mnt);
            }
        }
        if !cmd.status().is_ok_and(|s| s.success()) {
            return None;
        }
        self.mounts.push(mnt.clone());
        Some(mnt)
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        clear_flags_tree(self.dir.path());
        for m in self.mounts.iter().rev() {
            if !Command::new("umount")
                .arg(m)
                .status()
                .is_ok_and(|s| s.success())
            {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
    }
}

fn vunify(args: &[&str]) -> Output {
    let out = Command::new(common::vsbox_bin())
        .arg("vunify")
        .args(args)
        .env("VSBOX_CONFIG_ROOT", "/nonexistent-vsbox-config")
        .output()
        .unwrap();
    eprintln!(
        "vunify {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(args: &[&str]) -> String {
    let out = vunify(args);
    assert!(out.status.success(), "vunify {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn flags(path: &Path) -> u32 {
    let f = fs::File::open(path).unwrap();
    rustix::fs::ioctl_getflags(&f).unwrap().bits()
}

fn expect_iunlink() -> bool {
    std::env::var("VSBOX_EXPECT_IUNLINK").is_ok_and(|v| v == "1")
}

/// The same package set in REF and a guest; the guest differs where the
/// tests say.
fn install(t: &DpkgTree, variant: bool) {
    t.merged_usr();
    t.package("core", "1.0-1", "amd64")
        .file("/usr/bin/a", b"binary a\n")
        .file("/usr/lib/libx.so.1", &vec![7u8; 300_000])
        .conffile("/etc/core.conf", b"conf=1\n")
        .file("/etc/core.d/plain", b"not a conffile but in /etc\n")
        .file("/var/log/core.log", b"log\n")
        .file("/usr/share/doc/core/README", b"readme\n")
        .file(
            "/usr/bin/diff",
            if variant {
                b"guest-own\n"
            } else {
                b"reference\n"
            },
        )
        .file("/usr/bin/mode", b"mode\n")
        .file("/usr/bin/mtime", b"mtime\n")
        .file("/usr/bin/empty", b"")
        .listed("/bin/merged")
        .listed("/usr/bin/trap")
        .install();
    t.package("merged", "1", "all")
        .file("/usr/bin/merged", b"merged usr\n")
        .listed("/bin/merged")
        .install();
    t.package("other", if variant { "2.1" } else { "2.0" }, "amd64")
        .file("/usr/bin/other", b"other\n")
        .install();
}

#[test]
fn md5_helper_matches_known_digests() {
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    // 55, 56 and 64 bytes: the padding edge cases.
    assert_eq!(md5_hex(&[b'a'; 55]), "ef1772b6dff9a122358552954ad0df65");
    assert_eq!(md5_hex(&[b'a'; 56]), "3b0c8ac703f828b04c6c197006d17218");
    assert_eq!(md5_hex(&[b'a'; 64]), "014842d480b571495a4a0363793f7367");
}

#[test]
fn unify_then_undo() {
    need_root!();
    let area = Area::new("basic");
    let r = DpkgTree::new(area.path("ref"));
    let g = DpkgTree::new(area.path("g1"));
    install(&r, false);
    install(&g, true);
    // The guest differs in mode and mtime; its trap is a symlink to a host
    // file with the reference's content.
    fs::set_permissions(g.path("/usr/bin/mode"), fs::Permissions::from_mode(0o755)).unwrap();
    set_mtime(&g.path("/usr/bin/mtime"), MTIME + 1);
    let host = area.dir.write("host-file", "trap\n");
    fs::write(r.path("/usr/bin/trap"), "trap\n").unwrap();
    set_mtime(&r.path("/usr/bin/trap"), MTIME);
    symlink(&host, g.path("/usr/bin/trap")).unwrap();
    let exclude = area
        .dir
        .write("exclude", "# docs stay\n- /usr/share/doc/\n");

    let before_host = inode(&host);
    let out = vunify(&[
        "--stats",
        "--exclude-from",
        s(&exclude),
        s(r.root()),
        s(g.root()),
        "--",
        "ALL",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    let shared = [
        "/usr/bin/a",
        "/usr/lib/libx.so.1",
        "/usr/bin/merged",
        "/usr/bin/empty",
    ];
    for f in shared {
        assert_eq!(inode(&r.path(f)), inode(&g.path(f)), "{f} is shared");
        assert_eq!(fs::symlink_metadata(g.path(f)).unwrap().nlink(), 2, "{f}");
    }
    assert_eq!(
        fs::read(g.path("/usr/lib/libx.so.1")).unwrap(),
        vec![7u8; 300_000]
    );
    for f in [
        "/etc/core.conf",
        "/etc/core.d/plain",
        "/var/log/core.log",
        "/usr/share/doc/core/README",
        "/usr/bin/diff",
        "/usr/bin/mode",
        "/usr/bin/mtime",
        "/usr/bin/other",
    ] {
        assert_ne!(inode(&r.path(f)), inode(&g.path(f)), "{f} is not shared");
    }
    assert_eq!(fs::read(g.path("/usr/bin/diff")).unwrap(), b"guest-own\n");
    // The symlink stays, its target is untouched and unshared.
    assert!(
        fs::symlink_metadata(g.path("/usr/bin/trap"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(inode(&host), before_host);
    assert_eq!(fs::metadata(&host).unwrap().nlink(), 1);
    assert_eq!(flags(&host) & IMMUTABLE, 0);
    // Stats: 4 files (the merged-/usr alias once), reasons counted.
    for want in [
        "files linked: 4",
        "skipped (conffile): 1",
        "skipped (under /etc or /var/log): 2",
        "skipped (excluded): 1",
        "skipped (different content): 1",
        "skipped (different mode): 1",
        "skipped (different mtime): 1",
        "skipped (a symlink in the guest (not followed)): 1",
        "packages: 2 matched, 1 not in a guest",
        "errors: 0",
    ] {
        assert!(stdout.contains(want), "stats lack '{want}':\n{stdout}");
    }
    // Flags: immutable, and the unlink bit where the kernel has it.
    let f = flags(&g.path("/usr/bin/a"));
    assert_ne!(f & IMMUTABLE, 0);
    if expect_iunlink() {
        assert_ne!(f & IUNLINK, 0);
        assert!(!stderr.contains("lacks"), "{stderr}");
    } else {
        assert_eq!(f & IUNLINK, 0);
        assert_eq!(
            stderr.matches("lacks the immutable-unlink flag").count(),
            1,
            "{stderr}"
        );
    }
    // A rerun changes nothing and says everything is shared already.
    let again = ok(&[
        "--stats",
        "--exclude-from",
        s(&exclude),
        s(r.root()),
        s(g.root()),
        "--",
        "ALL",
    ]);
    assert!(again.contains("files linked: 0"), "{again}");
    assert!(again.contains("already shared: 4"), "{again}");

    // Undo: independent copies with the same content and metadata, no flags.
    let undo = ok(&[
        "--undo",
        "--stats",
        s(r.root()),
        s(g.root()),
        "--",
        "core",
        "merged",
    ]);
    assert!(undo.contains("files copied back: 4"), "{undo}");
    for f in shared {
        let (rm, gm) = (
            fs::symlink_metadata(r.path(f)).unwrap(),
            fs::symlink_metadata(g.path(f)).unwrap(),
        );
        assert_ne!(rm.ino(), gm.ino(), "{f}");
        assert_eq!(gm.nlink(), 1);
        assert_eq!(
            (rm.mode(), rm.uid(), rm.mtime()),
            (gm.mode(), gm.uid(), gm.mtime())
        );
        assert_eq!(fs::read(r.path(f)).unwrap(), fs::read(g.path(f)).unwrap());
        assert_eq!(flags(&r.path(f)) & (IMMUTABLE | IUNLINK), 0, "{f}");
        assert_eq!(flags(&g.path(f)) & (IMMUTABLE | IUNLINK), 0, "{f}");
    }
    // The guest can change its own copy now.
    fs::write(g.path("/usr/bin/a"), "changed\n").unwrap();
    assert_eq!(fs::read(r.path("/usr/bin/a")).unwrap(), b"binary a\n");
}

/// (inode, mtime, flags) of every entry under a tree.
fn snapshot(dir: &Path, out: &mut HashMap<PathBuf, (u64, i64, u64)>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let m = fs::symlink_metadata(e.path()).unwrap();
        out.insert(e.path(), (m.ino(), m.mtime(), m.nlink()));
        if m.is_dir() {
            snapshot(&e.path(), out);
        }
    }
}

#[test]
fn test_mode_changes_nothing() {
    need_root!();
    let area = Area::new("test");
    let r = DpkgTree::new(area.path("ref"));
    let g = DpkgTree::new(area.path("g1"));
    install(&r, false);
    install(&g, false);
    let (mut before, mut after) = (HashMap::new(), HashMap::new());
    snapshot(area.dir.path(), &mut before);
    let out = ok(&["--test", "--stats", s(r.root()), s(g.root()), "--", "ALL"]);
    assert!(out.contains("would be linked: "), "{out}");
    assert!(out.contains("files would be linked: 9"), "{out}");
    snapshot(area.dir.path(), &mut after);
    assert_eq!(before, after);
    assert_eq!(flags(&r.path("/usr/bin/a")) & IMMUTABLE, 0);
}

#[test]
fn noflags_and_immutable_options() {
    need_root!();
    let area = Area::new("flags");
    let r = DpkgTree::new(area.path("ref"));
    let g1 = DpkgTree::new(area.path("g1"));
    let g2 = DpkgTree::new(area.path("g2"));
    for t in [&r, &g1, &g2] {
        install(t, false);
    }
    ok(&["--noflags", s(r.root()), s(g1.root()), "--", "core"]);
    assert_eq!(inode(&r.path("/usr/bin/a")), inode(&g1.path("/usr/bin/a")));
    assert_eq!(flags(&r.path("/usr/bin/a")) & (IMMUTABLE | IUNLINK), 0);
    // Plain immutable: linking one more guest to an immutable inode works
    // (flags cleared for the link, set again after).
    ok(&["--immutable", s(r.root()), s(g1.root()), "--", "core"]);
    assert_eq!(
        flags(&r.path("/usr/bin/a")) & (IMMUTABLE | IUNLINK),
        IMMUTABLE
    );
    ok(&["--immutable", s(r.root()), s(g2.root()), "--", "core"]);
    assert_eq!(inode(&r.path("/usr/bin/a")), inode(&g2.path("/usr/bin/a")));
    assert_eq!(
        fs::symlink_metadata(r.path("/usr/bin/a")).unwrap().nlink(),
        3
    );
    assert_eq!(
        flags(&r.path("/usr/bin/a")) & (IMMUTABLE | IUNLINK),
        IMMUTABLE
    );
    // The unlink bit asked for explicitly: all or nothing.
    let out = vunify(&[
        "--immutable-mayunlink",
        s(r.root()),
        s(g2.root()),
        "--",
        "core",
    ]);
    if expect_iunlink() {
        assert!(out.status.success());
        assert_eq!(flags(&r.path("/usr/bin/a")) & IUNLINK, IUNLINK);
    } else {
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("lacks the immutable-unlink"));
    }
    // Undo of one guest keeps the flags of what g2 still shares.
    ok(&["--undo", s(r.root()), s(g1.root()), "--", "ALL"]);
    assert_ne!(inode(&r.path("/usr/bin/a")), inode(&g1.path("/usr/bin/a")));
    assert_ne!(flags(&r.path("/usr/bin/a")) & IMMUTABLE, 0);
    ok(&["--undo", s(r.root()), s(g2.root()), "--", "ALL"]);
    assert_eq!(flags(&r.path("/usr/bin/a")) & (IMMUTABLE | IUNLINK), 0);
    assert_eq!(
        fs::symlink_metadata(r.path("/usr/bin/a")).unwrap().nlink(),
        1
    );
}

#[test]
fn never_across_filesystems() {
    need_root!();
    let mut area = Area::new("xdev");
    let r = DpkgTree::new(area.path("ref"));
    install(&r, false);
    let Some(mnt) = area.mount("tmpfs-guest", "tmpfs", None) else {
        panic!("cannot mount a tmpfs");
    };
    let g = DpkgTree::new(mnt.join("g1"));
    install(&g, false);
    let out = ok(&["--stats", s(r.root()), s(g.root()), "--", "ALL"]);
    assert!(out.contains("files linked: 0"), "{out}");
    assert!(out.contains("skipped (on another filesystem): 9"), "{out}");
    assert_ne!(inode(&r.path("/usr/bin/a")), inode(&g.path("/usr/bin/a")));
}

#[test]
fn reflink_on_xfs_or_btrfs_and_refused_on_ext4() {
    need_root!();
    let mut area = Area::new("reflink");
    let mut tried = Vec::new();
    for (fstype, mkfs) in [
        ("xfs", &["mkfs.xfs", "-q", "-f", "-m", "reflink=1"][..]),
        ("btrfs", &["mkfs.btrfs", "-q", "-f"][..]),
    ] {
        let Some(mnt) = area.mount(fstype, fstype, Some(mkfs)) else {
            eprintln!("{fstype}: no mkfs or no kernel support, not tried");
            continue;
        };
        tried.push(fstype);
        let r = DpkgTree::new(mnt.join("ref"));
        let g = DpkgTree::new(mnt.join("g1"));
        install(&r, false);
        install(&g, true);
        let out = ok(&[
            "--method",
            "reflink",
            "--stats",
            s(r.root()),
            s(g.root()),
            "--",
            "ALL",
        ]);
        assert!(out.contains("files deduplicated: 6"), "{fstype}: {out}");
        assert!(
            out.contains("skipped (different content): 1"),
            "{fstype}: {out}"
        );
        assert!(out.contains("300038 bytes deduped"), "{fstype}: {out}");
        // No links, no flags; the guest's copy stays its own.
        assert_ne!(inode(&r.path("/usr/bin/a")), inode(&g.path("/usr/bin/a")));
        assert_eq!(flags(&g.path("/usr/lib/libx.so.1")) & IMMUTABLE, 0);
        fs::write(g.path("/usr/lib/libx.so.1"), "guest write\n").unwrap();
        assert_eq!(
            fs::read(r.path("/usr/lib/libx.so.1")).unwrap(),
            vec![7u8; 300_000]
        );
    }
    if tried.is_empty() {
        eprintln!("skipped reflink: neither xfs nor btrfs could be made here");
    }
    let mnt = area
        .mount("ext4", "ext4", Some(&["mkfs.ext4", "-q", "-F"]))
        .expect("an ext4 loop image");
    let r = DpkgTree::new(mnt.join("ref"));
    let g = DpkgTree::new(mnt.join("g1"));
    install(&r, false);
    install(&g, false);
    let out = vunify(&["--method", "reflink", s(r.root()), s(g.root()), "--", "ALL"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not share extents") && err.contains("--method link"),
        "{err}"
    );
}

/// A larger tree: `guests` guests with `files` files each in 20 packages.
fn big_tree(base: &Path, guests: usize, files: usize) -> (DpkgTree, Vec<DpkgTree>) {
    let r = DpkgTree::new(base.join("ref"));
    let gs: Vec<DpkgTree> = (0..guests)
        .map(|i| DpkgTree::new(base.join(format!("g{i}"))))
        .collect();
    for t in std::iter::once(&r).chain(gs.iter()) {
        t.merged_usr();
        for p in 0..20 {
            let mut b = t.package(&format!("pkg{p}"), "1.0", "amd64");
            for f in 0..files / 20 {
                let n = p * 1000 + f;
                let len = 100 + (n * 7919) % 4000;
                let content: Vec<u8> = (0..len).map(|i| ((i * 31 + n) % 251) as u8).collect();
                b = b.file(&format!("/usr/lib/p{p}/d{}/f{n}", f % 10), &content);
            }
            b.install();
        }
    }
    (r, gs)
}

/// guest path -> a hash of every regular file under a guest's /usr.
fn hashes(root: &Path) -> HashMap<PathBuf, u64> {
    let mut out = HashMap::new();
    let mut stack = vec![root.join("usr")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                fs::read(e.path()).unwrap().hash(&mut h);
                out.insert(e.path(), h.finish());
            }
        }
    }
    out
}

fn temp_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with(".vunify.") {
                found.push(e.path());
            }
        }
    }
    found
}

#[test]
fn kill_9_at_random_moments_never_loses_a_file() {
    need_root!();
    let mut area = Area::new("kill");
    // On an ext4 image without online discard: the root filesystem may have
    // it, and it stalls unlink-heavy runs for many seconds.
    let mnt = area
        .mount("ext4", "ext4", Some(&["mkfs.ext4", "-q", "-F"]))
        .expect("an ext4 loop image");
    let (r, gs) = big_tree(&mnt, 3, 2000);
    let before: Vec<_> = gs.iter().map(|g| hashes(g.root())).collect();
    let mut args: Vec<String> = vec![s(r.root()).into()];
    args.extend(gs.iter().map(|g| s(g.root()).to_string()));
    args.push("--".into());
    args.push("ALL".into());
    // A fixed-seed sequence of delays; each run is killed after one.
    let mut seed: u64 = 0x5eed;
    let mut undo = false;
    for round in 0..30 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // From before the first link to the end of a run of the debug build.
        let delay = Duration::from_millis(20 + seed % 900);
        let mut cmd = Command::new(common::vsbox_bin());
        cmd.arg("vunify");
        if undo {
            cmd.arg("--undo");
        }
        // Every 7th round undoes part of the work, so the runs keep having
        // something to do.
        if round % 7 == 6 {
            undo = !undo;
        }
        let mut child = cmd
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        let _ = child.wait();
        for (g, want) in gs.iter().zip(&before) {
            let now = hashes(g.root());
            for (path, hash) in want {
                assert_eq!(
                    now.get(path),
                    Some(hash),
                    "round {round}: {}",
                    path.display()
                );
            }
        }
    }
    let argv: Vec<&str> = std::iter::once("--stats")
        .chain(args.iter().map(String::as_str))
        .collect();
    let started = std::time::Instant::now();
    let out = ok(&argv);
    eprintln!("final run: {:?}", started.elapsed());
    assert!(out.contains("errors: 0"), "{out}");
    for (g, want) in gs.iter().zip(&before) {
        assert_eq!(&hashes(g.root()), want);
        assert!(
            temp_files(g.root()).is_empty(),
            "{:?}",
            temp_files(g.root())
        );
        for path in want.keys() {
            let rel = path.strip_prefix(g.root()).unwrap();
            assert_eq!(
                inode(path),
                inode(&r.root().join(rel)),
                "{}",
                path.display()
            );
        }
    }
    // Flags are on every shared inode, including those linked just before a
    // kill.
    for path in before[0].keys() {
        let rel = path.strip_prefix(gs[0].root()).unwrap();
        assert_ne!(
            flags(&r.root().join(rel)) & IMMUTABLE,
            0,
            "{}",
            rel.display()
        );
    }
}

/// The status line (src/progress.rs): on a terminal, one line rewritten in
/// place and ended by a newline; through a pipe nothing, so the output
/// stays exactly what it was; with --progress through a pipe, plain lines.
#[test]
fn progress_on_a_terminal_and_through_pipes() {
    need_root!();
    if !Tmux::available() {
        eprintln!("skipped: no tmux");
        return;
    }
    let area = Area::new("progress");
    let r = DpkgTree::new(area.path("ref"));
    let g = DpkgTree::new(area.path("g1"));
    install(&r, false);
    install(&g, false);
    let args = ["--test", "--noflags", s(r.root()), s(g.root()), "--", "ALL"];

    let piped = vunify(&args);
    assert!(piped.status.success());
    assert_eq!(
        String::from_utf8_lossy(&piped.stderr),
        "",
        "a pipe gets no progress"
    );

    let lines = vunify(&[&["--progress"][..], &args].concat());
    assert!(lines.status.success());
    assert_eq!(lines.stdout, piped.stdout, "progress never goes to stdout");
    let err = String::from_utf8(lines.stderr).unwrap();
    assert!(!err.contains(['\r', '\x1b']), "plain lines only: {err:?}");
    assert!(
        err.ends_with('\n') && err.lines().all(|l| l.starts_with("vunify: ")),
        "{err:?}"
    );
    assert!(err.contains("\nvunify: comparing: 0/"), "{err:?}");
    assert!(err.contains("\nvunify: done: "), "{err:?}");
    assert!(err.contains(" files, 9 linked ("), "{err:?}");

    let run = |extra: &str| {
        Tmux::run(
            "vunify",
            &format!(
                "VSBOX_CONFIG_ROOT=/nonexistent-vsbox-config {} vunify {extra} --noflags {} {} -- ALL >/dev/null",
                common::vsbox_bin().display(),
                s(r.root()),
                s(g.root())
            ),
        )
    };
    // Every phase drew over the one before: one line is left, ended by a
    // newline before the shell's next output.
    let screen = run("");
    let shown: Vec<&str> = screen.lines().filter(|l| l.contains("vunify")).collect();
    assert_eq!(shown.len(), 1, "one status line: {screen}");
    let line = shown[0].trim_end();
    assert!(line.starts_with("vunify: done: "), "{screen}");
    assert!(line.contains(" files, 9 linked ("), "{screen}");
    assert_eq!(line.matches("vunify").count(), 1, "{screen}");
    assert!(screen.contains(&format!("{line}\nexit 0")), "{screen}");
    assert_eq!(inode(&g.path("/usr/bin/a")), inode(&r.path("/usr/bin/a")));
    let screen = run("--no-progress");
    assert!(!screen.contains("vunify"), "--no-progress: {screen}");
}
