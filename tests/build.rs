//! `vserver NAME build` as a library: every method but debootstrap (no
//! network in tests), the configuration it writes, the clone's links and
//! copies, hostile symlinks and device nodes in a clone source, and the
//! all-or-nothing rule. As root, on the real filesystem, in temporary
//! directories (a temporary configuration root whose vservers.conf points
//! VSERVERS_ROOT into the same temporary directory).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::tempdir::TempDir;
use common::vsbox_bin;
use vsbox::conf::{self, ConfigRoot};
use vsbox::vserver::build::{BuildOptions, Method, build};

macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A configuration root and a VSERVERS_ROOT, both in one temporary
/// directory.
struct Site {
    dir: TempDir,
    root: ConfigRoot,
    vroot: PathBuf,
}

impl Site {
    fn new(tag: &str) -> Site {
        let dir = TempDir::new(&format!("build-{tag}"));
        let vroot = dir.path().join("vservers");
        dir.write(
            "etc/vservers.conf",
            &format!("VSERVERS_ROOT={}\n", vroot.display()),
        );
        std::fs::create_dir_all(dir.path().join("etc/vservers")).unwrap();
        let root = ConfigRoot::new(dir.path().join("etc"));
        Site { dir, root, vroot }
    }

    fn guest(&self, name: &str) -> PathBuf {
        self.vroot.join(name)
    }

    /// Everything in VSERVERS_ROOT and the guests' configuration directory.
    fn listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in [self.vroot.clone(), self.root.guests_dir()] {
            if let Ok(entries) = std::fs::read_dir(&d) {
                for e in entries.flatten() {
                    out.push(e.path().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    fn vsbox(&self, args: &[&str]) -> std::process::Output {
        Command::new(vsbox_bin())
            .args(args)
            .env("VSBOX_CONFIG_ROOT", self.root.dir())
            .env_remove("PROFILE")
            .output()
            .unwrap()
    }
}

fn busybox_opts() -> BuildOptions {
    BuildOptions::new(Method::Busybox)
}

/// An fstab with no entry: systemd-remount-fs fails on a root entry whose
/// device the guest does not have (the seed's dummy /dev/hdv1 did that).
fn assert_only_comments(fstab: &Path) {
    let text = std::fs::read_to_string(fstab).unwrap();
    assert!(
        text.lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')),
        "{}: {text}",
        fstab.display()
    );
}

/// The guest's /etc/machine-id, checked: 32 lowercase hex digits and a
/// newline, mode 0444, a regular file.
fn machine_id(dir: &Path) -> String {
    let path = dir.join("etc/machine-id");
    let meta =
        std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o444);
    let text = std::fs::read_to_string(&path).unwrap();
    let id = text
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "{text:?}"
    );
    text
}

fn ino(p: &Path) -> u64 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .ino()
}

#[test]
fn busybox_guest_is_usable_and_its_config_parses() {
    need_root!();
    let site = Site::new("busybox");
    let mut opts = busybox_opts();
    opts.hostname = Some("bb1.example".into());
    opts.ip = Some("lo:127.0.0.2/8".into());
    opts.description = Some("The busybox test guest".into());
    let report = build(&site.root, "bb1", &opts).unwrap();
    let dir = site.guest("bb1");
    assert_eq!(report.path, dir);
    assert_eq!(
        report.config.as_deref(),
        Some(&*site.root.guest_file("bb1"))
    );
    assert!(report.symlinks > 100, "{report:?}");

    // VSERVERS_ROOT made at mode 000, the guest inside it.
    let mode = std::fs::metadata(&site.vroot).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0, "VSERVERS_ROOT mode");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let text = std::fs::read_to_string(site.root.guest_file("bb1")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("# Description: The busybox test guest"));
    assert_eq!(lines.next(), Some("source /etc/vservers.conf"));
    let config = conf::load(&site.root, "bb1", None).unwrap();
    assert_eq!(config.vserver_dir, dir);
    assert_eq!(config.hostname.as_deref(), Some("bb1.example"));
    assert_eq!(config.ip_root.to_string(), "lo:127.0.0.2/8");
    assert!(!config.onboot);
    assert_eq!(config.flags.to_string(), "lock");

    let out = site.vsbox(&["printconf", "bb1"]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("S_HOSTNAME=bb1.example\n"), "{printed}");
    assert!(printed.contains("S_FLAGS=lock\n"), "{printed}");
    assert!(
        printed.contains(&format!("VSERVERDIR={}\n", dir.display())),
        "{printed}"
    );

    let hosts = std::fs::read_to_string(dir.join("etc/hosts")).unwrap();
    assert!(hosts.contains("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("127.0.0.2\tbb1.example bb1\n"), "{hosts}");
    let null = std::fs::metadata(dir.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_only_comments(&dir.join("etc/fstab"));
    let rc = std::fs::metadata(dir.join("etc/init.d/rc")).unwrap();
    assert_eq!(rc.permissions().mode() & 0o777, 0o755);

    // The tree works as a guest root.
    let out = Command::new(vsbox_bin())
        .args(["chcontext", "--root"])
        .arg(&dir)
        .args([
            "--silent",
            "--",
            "/bin/sh",
            "-c",
            "cat /etc/hostname; ls /bin/ls",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bb1.example\n/bin/ls\n"
    );
}

#[test]
fn skeleton_has_the_standard_directories() {
    need_root!();
    let site = Site::new("skeleton");
    let report = build(&site.root, "sk", &BuildOptions::new(Method::Skeleton)).unwrap();
    let dir = report.path.clone();
    for (rel, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("var/log", 0o755),
        ("var/run", 0o755),
        ("var/spool/mail", 0o2775),
    ] {
        let m = std::fs::symlink_metadata(dir.join(rel)).unwrap();
        assert!(m.is_dir(), "{rel}");
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{rel}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/hostname")).unwrap(),
        "sk\n"
    );
    let hosts = std::fs::read_to_string(dir.join("etc/hosts")).unwrap();
    assert!(hosts.contains("127.0.1.1\tsk\n"), "{hosts}");
    assert_eq!(
        std::fs::metadata(dir.join("var/log/wtmp")).unwrap().len(),
        0
    );
    assert!(!dir.join("bin/sh").exists());
    assert!(report.specials >= 6, "{report:?}");
}

/// A busybox guest `src` made hostile: symlinks out of the guest, a
/// symlinked directory to a host directory, a device node, a setuid file,
/// sshd host keys, logs.
fn hostile_source(site: &Site) -> PathBuf {
    build(&site.root, "src", &busybox_opts()).unwrap();
    let src = site.guest("src");
    let w = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    };
    w("usr/lib/libx.so", "library");
    w("usr/bin/suid", "setuid program");
    std::fs::set_permissions(
        src.join("usr/bin/suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    w("etc/ssh/ssh_host_ed25519_key", "secret");
    w("etc/ssh/ssh_host_ed25519_key.pub", "public");
    w("etc/ssh/sshd_config", "Port 22\n");
    w("var/log/messages", "old log");
    w("var/lib/data", "guest data");
    w("tmp/junk", "junk");
    w("etc/one-name", "two names");
    std::fs::hard_link(src.join("etc/one-name"), src.join("etc/other-name")).unwrap();
    symlink(
        "../../../../../../../../etc/hostname",
        src.join("etc/evil-rel"),
    )
    .unwrap();
    symlink("/etc/passwd", src.join("usr/lib/evil-abs")).unwrap();
    symlink("/etc", src.join("usr/share")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("usr/lib/disk"),
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(7, 0),
    )
    .unwrap();
    src
}

/// The immutable flag on a file, cleared when the test ends (else the
/// temporary directory could not be removed). None where the filesystem
/// has no such flag.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        let ok = Command::new(vsbox_bin())
            .args(["setattr", "--immutable"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        ok.then(|| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new(vsbox_bin())
            .args(["setattr", "--no-immutable"])
            .arg(&self.0)
            .status();
    }
}

#[test]
fn clone_links_programs_copies_data_and_never_follows_symlinks() {
    need_root!();
    let site = Site::new("clone");
    let src = hostile_source(&site);
    let mut opts = BuildOptions::new("clone:src".parse().unwrap());
    opts.ip = Some("127.0.0.3".into());
    // An immutable file (vunify's flag) cannot take a new link: copied.
    std::fs::write(src.join("usr/lib/libimm.so"), "immutable").unwrap();
    let imm = Immutable::set(&src.join("usr/lib/libimm.so"));
    let report = build(&site.root, "dst", &opts).unwrap();
    let dst = report.path.clone();
    assert_eq!(dst, site.guest("dst"));
    if imm.is_some() {
        assert_ne!(
            ino(&src.join("usr/lib/libimm.so")),
            ino(&dst.join("usr/lib/libimm.so"))
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("cannot link /usr/lib/libimm.so")),
            "{:?}",
            report.warnings
        );
    }

    // Programs and libraries are shared inodes; setuid files and /etc,
    // /var are the new guest's own.
    assert_eq!(ino(&src.join("bin/busybox")), ino(&dst.join("bin/busybox")));
    assert_eq!(
        ino(&src.join("usr/lib/libx.so")),
        ino(&dst.join("usr/lib/libx.so"))
    );
    for rel in [
        "usr/bin/suid",
        "etc/passwd",
        "etc/ssh/sshd_config",
        "var/lib/data",
    ] {
        assert_ne!(ino(&src.join(rel)), ino(&dst.join(rel)), "{rel}");
        assert_eq!(
            std::fs::read(src.join(rel)).unwrap(),
            std::fs::read(dst.join(rel)).unwrap(),
            "{rel}"
        );
    }
    // A copied file with two names keeps them, as one inode of its own.
    assert_eq!(
        ino(&dst.join("etc/one-name")),
        ino(&dst.join("etc/other-name"))
    );
    assert_ne!(
        ino(&dst.join("etc/one-name")),
        ino(&src.join("etc/one-name"))
    );
    let suid = std::fs::metadata(dst.join("usr/bin/suid")).unwrap();
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755);
    assert!(report.files_linked >= 2, "{report:?}");
    assert!(report.files_copied >= 4, "{report:?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("shares the inodes")),
        "{:?}",
        report.warnings
    );

    // Symlinks are copied as symlinks, never followed.
    for (rel, target) in [
        ("etc/evil-rel", "../../../../../../../../etc/hostname"),
        ("usr/lib/evil-abs", "/etc/passwd"),
        ("usr/share", "/etc"),
    ] {
        let m = std::fs::symlink_metadata(dst.join(rel)).unwrap();
        assert!(m.file_type().is_symlink(), "{rel}");
        assert_eq!(
            std::fs::read_link(dst.join(rel)).unwrap(),
            Path::new(target)
        );
    }
    assert!(
        std::fs::symlink_metadata(dst.join("bin/sh"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // No device node but the fixed /dev list.
    assert!(std::fs::symlink_metadata(dst.join("usr/lib/disk")).is_err());
    assert!(
        report.warnings.iter().any(|w| w.contains("/usr/lib/disk")),
        "{:?}",
        report.warnings
    );
    assert!(
        std::fs::metadata(dst.join("dev/null"))
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // Excluded directories: structure only. /tmp afresh. sshd keys gone
    // from the clone only.
    assert!(dst.join("var/log").is_dir());
    assert!(!dst.join("var/log/messages").exists());
    assert_eq!(
        std::fs::metadata(dst.join("var/log/wtmp")).unwrap().len(),
        0
    );
    assert!(!dst.join("tmp/junk").exists());
    assert!(!dst.join("etc/ssh/ssh_host_ed25519_key").exists());
    assert!(!dst.join("etc/ssh/ssh_host_ed25519_key.pub").exists());
    assert!(src.join("etc/ssh/ssh_host_ed25519_key").exists());
    assert_eq!(report.ssh_keys_removed, 2);

    // The new guest has its own name; the source kept its own.
    assert_eq!(
        std::fs::read_to_string(dst.join("etc/hostname")).unwrap(),
        "dst\n"
    );
    assert_eq!(
        std::fs::read_to_string(src.join("etc/hostname")).unwrap(),
        "src\n"
    );
    let hosts = std::fs::read_to_string(dst.join("etc/hosts")).unwrap();
    assert!(hosts.contains("127.0.0.3\tdst\n"), "{hosts}");

    // And it runs.
    let out = Command::new(vsbox_bin())
        .args(["chcontext", "--root"])
        .arg(&dst)
        .args(["--silent", "--", "/bin/cat", "/etc/hostname"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "dst\n");
}

#[test]
fn excldir_option_keeps_structure_only() {
    need_root!();
    let site = Site::new("excl");
    let src = hostile_source(&site);
    std::fs::create_dir_all(src.join("srv/www/sub")).unwrap();
    std::fs::write(src.join("srv/www/index.html"), "x").unwrap();
    std::fs::write(src.join("srv/www/sub/a"), "x").unwrap();
    let mut opts = BuildOptions::new(Method::Clone("src".into()));
    opts.excluded = vec![PathBuf::from("/srv/www")];
    let report = build(&site.root, "ex", &opts).unwrap();
    assert!(report.path.join("srv/www/sub").is_dir());
    assert!(!report.path.join("srv/www/index.html").exists());
    assert!(!report.path.join("srv/www/sub/a").exists());
    // Not excluded any more: copied.
    assert!(report.path.join("var/log/messages").exists());
}

#[test]
fn existing_or_invalid_names_are_refused_leaving_nothing() {
    need_root!();
    let site = Site::new("refuse");
    build(&site.root, "a", &BuildOptions::new(Method::Skeleton)).unwrap();
    let before = site.listing();
    let conf_before = std::fs::read_to_string(site.root.guest_file("a")).unwrap();
    let dir_ino = ino(&site.guest("a"));

    let err = build(&site.root, "a", &busybox_opts()).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(site.listing(), before);
    assert_eq!(
        std::fs::read_to_string(site.root.guest_file("a")).unwrap(),
        conf_before
    );
    assert_eq!(ino(&site.guest("a")), dir_ino);

    // A directory without a configuration is not overwritten either.
    std::fs::create_dir(site.guest("b")).unwrap();
    std::fs::write(site.guest("b/keep"), "mine").unwrap();
    let before = site.listing();
    let err = build(&site.root, "b", &busybox_opts()).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(site.listing(), before);
    assert_eq!(
        std::fs::read_to_string(site.guest("b/keep")).unwrap(),
        "mine"
    );

    for bad in ["../x", "", "-a", "a b", "a/b"] {
        let err = build(&site.root, bad, &busybox_opts()).unwrap_err();
        assert_eq!(err.exit_status(), 2, "{bad}: {err}");
        assert_eq!(site.listing(), before, "{bad}");
    }
    let mut opts = busybox_opts();
    opts.hostname = Some("bad host".into());
    assert_eq!(build(&site.root, "c", &opts).unwrap_err().exit_status(), 2);
    let mut opts = busybox_opts();
    opts.ip = Some("not-an-ip".into());
    assert_eq!(build(&site.root, "c", &opts).unwrap_err().exit_status(), 2);
    assert_eq!(site.listing(), before);

    // A clone source that does not exist.
    let err = build(
        &site.root,
        "c",
        &BuildOptions::new("clone:nosuch".parse().unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot clone nosuch"), "{err}");
    assert_eq!(site.listing(), before);
}

#[test]
fn failures_half_way_leave_no_guest_and_no_config() {
    need_root!();
    let site = Site::new("fail");
    build(&site.root, "ok", &BuildOptions::new(Method::Skeleton)).unwrap();
    let before = site.listing();

    // The busybox binary is missing: fails after the config was written
    // and the build directory made.
    let mut opts = busybox_opts();
    opts.busybox = site.dir.path().join("no-busybox");
    let err = build(&site.root, "bb", &opts).unwrap_err();
    assert!(err.to_string().contains("no-busybox"), "{err}");
    assert_eq!(site.listing(), before);

    // install-post.sh fails: the last step, after the rename.
    let post = site
        .dir
        .write("etc/vservers/install-post.sh", "#!/bin/sh\nexit 1\n");
    std::fs::set_permissions(&post, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = site.listing();
    let err = build(&site.root, "bb", &busybox_opts()).unwrap_err();
    assert!(err.to_string().contains("install-post.sh"), "{err}");
    assert_eq!(site.listing(), before);
    std::fs::remove_file(&post).unwrap();

    // A clone source whose /etc is a symlink to the host's /etc: the walk
    // copies the symlink, and writing the clone's /etc/hostname then fails
    // (never through the symlink) after the whole tree was copied.
    build(&site.root, "weird", &BuildOptions::new(Method::Skeleton)).unwrap();
    let weird = site.guest("weird");
    std::fs::rename(weird.join("etc"), weird.join("etc.real")).unwrap();
    symlink("/etc", weird.join("etc")).unwrap();
    let host_hostname = std::fs::read("/etc/hostname").ok();
    let before = site.listing();
    let err = build(
        &site.root,
        "cl",
        &BuildOptions::new(Method::Clone("weird".into())),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/etc is not a directory"), "{err}");
    assert_eq!(site.listing(), before);
    assert_eq!(std::fs::read("/etc/hostname").ok(), host_hostname);

    // A source nested deeper than the walk goes: refused half-way.
    let mut deep = site.guest("ok").join("srv");
    for _ in 0..210 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let err = build(
        &site.root,
        "cl",
        &BuildOptions::new(Method::Clone("ok".into())),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
    assert_eq!(site.listing(), before);

    let mut opts = BuildOptions::new(Method::Clone("ok".into()));
    opts.excluded = vec![PathBuf::from("/var/log/../../etc")];
    assert_eq!(build(&site.root, "cl", &opts).unwrap_err().exit_status(), 2);
    assert_eq!(site.listing(), before);
}

#[test]
fn a_new_vservers_conf_and_vservers_root_are_removed_on_failure() {
    need_root!();
    let dir = TempDir::new("build-fresh");
    let root = ConfigRoot::new(dir.path().join("etc"));
    let vroot = dir.path().join("guests");
    let mut opts = busybox_opts();
    opts.vservers_root = Some(vroot.clone());
    opts.busybox = dir.path().join("no-busybox");
    assert!(build(&root, "g", &opts).is_err());
    assert!(!root.global_file().exists());
    assert!(!root.guest_file("g").exists());
    assert!(!vroot.exists());

    // And made when the build works.
    opts.busybox = PathBuf::from(common::guest::BUSYBOX);
    let report = build(&root, "g", &opts).unwrap();
    assert_eq!(report.path, vroot.join("g"));
    let global = std::fs::read_to_string(root.global_file()).unwrap();
    assert!(
        global.contains(&format!("VSERVERS_ROOT={}\n", vroot.display())),
        "{global}"
    );
    assert_eq!(
        std::fs::metadata(&vroot).unwrap().permissions().mode() & 0o7777,
        0
    );
}

#[test]
fn install_post_gets_the_guest_path() {
    need_root!();
    let site = Site::new("post");
    let out = site.dir.path().join("post.out");
    let post = site.dir.write(
        "etc/vservers/install-post.sh",
        &format!(
            "#!/bin/sh\necho \"$1\" > {}\n[ -f \"$1/etc/hostname\" ]\n",
            out.display()
        ),
    );
    std::fs::set_permissions(&post, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = build(&site.root, "p", &BuildOptions::new(Method::Skeleton)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{}\n", report.path.display())
    );
}

#[test]
fn existing_config_is_used_when_not_written() {
    need_root!();
    let site = Site::new("noconf");
    let mut opts = BuildOptions::new(Method::Skeleton);
    opts.write_config = false;
    // No configuration: refused.
    assert!(build(&site.root, "n", &opts).is_err());
    assert_eq!(site.listing(), Vec::<String>::new());
    site.dir.write(
        "etc/vservers/n.conf",
        "source /etc/vservers.conf\nS_HOSTNAME=fromconf\n",
    );
    let report = build(&site.root, "n", &opts).unwrap();
    assert_eq!(report.config, None);
    assert_eq!(
        std::fs::read_to_string(report.path.join("etc/hostname")).unwrap(),
        "fromconf\n"
    );
}

#[test]
fn debootstrap_missing_is_a_clear_error() {
    need_root!();
    let site = Site::new("deboot");
    if [
        "/usr/sbin/debootstrap",
        "/sbin/debootstrap",
        "/usr/bin/debootstrap",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
    {
        eprintln!("skipped: debootstrap is installed (tests never run it)");
        return;
    }
    let err = build(
        &site.root,
        "d",
        &BuildOptions::new("debootstrap".parse().unwrap()),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("debootstrap is not installed"),
        "{err}"
    );
    assert_eq!(site.listing(), Vec::<String>::new());
}

/// A directory under /var/tmp (on the host method's path), removed when
/// the test ends.
struct VarTmp(PathBuf);

impl Drop for VarTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn host_method_copies_the_system_with_dummies() {
    need_root!();
    let site = Site::new("host");
    // VSERVERS_ROOT inside the copied /var: the walk must skip it (and the
    // build directory in it).
    let vt = VarTmp(PathBuf::from(format!(
        "/var/tmp/vsbox-build-host-{}",
        std::process::id()
    )));
    let vroot = vt.0.join("vservers");
    std::fs::create_dir_all(&vt.0).unwrap();
    std::fs::write(vt.0.join("marker"), "x").unwrap();
    site.dir.write(
        "etc/vservers.conf",
        &format!("VSERVERS_ROOT={}\n", vroot.display()),
    );
    let mut opts = BuildOptions::new(Method::Host);
    // /usr alone may be gigabytes: the test copies /etc, /var and the
    // top-level symlinks (or directories) /bin, /sbin, /lib, /lib64.
    opts.host_dirs = Some(
        ["bin", "sbin", "lib", "lib64", "etc", "var"]
            .map(String::from)
            .to_vec(),
    );
    let start = std::time::Instant::now();
    let report = build(&site.root, "h", &opts).unwrap();
    eprintln!("host build: {:?}, {}", start.elapsed(), report.stats());
    let dir = report.path.clone();
    assert_eq!(dir, vroot.join("h"));
    let copied_vt = dir.join(vt.0.strip_prefix("/").unwrap());
    assert!(copied_vt.join("marker").is_file());
    assert!(!copied_vt.join("vservers").exists());
    assert!(report.skipped >= 1, "{report:?}");
    assert_only_comments(&dir.join("etc/fstab"));
    assert_ne!(
        machine_id(&dir),
        std::fs::read_to_string("/etc/machine-id").unwrap_or_default(),
        "the host's machine-id copied"
    );
    let mtab = std::fs::symlink_metadata(dir.join("etc/mtab")).unwrap();
    assert!(mtab.is_file());
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/hostname")).unwrap(),
        "h\n"
    );
    assert_eq!(
        std::fs::read(dir.join("etc/passwd")).unwrap(),
        std::fs::read("/etc/passwd").unwrap()
    );
    assert_ne!(ino(&dir.join("etc/passwd")), ino(Path::new("/etc/passwd")));
    for top in ["bin", "sbin", "lib"] {
        let host = std::fs::symlink_metadata(Path::new("/").join(top)).unwrap();
        let guest = std::fs::symlink_metadata(dir.join(top)).unwrap();
        assert_eq!(
            host.file_type().is_symlink(),
            guest.file_type().is_symlink(),
            "{top}"
        );
    }
    for empty in ["proc", "tmp", "root", "home", "run", "var/run"] {
        // /var/run may be the host's symlink to /run: the guest's own /run.
        if std::fs::symlink_metadata(dir.join(empty))
            .unwrap()
            .is_symlink()
        {
            continue;
        }
        let entries: Vec<_> = std::fs::read_dir(dir.join(empty)).unwrap().collect();
        assert!(entries.is_empty(), "{empty}");
    }
    // Logs: structure only (directories and symlinks), and an empty wtmp.
    for e in walk(&dir.join("var/log")) {
        let m = std::fs::symlink_metadata(&e).unwrap();
        assert!(
            m.is_dir() || m.is_symlink() || e.ends_with("var/log/wtmp"),
            "{} copied",
            e.display()
        );
    }
    assert_eq!(
        std::fs::metadata(dir.join("var/log/wtmp")).unwrap().len(),
        0
    );
    if Path::new("/etc/rc2.d/S01dbus").exists() {
        assert!(!dir.join("etc/rc2.d/S01dbus").exists());
        assert!(report.services_off >= 1);
    }
    // Services off: no start links left but the kept ones.
    for level in 0..=6 {
        if let Ok(entries) = std::fs::read_dir(dir.join(format!("etc/rc{level}.d"))) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                assert!(
                    !n.starts_with('S') || n.ends_with("syslog") || n.ends_with("cron"),
                    "{n}"
                );
            }
        }
    }
    // No host password hash.
    if let Ok(shadow) = std::fs::read_to_string(dir.join("etc/shadow")) {
        for line in shadow.lines() {
            let pw = line.split(':').nth(1).unwrap_or("");
            assert!(pw.starts_with('!') || pw.starts_with('*'), "{line}");
        }
        let host = std::fs::metadata("/etc/shadow").unwrap();
        let guest = std::fs::metadata(dir.join("etc/shadow")).unwrap();
        assert_eq!(host.mode(), guest.mode());
        assert_eq!((host.uid(), host.gid()), (guest.uid(), guest.gid()));
    }
    assert!(
        std::fs::read_dir(dir.join("etc/ssh")).map_or(true, |d| d
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("ssh_host_")))
    );
    assert!(
        report.files_copied > 10 && report.files_linked == 0,
        "{report:?}"
    );
}

/// Every path below `dir`, not following symlinks.
/// Sends `signal` to the build `child` and waits (bounded) until it ends.
fn signal_and_wait(
    child: &mut common::process::Started,
    signal: rustix::process::Signal,
    what: &str,
) -> std::process::ExitStatus {
    let pid = rustix::process::Pid::from_raw(child.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
    let mut status = None;
    common::process::wait_until(what, || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// The host method without restriction: /usr and all (gigabytes, a minute
/// or more). `cargo test --test build -- --ignored`.
#[test]
#[ignore]
fn host_method_whole_system() {
    need_root!();
    let site = Site::new("host-all");
    let start = std::time::Instant::now();
    let report = build(&site.root, "all", &BuildOptions::new(Method::Host)).unwrap();
    eprintln!("host build: {:?}\n{}", start.elapsed(), report.stats());
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let out = Command::new(vsbox_bin())
        .args(["chcontext", "--root"])
        .arg(&report.path)
        .args([
            "--silent",
            "--",
            "/bin/sh",
            "-c",
            "cat /etc/hostname; ls /usr/bin | wc -l",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn leftovers_of_a_killed_build_are_removed_by_the_next() {
    need_root!();
    let site = Site::new("stale");
    // A killed build leaves only hidden entries: no guest, no NAME.conf.
    std::fs::create_dir_all(site.vroot.join(".k.build-4194305/etc")).unwrap();
    site.dir
        .write("etc/vservers/.k.conf.build-4194305", "S_HOSTNAME=old\n");
    // Those of a live process (pid 1) are not touched.
    std::fs::create_dir_all(site.vroot.join(".k.build-1")).unwrap();
    assert!(conf::load(&site.root, "k", None).is_err());
    build(&site.root, "k", &BuildOptions::new(Method::Skeleton)).unwrap();
    let mut left = site.listing();
    left.retain(|p| p.contains(".k."));
    assert_eq!(left, [site.vroot.join(".k.build-1").display().to_string()]);
}

/// Processes a stand-in recorded in `dir` (one pid per file), killed by
/// pid when the test ends if they are still there.
struct Recorded(PathBuf);

impl Recorded {
    fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.0.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn alive(&self, name: &str) -> bool {
        self.pid(name)
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        for name in ["sleep", "script"] {
            if let Some(p) = self.pid(name).and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
}

#[test]
fn an_interrupted_debootstrap_build_leaves_nothing_behind() {
    need_root!();
    for (signal, tag) in [
        (rustix::process::Signal::INT, "int"),
        (rustix::process::Signal::TERM, "term"),
    ] {
        let site = Site::new(&format!("intr-{tag}"));
        // A stand-in for debootstrap (found first in PATH): it fills the
        // staging directory, then works "forever" with a child of its own.
        let bin = site.dir.path().join("bin");
        let marks = site.dir.path().join("marks");
        std::fs::create_dir_all(&marks).unwrap();
        let script = site.dir.write(
            "bin/debootstrap",
            "#!/bin/sh\n# debootstrap [OPTIONS] SUITE DIR MIRROR\n\
             for a in \"$@\"; do case $a in /*) [ -d \"$a\" ] && dir=$a;; esac; done\n\
             [ -n \"$dir\" ] || exit 1\n\
             mkdir -p \"$dir/usr/bin\"\n\
             head -c 1048576 /dev/zero > \"$dir/usr/bin/big\"\n\
             echo $$ > \"$MARKS/script\"\n\
             sleep 600 &\n\
             echo $! > \"$MARKS/sleep\"\n\
             wait\n",
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let recorded = Recorded(marks.clone());
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(vsbox_bin())
            .args(["vserver", "d", "build", "--method", "debootstrap"])
            .env("VSBOX_CONFIG_ROOT", site.root.dir())
            .env("PATH", path)
            .env("MARKS", &marks)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut child = common::process::Started(child);
        common::process::wait_until("the stand-in debootstrap", || {
            recorded.pid("sleep").is_some()
        });
        // The build's hidden staging directory and configuration exist...
        let hidden = |site: &Site| {
            site.listing()
                .into_iter()
                .filter(|p| p.contains("/.d."))
                .collect::<Vec<_>>()
        };
        assert_eq!(hidden(&site).len(), 2, "{:?}", site.listing());
        let status = signal_and_wait(&mut child, signal, "the interrupted build to end");
        // ...it ends by the signal (the shell's 130 or 143), after removing
        // them and ending debootstrap with its children.
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(signal.as_raw()),
            "{tag}: {:?}",
            status
        );
        assert_eq!(hidden(&site), Vec::<String>::new(), "{tag}");
        assert!(!site.guest("d").exists());
        common::process::wait_until("the stand-in and its child to end", || {
            !recorded.alive("script") && !recorded.alive("sleep")
        });
    }
}

#[test]
fn an_interrupted_clone_build_leaves_nothing_behind() {
    need_root!();
    let site = Site::new("intr-clone");
    build(&site.root, "src", &busybox_opts()).unwrap();
    // Enough directories that the copy is still walking when SIGINT comes.
    for i in 0..4000 {
        std::fs::create_dir_all(site.guest("src").join(format!("usr/share/d{i}/x"))).unwrap();
    }
    let child = Command::new(vsbox_bin())
        .args(["vserver", "dst", "build", "--method", "clone:src"])
        .env("VSBOX_CONFIG_ROOT", site.root.dir())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = common::process::Started(child);
    let hidden = |site: &Site| {
        site.listing()
            .into_iter()
            .filter(|p| p.contains("/.dst."))
            .collect::<Vec<_>>()
    };
    common::process::wait_until("the staging directory", || hidden(&site).len() == 2);
    let status = signal_and_wait(
        &mut child,
        rustix::process::Signal::INT,
        "the interrupted build to end",
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(rustix::process::Signal::INT.as_raw()),
        "{status:?}"
    );
    assert_eq!(hidden(&site), Vec::<String>::new());
    assert!(!site.guest("dst").exists());
    assert!(site.guest("src").join("usr/share/d3999/x").is_dir());

    // A SIGINT the caller ignores (a shell's background job) interrupts
    // nothing: the build completes.
    let child = Command::new("/bin/sh")
        .args([
            "-c",
            "trap '' INT; exec \"$0\" vserver dst build --method clone:src",
        ])
        .arg(vsbox_bin())
        .env("VSBOX_CONFIG_ROOT", site.root.dir())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = common::process::Started(child);
    common::process::wait_until("the staging directory", || hidden(&site).len() == 2);
    let status = signal_and_wait(&mut child, rustix::process::Signal::INT, "the build to end");
    assert!(status.success(), "{status:?}");
    assert!(site.guest("dst").join("usr/share/d3999/x").is_dir());
}

/// A stand-in debootstrap, found first in PATH (returned): it records its
/// arguments, one a line, in DIR/../marks/args, makes the tree's /etc with
/// the fstab, machine-id and mtab link debootstrap makes, and prints
/// progress lines.
fn fake_debootstrap(site: &Site) -> String {
    let marks = site.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let script = site.dir.write(
        "bin/debootstrap",
        &format!(
            "#!/bin/sh\n\
             for a in \"$@\"; do echo \"$a\"; done > {marks}/args\n\
             for a in \"$@\"; do case $a in /*) [ -d \"$a\" ] && dir=$a;; esac; done\n\
             [ -n \"$dir\" ] || exit 1\n\
             mkdir -p \"$dir/etc\"\n\
             echo '# UNCONFIGURED FSTAB FOR BASE SYSTEM' > \"$dir/etc/fstab\"\n\
             echo 0123456789abcdef0123456789abcdef > \"$dir/etc/machine-id\"\n\
             ln -s ../proc/self/mounts \"$dir/etc/mtab\"\n\
             echo 'I: Retrieving InRelease ' >&2\n\
             echo 'I: Retrieving libc6 2.36-9' >&2\n\
             echo 'W: Cannot check Release signature' >&2\n\
             echo 'I: Base system installed successfully.' >&2\n",
            marks = marks.display()
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        site.dir.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn recorded_args(site: &Site) -> Vec<String> {
    std::fs::read_to_string(site.dir.path().join("marks/args"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn debootstrap_gets_the_variant_packages_and_mirror() {
    need_root!();
    let site = Site::new("dbs-args");
    let path = fake_debootstrap(&site);
    let build = |name: &str, args: &[&str]| {
        Command::new(vsbox_bin())
            .args(["vserver", name, "build"])
            .args(args)
            .env("VSBOX_CONFIG_ROOT", site.root.dir())
            .env("PATH", &path)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = build(
        "d1",
        &[
            "-m",
            "debootstrap:bookworm:http://mirror.example/debian",
            "--variant",
            "minbase",
            "--include",
            "openssh-server,nginx-light",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let args = recorded_args(&site);
    assert_eq!(args.len(), 5, "{args:?}");
    assert_eq!(
        args[..3],
        [
            "--variant=minbase",
            "--include=openssh-server,nginx-light",
            "bookworm"
        ]
    );
    assert!(args[3].contains("/.d1.build-"), "{args:?}");
    assert_eq!(args[4], "http://mirror.example/debian");
    // debootstrap's own fstab and machine-id are the guest's.
    let dir = site.guest("d1");
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/fstab")).unwrap(),
        "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/machine-id")).unwrap(),
        "0123456789abcdef0123456789abcdef\n"
    );
    // And its /etc/mtab, a link to the kernel's list, which systemd expects.
    assert_eq!(
        std::fs::read_link(dir.join("etc/mtab")).unwrap(),
        std::path::Path::new("../proc/self/mounts")
    );

    // No variant: debootstrap's own default (with systemd), no --variant;
    // no mirror: the host's apt sources' Debian mirror, or deb.debian.org.
    let out = build("d2", &["--method", "debootstrap:bookworm"]);
    assert!(out.status.success(), "{out:?}");
    let args = recorded_args(&site);
    assert_eq!(args.len(), 3, "{args:?}");
    assert_eq!(args[0], "bookworm");
    assert!(
        args[2].starts_with("http") && args[2].trim_end_matches('/').ends_with("/debian"),
        "{args:?}"
    );

    // Refused before anything runs: a variant or package that could be
    // taken for an option, and the options with another method.
    std::fs::remove_file(site.dir.path().join("marks/args")).unwrap();
    for bad in [
        &["-m", "debootstrap", "--variant", "--foreign"][..],
        &["-m", "debootstrap", "--variant", "min base"],
        &["-m", "debootstrap", "--include", "a,--second-stage"],
        &["-m", "debootstrap", "--include", "a b"],
        &["-m", "debootstrap", "--include", "a,"],
        &["-m", "busybox", "--variant", "minbase"],
        &["-m", "skeleton", "--include", "nginx"],
    ] {
        let out = build("d3", bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        assert!(!site.guest("d3").exists(), "{bad:?}");
        assert!(!site.root.guest_file("d3").exists(), "{bad:?}");
    }
    assert_eq!(recorded_args(&site), Vec::<String>::new());
}

#[test]
fn debootstrap_progress_is_a_status_line_on_a_terminal() {
    use std::io::Read;
    need_root!();
    let site = Site::new("dbs-tty");
    let path = fake_debootstrap(&site);
    let pty = common::pty::Pty::new();
    let mut child = pty
        .attach(
            Command::new(vsbox_bin())
                .args(["vserver", "d", "build", "-m", "debootstrap:bookworm"])
                .env("VSBOX_CONFIG_ROOT", site.root.dir())
                .env("PATH", &path),
        )
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let mut shown = Vec::new();
    let _ = (&pty.master).read_to_end(&mut shown);
    let shown = String::from_utf8_lossy(&shown);
    assert!(status.success(), "{shown}");
    // The I: lines as the status line, rewritten in place...
    assert!(
        shown.contains("\rvserver d: debootstrap: Retrieving libc6 2.36-9\x1b[K"),
        "{shown:?}"
    );
    assert!(
        shown.contains("\rvserver d: done: Base system installed successfully.\x1b[K"),
        "{shown:?}"
    );
    assert!(!shown.contains("I: Retrieving"), "{shown:?}");
    // ...the others whole, on a line of their own.
    assert!(
        shown.contains("\r\x1b[KW: Cannot check Release signature\r\n"),
        "{shown:?}"
    );
}

const REF_MACHINE_ID: &str = "00112233445566778899aabbccddeeff\n";

/// A configured guest "ref" of `site`: a copy of the cached Debian tree
/// with sysvinit and openssh-server (its own sshd host keys), with a
/// machine-id; None when skipped (see common::distro::cached).
fn debian_reference(site: &Site) -> Option<PathBuf> {
    let cache = common::distro::cached(common::distro::Tree::Sysvinit)?;
    std::fs::create_dir_all(&site.vroot).unwrap();
    let reference = site.guest("ref");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&cache)
        .arg(&reference)
        .status()
        .unwrap();
    assert!(copied.success());
    let _ = std::fs::remove_file(reference.join(".debootstrap-done"));
    std::fs::write(reference.join("etc/machine-id"), REF_MACHINE_ID).unwrap();
    std::fs::set_permissions(&site.vroot, std::fs::Permissions::from_mode(0o000)).unwrap();
    site.dir
        .write("etc/vservers/ref.conf", "# Description: the reference\n");
    Some(reference)
}

/// The sshd host keys of a guest tree, by name, with their contents.
fn host_keys(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<_> = std::fs::read_dir(dir.join("etc/ssh"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ssh_host_"))
        .map(|n| {
            let data = std::fs::read(dir.join("etc/ssh").join(&n)).unwrap();
            (n, data)
        })
        .collect();
    keys.sort();
    keys
}

/// `copy`, made from `reference` (whose keys were `before`), has a new
/// machine-id and new keys of the same kinds, made by its ssh-keygen; the
/// reference is untouched and the context that made them is gone.
fn assert_new_identity(
    site: &Site,
    run: &TempDir,
    reference: &Path,
    before: &[(String, Vec<u8>)],
    copy: &Path,
) {
    assert_ne!(machine_id(copy), REF_MACHINE_ID);
    let after = host_keys(copy);
    let names = |k: &[(String, Vec<u8>)]| k.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(before));
    for ((name, old), (_, new)) in before.iter().zip(&after) {
        assert_ne!(old, new, "{name} kept");
        let path = copy.join("etc/ssh").join(name);
        assert_ne!(ino(&path), ino(&reference.join("etc/ssh").join(name)));
        let mode = std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode();
        if !name.ends_with(".pub") {
            assert_eq!(mode & 0o077, 0, "{name}");
        }
    }
    assert_eq!(host_keys(reference), before);
    assert_eq!(
        std::fs::read_to_string(reference.join("etc/machine-id")).unwrap(),
        REF_MACHINE_ID
    );
    let name = copy.file_name().unwrap().to_str().unwrap();
    let stat = Command::new(vsbox_bin())
        .args(["vserver", name, "status"])
        .env("VSBOX_CONFIG_ROOT", site.root.dir())
        .env("VSBOX_RUN_DIR", run.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&stat.stdout).contains("is not running"),
        "{stat:?}"
    );
}

#[test]
fn a_clone_of_a_debian_guest_gets_a_new_machine_id_and_new_ssh_host_keys() {
    need_root!();
    let site = Site::new("clone-identity");
    let Some(reference) = debian_reference(&site) else {
        return;
    };
    let run = TempDir::new("clone-identity-run");
    let before = host_keys(&reference);
    assert!(before.len() >= 2, "{before:?}");
    // Named apart from any other test's guest: the cgroup is per name.
    let name = format!("cl{}", std::process::id());
    let out = Command::new(vsbox_bin())
        .args(["vserver", &name, "build", "--method", "clone:ref"])
        .env("VSBOX_CONFIG_ROOT", site.root.dir())
        .env("VSBOX_RUN_DIR", run.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_new_identity(&site, &run, &reference, &before, &site.guest(&name));
}

#[test]
fn a_vbuild_clone_of_a_debian_guest_gets_a_new_machine_id_and_new_ssh_host_keys() {
    need_root!();
    let site = Site::new("vbuild-identity");
    let Some(reference) = debian_reference(&site) else {
        return;
    };
    let run = TempDir::new("vbuild-identity-run");
    let before = host_keys(&reference);
    let name = format!("vb{}", std::process::id());
    site.dir.write(
        &format!("etc/vservers/{name}.conf"),
        &format!("VSERVERDIR={}\n", site.guest(&name).display()),
    );
    let vbuild = |args: &[&str]| {
        Command::new(vsbox_bin())
            .arg("vbuild")
            .args(args)
            .env("VSBOX_CONFIG_ROOT", site.root.dir())
            .env("VSBOX_RUN_DIR", run.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = vbuild(&["--noflags", "ref", &name]);
    assert!(out.status.success(), "{out:?}");
    assert_new_identity(&site, &run, &reference, &before, &site.guest(&name));
    // A plain directory: a new id, no keys of the reference, a warning.
    let dir = site.dir.path().join("plain");
    let out = vbuild(&["--noflags", "ref", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_ne!(machine_id(&dir), REF_MACHINE_ID);
    assert_eq!(host_keys(&dir), Vec::new());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no sshd host keys"),
        "{out:?}"
    );
}

#[test]
fn every_built_guest_gets_a_machine_id_of_its_own() {
    need_root!();
    let site = Site::new("machine-id");
    let a = build(&site.root, "a", &busybox_opts()).unwrap();
    let b = build(&site.root, "b", &BuildOptions::new(Method::Skeleton)).unwrap();
    let (ida, idb) = (machine_id(&a.path), machine_id(&b.path));
    assert_ne!(ida, idb);
    assert_only_comments(&b.path.join("etc/fstab"));
    // A clone: a new id.
    let c = build(
        &site.root,
        "c",
        &BuildOptions::new(Method::Clone("a".into())),
    )
    .unwrap();
    assert_ne!(machine_id(&c.path), ida);
}
