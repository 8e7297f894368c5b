//! GuestFs and the package database readers on guest trees built by the
//! test: guest symlinks resolve inside the guest (merged /usr, absolute
//! and `..` symlinks to /etc), a final symlink is never followed, reads are
//! size-limited, mounts are not crossed; hostile dpkg databases are refused.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use common::dpkg::DpkgTree;
use common::tempdir::TempDir;
use vsbox::unify::guestfs::GuestFs;
use vsbox::unify::pkgdb::{self, DbKind, DigestAlgo};

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}

#[test]
fn guest_symlinks_resolve_inside_the_guest() {
    let dir = TempDir::new("guestfs");
    let root = dir.path();
    let t = DpkgTree::new(root);
    t.merged_usr();
    dir.write("usr/bin/ls", "guest ls\n");
    dir.write("etc/passwd", "root:x:0:0:guest:/root:/bin/sh\n");
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    symlink("/etc", root.join("a/abs")).unwrap();
    symlink("../../../../../../etc", root.join("a/b/c/up")).unwrap();
    symlink("/etc/passwd", root.join("a/final")).unwrap();
    let g = GuestFs::open(root).unwrap();
    assert_eq!(g.path(), root);

    // Merged /usr: /bin/ls is usr/bin/ls.
    let st = g.stat_nofollow("/bin/ls").unwrap().unwrap();
    assert_eq!(st.st_ino, ino(&root.join("usr/bin/ls")));
    assert_eq!(g.read_limited("bin/ls", 100).unwrap(), b"guest ls\n");

    // Absolute and `..` symlinks stay in the guest.
    let guest_passwd = ino(&root.join("etc/passwd"));
    for p in ["/a/abs/passwd", "/a/b/c/up/passwd"] {
        assert_eq!(
            g.stat_nofollow(p).unwrap().unwrap().st_ino,
            guest_passwd,
            "{p}"
        );
        let data = g.read_limited(p, 4096).unwrap();
        assert!(data.ends_with(b"guest:/root:/bin/sh\n"), "{p}");
        let (parent, name) = g.resolve_parent(p).unwrap();
        assert_eq!(name, "passwd");
        let pst = rustix::fs::fstat(&parent).unwrap();
        assert_eq!(pst.st_ino, ino(&root.join("etc")), "{p}");
    }

    // A final symlink is not followed.
    let st = g.stat_nofollow("/a/final").unwrap().unwrap();
    assert_eq!(st.st_ino, ino(&root.join("a/final")));
    let e = g.open_file("/a/final").unwrap_err().to_string();
    assert!(e.contains("is a symbolic link"), "{e}");
    assert!(
        g.read_limited("/bin", 10)
            .unwrap_err()
            .to_string()
            .contains("symbolic link")
    );

    // Missing paths, directories, FIFOs, limits, bad paths.
    assert!(g.stat_nofollow("/nope/x").unwrap().is_none());
    assert!(g.stat_nofollow("/etc/passwd/x").unwrap().is_none());
    assert!(g.read_optional("/nope", 10).unwrap().is_none());
    assert!(g.stat_nofollow("/").unwrap().is_some());
    assert!(
        g.open_file("/etc")
            .unwrap_err()
            .to_string()
            .contains("is a directory")
    );
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo").as_path(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert!(
        g.read_limited("/fifo", 10)
            .unwrap_err()
            .to_string()
            .contains("FIFO")
    );
    let e = g.read_limited("/etc/passwd", 5).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{}/etc/passwd is larger than 5 bytes", root.display())
    );
    assert!(g.stat_nofollow("/etc/../etc/passwd").is_err());
    assert!(g.resolve_parent("/").is_err());
    assert!(
        g.open_dir("/a/abs").is_err(),
        "a final symlink to a directory is refused"
    );
    assert!(g.open_dir("/usr/bin").is_ok());
}

#[test]
fn mount_points_are_not_crossed() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("guestfs-xdev");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    rustix::mount::mount(
        "tmpfs",
        &mnt,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap();
    struct Umount<'a>(&'a Path);
    impl Drop for Umount<'_> {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }
    let _guard = Umount(&mnt);
    fs::write(mnt.join("x"), "x").unwrap();
    let g = GuestFs::open(dir.path()).unwrap();
    assert!(g.stat_nofollow("/mnt").unwrap().is_some());
    let e = g.stat_nofollow("/mnt/x").unwrap_err().to_string();
    assert!(e.contains("crosses a mount point"), "{e}");
}

#[test]
fn dpkg_database_is_read() {
    let dir = TempDir::new("pkgdb");
    let t = DpkgTree::new(dir.path());
    t.merged_usr();
    t.package("libfoo", "1.0-1", "amd64")
        .file("/usr/lib/libfoo.so.1", b"ELF")
        .conffile("/etc/foo.conf", b"x=1\n")
        .install();
    t.package("bar", "2:3", "all")
        .file("/bin/bar", b"#!/bin/sh\n")
        .install();
    let g = GuestFs::open(dir.path()).unwrap();
    assert_eq!(pkgdb::detect(&g), Some(DbKind::Dpkg));
    let (kind, pkgs) = pkgdb::read_packages(&g).unwrap();
    assert_eq!(kind, DbKind::Dpkg);
    let names: Vec<_> = pkgs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bar", "libfoo"]);
    let foo = &pkgs[1];
    assert_eq!(
        (foo.version.as_str(), foo.arch.as_str()),
        ("1.0-1", "amd64")
    );
    assert!(foo.files.contains(&"/usr/lib/libfoo.so.1".to_string()));
    assert!(foo.files.contains(&"/usr/lib".to_string()));
    assert!(foo.is_conffile("/etc/foo.conf"));
    assert!(!foo.is_conffile("/usr/lib/libfoo.so.1"));
    let d = foo.digest("/usr/lib/libfoo.so.1").unwrap();
    assert_eq!(d.algo, DigestAlgo::Md5);
    assert_eq!(d.to_hex(), common::dpkg::md5_hex(b"ELF"));
    // /bin/bar is listed as /bin/bar and lives in /usr/bin through the
    // guest's symlink.
    assert!(pkgs[0].files.contains(&"/bin/bar".to_string()));
    assert!(g.stat_nofollow("/bin/bar").unwrap().is_some());

    let one = pkgdb::package(&g, "libfoo").unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0], *foo);
    assert_eq!(pkgdb::package(&g, "libfoo:amd64").unwrap().len(), 1);
    assert!(pkgdb::package(&g, "libfoo:i386").unwrap().is_empty());
    assert!(pkgdb::package(&g, "nope").unwrap().is_empty());

    // Multi-arch: PKG:ARCH.list is preferred.
    let info = dir.path().join("var/lib/dpkg/info");
    fs::write(info.join("libfoo:amd64.list"), "/usr/lib/libfoo.so.1\n").unwrap();
    assert_eq!(
        pkgdb::package(&g, "libfoo").unwrap()[0].files,
        ["/usr/lib/libfoo.so.1"]
    );
}

#[test]
fn hostile_dpkg_databases_are_refused() {
    let dir = TempDir::new("pkgdb-bad");
    let t = DpkgTree::new(dir.path());
    t.package("evil", "1", "amd64")
        .file("/usr/bin/evil", b"x")
        .listed("/usr/../../../etc/shadow")
        .install();
    let g = GuestFs::open(dir.path()).unwrap();
    let e = pkgdb::read_packages(&g).unwrap_err().to_string();
    assert_eq!(
        e,
        "var/lib/dpkg/info/evil.list:5: '/usr/../../../etc/shadow' leaves the guest"
    );

    // A .list symlink is not followed (to the host's dpkg database or
    // anywhere else).
    let info = dir.path().join("var/lib/dpkg/info");
    fs::remove_file(info.join("evil.list")).unwrap();
    symlink("/var/lib/dpkg/info/dpkg.list", info.join("evil.list")).unwrap();
    let e = pkgdb::read_packages(&g).unwrap_err().to_string();
    assert!(e.contains("is a symbolic link"), "{e}");

    // Missing .list.
    fs::remove_file(info.join("evil.list")).unwrap();
    let e = pkgdb::read_packages(&g).unwrap_err().to_string();
    assert!(e.contains("evil.list is missing"), "{e}");

    // md5sums with a .. path.
    fs::write(info.join("evil.list"), "/usr/bin/evil\n").unwrap();
    fs::write(
        info.join("evil.md5sums"),
        "0123456789abcdef0123456789abcdef  ../etc/shadow\n",
    )
    .unwrap();
    let e = pkgdb::read_packages(&g).unwrap_err().to_string();
    assert!(e.starts_with("var/lib/dpkg/info/evil.md5sums:1: "), "{e}");

    // The whole var/lib/dpkg a symlink to the host's: not followed out.
    let dir2 = TempDir::new("pkgdb-link");
    fs::create_dir_all(dir2.path().join("var/lib")).unwrap();
    symlink("/var/lib/dpkg", dir2.path().join("var/lib/dpkg")).unwrap();
    let g2 = GuestFs::open(dir2.path()).unwrap();
    assert_eq!(pkgdb::detect(&g2), None);
    let e = pkgdb::read_packages(&g2).unwrap_err().to_string();
    assert!(e.contains("no package database"), "{e}");
}

#[test]
fn rpm_needs_the_rpm_binary() {
    if vsbox::unify::rpm::rpm_binary().is_some() {
        eprintln!("skipped: rpm is installed on the host");
        return;
    }
    let dir = TempDir::new("pkgdb-rpm");
    dir.write("var/lib/rpm/rpmdb.sqlite", "not really");
    let g = GuestFs::open(dir.path()).unwrap();
    assert_eq!(pkgdb::detect(&g), Some(DbKind::Rpm));
    let e = pkgdb::read_packages(&g).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "rpm is not installed on the host: cannot read the rpm database of {}",
            dir.path().display()
        )
    );
}
