//! VSERVERS_ROOT, the directory that holds the guests, is kept at mode 000
//! (seed 0.10): a host user must not be able to walk into a guest's tree,
//! where guest root may have left setuid programs or world-writable files.
//! Guests do not need it: they see only their own root.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::Result;
use crate::error::Context;

/// Creates `root` if it is missing (see `ensure_vservers_root`) and, the
/// first time in this process, warns on stderr when it is open to host
/// users: before the action, once, however many guests the command handles.
pub fn check_vservers_root(root: &Path) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Some(warning) = ensure_vservers_root(root)? {
        if !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!("vserver: warning: {warning}");
        }
    }
    Ok(())
}

/// Creates `root` with mode 000 if it is missing; returns a warning to print
/// when it exists with any permission bit set.
pub fn ensure_vservers_root(root: &Path) -> Result<Option<String>> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {
            let mode = meta.permissions().mode() & 0o7777;
            Ok((mode != 0).then(|| {
                format!(
                    "{} has mode {mode:04o}: host users can reach into the guests; \
                     `chmod 000 {}` closes it (guests do not need the access)",
                    root.display(),
                    root.display()
                )
            }))
        }
        Ok(_) => Err(crate::Error::failure(format!(
            "{} is not a directory",
            root.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o000)
                .create(root)
                .context(|| format!("cannot create {}", root.display()))?;
            // The umask cannot add bits, but a parent made on the way may
            // have a mode of its own: set the root's exactly.
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o000))
                .context(|| format!("cannot set the mode of {}", root.display()))?;
            Ok(None)
        }
        Err(e) => Err(e).context(|| format!("cannot stat {}", root.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_000_and_warned_when_open() {
        let base = std::env::temp_dir().join(format!("vsbox-vroot-{}", std::process::id()));
        let root = base.join("vservers");
        assert_eq!(ensure_vservers_root(&root).unwrap(), None);
        let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let warning = ensure_vservers_root(&root).unwrap().expect("a warning");
        assert!(warning.contains("has mode 0755"), "{warning}");
        std::fs::write(base.join("file"), "").unwrap();
        assert!(ensure_vservers_root(&base.join("file")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
