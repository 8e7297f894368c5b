//! Runs a parsed configuration: expands words, follows `source`, picks case
//! arms, and records every assignment with where it happened.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{FileType, Mode, OFlags};

use super::error::{ConfError, Location};
use super::root::ConfigRoot;
use super::syntax::{self, Assign, Part, Pattern, Stmt, Word};
use super::vars::Variables;
use crate::context::guestfile::type_name;
use crate::sys::errno::Errno;

/// How deep `source` may nest (a file, a file it sources, ...).
pub const MAX_DEPTH: usize = 8;

/// A configuration file larger than this is refused rather than read.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

pub struct Evaluator<'r> {
    root: &'r ConfigRoot,
    pub vars: Variables,
    /// The files being run, outermost first: (path as opened, identity).
    stack: Vec<(PathBuf, (u64, u64))>,
}

/// Where a `source` statement is, to point errors at it.
struct Site<'a> {
    loc: &'a Location,
    text: &'a str,
}

impl<'r> Evaluator<'r> {
    pub fn new(root: &'r ConfigRoot, vars: Variables) -> Self {
        Evaluator {
            root,
            vars,
            stack: Vec::new(),
        }
    }

    /// Runs one top-level file; returns its `# Description:` if it has one.
    pub fn run(&mut self, path: &Path) -> Result<Option<String>, ConfError> {
        self.run_file(path, None)
    }

    fn run_file(&mut self, path: &Path, site: Option<Site>) -> Result<Option<String>, ConfError> {
        let fail = |message: String| match &site {
            Some(s) => ConfError::at(s.loc, s.text, message),
            None => ConfError::file(path, message),
        };
        if self.stack.len() >= MAX_DEPTH {
            return Err(fail(format!(
                "cannot source {}: nested deeper than {MAX_DEPTH} files",
                path.display()
            )));
        }
        let ConfigFile {
            bytes: text,
            identity,
        } = read_config(path).map_err(fail)?;
        if let Some(at) = self.stack.iter().position(|(_, id)| *id == identity) {
            let chain: Vec<String> = self.stack[at..]
                .iter()
                .map(|(p, _)| p.display().to_string())
                .chain([path.display().to_string()])
                .collect();
            return Err(fail(format!("source cycle: {}", chain.join(" -> "))));
        }
        let text = match String::from_utf8(text) {
            Ok(t) => t,
            Err(e) => {
                let bytes = e.as_bytes();
                let valid = &bytes[..e.utf8_error().valid_up_to()];
                let valid = std::str::from_utf8(valid).unwrap_or_default();
                let line = valid.matches('\n').count() as u32 + 1;
                let col = valid.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
                let loc = Location {
                    file: Arc::from(path),
                    line,
                    col,
                };
                return Err(ConfError::at(
                    &loc,
                    &String::from_utf8_lossy(bytes),
                    "not valid UTF-8",
                ));
            }
        };
        let file: Arc<Path> = Arc::from(path);
        let script = syntax::parse(&file, &text)?;
        self.stack.push((path.to_path_buf(), identity));
        let result = self.exec(&script.stmts, &text);
        self.stack.pop();
        result.map(|()| script.description)
    }

    fn exec(&mut self, stmts: &[Stmt], text: &str) -> Result<(), ConfError> {
        for stmt in stmts {
            match stmt {
                Stmt::Assign { export, items } => {
                    if *export {
                        // One command: as in every shell, all its words are
                        // expanded before any is assigned (`export A=1
                        // B=$A` gives B the A of before).
                        let values: Vec<_> = items.iter().map(|i| self.value_of(i)).collect();
                        for (item, value) in items.iter().zip(values) {
                            self.assign(item, value, true);
                        }
                    } else {
                        // Assignments alone are done left to right:
                        // `A=1 B=$A` gives B=1.
                        for item in items {
                            let value = self.value_of(item);
                            self.assign(item, value, false);
                        }
                    }
                }
                Stmt::Source { path, loc } => {
                    let target = self.resolve(&self.expand(path));
                    self.run_file(&target, Some(Site { loc, text }))?;
                }
                Stmt::Case { subject, arms } => {
                    let subject = self.expand(subject);
                    let arm = arms.iter().find(|arm| {
                        arm.patterns.iter().any(|p| match p {
                            Pattern::Any => true,
                            Pattern::Exact(w) => self.expand(w) == subject,
                        })
                    });
                    if let Some(arm) = arm {
                        self.exec(&arm.body, text)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The expanded value of an assignment; None for `export NAME`.
    fn value_of(&self, item: &Assign) -> Option<String> {
        item.value.as_ref().map(|w| self.expand(w))
    }

    /// None: `export NAME` without a value, which only marks it.
    fn assign(&mut self, item: &Assign, value: Option<String>, export: bool) {
        match value {
            Some(v) => self.vars.set(&item.name, v, item.loc.clone(), export),
            None => self.vars.mark_exported(&item.name),
        }
    }

    /// A `source` path: the configuration root's own files move with it,
    /// relative paths are relative to the including file.
    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            return self.root.map_default_path(path);
        }
        let including = self.stack.last().map(|(p, _)| p.as_path());
        match including.and_then(Path::parent) {
            Some(dir) => dir.join(path),
            None => path.to_path_buf(),
        }
    }

    fn expand(&self, word: &Word) -> String {
        let mut out = String::new();
        for part in &word.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var { name, default } => match (self.vars.value(name), default) {
                    (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(v),
                    (_, Some(d)) => out.push_str(&self.expand(d)),
                    // Unset expands to nothing, as in the shell.
                    (_, None) => {}
                },
            }
        }
        out
    }
}

struct ConfigFile {
    bytes: Vec<u8>,
    /// (device, inode): the same file reached by two paths is one file.
    identity: (u64, u64),
}

/// Reads a configuration file: only a regular file (a symbolic link to one
/// is followed: these are the host's own files), at most `MAX_FILE_SIZE`
/// bytes. A FIFO, device or socket is refused without waiting on it: a
/// `source /tmp/fifo` must not hang printconf or the boot-time `vservers
/// start`, nor open a device (opening some, a watchdog, has effects). So the
/// type is checked before the open, and again on what was opened (the name
/// may have changed in between), which is opened non-blocking.
fn read_config(path: &Path) -> Result<ConfigFile, String> {
    let failed = |e: rustix::io::Errno| {
        format!(
            "cannot read {}: {}",
            path.display(),
            Errno::from(e).describe()
        )
    };
    let regular = |st: &rustix::fs::Stat| {
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind == FileType::RegularFile {
            Ok(())
        } else {
            Err(format!(
                "cannot read {}: it is {}, not a regular file",
                path.display(),
                type_name(kind)
            ))
        }
    };
    let too_big = || format!("{} is larger than {MAX_FILE_SIZE} bytes", path.display());
    regular(&rustix::fs::stat(path).map_err(failed)?)?;
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(failed)?;
    let st = rustix::fs::fstat(&fd).map_err(failed)?;
    regular(&st)?;
    if st.st_size as u64 > MAX_FILE_SIZE {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            failed(rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO))
        })?;
    // It may have grown since the fstat.
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(too_big());
    }
    Ok(ConfigFile {
        bytes,
        identity: (st.st_dev, st.st_ino),
    })
}
