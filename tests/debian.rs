//! vunify, vbuild, vcheck and distrib-info on real Debian guests: the
//! debootstrap minbase guests bench/debian-guests builds once and caches
//! under .cache/guests/CODENAME/ (ref, indep, copy1, copy2). Root and host
//! only: the test VM has no network and no cache, and says "skipped"; on the
//! host a missing cache fails the test (test.sh builds it first with
//! `bench/debian-guests --build`).
//!
//! Each test works on fresh `cp -a` copies (hard links kept) on a tmpfs it
//! mounts (no online discard, which stalls unlink-heavy runs on the root
//! file system here; the immutable flag works there), unmounted by a Drop
//! guard even on failure. Every regular file is recorded before and after
//! (mode, owner, mtime, size, inode, content MD5 with the host's md5sum: the
//! debug build's own MD5 is slow).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use common::tempdir::TempDir;

const IMMUTABLE: u32 = 0x10;

/// The pristine guests' directory, or None after printing why the test is
/// skipped. Panics when they should be there but are not.
fn cached_guests() -> Option<PathBuf> {
    if std::env::var("VSBOX_TEST_VM").is_ok_and(|v| v == "1") {
        eprintln!("skipped: no Debian guests in the test VM");
        return None;
    }
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let codename = std::env::var("GUESTS_CODENAME")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            fs::read_to_string("/etc/os-release").ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
                    .map(|c| c.trim_matches('"').to_string())
            })
        })
        .expect("no VERSION_CODENAME in /etc/os-release: which Debian release?");
    let dir = std::env::var_os("GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/guests"))
        .join(codename);
    assert!(
        dir.join(".complete").exists(),
        "no cached Debian guests in {}: run `bench/debian-guests` (as root; \
         debootstrap, needs the network) to build them (test.sh does)",
        dir.display()
    );
    Some(dir)
}

macro_rules! need_guests {
    () => {
        match cached_guests() {
            Some(dir) => dir,
            None => return,
        }
    };
}

/// A tmpfs mounted for one test, with fresh copies of the cached guests.
struct Work {
    /// Removed (with the mount point) after Drop unmounts.
    _dir: TempDir,
    mnt: PathBuf,
}

impl Work {
    fn new(tag: &str) -> Self {
        let dir = TempDir::new(&format!("debian-{tag}"));
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2g,mode=755", "vsbox-debian"])
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount a tmpfs on {}", mnt.display());
        Work { _dir: dir, mnt }
    }

    /// A fresh copy of cached guest `name` (cp -a: hard links, modes,
    /// owners, mtimes kept).
    fn copy(&self, cache: &Path, name: &str) -> PathBuf {
        let dst = self.mnt.join(name);
        let ok = Command::new("cp")
            .arg("-a")
            .arg(cache.join(name))
            .arg(&dst)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cp -a {} failed", cache.join(name).display());
        let _ = fs::remove_file(dst.join(".debootstrap-done"));
        dst
    }

    /// Bytes in use on the tmpfs.
    fn used(&self) -> u64 {
        let st = rustix::fs::statfs(&self.mnt).unwrap();
        (st.f_blocks - st.f_bfree) * st.f_bsize as u64
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        // Unmounting drops the files, immutable or not.
        if !Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success())
        {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        // Then _dir removes the mount point.
    }
}

/// One regular file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct File {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    size: u64,
    ino: u64,
    nlink: u64,
    md5: String,
}

impl File {
    /// What no tool may change: everything but the inode and link count.
    fn same_data(&self, o: &File) -> bool {
        (
            self.mode, self.uid, self.gid, self.mtime, self.size, &self.md5,
        ) == (o.mode, o.uid, o.gid, o.mtime, o.size, &o.md5)
    }
}

/// Every regular file of a guest, by path relative to its root.
type Snap = BTreeMap<String, File>;

fn snapshot(root: &Path) -> Snap {
    let mut snap = Snap::new();
    let mut dirs = vec![String::new()];
    while let Some(rel) = dirs.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().expect("a non-UTF-8 name");
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let m = e.metadata().unwrap(); // lstat
            if m.is_dir() {
                dirs.push(path);
            } else if m.is_file() {
                let f = File {
                    mode: m.mode(),
                    uid: m.uid(),
                    gid: m.gid(),
                    mtime: (m.mtime(), m.mtime_nsec()),
                    size: m.size(),
                    ino: m.ino(),
                    nlink: m.nlink(),
                    md5: String::new(),
                };
                snap.insert(path, f);
            }
        }
    }
    // Contents: the host's md5sum (-z: NUL-terminated, names unescaped).
    let mut child = Command::new("xargs")
        .args(["-0", "-r", "md5sum", "-z", "--"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut list = Vec::new();
    for p in snap.keys() {
        list.extend_from_slice(p.as_bytes());
        list.push(0);
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&list).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "md5sum in {} failed", root.display());
    for rec in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rec = std::str::from_utf8(rec).unwrap();
        let (md5, path) = (&rec[..32], &rec[34..]);
        snap.get_mut(path).unwrap().md5 = md5.to_string();
    }
    if let Some((p, _)) = snap.iter().find(|(_, f)| f.md5.is_empty()) {
        panic!("no MD5 for {}/{p}", root.display());
    }
    snap
}

/// Paths of `before` whose data or metadata differ in `after`, or are gone;
/// and paths new in `after`.
fn changes(before: &Snap, after: &Snap) -> Vec<String> {
    let mut out = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            None => out.push(format!("{p}: gone")),
            Some(a) if !b.same_data(a) => out.push(format!("{p}: {b:?} -> {a:?}")),
            _ => {}
        }
    }
    out.extend(
        after
            .keys()
            .filter(|p| !before.contains_key(*p))
            .map(|p| format!("{p}: new")),
    );
    out
}

fn assert_unchanged(what: &str, before: &Snap, after: &Snap) {
    let c = changes(before, after);
    assert!(
        c.is_empty(),
        "{what}: {} files changed, e.g.\n{}",
        c.len(),
        c[..c.len().min(10)].join("\n")
    );
}

/// The inode numbers of a snapshot (one file system: the tmpfs).
fn inodes(s: &Snap) -> HashSet<u64> {
    s.values().map(|f| f.ino).collect()
}

/// Groups of paths that are one inode inside a guest.
fn link_groups(s: &Snap) -> Vec<Vec<String>> {
    let mut by_ino: HashMap<u64, Vec<String>> = HashMap::new();
    for (p, f) in s.iter().filter(|(_, f)| f.nlink > 1) {
        by_ino.entry(f.ino).or_default().push(p.clone());
    }
    let mut groups: Vec<Vec<String>> = by_ino.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    groups
}

/// Each group of `groups` (hard links of a guest before) is still one inode
/// in `after`.
fn assert_links_kept(what: &str, groups: &[Vec<String>], after: &Snap) {
    for g in groups {
        let inos: HashSet<u64> = g.iter().map(|p| after[p].ino).collect();
        assert_eq!(inos.len(), 1, "{what}: the hard links {g:?} were split");
    }
}

fn vsbox(applet: &str, args: &[&Path], extra: &[&str]) -> Output {
    let start = Instant::now();
    let out = Command::new(common::vsbox_bin())
        .arg(applet)
        .args(args)
        .args(extra)
        .env("VSBOX_CONFIG_ROOT", "/nonexistent-vsbox-config")
        .output()
        .unwrap();
    eprintln!(
        "{applet} {args:?} {extra:?}: {} in {:.2} s\n{}{}",
        out.status,
        start.elapsed().as_secs_f64(),
        tail(&String::from_utf8_lossy(&out.stdout)),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let skip = lines.len().saturating_sub(20);
    lines[skip..].iter().map(|l| format!("{l}\n")).collect()
}

fn stdout_ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stdout)),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// vcheck --verify REF GUEST, one process per guest (the debug build hashes
/// slowly: the guests are checked in parallel), started in the background.
struct Verify(Vec<(String, Child, Instant)>);

fn start_verify(reference: &Path, guests: &[&Path]) -> Verify {
    Verify(
        guests
            .iter()
            .map(|g| {
                let child = Command::new(common::vsbox_bin())
                    .args(["vcheck", "--verify"])
                    .arg(reference)
                    .arg(g)
                    .env("VSBOX_CONFIG_ROOT", "/nonexistent-vsbox-config")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (g.display().to_string(), child, Instant::now())
            })
            .collect(),
    )
}

impl Verify {
    /// Each vcheck found nothing.
    fn assert_clean(mut self, when: &str) {
        for (guest, child, start) in std::mem::take(&mut self.0) {
            let out = child.wait_with_output().unwrap();
            let found = String::from_utf8_lossy(&out.stdout);
            eprintln!(
                "vcheck --verify {guest} {when}: {} in {:.1} s",
                out.status,
                start.elapsed().as_secs_f64()
            );
            assert!(
                out.status.success() && found.is_empty(),
                "vcheck --verify {guest} {when} ({}): {}{}",
                out.status,
                tail(&found),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for Verify {
    /// On a failure before assert_clean: no vcheck left running in the tmpfs.
    fn drop(&mut self) {
        for (_, child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A number from a --stats line: "files linked: 9340, ..." -> 9340.
fn stat(report: &str, label: &str) -> u64 {
    let line = report
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no '{label}' in the report:\n{report}"));
    line.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Files under /etc or /var/log, and /etc/shadow.
fn never_shared(path: &str) -> bool {
    path.starts_with("etc/") || path.starts_with("var/log/")
}

fn immutable(path: &Path) -> bool {
    let f = fs::File::open(path).unwrap();
    rustix::fs::ioctl_getflags(&f).unwrap().bits() & IMMUTABLE != 0
}

#[test]
fn vunify_ref_copy_indep() {
    let cache = need_guests!();
    let start = Instant::now();
    let work = Work::new("vunify");
    let names = ["ref", "copy1", "indep"];
    let roots: Vec<PathBuf> = names.iter().map(|n| work.copy(&cache, n)).collect();
    let (reference, guests) = (&roots[0], [&*roots[1], &*roots[2]]);
    let verify = start_verify(reference, &guests);
    let before: Vec<Snap> = roots.iter().map(|r| snapshot(r)).collect();
    let groups: Vec<Vec<Vec<String>>> = before.iter().map(link_groups).collect();
    eprintln!(
        "guests copied and recorded in {:.1} s: {} / {} / {} regular files; \
         hard links in ref: {:?}",
        start.elapsed().as_secs_f64(),
        before[0].len(),
        before[1].len(),
        before[2].len(),
        groups[0]
    );
    assert!(
        before[0].len() > 4000,
        "ref has only {} files",
        before[0].len()
    );
    assert!(!groups[0].is_empty(), "no hard links in ref (perl?)");
    verify.assert_clean("of the fresh copies");

    let used = work.used();
    let out = vsbox(
        "vunify",
        &[reference, guests[0], guests[1]],
        &["--stats", "--", "ALL"],
    );
    let report = stdout_ok("vunify", &out);
    let saved = used - work.used();
    let after: Vec<Snap> = roots.iter().map(|r| snapshot(r)).collect();

    // Nothing changed but the inodes; in-guest hard links kept.
    for (i, name) in names.iter().enumerate() {
        assert_unchanged(&format!("vunify, {name}"), &before[i], &after[i]);
        assert_links_kept(&format!("vunify, {name}"), &groups[i], &after[i]);
    }
    let ref_inodes = inodes(&before[0]);
    assert_eq!(
        ref_inodes,
        inodes(&after[0]),
        "the reference's inodes changed"
    );
    // Shared per guest: about the issue's 4,668 files and 123.4 MB.
    let mut shared = Vec::new();
    for (i, name) in names.iter().enumerate().skip(1) {
        let files: Vec<&String> = after[i]
            .iter()
            .filter(|(_, f)| ref_inodes.contains(&f.ino))
            .map(|(p, _)| p)
            .collect();
        let bad: Vec<&&String> = files.iter().filter(|p| never_shared(p)).collect();
        assert!(bad.is_empty(), "{name}: shared with ref: {bad:?}");
        assert!(!ref_inodes.contains(&after[i]["etc/shadow"].ino));
        shared.push(files.len() as u64);
    }
    let linked = stat(&report, "files linked:");
    let stats_bytes: u64 = report
        .lines()
        .find_map(|l| l.split(", ").nth(1)?.strip_suffix(" bytes saved"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bytes saved in the report:\n{report}"));
    eprintln!(
        "OBSERVED vunify: files shared with ref: copy1 {}, indep {} (issue: 4,668); \
         files linked {linked}; bytes saved {stats_bytes} by the report \
         ({:.1} MB per guest), {saved} by statfs of the tmpfs ({:.1} MB per guest; \
         issue: 123.4 MB)",
        shared[0],
        shared[1],
        stats_bytes as f64 / 2e6,
        saved as f64 / 2e6
    );
    assert_eq!(linked, shared[0] + shared[1]);
    for n in &shared {
        assert!(
            (4600..=4750).contains(n),
            "{n} files shared, expected about 4,668"
        );
    }
    let per_guest = saved / 2;
    assert!(
        (118_000_000..=128_000_000).contains(&per_guest),
        "{per_guest} bytes saved per guest, expected about 123.4 MB"
    );

    // A second run changes nothing.
    let out = vsbox(
        "vunify",
        &[reference, guests[0], guests[1]],
        &["--stats", "--", "ALL"],
    );
    let report = stdout_ok("vunify (again)", &out);
    assert_eq!(stat(&report, "files linked:"), 0, "{report}");
    assert_eq!(stat(&report, "already shared:"), linked, "{report}");
    let verify = start_verify(reference, &guests);
    for (i, name) in names.iter().enumerate() {
        let again = snapshot(&roots[i]);
        assert!(again == after[i], "vunify again changed {name}");
    }
    verify.assert_clean("after vunify");

    // --undo: each guest its own files again, as they were.
    let out = vsbox(
        "vunify",
        &[reference, guests[0], guests[1]],
        &["--undo", "--stats", "--", "ALL"],
    );
    let report = stdout_ok("vunify --undo", &out);
    assert_eq!(stat(&report, "files copied back:"), linked, "{report}");
    let undone: Vec<Snap> = roots.iter().map(|r| snapshot(r)).collect();
    for (i, name) in names.iter().enumerate() {
        assert_unchanged(&format!("vunify --undo, {name}"), &before[i], &undone[i]);
        if i > 0 {
            let still: Vec<&String> = undone[i]
                .iter()
                .filter(|(_, f)| ref_inodes.contains(&f.ino))
                .map(|(p, _)| p)
                .collect();
            assert!(still.is_empty(), "{name} still shares {still:?}");
        }
        let flagged: Vec<&String> = undone[i]
            .keys()
            .filter(|p| immutable(&roots[i].join(p)))
            .collect();
        assert!(
            flagged.is_empty(),
            "{name}: immutable after --undo: {flagged:?}"
        );
        // The guest's own hard links (perl / perl5.36.0) come back as one
        // copy, as they were before vunify.
        assert_links_kept(&format!("vunify --undo, {name}"), &groups[i], &undone[i]);
    }
    eprintln!(
        "OBSERVED vunify test: {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn vbuild_clone() {
    let cache = need_guests!();
    let start = Instant::now();
    let work = Work::new("vbuild");
    let reference = work.copy(&cache, "ref");
    let new = work.mnt.join("new");
    let before = snapshot(&reference);
    let out = vsbox("vbuild", &[&reference, &new], &["--stats"]);
    let report = stdout_ok("vbuild", &out);
    let verify = start_verify(&reference, &[&new]);
    assert_unchanged("vbuild, ref", &before, &snapshot(&reference));
    let mut clone = snapshot(&new);
    // Every file of the reference, with its data and metadata, but the
    // machine-id: a clone is another machine (a new one, made by vbuild).
    assert!(
        clone.remove("etc/machine-id").is_some(),
        "no machine-id made"
    );
    let mut expected = before.clone();
    expected.remove("etc/machine-id");
    assert_unchanged("vbuild, the clone against ref", &expected, &clone);
    assert_links_kept("vbuild, the clone", &link_groups(&before), &clone);
    let ref_inodes = inodes(&before);
    let shared: Vec<&String> = clone
        .iter()
        .filter(|(_, f)| ref_inodes.contains(&f.ino))
        .map(|(p, _)| p)
        .collect();
    let bad: Vec<&&String> = shared.iter().filter(|p| never_shared(p)).collect();
    assert!(bad.is_empty(), "vbuild linked {bad:?}");
    let etc = clone.keys().filter(|p| p.starts_with("etc/")).count();
    eprintln!(
        "OBSERVED vbuild: {} files shared with ref, {etc} files under /etc copied; \
         {} Files linked by the report",
        shared.len(),
        stat(&report, "Files linked:")
    );
    assert!(etc > 50, "only {etc} files in the clone's /etc");
    assert!(
        shared.len() >= 4600,
        "only {} files of the clone shared with ref",
        shared.len()
    );
    // The clone runs: its own dpkg-query, chrooted, lists its packages.
    let out = Command::new("chroot")
        .arg(&new)
        .args(["dpkg-query", "-W", "-f", "${Package}\\n"])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let listed = stdout_ok("chroot NEW dpkg-query -W", &out).lines().count();
    let installed = fs::read_to_string(new.join("var/lib/dpkg/status"))
        .unwrap()
        .matches("Status: install ok installed")
        .count();
    assert!(
        listed >= 80 && listed == installed,
        "{listed} packages in the clone"
    );
    verify.assert_clean("of the clone");
    eprintln!(
        "OBSERVED vbuild test: {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn distrib_info_agrees_with_dpkg_query() {
    let cache = need_guests!();
    let work = Work::new("distrib-info");
    let reference = work.copy(&cache, "ref");
    let admindir = format!("--admindir={}", reference.join("var/lib/dpkg").display());
    let out = Command::new("dpkg-query")
        .args([&admindir, "-W", "-f", "${Package} ${Version}\\n"])
        .output()
        .unwrap();
    let mut expected: Vec<String> = stdout_ok("dpkg-query", &out)
        .lines()
        .map(String::from)
        .collect();
    let out = vsbox("distrib-info", &[&reference], &["list"]);
    let mut listed: Vec<String> = stdout_ok("distrib-info list", &out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 3, "not NAME VERSION ARCH: {l:?}");
            format!("{} {}", f[0], f[1])
        })
        .collect();
    expected.sort();
    listed.sort();
    eprintln!("OBSERVED distrib-info: {} packages", listed.len());
    assert!(listed.len() >= 80, "only {} packages", listed.len());
    assert_eq!(listed, expected);
    // And one package's version, files and md5sums as dpkg has them.
    let out = vsbox("distrib-info", &[&reference], &["pkgversion", "perl-base"]);
    let version = stdout_ok("distrib-info pkgversion", &out);
    assert!(expected.contains(&format!("perl-base {}", version.trim())));
    let out = Command::new("dpkg-query")
        .args([&admindir, "-L", "perl-base"])
        .output()
        .unwrap();
    let mut dpkg_files: Vec<String> = stdout_ok("dpkg-query -L", &out)
        .lines()
        .filter(|l| !l.is_empty() && *l != "/.")
        .map(String::from)
        .collect();
    let out = vsbox("distrib-info", &[&reference], &["files", "perl-base"]);
    let mut files: Vec<String> = stdout_ok("distrib-info files", &out)
        .lines()
        .filter(|l| *l != "/.")
        .map(String::from)
        .collect();
    dpkg_files.sort();
    files.sort();
    assert_eq!(files, dpkg_files);
}
