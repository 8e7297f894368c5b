//! The companion script /etc/vservers/NAME.sh (seed 0.16): run on the host
//! with the phase (pre-start, post-start, pre-stop, post-stop) and the guest
//! name, PROFILE exported. It is the admin's own script, like the config.

use std::process::Command;

use crate::Result;
use crate::conf::ConfigRoot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    PreStart,
    PostStart,
    PreStop,
    PostStop,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::PreStart => "pre-start",
            Phase::PostStart => "post-start",
            Phase::PreStop => "pre-stop",
            Phase::PostStop => "post-stop",
        }
    }
}

/// Runs NAME.sh for `phase` if the guest has one; a failing script is an
/// error (a failing pre-start stops the start).
pub fn run(root: &ConfigRoot, name: &str, phase: Phase, profile: Option<&str>) -> Result<()> {
    let script = root.guests_dir().join(format!("{name}.sh"));
    if !script.is_file() {
        return Ok(());
    }
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(&script)
        .arg(phase.name())
        .arg(name)
        .env("PROFILE", profile.unwrap_or(""))
        .env("VSERVER_NAME", name);
    super::run_host_script(&mut cmd, &script, phase.name())
}
