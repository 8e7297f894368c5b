//! The grammar of vserver configuration files: the small part of the shell
//! language the seed's files use, parsed, never run.
//!
//! Accepted: `VAR=value` (several per line), `export VAR[=value]...`,
//! `source FILE` and `. FILE`, `case WORD in PATTERN[|PATTERN]) ... ;; esac`
//! (assignments only inside), `#` comments, `;` and newlines between
//! statements. Words may mix unquoted text, `'literal'`, `"double quoted"`,
//! backslash escapes, `$VAR`, `${VAR}` and `${VAR:-default}`. Everything else
//! a shell would do (commands, command substitution, pipes, redirections,
//! `if`, loops, functions, globbing) is an error at its line and column.

use std::path::Path;
use std::sync::Arc;

use super::error::{ConfError, Location};

/// One parsed file.
#[derive(Debug, Default)]
pub struct Script {
    pub stmts: Vec<Stmt>,
    /// The first `# Description: ...` comment.
    pub description: Option<String>,
}

#[derive(Debug)]
pub enum Stmt {
    /// `A=1 B=2`, or `export A=1 B` (a name without `=` only marks it).
    Assign {
        export: bool,
        items: Vec<Assign>,
    },
    Source {
        path: Word,
        loc: Location,
    },
    Case {
        subject: Word,
        arms: Vec<Arm>,
    },
}

#[derive(Debug)]
pub struct Assign {
    pub name: String,
    /// None for `export NAME` without a value.
    pub value: Option<Word>,
    pub loc: Location,
}

#[derive(Debug)]
pub struct Arm {
    pub patterns: Vec<Pattern>,
    pub body: Vec<Stmt>,
}

#[derive(Debug)]
pub enum Pattern {
    /// `*`: matches anything.
    Any,
    Exact(Word),
}

#[derive(Debug, Clone)]
pub struct Word {
    pub parts: Vec<Part>,
    pub loc: Location,
}

#[derive(Debug, Clone)]
pub enum Part {
    Lit(String),
    /// `$NAME`, `${NAME}`, or `${NAME:-default}`.
    Var {
        name: String,
        default: Option<Word>,
    },
}

/// Words that start shell constructs this format does not have.
const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "function",
    "select", "time", "!", "{", "}", "[[", "]]", "in", "esac",
];

const ALLOWED: &str = "a configuration holds only VAR=value, export, source FILE, . FILE and case";

pub fn parse(file: &Arc<Path>, text: &str) -> Result<Script, ConfError> {
    let mut p = Parser {
        lx: Lexer::new(file, text),
        peeked: None,
    };
    let stmts = p.stmts(false)?;
    match p.next()? {
        Tok {
            kind: Kind::Eof, ..
        } => {}
        t => return Err(p.lx.error(&t.loc, unexpected(&t.kind))),
    }
    Ok(Script {
        stmts,
        description: p.lx.description.take(),
    })
}

// ---------------------------------------------------------------- tokens

#[derive(Debug)]
enum Kind {
    Word(RawWord),
    Newline,
    Semi,
    DoubleSemi,
    Pipe,
    CloseParen,
    Eof,
}

#[derive(Debug)]
struct Tok {
    kind: Kind,
    loc: Location,
}

#[derive(Debug)]
struct RawWord {
    parts: Vec<Part>,
    /// The whole word when it is plain unquoted text (keywords, `*`).
    plain: Option<String>,
    /// `NAME` when the word starts with an unquoted `NAME=`; `parts` then
    /// holds only the value.
    assign: Option<String>,
    /// An unquoted `*`, `?` or `[` occurs in the word.
    glob: bool,
}

fn unexpected(kind: &Kind) -> String {
    match kind {
        Kind::Word(w) => match (&w.plain, &w.assign) {
            (_, Some(name)) => format!("unexpected assignment to {name}"),
            (Some(p), None) => format!("unexpected '{}'", crate::error::shown(p)),
            _ => "unexpected word".to_string(),
        },
        Kind::Newline => "unexpected end of line".to_string(),
        Kind::Semi => "unexpected ';'".to_string(),
        Kind::DoubleSemi => "';;' outside a case".to_string(),
        Kind::Pipe => format!("pipes are not allowed: {ALLOWED}"),
        Kind::CloseParen => "unexpected ')'".to_string(),
        Kind::Eof => "unexpected end of file".to_string(),
    }
}

/// A control character that cannot be meant in a configuration: all but
/// tab and newline.
fn unwanted_control(c: char) -> bool {
    c.is_control() && c != '\t' && c != '\n'
}

fn control_message(c: char) -> String {
    let hint = if c == '\r' {
        " (a CRLF line end inside quotes or after a backslash: save the file with LF line ends)"
    } else {
        ""
    };
    format!(
        "control character U+{:04X} is not allowed: only tab and newline are{hint}",
        c as u32
    )
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

// ---------------------------------------------------------------- lexer

struct Lexer<'a> {
    file: Arc<Path>,
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    description: Option<String>,
}

impl<'a> Lexer<'a> {
    fn new(file: &Arc<Path>, text: &'a str) -> Self {
        Lexer {
            file: file.clone(),
            text,
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
            description: None,
        }
    }

    fn loc(&self) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    fn error(&self, loc: &Location, message: impl Into<String>) -> ConfError {
        ConfError::at(loc, self.text, message)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Takes the next character of a word (None at end of file). Control
    /// characters other than tab and newline cannot be meant in a value
    /// (a NUL cannot even reach a program's environment or argv, an ESC
    /// would be printed raw to a terminal by printconf), so they are
    /// refused at their place.
    fn word_char(&mut self) -> Result<Option<char>, ConfError> {
        let loc = self.loc();
        match self.bump() {
            Some(c) if unwanted_control(c) => Err(self.error(&loc, control_message(c))),
            c => Ok(c),
        }
    }

    fn next_token(&mut self) -> Result<Tok, ConfError> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('\\') if self.peek_at(1) == Some('\n') => {
                    self.bump();
                    self.bump();
                }
                Some('#') => self.comment()?,
                _ => break,
            }
        }
        let loc = self.loc();
        let kind = match self.peek() {
            None => Kind::Eof,
            Some('\n') => {
                self.bump();
                Kind::Newline
            }
            Some(';') => {
                self.bump();
                if self.peek() == Some(';') {
                    self.bump();
                    Kind::DoubleSemi
                } else {
                    Kind::Semi
                }
            }
            Some('|') => {
                self.bump();
                if self.peek() == Some('|') {
                    return Err(self.error(&loc, format!("'||' lists are not allowed: {ALLOWED}")));
                }
                Kind::Pipe
            }
            Some(')') => {
                self.bump();
                Kind::CloseParen
            }
            Some('&') => {
                return Err(self.error(
                    &loc,
                    format!("'&' (background, && lists) is not allowed: {ALLOWED}"),
                ));
            }
            Some('<' | '>') => {
                return Err(self.error(&loc, format!("redirections are not allowed: {ALLOWED}")));
            }
            Some('(') => {
                return Err(self.error(
                    &loc,
                    format!("subshells and functions are not allowed: {ALLOWED}"),
                ));
            }
            Some(_) => Kind::Word(self.word()?),
        };
        Ok(Tok { kind, loc })
    }

    /// Skips a comment, keeping the first `# Description: ...` text, which
    /// is a value too (printconf shows it): no control characters in it.
    fn comment(&mut self) -> Result<(), ConfError> {
        let hash = self.loc();
        let start = self.pos;
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
        if self.description.is_some() {
            return Ok(());
        }
        let text: String = self.chars[start + 1..self.pos].iter().collect();
        let Some(rest) = text.trim_start().strip_prefix("Description:") else {
            return Ok(());
        };
        let description = rest.trim();
        // Where the description starts in the comment, in characters.
        let lead = text.len() - rest.trim_start().len();
        if let Some((at, c)) = description
            .chars()
            .enumerate()
            .find(|&(_, c)| unwanted_control(c))
        {
            let loc = Location {
                col: hash.col + 1 + (text[..lead].chars().count() + at) as u32,
                ..hash
            };
            return Err(self.error(&loc, control_message(c)));
        }
        self.description = Some(description.to_string());
        Ok(())
    }

    fn word(&mut self) -> Result<RawWord, ConfError> {
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let mut plain = true;
        let mut glob = false;
        let mut assign = None;

        // An unquoted NAME= at the start makes the word an assignment.
        if self.peek().is_some_and(is_name_start) {
            let mut n = 0;
            while self.peek_at(n).is_some_and(is_name_char) {
                n += 1;
            }
            if self.peek_at(n) == Some('=') {
                let name: String = (0..n).map(|_| self.bump().unwrap()).collect();
                self.bump();
                assign = Some(name);
                plain = false;
            }
        }
        if self.peek() == Some('~') {
            let loc = self.loc();
            return Err(self.error(&loc, "tilde expansion is not supported: write the path out"));
        }

        while let Some(c) = self.peek() {
            let loc = self.loc();
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '|' | '&' | '<' | '>' | '(' | ')' => break,
                '\'' => {
                    plain = false;
                    self.bump();
                    loop {
                        match self.word_char()? {
                            Some('\'') => break,
                            Some(ch) => lit.push(ch),
                            None => return Err(self.error(&loc, "unterminated single quote")),
                        }
                    }
                }
                '"' => {
                    plain = false;
                    self.bump();
                    self.double_quoted(&loc, &mut parts, &mut lit)?;
                }
                '\\' => {
                    plain = false;
                    self.bump();
                    match self.word_char()? {
                        Some('\n') => {}
                        Some(ch) => lit.push(ch),
                        None => return Err(self.error(&loc, "backslash at end of file")),
                    }
                }
                '$' => {
                    if let Some(part) = self.dollar()? {
                        plain = false;
                        flush(&mut parts, &mut lit);
                        parts.push(part);
                    } else {
                        lit.push('$');
                    }
                }
                '`' => return Err(self.error(&loc, "command substitution (`...`) is not allowed")),
                _ => {
                    if matches!(c, '*' | '?' | '[') {
                        glob = true;
                    }
                    lit.push(c);
                    self.word_char()?;
                }
            }
        }
        let plain = (plain && parts.is_empty()).then(|| lit.clone());
        flush(&mut parts, &mut lit);
        Ok(RawWord {
            parts,
            plain,
            assign,
            glob,
        })
    }

    fn double_quoted(
        &mut self,
        open: &Location,
        parts: &mut Vec<Part>,
        lit: &mut String,
    ) -> Result<(), ConfError> {
        loop {
            let loc = self.loc();
            match self.peek() {
                None => return Err(self.error(open, "unterminated double quote")),
                Some('"') => {
                    self.bump();
                    return Ok(());
                }
                Some('\\') => {
                    self.bump();
                    match self.word_char()? {
                        Some('\n') => {}
                        Some(ch @ ('$' | '`' | '"' | '\\')) => lit.push(ch),
                        Some(ch) => {
                            lit.push('\\');
                            lit.push(ch);
                        }
                        None => return Err(self.error(open, "unterminated double quote")),
                    }
                }
                Some('$') => match self.dollar()? {
                    Some(part) => {
                        flush(parts, lit);
                        parts.push(part);
                    }
                    None => lit.push('$'),
                },
                Some('`') => {
                    return Err(self.error(&loc, "command substitution (`...`) is not allowed"));
                }
                Some(ch) => {
                    lit.push(ch);
                    self.word_char()?;
                }
            }
        }
    }

    /// At a `$`: an expansion, or None for a literal dollar sign (consumed).
    fn dollar(&mut self) -> Result<Option<Part>, ConfError> {
        let loc = self.loc();
        self.bump();
        match self.peek() {
            Some('(') if self.peek_at(1) == Some('(') => {
                Err(self.error(&loc, "arithmetic expansion $((...)) is not allowed"))
            }
            Some('(') => Err(self.error(&loc, "command substitution $(...) is not allowed")),
            Some('{') => {
                self.bump();
                self.braced(&loc).map(Some)
            }
            Some(c) if is_name_start(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
                    name.push(c);
                    self.bump();
                }
                Ok(Some(Part::Var {
                    name,
                    default: None,
                }))
            }
            Some(c) if c.is_ascii_digit() || "#?$!@*-".contains(c) => {
                Err(self.error(&loc, format!("special parameter ${c} is not supported")))
            }
            _ => Ok(None),
        }
    }

    /// After `${`: NAME} or NAME:-default}.
    fn braced(&mut self, open: &Location) -> Result<Part, ConfError> {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
            name.push(c);
            self.bump();
        }
        if name.is_empty() || !name.starts_with(is_name_start) {
            return Err(self.error(open, "expected a variable name after '${'"));
        }
        match self.peek() {
            Some('}') => {
                self.bump();
                Ok(Part::Var {
                    name,
                    default: None,
                })
            }
            Some(':') if self.peek_at(1) == Some('-') => {
                self.bump();
                self.bump();
                let word_loc = self.loc();
                let mut parts = Vec::new();
                let mut lit = String::new();
                loop {
                    let loc = self.loc();
                    match self.peek() {
                        None => return Err(self.error(open, "unterminated '${'")),
                        Some('}') => {
                            self.bump();
                            break;
                        }
                        Some('"') => {
                            self.bump();
                            self.double_quoted(&loc, &mut parts, &mut lit)?;
                        }
                        Some('\'') => {
                            self.bump();
                            loop {
                                match self.word_char()? {
                                    Some('\'') => break,
                                    Some(ch) => lit.push(ch),
                                    None => {
                                        return Err(self.error(&loc, "unterminated single quote"));
                                    }
                                }
                            }
                        }
                        Some('$') => match self.dollar()? {
                            Some(part) => {
                                flush(&mut parts, &mut lit);
                                parts.push(part);
                            }
                            None => lit.push('$'),
                        },
                        Some('`') => {
                            return Err(
                                self.error(&loc, "command substitution (`...`) is not allowed")
                            );
                        }
                        Some('\\') => {
                            self.bump();
                            match self.word_char()? {
                                Some(ch) => lit.push(ch),
                                None => return Err(self.error(open, "unterminated '${'")),
                            }
                        }
                        Some(ch) => {
                            lit.push(ch);
                            self.word_char()?;
                        }
                    }
                }
                flush(&mut parts, &mut lit);
                Ok(Part::Var {
                    name,
                    default: Some(Word {
                        parts,
                        loc: word_loc,
                    }),
                })
            }
            _ => Err(self.error(open, "only ${VAR} and ${VAR:-default} are supported")),
        }
    }
}

fn flush(parts: &mut Vec<Part>, lit: &mut String) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

// ---------------------------------------------------------------- parser

struct Parser<'a> {
    lx: Lexer<'a>,
    peeked: Option<Tok>,
}

impl Parser<'_> {
    fn next(&mut self) -> Result<Tok, ConfError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lx.next_token(),
        }
    }

    fn peek(&mut self) -> Result<&Tok, ConfError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lx.next_token()?);
        }
        Ok(self.peeked.as_ref().unwrap())
    }

    fn word(raw: RawWord, loc: Location) -> Word {
        Word {
            parts: raw.parts,
            loc,
        }
    }

    /// Statements up to end of file, or (in a case arm) up to `;;` / `esac`.
    fn stmts(&mut self, in_case: bool) -> Result<Vec<Stmt>, ConfError> {
        let mut out = Vec::new();
        loop {
            let tok = self.peek()?;
            match &tok.kind {
                Kind::Newline | Kind::Semi => {
                    self.next()?;
                }
                Kind::Eof => return Ok(out),
                Kind::DoubleSemi if in_case => return Ok(out),
                Kind::Word(w) if in_case && w.plain.as_deref() == Some("esac") => return Ok(out),
                Kind::Word(_) => {
                    let stmt = self.stmt()?;
                    out.push(stmt);
                    self.end_of_statement(in_case)?;
                }
                _ => {
                    let tok = self.next()?;
                    return Err(self.lx.error(&tok.loc, unexpected(&tok.kind)));
                }
            }
        }
    }

    /// After a statement: a newline, `;`, end of file, or `;;` in a case.
    fn end_of_statement(&mut self, in_case: bool) -> Result<(), ConfError> {
        let tok = self.peek()?;
        match &tok.kind {
            Kind::Newline | Kind::Semi | Kind::Eof => Ok(()),
            Kind::DoubleSemi if in_case => Ok(()),
            Kind::Word(w) if w.assign.is_none() => {
                let what = w.plain.clone().unwrap_or_else(|| "a word".to_string());
                let tok = self.next()?;
                Err(self.lx.error(
                    &tok.loc,
                    format!(
                        "'{}' after a statement: commands are not allowed ({})",
                        crate::error::shown(&what),
                        ALLOWED,
                    ),
                ))
            }
            _ => {
                let tok = self.next()?;
                Err(self.lx.error(&tok.loc, unexpected(&tok.kind)))
            }
        }
    }

    fn stmt(&mut self) -> Result<Stmt, ConfError> {
        let tok = self.next()?;
        let Kind::Word(raw) = tok.kind else {
            unreachable!("stmt() is called on a word")
        };
        if let Some(name) = raw.assign {
            let mut items = vec![Assign {
                name,
                value: Some(Word {
                    parts: raw.parts,
                    loc: tok.loc.clone(),
                }),
                loc: tok.loc,
            }];
            self.more_assignments(&mut items, false)?;
            return Ok(Stmt::Assign {
                export: false,
                items,
            });
        }
        match raw.plain.as_deref() {
            Some("export") => {
                let mut items = Vec::new();
                self.more_assignments(&mut items, true)?;
                if items.is_empty() {
                    return Err(self
                        .lx
                        .error(&tok.loc, "export needs at least one VAR or VAR=value"));
                }
                Ok(Stmt::Assign {
                    export: true,
                    items,
                })
            }
            Some("source" | ".") => {
                let arg = self.next()?;
                match arg.kind {
                    Kind::Word(w) if w.assign.is_none() => {
                        if let Tok {
                            kind: Kind::Word(_),
                            loc,
                        } = self.peek()?
                        {
                            let loc = loc.clone();
                            return Err(self.lx.error(
                                &loc,
                                "source takes one FILE (arguments are not supported)",
                            ));
                        }
                        Ok(Stmt::Source {
                            path: Self::word(w, arg.loc),
                            loc: tok.loc,
                        })
                    }
                    _ => Err(self.lx.error(&tok.loc, "source needs a FILE")),
                }
            }
            Some("case") => self.case(tok.loc),
            Some(word) if RESERVED.contains(&word) => Err(self.lx.error(
                &tok.loc,
                format!(
                    "'{}' is not supported: {}",
                    crate::error::shown(word),
                    ALLOWED,
                ),
            )),
            Some(word) => Err(self.lx.error(
                &tok.loc,
                format!(
                    "'{}' is a command; commands are not allowed ({})",
                    crate::error::shown(word),
                    ALLOWED,
                ),
            )),
            None => Err(self
                .lx
                .error(&tok.loc, format!("commands are not allowed ({ALLOWED})"))),
        }
    }

    /// Further `NAME=value` words on the same statement; with `bare`, plain
    /// `NAME` words too (for export).
    fn more_assignments(&mut self, items: &mut Vec<Assign>, bare: bool) -> Result<(), ConfError> {
        loop {
            let tok = self.peek()?;
            let Kind::Word(w) = &tok.kind else {
                return Ok(());
            };
            let is_bare_name = bare
                && w.plain
                    .as_deref()
                    .is_some_and(|p| p.starts_with(is_name_start) && p.chars().all(is_name_char));
            if w.assign.is_none() && !is_bare_name {
                if bare && w.plain.as_deref().is_some_and(|p| p.starts_with('-')) {
                    let loc = tok.loc.clone();
                    return Err(self.lx.error(&loc, "export options are not supported"));
                }
                return Ok(());
            }
            let tok = self.next()?;
            let Kind::Word(raw) = tok.kind else {
                unreachable!()
            };
            let item = match raw.assign {
                Some(name) => Assign {
                    name,
                    value: Some(Word {
                        parts: raw.parts,
                        loc: tok.loc.clone(),
                    }),
                    loc: tok.loc,
                },
                None => Assign {
                    name: raw.plain.unwrap(),
                    value: None,
                    loc: tok.loc,
                },
            };
            items.push(item);
        }
    }

    /// `case WORD in PAT[|PAT]) stmts ;; ... esac`
    fn case(&mut self, case_loc: Location) -> Result<Stmt, ConfError> {
        let subject = match self.next()? {
            Tok {
                kind: Kind::Word(w),
                loc,
            } if w.assign.is_none() => Self::word(w, loc),
            t => return Err(self.lx.error(&t.loc, "case needs a word to match")),
        };
        match self.next()? {
            Tok {
                kind: Kind::Word(w),
                ..
            } if w.plain.as_deref() == Some("in") => {}
            t => return Err(self.lx.error(&t.loc, "expected 'in' after the case word")),
        }
        let mut arms = Vec::new();
        loop {
            // Skip blank lines between arms.
            while matches!(self.peek()?.kind, Kind::Newline) {
                self.next()?;
            }
            let tok = self.next()?;
            let first = match tok.kind {
                Kind::Word(w) if w.plain.as_deref() == Some("esac") => break,
                Kind::Word(w) => (w, tok.loc),
                Kind::Eof => {
                    return Err(self.lx.error(&case_loc, "case without a matching 'esac'"));
                }
                other => return Err(self.lx.error(&tok.loc, unexpected(&other))),
            };
            let mut patterns = vec![self.pattern(first.0, first.1)?];
            loop {
                let tok = self.next()?;
                match tok.kind {
                    Kind::Pipe => match self.next()? {
                        Tok {
                            kind: Kind::Word(w),
                            loc,
                        } => patterns.push(self.pattern(w, loc)?),
                        t => return Err(self.lx.error(&t.loc, "expected a pattern after '|'")),
                    },
                    Kind::CloseParen => break,
                    _ => {
                        return Err(self
                            .lx
                            .error(&tok.loc, "expected ')' after the case pattern"));
                    }
                }
            }
            let body = self.stmts(true)?;
            if let Some(bad) = body.iter().find_map(|s| match s {
                Stmt::Assign { .. } => None,
                Stmt::Source { loc, .. } => Some(loc.clone()),
                Stmt::Case { subject, .. } => Some(subject.loc.clone()),
            }) {
                return Err(self.lx.error(&bad, "a case arm holds assignments only"));
            }
            arms.push(Arm { patterns, body });
            let tok = self.next()?;
            match tok.kind {
                Kind::DoubleSemi => {}
                Kind::Word(w) if w.plain.as_deref() == Some("esac") => break,
                Kind::Eof => {
                    return Err(self.lx.error(&case_loc, "case without a matching 'esac'"));
                }
                other => return Err(self.lx.error(&tok.loc, unexpected(&other))),
            }
        }
        Ok(Stmt::Case { subject, arms })
    }

    fn pattern(&self, raw: RawWord, loc: Location) -> Result<Pattern, ConfError> {
        if raw.plain.as_deref() == Some("*") {
            return Ok(Pattern::Any);
        }
        if raw.glob || raw.assign.is_some() {
            return Err(self
                .lx
                .error(&loc, "case patterns are literal words or a lone '*'"));
        }
        Ok(Pattern::Exact(Self::word(raw, loc)))
    }
}
