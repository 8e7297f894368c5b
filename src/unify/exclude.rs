//! The exclude list of vunify: rsync-like `+ PATTERN` / `- PATTERN` lines,
//! first match wins, checked against a package file's guest path and each of
//! its parent directories (so `- /usr/share/doc` excludes what is under it).
//!
//! Patterns: `*` any characters but `/`, `**` any characters, `?` one
//! character but `/`. A pattern that starts with `/` is anchored at the guest
//! root; otherwise it matches the end of the path at a `/` boundary
//! (`- *.pyc` excludes every .pyc file). A final `/` is ignored. Blank lines
//! and lines starting with `#` are comments.

use std::path::Path;

use crate::error::Context;
use crate::{Error, Result};

/// The default exclude file, under the configuration root (/etc).
pub const DEFAULT_FILE: &str = "vservers/vunify-exclude";

/// The largest exclude file read.
const MAX_SIZE: u64 = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct ExcludeList {
    rules: Vec<(bool, String)>,
}

impl ExcludeList {
    /// Parses the text of an exclude file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.trim_start().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.split_once(' ') {
                Some(("+", p)) => (true, p),
                Some(("-", p)) => (false, p),
                _ => {
                    return Err(Error::usage(format!(
                        "{origin}:{}: expected '+ PATTERN' or '- PATTERN', found '{line}'",
                        n + 1
                    )));
                }
            };
            let pattern = pattern.trim();
            let pattern = pattern.strip_suffix('/').unwrap_or(pattern);
            if pattern.is_empty() {
                return Err(Error::usage(format!("{origin}:{}: empty pattern", n + 1)));
            }
            rules.push((include, pattern.to_string()));
        }
        Ok(ExcludeList { rules })
    }

    /// Reads an exclude file; a missing file is an empty list when
    /// `optional` (the default file need not exist).
    pub fn load(path: &Path, optional: bool) -> Result<Self> {
        use std::io::Read;
        let shown = path.display();
        let file = match std::fs::File::open(path) {
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            r => r.context(|| format!("cannot open the exclude file {shown}"))?,
        };
        let mut text = String::new();
        file.take(MAX_SIZE + 1)
            .read_to_string(&mut text)
            .context(|| format!("cannot read the exclude file {shown}"))?;
        if text.len() as u64 > MAX_SIZE {
            return Err(Error::failure(format!(
                "{shown}: larger than {MAX_SIZE} bytes"
            )));
        }
        Self::parse(&text, &shown.to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a guest path is excluded: the first rule matching the path or
    /// one of its parent directories decides; no match is not excluded.
    pub fn excludes(&self, path: &str) -> bool {
        for (include, pattern) in &self.rules {
            let mut p = path;
            loop {
                if matches(pattern, p) {
                    return !include;
                }
                match p.rfind('/') {
                    Some(at) if at > 0 => p = &p[..at],
                    _ => break,
                }
            }
        }
        false
    }
}

/// Whether `pattern` matches `path` (anchored, or at a `/` boundary of the
/// end of the path for a relative pattern).
fn matches(pattern: &str, path: &str) -> bool {
    if pattern.starts_with('/') {
        return glob(pattern.as_bytes(), path.as_bytes());
    }
    let bytes = path.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .any(|(i, _)| glob(pattern.as_bytes(), &bytes[i + 1..]))
}

/// `*`, `**` and `?` glob matching over bytes, iterative (no recursion, so
/// no deep stacks on hostile paths): on a mismatch the last `*` takes one
/// more character if that is not `/`, else the last `**` does.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    // (position in the pattern after the star, position in the text)
    let mut single: Option<(usize, usize)> = None;
    let mut double: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && pat[p] == b'*' {
            if pat.get(p + 1) == Some(&b'*') {
                p += 2;
                double = Some((p, i));
                single = None;
            } else {
                p += 1;
                single = Some((p, i));
            }
            continue;
        }
        if p < pat.len() && (pat[p] == s[i] || (pat[p] == b'?' && s[i] != b'/')) {
            p += 1;
            i += 1;
            continue;
        }
        if let Some((sp, si)) = single.filter(|&(_, si)| s[si] != b'/') {
            single = Some((sp, si + 1));
            (p, i) = (sp, si + 1);
        } else if let Some((dp, di)) = double {
            single = None;
            double = Some((dp, di + 1));
            (p, i) = (dp, di + 1);
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(b"/usr/*/x", b"/usr/bin/x"));
        assert!(!glob(b"/usr/*/x", b"/usr/a/b/x"));
        assert!(glob(b"/usr/**/x", b"/usr/a/b/x"));
        assert!(glob(b"/usr/**", b"/usr/a/b/x"));
        assert!(glob(b"/u?r/lib", b"/usr/lib"));
        assert!(!glob(b"/u?r", b"/u/r"));
        assert!(glob(b"*.so*", b"libc.so.6"));
        assert!(!glob(b"*.so", b"a/b.so"));
        assert!(glob(b"/usr/**/lib*.so", b"/usr/a/libx/liby.so"));
        assert!(!glob(b"/usr/**/lib*.so", b"/usr/a/libx/y.so"));
        assert!(glob(b"", b""));
        assert!(!glob(b"a", b""));
        let long = "a/".repeat(2000);
        assert!(!glob(b"**b**c", long.as_bytes()));
    }

    #[test]
    fn first_match_wins_and_parents_count() {
        let l = ExcludeList::parse(
            "# comment\n\n+ /usr/share/doc/keep\n- /usr/share/doc/\n- *.pyc\n- /opt/**/cache\n",
            "test",
        )
        .unwrap();
        assert!(l.excludes("/usr/share/doc/bash/README"));
        assert!(!l.excludes("/usr/share/doc/keep/README"));
        assert!(!l.excludes("/usr/share/docs"));
        assert!(l.excludes("/usr/lib/python3/x.pyc"));
        assert!(!l.excludes("/usr/lib/python3/x.py"));
        assert!(l.excludes("/opt/a/b/cache/f"));
        assert!(!l.excludes("/usr/bin/ls"));
    }

    #[test]
    fn bad_lines_are_usage_errors() {
        for bad in ["/usr", "x /usr", "-", "- ", "+  /"] {
            let e = ExcludeList::parse(bad, "f").unwrap_err();
            assert_eq!(e.exit_status(), 2, "{bad}: {e}");
            assert!(e.to_string().starts_with("f:1: "), "{e}");
        }
    }
}
