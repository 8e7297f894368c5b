//! The build methods, and the steps every guest gets afterwards.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;

use super::copy::{FileMode, Walk};
use super::identity;
use super::interrupt::Interrupts;
use super::tree::{self, ensure_dir, ensure_existing, write_file};
use super::{BuildOptions, BuildReport, HOST_DIRS, Method};
use crate::conf::ConfigRoot;
use crate::error::Context;
use crate::net::iproot::IpRoot;
use crate::progress::Progress;
use crate::{Error, Result};

/// What the methods share.
pub struct Ctx<'a> {
    pub root: &'a ConfigRoot,
    pub opts: &'a BuildOptions,
    pub excluded: &'a [PathBuf],
    /// The build directory (renamed into place at the end).
    pub temp: &'a Path,
    pub vservers_root: &'a Path,
    /// SIGINT, SIGTERM and SIGHUP, watched by the long steps.
    pub interrupts: &'a Interrupts,
    /// The status line of the copying methods.
    pub progress: &'a Progress,
}

/// The directories of every guest, with their modes. /var/run is a
/// directory because the start sequence clears it and writes utmp there.
const SKELETON: [(&str, u32); 24] = [
    ("bin", 0o755),
    ("sbin", 0o755),
    ("etc", 0o755),
    ("etc/init.d", 0o755),
    ("dev", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("root", 0o700),
    ("home", 0o755),
    ("run", 0o755),
    ("var", 0o755),
    ("var/log", 0o755),
    ("var/run", 0o755),
    ("var/lock", 0o1777),
    ("var/spool", 0o755),
    ("var/spool/mail", 0o2775),
    ("var/tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("lib", 0o755),
    ("mnt", 0o755),
    ("opt", 0o755),
];

/// Names a clone never takes from its source: made afresh.
const FRESH_TOP: [&str; 5] = ["dev", "proc", "sys", "run", "tmp"];

/// Start links kept when the host method turns services off.
const KEPT_SERVICES: [&str; 4] = ["syslog", "rsyslog", "sysklogd", "cron"];

/// The fstab of a guest without its own: entries only as comments. A guest
/// mounts nothing itself; a root entry would name a device it does not
/// have, and systemd-remount-fs fails on it (the seed's dummy did that).
const FSTAB: &str = "\
# /etc/fstab: static file system information.
#
# vsbox mounts this guest's file systems when it starts: its root, /proc,
# /dev/pts and what its configuration adds (see vserver.conf(5)). The guest
# mounts nothing itself, so nothing is listed here. Add only what the guest
# may mount on its own; never a root (\"/\") entry.
";

const BUSYBOX_INITTAB: &str = "\
# Read by vserver start for the runlevel (busybox init ignores this line).
id:3:initdefault:
# With S_FLAGS=fakeinit, busybox init is the guest's pid 1.
::sysinit:/etc/init.d/rc 3
::shutdown:/etc/init.d/rc 6
";

const BUSYBOX_RC: &str = "\
#!/bin/sh
# rc RUNLEVEL: runs the K* scripts of /etc/rcRUNLEVEL.d with `stop`, then
# the S* scripts with `start`, in name order (Debian's layout).
PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PATH
runlevel=${1:-3}
dir=/etc/rc$runlevel.d
[ -d \"$dir\" ] || exit 0
for script in \"$dir\"/K*; do
	[ -x \"$script\" ] && \"$script\" stop
done
for script in \"$dir\"/S*; do
	[ -x \"$script\" ] && \"$script\" start
done
exit 0
";

pub fn busybox(ctx: &Ctx, guest: &OwnedFd, report: &mut BuildReport) -> Result<()> {
    let path = &ctx.opts.busybox;
    let binary = std::fs::read(path).context(|| {
        format!(
            "cannot read {} (the busybox method needs busybox-static)",
            path.display()
        )
    })?;
    if !is_static_elf(&binary) {
        return Err(Error::failure(format!(
            "{} is not a static executable: a guest has no dynamic loader \
             (install busybox-static)",
            path.display()
        )));
    }
    let out = std::process::Command::new(path)
        .arg("--list-full")
        .output()
        .context(|| format!("cannot run {} --list-full", path.display()))?;
    let list = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        let out = std::process::Command::new(path)
            .arg("--list")
            .output()
            .context(|| format!("cannot run {} --list", path.display()))?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|a| format!("bin/{a}\n"))
            .collect()
    };
    write_file(guest, Path::new("bin/busybox"), &binary, 0o755)?;
    report.files_copied += 1;
    report.bytes_copied += binary.len() as u64;
    for applet in list.lines() {
        let rel = Path::new(applet.trim().trim_start_matches('/'));
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            continue;
        };
        if name == "busybox" || name == "linuxrc" || applet.contains("..") {
            continue;
        }
        let Some(dir) = ensure_dir(guest, parent, 0o755)? else {
            continue;
        };
        let up = "../".repeat(parent.components().count());
        match rustix::fs::symlinkat(format!("{up}bin/busybox").as_str(), &dir, name) {
            Ok(()) => report.symlinks += 1,
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e).context(|| format!("cannot create {}", tree::shown(rel))),
        }
    }
    let files: [(&str, &str, u32); 5] = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        ),
        (
            "etc/group",
            "root:x:0:\ntty:x:5:\nutmp:x:43:\nmail:x:8:\nnogroup:x:65534:\n",
            0o644,
        ),
        ("etc/inittab", BUSYBOX_INITTAB, 0o644),
        ("etc/init.d/rc", BUSYBOX_RC, 0o755),
        (
            "etc/profile",
            "PATH=/sbin:/bin:/usr/sbin:/usr/bin\nexport PATH\n",
            0o644,
        ),
    ];
    for (rel, text, mode) in files {
        write_file(guest, Path::new(rel), text.as_bytes(), mode)?;
    }
    for level in ["0", "1", "2", "3", "4", "5", "6"] {
        ensure_dir(guest, Path::new(&format!("etc/rc{level}.d")), 0o755)?;
    }
    Ok(())
}

/// A 64-bit ELF without a PT_INTERP program header (no dynamic loader).
fn is_static_elf(b: &[u8]) -> bool {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
    };
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..count as usize).all(|i| {
        let at = phoff as usize + i * size as usize;
        b.get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != 3)
    })
}

pub fn host(ctx: &Ctx, guest: &OwnedFd, report: &mut BuildReport) -> Result<()> {
    let host_root = tree::open_dir_path(Path::new("/"))?;
    let dirs: Vec<String> = match &ctx.opts.host_dirs {
        Some(d) => d.clone(),
        None => HOST_DIRS.iter().map(|s| s.to_string()).collect(),
    };
    let mut skip = Vec::new();
    for path in [
        ctx.vservers_root.to_path_buf(),
        ctx.temp.to_path_buf(),
        ctx.root.guests_dir(),
        ctx.root.global_file(),
    ] {
        for st in [rustix::fs::stat(&path), rustix::fs::lstat(&path)]
            .into_iter()
            .flatten()
        {
            skip.push((st.st_dev, st.st_ino));
        }
    }
    let mut walk = Walk::new(FileMode::Copy, ctx.excluded, report);
    walk.skip = skip;
    walk.interrupts = Some(ctx.interrupts);
    walk.progress = Some(ctx.progress);
    for name in &dirs {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::usage(format!(
                "'{name}' is not a top-level directory name"
            )));
        }
        walk.copy_top(&host_root, guest, name)?;
    }
    report.services_off += services_off(guest)?;
    for rel in ["etc/shadow", "etc/gshadow"] {
        lock_passwords(guest, Path::new(rel))?;
    }
    Ok(())
}

pub fn clone(ctx: &Ctx, source: &Path, guest: &OwnedFd, report: &mut BuildReport) -> Result<()> {
    // The source's own directory is named by the host's configuration;
    // below it, nothing is followed.
    let src = rustix::fs::openat(
        CWD,
        source,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("cannot open {}", source.display()))?;
    let mut skip = Vec::new();
    for path in [ctx.temp, ctx.vservers_root] {
        if let Ok(st) = rustix::fs::stat(path) {
            skip.push((st.st_dev, st.st_ino));
        }
    }
    let mut walk = Walk::new(FileMode::Link, ctx.excluded, report);
    walk.skip = skip;
    walk.interrupts = Some(ctx.interrupts);
    walk.progress = Some(ctx.progress);
    walk.skip_top = &FRESH_TOP;
    walk.copy_dir(&src, guest)
}

/// What every guest gets: the standard directories, /dev, host name,
/// hosts, an fstab of comments and a dummy mtab, an empty wtmp, a
/// machine-id; a copy of another system (host, clone) a new machine-id
/// and no sshd host keys of its source.
pub fn finish(
    ctx: &Ctx,
    guest: &OwnedFd,
    hostname: &str,
    ip: &IpRoot,
    report: &mut BuildReport,
) -> Result<()> {
    for (rel, mode) in SKELETON {
        // A guest with its own layout (/var/run -> /run) keeps it.
        let existed = ensure_existing(guest, Path::new(rel))?.is_some();
        if !existed && ensure_dir(guest, Path::new(rel), mode)?.is_some() {
            report.dirs += 1;
        }
    }
    for rel in ctx.excluded {
        ensure_dir(guest, rel, 0o755)?;
    }
    report.specials += tree::make_dev(guest)?;
    write_file(
        guest,
        Path::new("etc/hostname"),
        format!("{hostname}\n").as_bytes(),
        0o644,
    )?;
    write_file(
        guest,
        Path::new("etc/hosts"),
        hosts_text(hostname, ip).as_bytes(),
        0o644,
    )?;
    // debootstrap's keys and machine-id are the new guest's own, made by
    // its own packages' scripts; a copy has its source's.
    let copy = matches!(ctx.opts.method, Method::Host | Method::Clone(_));
    let own_fstab = match ctx.opts.method {
        Method::Clone(_) => true,
        Method::Debootstrap { .. } => tree::read_file(guest, Path::new("etc/fstab"))?.is_some(),
        _ => false,
    };
    if !own_fstab {
        write_file(guest, Path::new("etc/fstab"), FSTAB.as_bytes(), 0o644)?;
    }
    // debootstrap's /etc/mtab is a link to /proc/self/mounts, which is
    // what systemd and mount expect; a clone keeps its source's.
    if !matches!(
        ctx.opts.method,
        Method::Clone(_) | Method::Debootstrap { .. }
    ) {
        // The seed's dummy keeps df and admin tools quiet.
        write_file(
            guest,
            Path::new("etc/mtab"),
            b"/dev/hdv1 / ext2 rw 0 0\n",
            0o644,
        )?;
    }
    if ensure_existing(guest, Path::new("var/log"))?.is_some() {
        write_file(guest, Path::new("var/log/wtmp"), b"", 0o664)?;
    }
    identity::machine_id(guest, copy)?;
    if copy && ctx.opts.reset_ssh_keys {
        report.ssh_keys_removed += identity::remove_ssh_host_keys(guest)?;
    }
    Ok(())
}

fn hosts_text(hostname: &str, ip: &IpRoot) -> String {
    let short = hostname.split('.').next().unwrap_or(hostname);
    let names = if short == hostname {
        hostname.to_string()
    } else {
        format!("{hostname} {short}")
    };
    let mut t = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match ip.entries().first() {
        Some(e) => t.push_str(&format!("{}\t{names}\n", e.addr)),
        // Sharing the host's addresses: the name on a loopback address,
        // as Debian does.
        None => t.push_str(&format!("127.0.1.1\t{names}\n")),
    }
    t
}

/// Removes the start links of rc?.d (Debian and Red Hat layouts) but a few
/// (seed 0.2: a guest runs few services; enable them once inside).
fn services_off(guest: &OwnedFd) -> Result<u64> {
    let mut removed = 0;
    for base in ["etc", "etc/rc.d"] {
        for level in 0..=6 {
            let rel = PathBuf::from(format!("{base}/rc{level}.d"));
            removed += tree::remove_entries(guest, &rel, |n| {
                n.starts_with('S')
                    && !KEPT_SERVICES.iter().any(|k| {
                        n.trim_start_matches(|c: char| c == 'S' || c.is_ascii_digit()) == *k
                    })
            })?;
        }
    }
    Ok(removed)
}

/// shadow or gshadow text with every password field locked.
fn locked(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 1 && !fields[1].starts_with(['!', '*']) {
            fields[1] = "!";
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    out
}

/// The host's password hashes do not go into a guest: every password of
/// shadow/gshadow is locked (set it inside the guest with passwd).
fn lock_passwords(guest: &OwnedFd, rel: &Path) -> Result<()> {
    let Some((data, st)) = tree::read_file(guest, rel)? else {
        return Ok(());
    };
    let out = locked(&String::from_utf8_lossy(&data));
    let fd = write_file(guest, rel, out.as_bytes(), 0o600)?;
    rustix::fs::fchown(
        &fd,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    )
    .context(|| format!("cannot set the owner of {}", tree::shown(rel)))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode & 0o7777))
        .context(|| format!("cannot set the mode of {}", tree::shown(rel)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_fields_are_locked() {
        let text = "root:$6$salt$hash:19000:0:99999:7:::\nbin:*:19000::::::\nold:!x:1::::::\nfree::1::::::\n";
        assert_eq!(
            locked(text),
            "root:!:19000:0:99999:7:::\nbin:*:19000::::::\nold:!x:1::::::\nfree:!:1::::::\n"
        );
        assert_eq!(locked("adm:x:4:\n"), "adm:!:4:\n");
    }

    #[test]
    fn static_executables_are_told_from_dynamic_ones() {
        // vsbox's own test binary is static (musl) or not (gnu): compare
        // with the ELF interpreter the kernel would load.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let has_interp = me.windows(b"ld-linux".len()).any(|w| w == b"ld-linux")
            || me.windows(b"ld-musl".len()).any(|w| w == b"ld-musl");
        if !has_interp {
            assert!(is_static_elf(&me));
        }
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        // A minimal ELF64 header with one PT_INTERP program header.
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&3u32.to_le_bytes());
        assert!(!is_static_elf(&elf));
        elf[64..68].copy_from_slice(&1u32.to_le_bytes());
        assert!(is_static_elf(&elf));
    }
}
