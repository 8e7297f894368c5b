//! The vserver command's library: guest creation and lifecycle.

pub mod all;
pub mod ask;
pub mod build;
pub mod companion;
pub mod delete;
pub mod guest;
pub mod list;
pub mod rebootmgr;
pub mod rename;
mod tree_remove;

use std::path::Path;
use std::process::Command;

use crate::error::Context;
use crate::{Error, Result};

/// Runs an admin's host-side script (`cmd`, which runs `script` for `what`)
/// to its end: a status other than success is an error naming both.
fn run_host_script(cmd: &mut Command, script: &Path, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .context(|| format!("cannot run {}", script.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::failure(format!(
            "{} {what} failed ({status})",
            script.display()
        )))
    }
}
