//! setattr / showattr and the immutable flags against the real kernel, on a
//! loop-mounted ext4 image made for each test. Needs root (skips otherwise).
//!
//! The immutable-unlink semantics need the kernel/ patch: with
//! VSBOX_EXPECT_IUNLINK=1 (test-vm/run sets it for the patched kernel) they are
//! checked in full, as a thread that has dropped CAP_LINUX_IMMUTABLE, like a
//! guest's root; without it, setting the flag must fail with the clear
//! "lacks" message.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vsbox::attr::{AttrFile, InodeFlags, LACKS_IUNLINK};
use vsbox::sys::fsflags::{self, CAP_LINUX_IMMUTABLE};

const EPERM: i32 = 1;
const CONTENT: &[u8] = b"shared content\n";

/// A fresh ext4 filesystem in an image file, loop-mounted in a temp dir.
/// Dropping it unmounts, detaches the loop device and removes the dir, also
/// when the test failed.
struct Ext4 {
    dir: PathBuf,
    image: PathBuf,
    mnt: PathBuf,
    loop_dev: Option<String>,
}

impl Ext4 {
    fn new(tag: &str) -> Ext4 {
        let dir = std::env::temp_dir().join(format!("vsbox-fsflags-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("mnt")).expect("make the temp dir");
        let mut fs = Ext4 {
            image: dir.join("ext4.img"),
            mnt: dir.join("mnt"),
            dir,
            loop_dev: None,
        };
        File::create(&fs.image)
            .and_then(|f| f.set_len(32 << 20))
            .expect("make the image file");
        run_ok(
            Command::new(tool("mkfs.ext4"))
                .args(["-q", "-F", "-t", "ext4"])
                .arg(&fs.image),
        );
        fs.mount();
        fs
    }

    fn mount(&mut self) {
        run_ok(
            Command::new("mount")
                .args(["-t", "ext4", "-o", "loop"])
                .arg(&self.image)
                .arg(&self.mnt),
        );
        self.loop_dev = Some(mount_source(&self.mnt).expect("the new mount in mountinfo"));
    }

    fn unmount(&mut self) {
        let Some(dev) = self.loop_dev.take() else {
            return;
        };
        let ok = Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        // mount -o loop sets autoclear; detach by hand if it is still bound.
        let name = dev.trim_start_matches("/dev/");
        let backing = fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"));
        if backing.is_ok_and(|b| Path::new(b.trim()) == self.image) {
            let _ = Command::new("losetup").arg("-d").arg(&dev).status();
        }
        assert!(ok, "umount {} failed", self.mnt.display());
    }

    fn remount(&mut self) {
        self.unmount();
        self.mount();
    }

    /// Unmounts and checks the filesystem with e2fsck: nothing to repair.
    fn unmount_and_fsck(&mut self) {
        self.unmount();
        let out = run(Command::new(tool("e2fsck")).arg("-fn").arg(&self.image));
        assert!(
            out.status.success(),
            "e2fsck -fn found problems:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        if self.loop_dev.is_some() {
            let panicking = std::thread::panicking();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.unmount()));
            if result.is_err() && !panicking {
                eprintln!("cleanup: could not unmount {}", self.mnt.display());
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The source device of the mount at `mnt`, from /proc/self/mountinfo.
fn mount_source(mnt: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mnt.to_str()?;
    info.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        if fields.nth(4)? != want {
            return None;
        }
        let mut after = line.split(" - ").nth(1)?.split(' ');
        after.next()?;
        after.next().map(str::to_string)
    })
}

/// A system tool by name, also found in the sbin directories when PATH lacks
/// them.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a vsbox applet: (exit status, stdout, stderr).
fn vsbox<I, S>(applet: &str, args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(Command::new(common::vsbox_bin()).arg(applet).args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn setattr(args: &[&str], file: &Path) -> (i32, String, String) {
    let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
    all.push(file.into());
    vsbox("setattr", all)
}

fn setattr_ok(args: &[&str], file: &Path) {
    let (code, out, err) = setattr(args, file);
    assert_eq!(code, 0, "setattr {args:?} {}: {out}{err}", file.display());
}

/// The flag names showattr prints for one file.
fn showattr(file: &Path) -> Vec<String> {
    let (code, out, err) = vsbox("showattr", [file]);
    assert_eq!(code, 0, "showattr {}: {err}", file.display());
    let line = out.lines().next().expect("one line");
    let (names, path) = line.split_once(' ').expect("NAMES PATH");
    assert_eq!(Path::new(path), file);
    if names == "-" {
        return Vec::new();
    }
    names.split(',').map(str::to_string).collect()
}

fn has(names: &[String], flag: &str) -> bool {
    names.iter().any(|n| n == flag)
}

fn write_file(path: &Path, content: &[u8]) {
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn skip_unless_root(test: &str) -> bool {
    if common::is_root() {
        return false;
    }
    eprintln!("{test}: skipped: needs root");
    true
}

/// Every way to change an inode other than through its names. Each returns
/// the error, or Ok if the change went through.
fn content_and_attribute_changes(path: &Path) -> Vec<(&'static str, io::Result<()>)> {
    let meta = fs::symlink_metadata(path).expect("stat");
    vec![
        (
            "open for writing",
            OpenOptions::new().write(true).open(path).map(drop),
        ),
        (
            "open with O_TRUNC",
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map(drop),
        ),
        (
            "open with O_APPEND",
            OpenOptions::new().append(true).open(path).map(drop),
        ),
        (
            "chmod",
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)),
        ),
        (
            "chown",
            std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid())),
        ),
        (
            "utimes",
            rustix::fs::utimensat(
                rustix::fs::CWD,
                path,
                &rustix::fs::Timestamps {
                    last_access: rustix::fs::Timespec {
                        tv_sec: 1,
                        tv_nsec: 0,
                    },
                    last_modification: rustix::fs::Timespec {
                        tv_sec: 1,
                        tv_nsec: 0,
                    },
                },
                rustix::fs::AtFlags::empty(),
            )
            .map_err(io::Error::from),
        ),
        (
            "setxattr",
            rustix::fs::setxattr(path, "user.vsbox", b"x", rustix::fs::XattrFlags::empty())
                .map_err(io::Error::from),
        ),
    ]
}

fn assert_eperm(what: &str, path: &Path, result: io::Result<()>) {
    match result {
        Err(e) if e.raw_os_error() == Some(EPERM) => {}
        Err(e) => panic!("{what} {}: want EPERM, got {e}", path.display()),
        Ok(()) => panic!("{what} {}: want EPERM, but it succeeded", path.display()),
    }
}

fn assert_ok(what: &str, path: &Path, result: io::Result<()>) {
    if let Err(e) = result {
        panic!("{what} {}: {e}", path.display());
    }
}

fn assert_frozen(path: &Path) {
    for (what, result) in content_and_attribute_changes(path) {
        assert_eperm(what, path, result);
    }
    assert_eq!(fs::read(path).expect("read"), CONTENT, "{}", path.display());
}

/// Plain immutable: no change through any name, and no name may change.
fn assert_fully_immutable(fs: &Ext4, names: &[&str]) {
    for name in names {
        let path = fs.path(name);
        assert_frozen(&path);
        assert_eperm("unlink", &path, fs::remove_file(&path));
        assert_eperm("rename", &path, fs::rename(&path, fs.path("moved")));
        assert_eperm("link", &path, fs::hard_link(&path, fs.path("newlink")));
        write_file(&fs.path("over"), b"other\n");
        assert_eperm("rename over", &path, fs::rename(fs.path("over"), &path));
        fs::remove_file(fs.path("over")).unwrap();
    }
}

#[test]
fn setattr_showattr_round_trip() {
    if skip_unless_root("setattr_showattr_round_trip") {
        return;
    }
    let mut fs = Ext4::new("roundtrip");
    let (a, b) = (fs.path("a"), fs.path("b"));
    write_file(&a, CONTENT);
    write_file(&b, CONTENT);
    fs::create_dir(fs.path("dir")).unwrap();
    std::os::unix::fs::symlink("a", fs.path("link")).unwrap();

    assert_eq!(showattr(&a), ["extents"]);
    setattr_ok(&["--nodump", "--noatime"], &a);
    assert_eq!(showattr(&a), ["nodump", "noatime", "extents"]);
    // Clearing keeps the others; the three spellings of "clear" agree.
    setattr_ok(&["--!noatime"], &a);
    assert_eq!(showattr(&a), ["nodump", "extents"]);
    setattr_ok(&["--~nodump", "--append"], &a);
    assert_eq!(showattr(&a), ["append", "extents"]);
    setattr_ok(&["--no-append", "-v"], &a);
    assert_eq!(showattr(&a), ["extents"]);

    setattr_ok(&["--immutable", "--nodump"], &a);
    assert_eq!(showattr(&a), ["immutable", "nodump", "extents"]);
    // The library reads the same bits.
    let flags = AttrFile::open(&a).unwrap().flags().unwrap();
    assert!(flags.contains(InodeFlags::IMMUTABLE.union(InodeFlags::NODUMP)));
    // ext4 lets no other flag change while a file stays immutable.
    let (code, _, err) = setattr(&["--noatime"], &a);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("EPERM"), "{err}");

    // Several files, and a directory is changed itself.
    let dir = fs.path("dir");
    let (code, _, err) = vsbox(
        "setattr",
        [OsStr::new("--nodump"), b.as_os_str(), dir.as_os_str()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(has(&showattr(&b), "nodump"));
    assert!(has(&showattr(&dir), "nodump"));

    // lsattr letters and JSON.
    let (code, out, _) = vsbox("showattr", [OsStr::new("--letters"), a.as_os_str()]);
    assert_eq!(code, 0);
    let letters = out.split(' ').next().unwrap();
    assert_eq!(letters.replace('-', ""), "ide", "{out}");
    let (code, out, _) = vsbox("showattr", [OsStr::new("--json"), a.as_os_str()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("\"flags\": [\"immutable\", \"nodump\", \"extents\"]"),
        "{out}"
    );

    // A final symbolic link is not followed, by either applet.
    let link = fs.path("link");
    let (code, _, err) = vsbox("showattr", [&link]);
    assert_eq!(code, 1);
    assert!(err.contains("is a symbolic link"), "{err}");
    let (code, _, err) = setattr(&["--!immutable"], &link);
    assert_eq!(code, 1);
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(has(&showattr(&a), "immutable"), "the link's target changed");

    // One bad file does not stop the others; the status says something failed.
    let (code, _, err) = vsbox("showattr", [fs.path("missing").as_os_str(), b.as_os_str()]);
    assert_eq!(code, 1);
    assert!(err.contains("ENOENT"), "{err}");

    // Usage errors exit 2.
    for args in [
        &["--bogus"][..],
        &["--immutable", "--!immutable"],
        &["--extents"],
        &[],
    ] {
        let (code, _, err) = setattr(args, &b);
        assert_eq!(code, 2, "setattr {args:?}: {err}");
    }

    // The flags are on disk: they survive a remount, and e2fsck is happy.
    fs.remount();
    assert_eq!(showattr(&a), ["immutable", "nodump", "extents"]);
    setattr_ok(&["--!immutable"], &a);
    assert_eq!(showattr(&a), ["nodump", "extents"]);
    fs.unmount_and_fsck();
}

#[test]
fn immutable_refuses_every_change_even_to_root() {
    if skip_unless_root("immutable_refuses_every_change_even_to_root") {
        return;
    }
    let mut fs = Ext4::new("immutable");
    write_file(&fs.path("a"), CONTENT);
    fs::hard_link(fs.path("a"), fs.path("b")).unwrap();
    let mut early = OpenOptions::new().write(true).open(fs.path("a")).unwrap();
    setattr_ok(&["--immutable"], &fs.path("a"));

    assert_fully_immutable(&fs, &["a", "b"]);
    // A descriptor opened for writing before the flag was set is no way
    // around it either.
    assert_eperm(
        "write through an early descriptor",
        &fs.path("a"),
        early.write_all(b"x"),
    );
    assert_eperm(
        "ftruncate through an early descriptor",
        &fs.path("a"),
        early.set_len(0),
    );
    drop(early);

    // A directory: no entry may be added, removed or renamed.
    fs::create_dir(fs.path("dir")).unwrap();
    write_file(&fs.path("dir/inside"), CONTENT);
    setattr_ok(&["--immutable"], &fs.path("dir"));
    assert_eperm(
        "create in",
        &fs.path("dir"),
        File::create(fs.path("dir/new")).map(drop),
    );
    assert_eperm(
        "unlink in",
        &fs.path("dir"),
        fs::remove_file(fs.path("dir/inside")),
    );
    assert_eperm(
        "rename",
        &fs.path("dir"),
        fs::rename(fs.path("dir"), fs.path("dir2")),
    );

    // Without the flag every one of those changes works: the refusals above
    // were the flag's doing.
    setattr_ok(&["--!immutable"], &fs.path("a"));
    setattr_ok(&["--!immutable"], &fs.path("dir"));
    for (what, result) in content_and_attribute_changes(&fs.path("b")) {
        assert_ok(what, &fs.path("b"), result);
    }
    assert_ok(
        "link",
        &fs.path("a"),
        fs::hard_link(fs.path("a"), fs.path("c")),
    );
    assert_ok(
        "rename",
        &fs.path("c"),
        fs::rename(fs.path("c"), fs.path("d")),
    );
    assert_ok("unlink", &fs.path("d"), fs::remove_file(fs.path("d")));
    fs.unmount_and_fsck();
}

fn expect_iunlink() -> bool {
    std::env::var_os("VSBOX_EXPECT_IUNLINK").is_some_and(|v| v == "1")
}

#[test]
fn iunlink_flag() {
    if skip_unless_root("iunlink_flag") {
        return;
    }
    if expect_iunlink() {
        iunlink_semantics();
    } else {
        iunlink_missing_is_reported();
    }
}

/// An unpatched kernel: setattr says what is missing, changes nothing, and
/// the library's probe says no.
fn iunlink_missing_is_reported() {
    let mut fs = Ext4::new("iunlink-missing");
    let a = fs.path("a");
    write_file(&a, CONTENT);
    for args in [&["--iunlink"][..], &["--immutable", "--iunlink"]] {
        let (code, out, err) = setattr(args, &a);
        assert_eq!(
            code, 1,
            "setattr {args:?} on a kernel without the flag: {out}{err}"
        );
        assert!(err.contains(LACKS_IUNLINK), "setattr {args:?}: {err}");
        assert!(err.contains("lacks the immutable-unlink flag"), "{err}");
        // All or nothing: immutable was not set on its own.
        assert_eq!(showattr(&a), ["extents"]);
    }
    let file = AttrFile::open(&a).unwrap();
    assert!(!file.iunlink_supported().unwrap());
    assert_eq!(file.flags().unwrap().bits() & fsflags::FS_IXUNLINK_FL, 0);
    drop(file);
    fs.unmount_and_fsck();
}

/// The patched kernel: the full semantics, as a guest's root would see them.
fn iunlink_semantics() {
    let mut fs = Ext4::new("iunlink");
    // One shared inode with five names, as unification leaves it.
    write_file(&fs.path("a"), CONTENT);
    for name in ["b", "c", "d", "e"] {
        fs::hard_link(fs.path("a"), fs.path(name)).unwrap();
    }
    // A plain immutable file for contrast, and an iunlink directory.
    write_file(&fs.path("plain"), CONTENT);
    fs::hard_link(fs.path("plain"), fs.path("plain2")).unwrap();
    fs::create_dir(fs.path("dir")).unwrap();
    write_file(&fs.path("dir/inside"), CONTENT);
    write_file(&fs.path("victim"), b"victim\n");
    write_file(&fs.path("other"), b"other\n");
    write_file(&fs.path("fresh"), b"fresh\n");
    let early = OpenOptions::new().write(true).open(fs.path("a")).unwrap();

    assert!(
        AttrFile::open(&fs.path("fresh"))
            .unwrap()
            .iunlink_supported()
            .unwrap()
    );
    setattr_ok(&["--immutable", "--iunlink"], &fs.path("a"));
    setattr_ok(&["--immutable"], &fs.path("plain"));
    setattr_ok(&["--immutable", "--iunlink"], &fs.path("dir"));
    for name in ["a", "b", "c", "d", "e"] {
        let names = showattr(&fs.path(name));
        assert!(
            has(&names, "immutable") && has(&names, "iunlink"),
            "{name}: {names:?}"
        );
    }
    // The flag may be added to a file that is already immutable, in one step.
    setattr_ok(&["--immutable"], &fs.path("fresh"));
    setattr_ok(&["--iunlink"], &fs.path("fresh"));
    setattr_ok(&["--!iunlink", "--!immutable"], &fs.path("fresh"));

    let guest = {
        let fs = &fs;
        std::thread::scope(|s| {
            s.spawn(move || {
                fsflags::drop_linux_immutable().expect("drop CAP_LINUX_IMMUTABLE");
                assert!(!fsflags::has_effective_capability(CAP_LINUX_IMMUTABLE).unwrap());
                as_guest(fs, early);
            })
            .join()
        })
    };
    if let Err(panic) = guest {
        std::panic::resume_unwind(panic);
    }

    // Back with the capability: the flags are on disk, survive a remount and
    // can be cleared by the host.
    fs.remount();
    for name in ["a", "f", "d2", "victim"] {
        let names = showattr(&fs.path(name));
        assert!(
            has(&names, "immutable") && has(&names, "iunlink"),
            "{name}: {names:?}"
        );
        assert_eq!(fs::read(fs.path(name)).unwrap(), CONTENT);
    }
    assert_eq!(fs::metadata(fs.path("a")).unwrap().nlink(), 4);
    setattr_ok(&["--!immutable", "--!iunlink"], &fs.path("a"));
    assert_eq!(showattr(&fs.path("a")), ["extents"]);
    fs.unmount_and_fsck();
}

/// Runs in a thread without CAP_LINUX_IMMUTABLE (programs it starts lack it
/// too, even as root).
fn as_guest(fs: &Ext4, mut early: File) {
    // Content, mode, owner, times and xattrs are frozen through every link.
    for name in ["a", "b", "c", "d", "e"] {
        assert_frozen(&fs.path(name));
    }
    assert_eperm(
        "write through an early descriptor",
        &fs.path("a"),
        early.write_all(b"x"),
    );
    assert_eperm(
        "ftruncate through an early descriptor",
        &fs.path("a"),
        early.set_len(0),
    );
    drop(early);

    // The flags themselves: changing either needs the capability.
    for args in [
        &["--!iunlink"][..],
        &["--!immutable"],
        &["--!immutable", "--!iunlink"],
    ] {
        let (code, _, err) = setattr(args, &fs.path("b"));
        assert_eq!(
            code, 1,
            "setattr {args:?} without CAP_LINUX_IMMUTABLE: {err}"
        );
        assert!(err.contains("EPERM"), "{err}");
    }
    let (code, _, err) = setattr(&["--iunlink"], &fs.path("fresh"));
    assert_eq!(
        code, 1,
        "setting iunlink without CAP_LINUX_IMMUTABLE: {err}"
    );
    assert!(err.contains("EPERM"), "{err}");

    // The names are free: link, unlink, rename, rename over, and be renamed
    // over (a package upgrade).
    let (a, b, c, d, e) = (
        fs.path("a"),
        fs.path("b"),
        fs.path("c"),
        fs.path("d"),
        fs.path("e"),
    );
    assert_ok("link", &b, fs::hard_link(&b, fs.path("f")));
    assert_ok("unlink", &c, fs::remove_file(&c));
    assert_ok("rename", &d, fs::rename(&d, fs.path("d2")));
    assert_ok(
        "rename over another file",
        &b,
        fs::rename(&b, fs.path("victim")),
    );
    assert_ok(
        "rename another file over it",
        &e,
        fs::rename(fs.path("other"), &e),
    );
    assert_eq!(fs::read(&e).unwrap(), b"other\n");
    for name in ["a", "f", "d2", "victim"] {
        assert_frozen(&fs.path(name));
    }
    let mut text = Vec::new();
    File::open(&a).unwrap().read_to_end(&mut text).unwrap();
    assert_eq!(text, CONTENT);

    // Plain immutable refuses all of it.
    assert_fully_immutable(fs, &["plain", "plain2"]);

    // A directory keeps plain immutable behaviour.
    let dir = fs.path("dir");
    assert_eperm(
        "create in",
        &dir,
        File::create(fs.path("dir/new")).map(drop),
    );
    assert_eperm("unlink in", &dir, fs::remove_file(fs.path("dir/inside")));
    assert_eperm("rename", &dir, fs::rename(&dir, fs.path("dir2")));
}
