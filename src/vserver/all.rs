//! The vservers service (seed 0.7, 0.26): start the guests marked
//! ONBOOT=yes, lower PRIORITY first; stop every running guest, in the
//! reverse order.

use crate::conf::ConfigRoot;
use crate::{Error, Result};

use super::guest::{Guest, Options};

/// The names of the guests with a configuration file (NAME.conf in the
/// guests' directory, NAME a valid guest name), sorted.
pub fn guest_names(root: &ConfigRoot) -> Result<Vec<String>> {
    let dir = root.guests_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), &e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".conf")
                .map(str::to_string)
        })
        .filter(|n| crate::conf::guest::check_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Every guest with a configuration file, loaded; sorted by PRIORITY, then
/// name. A guest whose configuration is broken is reported, not skipped
/// silently.
pub fn guests(root: &ConfigRoot, options: Options) -> Result<(Vec<Guest>, Vec<Error>)> {
    let names = guest_names(root)?;
    let (mut guests, mut errors) = (Vec::new(), Vec::new());
    for name in names {
        match Guest::load(root, &name, None, options) {
            Ok(g) => guests.push(g),
            Err(e) => errors.push(e),
        }
    }
    guests.sort_by_key(|g| g.config.priority);
    Ok((guests, errors))
}

/// Starts every ONBOOT guest that is not running, by priority; goes on past
/// a failure and returns all of them.
pub fn start(root: &ConfigRoot, options: Options) -> Result<Vec<Error>> {
    let (guests, mut errors) = guests(root, options)?;
    for g in guests.iter().filter(|g| g.config.onboot) {
        let started = match g.context() {
            Ok(Some(_)) => Ok(()),
            Ok(None) => g.start(),
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            errors.push(Error::failure(format!("{}: {e}", g.name())));
        }
    }
    Ok(errors)
}

/// Stops every running guest, ONBOOT or not, in reverse priority order.
pub fn stop(root: &ConfigRoot, options: Options) -> Result<Vec<Error>> {
    let (guests, mut errors) = guests(root, options)?;
    for g in guests.iter().rev() {
        // One guest whose state cannot be read must not keep the others
        // running at shutdown.
        let stopped = match g.context() {
            Ok(Some(_)) => g.stop(),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = stopped {
            errors.push(Error::failure(format!("{}: {e}", g.name())));
        }
    }
    Ok(errors)
}
