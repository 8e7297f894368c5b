//! What makes a guest one machine and not another: its /etc/machine-id
//! (systemd, journald, D-Bus and DHCP clients key on it) and its sshd host
//! keys (what ssh clients know it by).
//!
//! Every guest gets a machine-id at build when it has none, so that it
//! stays the same from boot to boot (systemd would make a new one at every
//! boot of a guest without one, and journald loses its journal). A copy of
//! another system (clone, host) gets a new one and new host keys: two
//! guests with one identity confuse every peer that remembers them, and
//! the source's root would know the copy's private keys. The keys are made
//! by the guest's own ssh-keygen, run inside the new guest (a one-shot
//! context, as `vserver NAME exec` on a stopped guest): a guest program
//! never runs on the host.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::rand::{GetRandomFlags, getrandom};

use super::tree::{self, write_file};
use crate::conf::ConfigRoot;
use crate::context::spawn::Entry;
use crate::error::Context;
use crate::vserver::guest::{Guest, Options};
use crate::{Error, Result};

const MACHINE_ID: &str = "etc/machine-id";
/// D-Bus's own copy, read before /etc/machine-id by libdbus; Debian's
/// dbus makes it a symlink to /etc/machine-id, older systems a file.
const DBUS_MACHINE_ID: &str = "var/lib/dbus/machine-id";
/// The guest's ssh-keygen, found inside the guest (a merged /usr's /bin
/// symlink resolves inside it too).
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// A machine-id: 32 lowercase hex digits of kernel randomness (see
/// machine-id(5)).
fn new_machine_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while filled < bytes.len() {
        filled += getrandom(&mut bytes[filled..], GetRandomFlags::empty())
            .context(|| "cannot get random bytes for /etc/machine-id")?;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Gives the guest a machine-id: a new one when `fresh` (a copy) or when
/// it has none (missing or empty); else its own stays.
pub fn machine_id(guest: &OwnedFd, fresh: bool) -> Result<()> {
    let has_one = tree::read_file(guest, Path::new(MACHINE_ID))?
        .is_some_and(|(text, _)| !text.trim_ascii().is_empty());
    if has_one && !fresh {
        return Ok(());
    }
    let text = format!("{}\n", new_machine_id()?);
    write_file(guest, Path::new(MACHINE_ID), text.as_bytes(), 0o444)?;
    // A copy's own D-Bus file would keep the source's identity there.
    if fresh && let Some((_, st)) = tree::read_file(guest, Path::new(DBUS_MACHINE_ID))? {
        write_file(
            guest,
            Path::new(DBUS_MACHINE_ID),
            text.as_bytes(),
            st.st_mode & 0o7777,
        )?;
    }
    Ok(())
}

/// Removes the sshd host keys (/etc/ssh/ssh_host_*_key and their .pub) of
/// a copy; returns how many.
pub fn remove_ssh_host_keys(guest: &OwnedFd) -> Result<u64> {
    tree::remove_entries(guest, Path::new("etc/ssh"), |n| {
        n.starts_with("ssh_host_") && (n.ends_with("_key") || n.ends_with("_key.pub"))
    })
}

/// Whether `dir`, a guest tree, has an ssh-keygen (a regular, executable
/// file; symlinks resolved inside the tree, never out of it).
fn has_ssh_keygen(dir: &Path) -> Result<bool> {
    let root = tree::open_dir_path(dir)?;
    let fd = match rustix::fs::openat2(
        &root,
        SSH_KEYGEN.trim_start_matches('/'),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
    ) {
        Ok(fd) => fd,
        Err(_) => return Ok(false),
    };
    let st = rustix::fs::fstat(&fd).context(|| format!("cannot stat the guest's {SSH_KEYGEN}"))?;
    Ok(
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            && st.st_mode & 0o111 != 0,
    )
}

/// New sshd host keys for guest `name` (built, its tree `dir`), made by
/// its own `ssh-keygen -A` in a context of its own; nothing when it has no
/// ssh-keygen. Returns whether keys were made.
pub fn ssh_host_keys(root: &ConfigRoot, name: &str, dir: &Path) -> Result<bool> {
    if !has_ssh_keygen(dir)? {
        return Ok(false);
    }
    let options = Options {
        silent: true,
        verbose: false,
        // Making keys needs no network: the host's devices stay as they are.
        nodev: true,
    };
    let guest = Guest::load(root, name, None, options)?;
    let command = [OsString::from(SSH_KEYGEN), OsString::from("-A")];
    let code = guest.run(&Entry::command(&command))?;
    if code != 0 {
        return Err(Error::failure(format!(
            "{name}: the guest's `ssh-keygen -A` failed (exit {code}): it has no sshd host keys"
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids_are_32_lowercase_hex_digits_and_new() {
        let a = new_machine_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_ne!(a, new_machine_id().unwrap());
    }
}
