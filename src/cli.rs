//! Argument parsing shared by the applets.
//!
//! Applets declare their options with argh, which takes UTF-8 only. A command
//! that is passed through to another program (`chcontext ... CMD ARGS`) must
//! reach it byte for byte, so the passthrough part is taken from the raw
//! arguments, never from argh's copy.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use argh::FromArgs;

use crate::{Error, Result};

/// What parsing decided: run with these options, or stop now with a status
/// (after `--help`).
pub enum Parsed<T> {
    Run(T),
    Exit(u8),
}

/// Parses an applet's arguments that are all its own (no passthrough).
pub fn parse<T: FromArgs>(applet: &str, args: &[OsString]) -> Result<Parsed<T>> {
    let strings = utf8_args(args, args.len())?;
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    from_args(applet, &refs, "")
}

/// Parses an applet whose argh struct ends in a greedy positional
/// (`#[argh(positional, greedy)] command: Vec<String>`): its own options are
/// parsed by argh, and the command is returned as the raw arguments it came
/// from, non-UTF-8 bytes intact.
///
/// `command_len` reads the length of the greedy positional from the parsed
/// struct. argh's greedy positional always holds the last arguments, so its
/// length says where the raw command starts.
pub fn parse_with_command<T: FromArgs>(
    applet: &str,
    args: &[OsString],
    command_len: impl Fn(&T) -> usize,
) -> Result<Parsed<(T, Vec<OsString>)>> {
    parse_with_command_noted(applet, args, command_len, "")
}

/// `parse_with_command`, with `note` printed after argh's help: text that
/// is made at run time (a table of subcommands), which argh's attributes
/// cannot hold.
pub fn parse_with_command_noted<T: FromArgs>(
    applet: &str,
    args: &[OsString],
    command_len: impl Fn(&T) -> usize,
    note: &str,
) -> Result<Parsed<(T, Vec<OsString>)>> {
    // Arguments that may belong to the command are handed to argh lossily;
    // the real bytes are taken from `args` below. Options before the command
    // must be UTF-8: they are checked once the split point is known.
    let lossy: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let refs: Vec<&str> = lossy.iter().map(String::as_str).collect();
    let parsed = match from_args(applet, &refs, note)? {
        Parsed::Run(t) => t,
        Parsed::Exit(code) => return Ok(Parsed::Exit(code)),
    };
    let start = args.len() - command_len(&parsed);
    utf8_args(args, start)?;
    Ok(Parsed::Run((parsed, args[start..].to_vec())))
}

/// The first `count` arguments as UTF-8 strings, or a usage error naming the
/// first one that is not.
fn utf8_args(args: &[OsString], count: usize) -> Result<Vec<String>> {
    args[..count]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.to_str().map(str::to_owned).ok_or_else(|| {
                Error::usage(format!(
                    "argument {} is not valid UTF-8: {}",
                    i + 1,
                    a.to_string_lossy()
                ))
            })
        })
        .collect()
}

/// argh's parse, with `-h` for `--help` and argh's complaints as usage
/// errors, so that they read like every other error (`APPLET: what (see
/// APPLET --help)`).
fn from_args<T: FromArgs>(applet: &str, args: &[&str], note: &str) -> Result<Parsed<T>> {
    let refused = match T::from_args(&[applet], args) {
        Ok(t) => return Ok(Parsed::Run(t)),
        Err(exit) if exit.status.is_ok() => return Ok(help(&exit.output, note)),
        Err(exit) => exit.output,
    };
    // argh knows only --help. A -h it refused stood where an option was
    // expected (a -h inside a passed-through command is not refused), so
    // it asked for help.
    if let Some(at) = args.iter().position(|a| *a == "-h") {
        let mut asked = args.to_vec();
        asked[at] = "--help";
        if let Err(exit) = T::from_args(&[applet], &asked)
            && exit.status.is_ok()
        {
            return Ok(help(&exit.output, note));
        }
    }
    // "Required positional arguments not provided:\n    name" on one line,
    // each line's user input shortened.
    let lines: Vec<String> = refused
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(crate::error::shown)
        .collect();
    Err(Error::usage(lines.join(" ")))
}

fn help<T>(text: &str, note: &str) -> Parsed<T> {
    println!("{}", text.trim_end());
    if !note.is_empty() {
        println!("\n{}", note.trim_end());
    }
    Parsed::Exit(0)
}

/// `w` as one word for a POSIX shell: as it is when that is safe, else in
/// single quotes.
pub fn shell_quote(w: &OsStr) -> String {
    let s = w.to_string_lossy();
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"-_./:@=+,%".contains(b);
    if !s.is_empty() && w.as_bytes().iter().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The last path component of how a program was called (`/sbin/printconf`
/// is `printconf`).
pub fn basename(argv0: &OsStr) -> &OsStr {
    let bytes = argv0.as_bytes();
    match bytes.iter().rposition(|&b| b == b'/') {
        Some(at) => OsStr::from_bytes(&bytes[at + 1..]),
        None => argv0,
    }
}

/// A number of seconds with an optional fraction ("2", "0.5", "1.25"), to
/// the nanosecond; None for anything else. Parsed by hand: std's float
/// parsing would cost the binary 17 KB.
pub fn decimal_seconds(text: &str) -> Option<std::time::Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 9
    {
        return None;
    }
    let secs = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let nanos = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<u32>().ok()? * 10u32.pow(9 - fraction.len() as u32)
    };
    Some(std::time::Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_seconds_to_the_nanosecond() {
        use std::time::Duration;
        assert_eq!(super::decimal_seconds("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            super::decimal_seconds("0.5"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            super::decimal_seconds(".25"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(super::decimal_seconds("3."), Some(Duration::from_secs(3)));
        assert_eq!(
            super::decimal_seconds("1.000000001"),
            Some(Duration::new(1, 1))
        );
        for bad in ["", ".", "1.0000000001", "-1", "1e3", "a", "1.5s", "+2"] {
            assert_eq!(super::decimal_seconds(bad), None, "{bad}");
        }
    }

    use super::*;
    use std::os::unix::ffi::OsStringExt;

    /// Runs a command in a test context.
    #[derive(FromArgs, Debug)]
    struct Demo {
        /// a numbered option
        #[argh(option)]
        ctx: Option<u32>,
        /// a text option
        #[argh(option)]
        hostname: Option<String>,
        /// a flag
        #[argh(switch)]
        silent: bool,
        /// the command
        #[argh(positional, greedy)]
        command: Vec<String>,
    }

    fn os(args: &[&[u8]]) -> Vec<OsString> {
        args.iter()
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect()
    }

    fn run(args: &[&[u8]]) -> (Demo, Vec<OsString>) {
        match parse_with_command::<Demo>("demo", &os(args), |d| d.command.len()).unwrap() {
            Parsed::Run(r) => r,
            Parsed::Exit(c) => panic!("exit {c}"),
        }
    }

    #[test]
    fn command_keeps_non_utf8_bytes_and_option_lookalikes() {
        let (demo, cmd) = run(&[
            b"--ctx",
            b"5",
            b"prog",
            b"\xff\xfe",
            b"--silent",
            b"",
            b"a b",
        ]);
        assert_eq!(demo.ctx, Some(5));
        assert_eq!(demo.hostname, None);
        assert!(
            !demo.silent,
            "--silent after the command belongs to the command"
        );
        assert_eq!(cmd, os(&[b"prog", b"\xff\xfe", b"--silent", b"", b"a b"]));
    }

    #[test]
    fn double_dash_starts_the_command() {
        let (demo, cmd) = run(&[b"--silent", b"--", b"--ctx", b"\x80"]);
        assert!(demo.silent);
        assert_eq!(demo.ctx, None);
        assert_eq!(cmd, os(&[b"--ctx", b"\x80"]));
    }

    #[test]
    fn non_utf8_option_value_is_a_usage_error() {
        let err = parse_with_command::<Demo>("demo", &os(&[b"--hostname", b"\xff", b"x"]), |d| {
            d.command.len()
        })
        .err()
        .expect("a non-UTF-8 option value is refused");
        assert_eq!(err.exit_status(), 2);
    }

    #[test]
    fn bad_option_exits_2_and_help_exits_0() {
        let err = parse::<Demo>("demo", &os(&[b"--nope"])).err().unwrap();
        assert_eq!(err.exit_status(), 2);
        assert_eq!(
            err.report("demo"),
            "demo: Unrecognized argument: --nope (see demo --help)"
        );
        for help in [&b"--help"[..], b"-h"] {
            assert!(matches!(
                parse::<Demo>("demo", &os(&[b"--silent", help])),
                Ok(Parsed::Exit(0))
            ));
        }
    }

    #[test]
    fn dash_h_in_the_command_is_the_commands() {
        let (_, cmd) = run(&[b"ls", b"-h"]);
        assert_eq!(cmd, os(&[b"ls", b"-h"]));
    }

    #[test]
    fn basename_strips_directories() {
        assert_eq!(basename(OsStr::new("/usr/sbin/printconf")), "printconf");
        assert_eq!(basename(OsStr::new("vsbox")), "vsbox");
        assert_eq!(basename(OsStr::new("dir/")), "");
    }
}
