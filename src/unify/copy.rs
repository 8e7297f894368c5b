//! vserver-copy (U9): a guest and its configuration copied to another
//! machine (or a local directory) with the user's rsync, over ssh by
//! rsync's own default (`-e ssh`, or $RSYNC_RSH).
//!
//! One rsync per run: `rsync -aHAX --numeric-ids --one-file-system
//! --relative VSERVERDIR/ NAME.conf [NAME.sh] DEST:PREFIX/`. With
//! `--relative` every path keeps its absolute name under PREFIX (default
//! `/`): the other machine gets the same layout. Hard links, ACLs, xattrs,
//! owners (by number) and times are kept; inode flags (immutable,
//! immutable-unlink) are not: rsync has no way to copy them.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// What to copy and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The guest tree (copied with its contents: a trailing `/`).
    pub tree: PathBuf,
    /// Configuration files (NAME.conf, NAME.sh) that exist.
    pub files: Vec<PathBuf>,
    /// rsync's destination: `[USER@]HOST:PREFIX/` or a local `PREFIX/`.
    pub dest: OsString,
}

/// Where the copy goes: `[USER@]HOST[:DIR]` (DIR defaults to `/`), or a
/// local directory (an argument starting with `/` or `.`) that stands for
/// the other machine's root.
pub fn destination(arg: &str) -> Result<OsString> {
    if arg.is_empty() {
        return Err(Error::usage("empty destination"));
    }
    if arg.starts_with('/') || arg.starts_with('.') {
        return Ok(OsString::from(format!("{}/", arg.trim_end_matches('/'))));
    }
    let (host, dir) = match arg.split_once(':') {
        Some((h, d)) => (h, if d.is_empty() { "/" } else { d }),
        None => (arg, "/"),
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == '/';
    if host.is_empty() || host.starts_with('-') || host.contains(bad) {
        return Err(Error::usage(format!(
            "'{arg}': not [USER@]HOST[:DIR] nor a local directory (/DIR or ./DIR)"
        )));
    }
    if !dir.starts_with('/') {
        return Err(Error::usage(format!(
            "'{arg}': the remote directory must be absolute"
        )));
    }
    Ok(OsString::from(format!(
        "{host}:{}/",
        dir.trim_end_matches('/')
    )))
}

impl Plan {
    /// The rsync command line (program first).
    pub fn command(&self, dry_run: bool, delete: bool) -> Vec<OsString> {
        let mut cmd: Vec<OsString> = [
            "rsync",
            "-aHAX",
            "--numeric-ids",
            "--one-file-system",
            "--relative",
        ]
        .map(OsString::from)
        .to_vec();
        if dry_run {
            cmd.extend(["-n", "-v"].map(OsString::from));
        }
        if delete {
            cmd.push("--delete".into());
        }
        let mut tree = self.tree.clone().into_os_string().into_vec();
        while tree.len() > 1 && tree.ends_with(b"/") {
            tree.pop();
        }
        tree.push(b'/');
        cmd.push(OsString::from_vec(tree));
        cmd.extend(self.files.iter().map(|f| f.clone().into_os_string()));
        cmd.push(self.dest.clone());
        cmd
    }
}

/// The plan for a guest tree and its configuration files (`conf` and `sh`
/// are taken only when they exist). Paths must be absolute: `--relative`
/// reproduces them under the destination.
pub fn plan(tree: &Path, conf_files: &[PathBuf], dest: OsString) -> Result<Plan> {
    let tree = absolute(tree)?;
    if !tree.is_dir() {
        return Err(Error::failure(format!(
            "{}: no guest tree there",
            tree.display()
        )));
    }
    let mut files = Vec::new();
    for f in conf_files {
        if f.is_file() {
            files.push(absolute(f)?);
        }
    }
    Ok(Plan { tree, files, dest })
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io(format!("cannot resolve {}", p.display()), &e))
}

/// The command as a shell would read it (single quotes where needed).
pub fn shell_words(cmd: &[OsString]) -> String {
    let mut out = String::new();
    for (i, w) in cmd.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&crate::cli::shell_quote(w));
    }
    out
}

/// Runs the command; its status is the result (rsync's exit code).
pub fn run(cmd: &[OsString]) -> Result<u8> {
    let status = Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::failure("rsync not found: install rsync (here and on the destination)")
            } else {
                Error::io("cannot run rsync", &e)
            }
        })?;
    match status.code() {
        Some(0) => Ok(0),
        Some(c) => Err(Error::failure(format!("rsync failed with exit status {c}"))),
        None => Err(Error::failure("rsync was killed by a signal")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(destination("host").unwrap(), "host:/");
        assert_eq!(destination("u@h:/srv/").unwrap(), "u@h:/srv/");
        assert_eq!(destination("h:").unwrap(), "h:/");
        assert_eq!(destination("/tmp/x").unwrap(), "/tmp/x/");
        assert!(destination("h:rel").is_err());
        assert!(destination("-e:/x").is_err());
        assert!(destination("").is_err());
    }

    #[test]
    fn command_and_quoting() {
        let p = Plan {
            tree: "/vservers/a b".into(),
            files: vec!["/etc/vservers/a.conf".into()],
            dest: "h:/".into(),
        };
        let cmd = p.command(true, false);
        assert_eq!(
            shell_words(&cmd),
            "rsync -aHAX --numeric-ids --one-file-system --relative -n -v \
             '/vservers/a b/' /etc/vservers/a.conf h:/"
        );
    }
}
