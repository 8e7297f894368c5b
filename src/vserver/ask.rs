//! The interactive side of `vserver NAME build` on a terminal (the seed's
//! newvserver): asks for what the command line did not give.

use std::io::{BufRead, Write};

use super::build::{BuildOptions, Method};
use crate::{Error, Result};

/// How many times a bad answer is asked again before giving up.
const TRIES: usize = 3;

/// Asks for the build method, host name, addresses and description, each
/// with its current value as the default (an empty answer keeps it).
pub fn ask_build_options(
    name: &str,
    opts: &mut BuildOptions,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> Result<()> {
    let method = ask(
        input,
        output,
        "Build method (busybox, skeleton, host, clone:OTHER, debootstrap[:SUITE])",
        &opts.method.to_string(),
        |a| a.parse::<Method>().map(|_| ()).map_err(|e| e.to_string()),
    )?;
    opts.method = method.parse()?;
    let hostname = opts.hostname.clone().unwrap_or_else(|| name.to_string());
    opts.hostname = Some(ask(input, output, "Host name", &hostname, |a| {
        if a.is_empty() || a.len() > 64 || a.contains(char::is_whitespace) {
            Err("1 to 64 characters, no blanks".into())
        } else {
            Ok(())
        }
    })?);
    let ip = ask(
        input,
        output,
        "IP addresses (IPROOT: [device:]ip[/mask] ..., empty for the host's)",
        opts.ip.as_deref().unwrap_or(""),
        |a| crate::net::iproot::IpRoot::parse(a).map(|_| ()),
    )?;
    opts.ip = (!ip.is_empty()).then_some(ip);
    let description = ask(
        input,
        output,
        "Description",
        opts.description.as_deref().unwrap_or(""),
        |_| Ok(()),
    )?;
    opts.description = (!description.is_empty()).then_some(description);
    Ok(())
}

/// One question: prints `question [default]: `, reads a line, checks it.
fn ask(
    input: &mut impl BufRead,
    output: &mut impl Write,
    question: &str,
    default: &str,
    check: impl Fn(&str) -> std::result::Result<(), String>,
) -> Result<String> {
    for _ in 0..TRIES {
        let _ = write!(output, "{question} [{default}]: ");
        let _ = output.flush();
        let mut line = String::new();
        if input
            .read_line(&mut line)
            .map_err(|e| Error::io("cannot read the answer", &e))?
            == 0
        {
            return Err(Error::usage("no answer (end of input)"));
        }
        let answer = match line.trim() {
            "" => default.to_string(),
            a => a.to_string(),
        };
        match check(&answer) {
            Ok(()) => return Ok(answer),
            Err(why) => {
                let _ = writeln!(output, "  {why}");
            }
        }
    }
    Err(Error::usage(format!("no valid answer to \"{question}\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(answers: &str) -> (Result<BuildOptions>, String) {
        let mut opts = BuildOptions::default();
        let mut out = Vec::new();
        let r =
            ask_build_options("web", &mut opts, &mut answers.as_bytes(), &mut out).map(|()| opts);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn empty_answers_keep_the_defaults() {
        let (opts, out) = run("\n\n\n\n");
        let opts = opts.unwrap();
        assert_eq!(opts.method.to_string(), "busybox");
        assert_eq!(opts.hostname.as_deref(), Some("web"));
        assert_eq!((opts.ip, opts.description), (None, None));
        assert!(out.starts_with("Build method (busybox, skeleton, host, clone:OTHER, debootstrap[:SUITE]) [busybox]: "), "{out}");
    }

    #[test]
    fn answers_are_checked_and_asked_again() {
        let (opts, out) = run("teleport\nskeleton\nw1\n1.2.3\n127.0.0.7/8\nA web server\n");
        let opts = opts.unwrap();
        assert_eq!(opts.method.to_string(), "skeleton");
        assert_eq!(opts.hostname.as_deref(), Some("w1"));
        assert_eq!(opts.ip.as_deref(), Some("127.0.0.7/8"));
        assert_eq!(opts.description.as_deref(), Some("A web server"));
        assert_eq!(
            out.matches("Build method").count(),
            2,
            "asked again after a bad method: {out}"
        );
        assert!(out.contains("not an IP address"), "{out}");
    }

    #[test]
    fn end_of_input_is_an_error() {
        assert!(run("").0.is_err());
        assert!(
            run("bad\nworse\nworst\n").0.is_err(),
            "three bad answers give up"
        );
    }
}
