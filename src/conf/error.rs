//! Configuration errors: where (file, line, column), what, and the line
//! itself with a caret under the column.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A place in a configuration file. Lines and columns count from 1; columns
/// count characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    pub file: Arc<Path>,
    pub line: Option<u32>,
    pub col: Option<u32>,
    pub message: String,
    /// The text of the offending line, shown with a caret under `col`.
    pub source_line: Option<String>,
}

impl ConfError {
    /// A syntax error at a place in a file whose text is `text`.
    pub fn at(loc: &Location, text: &str, message: impl Into<String>) -> Self {
        ConfError {
            file: loc.file.clone(),
            line: Some(loc.line),
            col: Some(loc.col),
            message: message.into(),
            source_line: text.lines().nth(loc.line as usize - 1).map(shown_line),
        }
    }

    /// A bad value: the variable's assignment is at `loc` (line 0 for a
    /// value that came from the command line or environment).
    pub fn value(loc: &Location, var: &str, message: impl fmt::Display) -> Self {
        ConfError {
            file: loc.file.clone(),
            line: (loc.line > 0).then_some(loc.line),
            col: None,
            message: format!("{var}: {message}"),
            source_line: None,
        }
    }

    /// An error about a whole file (missing, unreadable, too large).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfError {
            file: Arc::from(file),
            line: None,
            col: None,
            message: message.into(),
            source_line: None,
        }
    }
}

/// A line of a file as an error shows it: control characters (but tabs,
/// which keep the caret aligned) become '?', one for one, so a file cannot
/// send escape sequences to the terminal and the caret stays in place.
fn shown_line(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(col) = self.col {
            write!(f, ":{col}")?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(text), Some(col)) = (&self.source_line, self.col) {
            // Keep tabs in the caret line so the caret lines up under them.
            let pad: String = text
                .chars()
                .take(col as usize - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n    {text}\n    {pad}^")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfError {}

impl From<ConfError> for crate::Error {
    fn from(e: ConfError) -> Self {
        crate::Error::config(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_column_across_tabs() {
        let loc = Location {
            file: Arc::from(Path::new("/etc/vservers/a.conf")),
            line: 2,
            col: 4,
        };
        let e = ConfError::at(
            &loc,
            "A=1\n\tB=$(x)\n",
            "command substitution is not allowed",
        );
        assert_eq!(
            e.to_string(),
            "/etc/vservers/a.conf:2:4: command substitution is not allowed\n    \tB=$(x)\n    \t  ^"
        );
    }

    #[test]
    fn value_errors_name_file_line_and_variable() {
        let loc = Location {
            file: Arc::from(Path::new("a.conf")),
            line: 7,
            col: 1,
        };
        let e = ConfError::value(&loc, "S_FLAGS", "unknown flag 'fast'");
        assert_eq!(e.to_string(), "a.conf:7: S_FLAGS: unknown flag 'fast'");
    }
}
