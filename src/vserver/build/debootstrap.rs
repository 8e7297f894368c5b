//! The debootstrap method: Debian's bootstrapper run into the build
//! directory, with the variant and the extra packages asked for, from the
//! mirror given or else the host's own (see apt_sources).
//!
//! Its output: on a terminal, debootstrap's `I:` lines (Retrieving,
//! Validating, Extracting, Unpacking, Configuring ...) become the build's
//! status line, and every other line (its warnings and errors) is printed
//! whole. Elsewhere it goes where it always went, to the caller's stdout
//! and stderr (a script's log). debootstrap's own detailed log stays in
//! the new tree's debootstrap/debootstrap.log while it runs, as usual.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::fs::OFlags;
use rustix::pipe::PipeFlags;

use super::apt_sources;
use super::populate::Ctx;
use crate::error::Context;
use crate::progress::Style;
use crate::{Error, Result};

/// Where debootstrap is, or a clear error.
pub fn find() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join("debootstrap"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::failure(
                "debootstrap is not installed (apt-get install debootstrap; it also needs \
                 the network); the busybox, host and clone methods need neither",
            )
        })
}

/// `--variant`: one word (minbase, buildd, fakechroot ...), which cannot
/// be taken for another option.
pub fn check_variant(v: &str) -> Result<()> {
    let ok = v.len() <= 32
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "--variant '{}' is not a debootstrap variant (one word: minbase, buildd ...)",
            crate::error::shown(v)
        )))
    }
}

/// `--include PKG,PKG`: the package names, each as dpkg allows them.
pub fn parse_include(list: &str) -> Result<Vec<String>> {
    list.split(',')
        .map(|name| {
            if crate::unify::dpkg::valid_name(name) {
                Ok(name.to_string())
            } else {
                Err(Error::usage(format!(
                    "--include '{}': '{}' is not a Debian package name",
                    crate::error::shown(list),
                    crate::error::shown(name)
                )))
            }
        })
        .collect()
}

/// debootstrap's arguments: [--variant=V] [--include=P,Q] SUITE DIR MIRROR.
fn arguments(
    variant: Option<&str>,
    include: &[String],
    suite: &str,
    dir: &Path,
    mirror: &str,
) -> Vec<std::ffi::OsString> {
    let mut args = Vec::new();
    if let Some(v) = variant {
        args.push(format!("--variant={v}").into());
    }
    if !include.is_empty() {
        args.push(format!("--include={}", include.join(",")).into());
    }
    args.push(suite.into());
    args.push(dir.into());
    args.push(mirror.into());
    args
}

/// Runs debootstrap into the build directory; SIGINT, SIGTERM or SIGHUP
/// end it (see `Interrupts::run`).
pub fn run(ctx: &Ctx, suite: &str, mirror: Option<&str>) -> Result<()> {
    let program = find()?;
    let mirror = match mirror {
        Some(m) => m.to_string(),
        None => apt_sources::host_mirror(Path::new("/etc/apt")),
    };
    let mut cmd = Command::new(&program);
    cmd.args(arguments(
        ctx.opts.variant.as_deref(),
        &ctx.opts.include,
        suite,
        ctx.temp,
        &mirror,
    ))
    .stdin(Stdio::null());
    let what = program.display().to_string();
    let status = if ctx.opts.progress == Style::Terminal {
        let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)
            .context(|| "cannot make a pipe for debootstrap's output")?;
        rustix::fs::fcntl_setfl(&read, OFlags::NONBLOCK)
            .context(|| "cannot make a pipe for debootstrap's output")?;
        let write2 = write
            .try_clone()
            .context(|| "cannot make a pipe for debootstrap's output")?;
        cmd.stdout(Stdio::from(write)).stderr(Stdio::from(write2));
        run_showing(ctx, &mut cmd, &what, &read)
    } else {
        ctx.interrupts.run(&mut cmd, &what, None)
    }?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::failure(format!(
            "debootstrap {suite} failed ({status})"
        )))
    }
}

/// Runs `cmd`, its output (on `read`) shown on the status line.
fn run_showing(
    ctx: &Ctx,
    cmd: &mut Command,
    what: &str,
    read: &OwnedFd,
) -> Result<std::process::ExitStatus> {
    let mut lines = Lines::default();
    let mut last = String::new();
    let mut show = |line: &str| match line.strip_prefix("I: ") {
        Some(step) => {
            ctx.progress.phase("debootstrap", step);
            last = step.to_string();
        }
        None => {
            ctx.progress.clear();
            eprintln!("{line}");
        }
    };
    let status = ctx.interrupts.run(
        cmd,
        what,
        Some((read, &mut |bytes: &[u8]| lines.feed(bytes, &mut show))),
    );
    lines.finish(&mut show);
    if status.as_ref().is_ok_and(|s| s.success()) {
        ctx.progress.finish(&last);
    }
    status
}

/// Splits a byte stream into lines (lossy UTF-8, without the newline).
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn feed(&mut self, bytes: &[u8], line: &mut dyn FnMut(&str)) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let text: Vec<u8> = self.partial.drain(..=end).collect();
            line(String::from_utf8_lossy(&text[..end]).trim_end_matches('\r'));
        }
    }

    /// The last line, when it had no newline.
    fn finish(&mut self, line: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            line(&String::from_utf8_lossy(&std::mem::take(&mut self.partial)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_one_word() {
        for good in ["minbase", "buildd", "fakechroot", "my_variant-2"] {
            assert!(check_variant(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-",
            "--foreign",
            "min base",
            "a,b",
            "x/y",
            &"x".repeat(33),
        ] {
            assert_eq!(check_variant(bad).unwrap_err().exit_status(), 2, "{bad}");
        }
    }

    #[test]
    fn included_packages_are_package_names() {
        assert_eq!(
            parse_include("openssh-server,libc++1,gcc-12.2").unwrap(),
            ["openssh-server", "libc++1", "gcc-12.2"]
        );
        for bad in [
            "",
            "a,",
            ",a",
            "a b",
            "-x",
            "--foreign",
            "a;b",
            "../x",
            "a/b",
        ] {
            assert_eq!(parse_include(bad).unwrap_err().exit_status(), 2, "{bad}");
        }
    }

    #[test]
    fn arguments_in_debootstraps_order() {
        let args = arguments(
            Some("minbase"),
            &["a".into(), "b".into()],
            "bookworm",
            Path::new("/v/.g"),
            "http://m/debian",
        );
        assert_eq!(
            args,
            [
                "--variant=minbase",
                "--include=a,b",
                "bookworm",
                "/v/.g",
                "http://m/debian"
            ]
        );
        assert_eq!(
            arguments(None, &[], "sid", Path::new("/d"), "http://m/debian"),
            ["sid", "/d", "http://m/debian"]
        );
    }

    #[test]
    fn output_is_split_into_lines() {
        let mut lines = Lines::default();
        let mut got = Vec::new();
        let mut push = |l: &str| got.push(l.to_string());
        lines.feed(b"I: Retr", &mut push);
        lines.feed(b"ieving a\nW: w\r\nI: ", &mut push);
        lines.feed(b"Base", &mut push);
        lines.finish(&mut push);
        assert_eq!(got, ["I: Retrieving a", "W: w", "I: Base"]);
    }
}
