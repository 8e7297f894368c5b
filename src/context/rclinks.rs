//! The /etc/rcN.d links of a guest that has no rc script to run them:
//! Debian minbase has update-rc.d, which makes /etc/rc2.d/S01nginx when
//! nginx is installed, but not sysv-rc, whose /etc/init.d/rc would run it.
//! vinit then runs the links itself (see `runlevel::change_commands`).
//!
//! Read by vinit from inside the guest (after pivot_root, so every path and
//! every link resolves in the guest's root). The directory is the guest's,
//! so hostile: it is read up to MAX_ENTRIES entries, and only a name that
//! leads to an executable regular file is kept; a directory, a FIFO, a
//! device or a dangling link is skipped. stat(2) opens nothing, so no entry
//! can make the read block.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Most entries read from one rcN.d: Debian's have a few dozen; a guest
/// that filled one with millions would only delay its own start.
pub const MAX_ENTRIES: usize = 1024;

/// The scripts `dir/PREFIX*` (`prefix` is b'K' or b'S') in byte order of
/// their names, the order of Debian's rc (its glob, in the C locale of
/// init's environment).
pub fn scripts(dir: &Path, prefix: u8) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .take(MAX_ENTRIES)
        .flatten()
        .filter(|e| e.file_name().as_bytes().first() == Some(&prefix))
        .map(|e| e.path())
        .filter(|p| is_executable_file(p))
        .collect();
    found.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    found
}

/// Whether `path`, links followed, is a regular file with an execute bit
/// (root may run it then).
pub fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn only_executable_files_of_the_prefix_in_name_order() {
        let dir = std::env::temp_dir().join(format!("vsbox-rclinks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rc = dir.join("rc2.d");
        std::fs::create_dir_all(&rc).unwrap();
        executable(&dir.join("svc"));
        for name in ["S20b", "S10a", "S10B", "K01stop", "README", "s30lower"] {
            symlink("../svc", rc.join(name)).unwrap();
        }
        executable(&rc.join("S15plain"));
        std::fs::write(rc.join("S16notexec"), "#!/bin/sh\n").unwrap();
        std::fs::create_dir(rc.join("S17dir")).unwrap();
        symlink("../nothing", rc.join("S18dangling")).unwrap();
        symlink("../rc2.d", rc.join("S19todir")).unwrap();
        let fifo = std::ffi::CString::new(rc.join("S21fifo").as_os_str().as_bytes()).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fifo.as_c_str(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o755),
            0,
        )
        .unwrap();
        let names = |prefix| -> Vec<String> {
            scripts(&rc, prefix)
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(b'S'), ["S10B", "S10a", "S15plain", "S20b"]);
        assert_eq!(names(b'K'), ["K01stop"]);
        assert!(scripts(&dir.join("rc9.d"), b'S').is_empty(), "no directory");
        assert!(
            scripts(&dir.join("svc"), b'S').is_empty(),
            "not a directory"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
