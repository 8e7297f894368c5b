//! What a guest's pid 1 does for a guest without an init of its own (no
//! fakeinit): the seed's start sequence, done from inside the guest, where
//! every path resolves in the guest's root and no guest symlink can lead a
//! host tool astray.
//!
//! - clear the files (not the directories) under /var/run, left from the last
//!   run (stale pid files stopped services from starting);
//! - write /var/run/utmp afresh with a boot record and the runlevel record;
//! - run the guest's rc script for the runlevel: Debian's /etc/init.d/rc or
//!   Red Hat's /etc/rc.d/rc, or without one (Debian minbase) the
//!   /etc/rcN.d links as Debian's rc would; the runlevel is the initdefault
//!   of the guest's /etc/inittab (3 without one);
//! - on stop, the same for runlevel 6.

use std::io::Write;
use std::process::Command;

use crate::error::Context;
use std::path::Path;

/// The rc scripts, in the order looked for: Debian's, then Red Hat's.
pub const RC_SCRIPTS: [&str; 2] = ["/etc/init.d/rc", "/etc/rc.d/rc"];

/// The runlevel when /etc/inittab names none: multi-user with network.
pub const DEFAULT_RUNLEVEL: u8 = b'3';

/// The runlevel stop runs the rc scripts for.
pub const STOP_RUNLEVEL: u8 = b'6';

/// The initdefault runlevel of an inittab (`id:3:initdefault:`).
pub fn initdefault(inittab: &str) -> Option<u8> {
    inittab.lines().find_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let mut fields = line.split(':');
        let (_id, levels, action) = (fields.next()?, fields.next()?, fields.next()?);
        let level = levels.bytes().next()?;
        (action == "initdefault"
            && levels.len() == 1
            && (level.is_ascii_digit() || level == b'S' || level == b's'))
            .then_some(level)
    })
}

/// The runlevel to start: the guest's initdefault, else 3.
pub fn guest_runlevel() -> u8 {
    super::guestfile::read("/etc/inittab", 1 << 20)
        .ok()
        .and_then(|text| initdefault(&String::from_utf8_lossy(&text)))
        .unwrap_or(DEFAULT_RUNLEVEL)
}

/// The guest's rc script, if it has one.
pub fn rc_script() -> Option<&'static str> {
    RC_SCRIPTS
        .into_iter()
        .find(|p| super::rclinks::is_executable_file(Path::new(p)))
}

/// The commands, to be run one after the other, that take the guest to
/// runlevel `to` from `from` (b'N' at boot), with RUNLEVEL and PREVLEVEL as
/// sysvinit gives them. With an rc script, that script with the level.
/// Without one, the /etc/rcTO.d links as Debian's rc runs them: the K links
/// with `stop` (not at boot, when nothing runs yet), then the S links with
/// `start`, but with `stop` in runlevels 0 and 6, where they halt or reboot.
pub fn change_commands(to: u8, from: u8) -> Vec<Command> {
    let level = char::from(to).to_string();
    let command = |program: &Path, arg: &str| {
        let mut c = Command::new(program);
        c.arg(arg)
            .env("RUNLEVEL", &level)
            .env("PREVLEVEL", char::from(from).to_string());
        c
    };
    if let Some(rc) = rc_script() {
        return vec![command(Path::new(rc), &level)];
    }
    let dir = std::path::PathBuf::from(format!("/etc/rc{level}.d"));
    let kills = if from == b'N' {
        Vec::new()
    } else {
        super::rclinks::scripts(&dir, b'K')
    };
    let start_action = if matches!(to, b'0' | b'6') {
        "stop"
    } else {
        "start"
    };
    let kills = kills.into_iter().map(|k| command(&k, "stop"));
    let starts = super::rclinks::scripts(&dir, b'S')
        .into_iter()
        .map(|s| command(&s, start_action));
    kills.chain(starts).collect()
}

/// Removes every file, symlink and socket under `dir` (recursively), keeping
/// the directories. Symlinks are removed, never followed.
pub fn clear_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => clear_files(&path),
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
            }
            Err(_) => {}
        }
    }
}

/// Size of glibc's `struct utmp` on x86_64 and aarch64.
pub const UTMP_SIZE: usize = 384;
const BOOT_TIME: i16 = 2;
const RUN_LVL: i16 = 1;

/// One utmp record: type, pid, line "~", id "~~", user, time.
pub fn utmp_record(kind: i16, pid: i32, user: &str, now_secs: u32) -> [u8; UTMP_SIZE] {
    let mut r = [0u8; UTMP_SIZE];
    r[0..2].copy_from_slice(&kind.to_ne_bytes());
    r[4..8].copy_from_slice(&pid.to_ne_bytes());
    r[8] = b'~'; // ut_line
    r[40..42].copy_from_slice(b"~~"); // ut_id
    let user = user.as_bytes();
    r[44..44 + user.len().min(32)].copy_from_slice(&user[..user.len().min(32)]);
    r[340..344].copy_from_slice(&now_secs.to_ne_bytes()); // ut_tv.tv_sec
    r
}

/// Writes /var/run/utmp afresh: a boot record and runlevel `level` (the
/// previous level is 'N', none, as after boot).
pub fn write_utmp(path: &str, level: u8) -> crate::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let mut file = super::guestfile::open_for_write(path, 0o664)?;
    let mut records = utmp_record(BOOT_TIME, 0, "reboot", now).to_vec();
    // sysvinit's encoding: new level + 256 * previous level.
    records.extend(utmp_record(
        RUN_LVL,
        i32::from(level) + 256 * i32::from(b'N'),
        "runlevel",
        now,
    ));
    file.write_all(&records)
        .context(|| format!("cannot write the guest's {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initdefault_of_common_inittabs() {
        assert_eq!(
            initdefault("# comment\nid:2:initdefault:\nsi::sysinit:/etc/init.d/rcS\n"),
            Some(b'2')
        );
        assert_eq!(initdefault("id:5:initdefault:"), Some(b'5'));
        assert_eq!(initdefault("#id:5:initdefault:\n"), None);
        assert_eq!(initdefault("id:35:initdefault:\n"), None);
        assert_eq!(initdefault("l3:3:wait:/etc/init.d/rc 3\n"), None);
        assert_eq!(initdefault(""), None);
    }

    #[test]
    fn utmp_records_have_glibc_layout() {
        let r = utmp_record(
            RUN_LVL,
            i32::from(b'3') + 256 * i32::from(b'N'),
            "runlevel",
            1000,
        );
        assert_eq!(i16::from_ne_bytes([r[0], r[1]]), 1);
        assert_eq!(
            i32::from_ne_bytes(r[4..8].try_into().unwrap()) & 0xff,
            i32::from(b'3')
        );
        assert_eq!(&r[44..52], b"runlevel");
        assert_eq!(&r[40..42], b"~~");
        assert_eq!(u32::from_ne_bytes(r[340..344].try_into().unwrap()), 1000);
    }

    #[test]
    fn clear_files_keeps_directories_and_does_not_follow_links() {
        let dir = std::env::temp_dir().join(format!("vsbox-clear-{}", std::process::id()));
        let outside = dir.with_extension("outside");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        std::fs::write(dir.join("a.pid"), "1").unwrap();
        std::fs::write(dir.join("sub/b.pid"), "2").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        clear_files(&dir);
        assert!(dir.join("sub").is_dir());
        assert!(!dir.join("a.pid").exists() && !dir.join("sub/b.pid").exists());
        assert!(
            std::fs::symlink_metadata(dir.join("link")).is_err(),
            "the link itself is removed"
        );
        assert!(
            outside.join("keep").exists(),
            "what it pointed to is untouched"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
