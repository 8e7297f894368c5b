//! Runs a parsed configuration: expands words, follows `source`, picks case
//! arms, and records every assignment with where it happened.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfError, Location};
use super::root::ConfigRoot;
use super::syntax::{self, Part, Pattern, Stmt, Word};
use super::vars::Variables;
use crate::sys::errno::Errno;
use linux_raw_sys::errno::{EFBIG, EIO, EISDIR};

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
        } = read_config(path).map_err(|u| fail(format!("{}: {}", u.what, u.errno.describe())))?;
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
                    for item in items {
                        match &item.value {
                            Some(word) => {
                                let value = self.expand(word);
                                self.vars.set(&item.name, value, item.loc.clone(), *export);
                            }
                            None => self.vars.mark_exported(&item.name),
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

struct Unreadable {
    what: String,
    errno: Errno,
}

/// Reads a configuration file, refusing directories and huge files.
fn read_config(path: &Path) -> Result<ConfigFile, Unreadable> {
    let unreadable = |errno: Errno| Unreadable {
        what: format!("cannot read {}", path.display()),
        errno,
    };
    let io =
        |e: std::io::Error| unreadable(Errno::from_raw(e.raw_os_error().unwrap_or(EIO as i32)));
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(unreadable(Errno::from_raw(EISDIR as i32)));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(Unreadable {
            what: format!("{} is larger than {MAX_FILE_SIZE} bytes", path.display()),
            errno: Errno::from_raw(EFBIG as i32),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(ConfigFile {
        bytes,
        identity: (meta.dev(), meta.ino()),
    })
}
