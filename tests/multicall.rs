//! The multicall front end: dispatch on argv[0], `vsbox APPLET`, --list,
//! --help and -h of every applet and vserver command, the one error style,
//! unknown names, and --install.

mod common;

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::process::{Command, Output};

use common::tempdir::TempDir;
use common::vsbox_bin;

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn vsbox(args: &[&str]) -> Output {
    run(Command::new(vsbox_bin()).args(args))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Applet names as `vsbox --list` prints them.
fn applets() -> Vec<String> {
    let out = vsbox(&["--list"]);
    assert!(out.status.success());
    text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn list_shows_every_applet_file_with_its_summary() {
    let out = text(&vsbox(&["--list"]).stdout);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("applets");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().replace('_', "-"))
        .collect();
    files.sort();
    assert_eq!(applets(), files);
    let printconf = out
        .lines()
        .find(|l| l.starts_with("printconf "))
        .expect("printconf is listed");
    assert!(
        printconf.contains("print the effective configuration"),
        "{printconf}"
    );
}

#[test]
fn every_applet_has_help_both_ways() {
    let dir = TempDir::new("help");
    for name in applets() {
        let out = vsbox(&[&name, "--help"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "vsbox {name} --help: {}",
            text(&out.stderr)
        );
        let help = text(&out.stdout);
        assert!(
            help.to_lowercase().starts_with(&format!("usage: {name}")),
            "vsbox {name} --help printed {help:?}"
        );

        let link = dir.path().join(&name);
        symlink(vsbox_bin(), &link).unwrap();
        let out = run(Command::new(&link).arg("--help"));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stdout), help, "{name} called by its own name");

        let short = vsbox(&[&name, "-h"]);
        assert_eq!(
            short.status.code(),
            Some(0),
            "vsbox {name} -h: {}",
            text(&short.stderr)
        );
        assert_eq!(text(&short.stdout), help, "{name} -h is --help");
    }
}

/// The commands `vserver --help` lists.
fn vserver_commands() -> Vec<String> {
    let help = text(&vsbox(&["vserver", "--help"]).stdout);
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    for expected in ["build", "start", "stop", "status", "exec", "enter"] {
        assert!(commands.iter().any(|c| c == expected), "{help}");
    }
    commands
}

#[test]
fn every_vserver_command_has_help_for_any_name() {
    let root = TempDir::new("command-help");
    for command in vserver_commands() {
        for flag in ["--help", "-h"] {
            let out = vsbox(&[
                "vserver",
                "--config-root",
                root.path().to_str().unwrap(),
                "no-such-guest",
                &command,
                flag,
            ]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "vserver NAME {command} {flag}: {}",
                text(&out.stderr)
            );
            let help = text(&out.stdout);
            assert!(
                help.starts_with(&format!("Usage: vserver [OPTIONS] NAME {command}")),
                "{help}"
            );
        }
    }
    let build = text(&vsbox(&["vserver", "g", "build", "--help"]).stdout);
    assert!(build.contains("-m, --method METHOD"), "{build}");
}

#[test]
fn build_takes_m_for_method() {
    let root = TempDir::new("build-m");
    let out = vsbox(&[
        "vserver",
        "--config-root",
        root.path().to_str().unwrap(),
        "g",
        "build",
        "-m",
        "no-such-method",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("'no-such-method' is not a build method"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_read_applet_what_and_hint_once() {
    for name in applets() {
        let out = run(Command::new(vsbox_bin())
            .args([name.as_str(), "--no-such-option"])
            .stdin(std::process::Stdio::null()));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let hint = format!(" (see {name} --help)\n");
        assert!(
            stderr.starts_with(&format!("{name}: ")) && stderr.ends_with(&hint),
            "{name}: {stderr:?}"
        );
        assert_eq!(stderr.matches("--help").count(), 1, "{stderr:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    }
    let out = vsbox(&["vserver", "g", "no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "vserver: unknown command 'no-such-command' (see vserver --help)\n"
    );
}

#[test]
fn long_and_hostile_inputs_are_shortened_and_escaped_in_errors() {
    let root = TempDir::new("long-input");
    let long = format!("{}\x1b]0;owned\x07\x1b[2J", "x".repeat(300));
    let checks: [&[&str]; 3] = [
        &[
            "vserver",
            "--config-root",
            root.path().to_str().unwrap(),
            &long,
            "start",
        ],
        &["vserver", "g", &long],
        &["vkill", "--ctx", &long],
    ];
    for args in checks {
        let out = vsbox(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            !stderr.contains('\x1b') && !stderr.contains('\x07'),
            "{stderr:?}"
        );
        assert!(stderr.contains("xxx…"), "{stderr:?}");
        assert!(stderr.len() < 300, "{} bytes: {stderr:?}", stderr.len());
    }
    // The whole message is escaped too, whatever quoted the input.
    let out = vsbox(&["no\x1b[31msuch"]);
    assert!(
        text(&out.stderr).contains("no\\u{1b}[31msuch"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_applet_exits_2_and_says_how_to_list() {
    let out = vsbox(&["no-such-applet"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "vsbox: unknown applet 'no-such-applet'; 'vsbox --list' shows the applets (see vsbox --help)\n"
    );
    let out = vsbox(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("vsbox --list"));
}

#[test]
fn renamed_binary_acts_as_the_front_end() {
    let dir = TempDir::new("renamed");
    let link = dir.path().join("vsbox-1.0");
    symlink(vsbox_bin(), &link).unwrap();
    let out = run(Command::new(&link).arg("--list"));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("printconf"));
}

#[test]
fn install_symlinks_is_idempotent_and_the_links_work() {
    let dir = TempDir::new("install-s");
    let out = vsbox(&["--install", "-s", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names = applets();
    for name in &names {
        let target = std::fs::read_link(dir.path().join(name)).unwrap();
        assert_eq!(
            target,
            std::fs::canonicalize(vsbox_bin()).unwrap(),
            "{name}"
        );
    }
    assert!(text(&out.stdout).contains(&format!(
        "({} created, 0 replaced, 0 already in place)",
        names.len()
    )));

    let again = vsbox(&["--install", "-s", dir.path().to_str().unwrap()]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains(&format!(
        "(0 created, 0 replaced, {} already in place)",
        names.len()
    )));

    let out = run(Command::new(dir.path().join("printconf")).arg("--help"));
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("Usage: printconf"));
}

#[test]
fn install_hard_links_share_the_binary_inode() {
    // Hard links need the same filesystem as the binary: install next to a
    // copy of it.
    let dir = TempDir::new("install-h");
    let copy = dir.path().join("vsbox");
    std::fs::copy(vsbox_bin(), &copy).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let out = run(Command::new(&copy).args(["--install", bin.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ino = std::fs::metadata(&copy).unwrap().ino();
    for name in applets() {
        assert_eq!(
            std::fs::symlink_metadata(bin.join(&name)).unwrap().ino(),
            ino,
            "{name}"
        );
    }
    let again = run(Command::new(&copy).args(["--install", bin.to_str().unwrap()]));
    assert!(
        text(&again.stdout).contains("(0 created, 0 replaced,"),
        "{}",
        text(&again.stdout)
    );

    // Switching to symlinks replaces our own hard links.
    let out = run(Command::new(&copy).args(["--install", "-s", bin.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_link(bin.join("printconf")).unwrap(), copy);
}

#[test]
fn install_refuses_foreign_files_and_changes_nothing() {
    let dir = TempDir::new("install-refuse");
    dir.write("printconf", "#!/bin/sh\necho not vsbox\n");
    let out = vsbox(&["--install", "-s", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("refusing to replace what is not a link to vsbox (nothing was changed)"),
        "{err}"
    );
    assert!(
        err.contains("printconf: is a file that is not vsbox"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("printconf")).unwrap(),
        "#!/bin/sh\necho not vsbox\n"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "nothing else was created");

    std::fs::remove_file(dir.path().join("printconf")).unwrap();
    symlink("/bin/true", dir.path().join("printconf")).unwrap();
    let out = vsbox(&["--install", "-s", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("printconf: is a symbolic link to /bin/true, not to vsbox"));
    assert_eq!(
        std::fs::read_link(dir.path().join("printconf")).unwrap(),
        Path::new("/bin/true")
    );
}

#[test]
fn install_replaces_links_to_other_vsbox_copies() {
    let dir = TempDir::new("install-upgrade");
    // A dangling link to where an older vsbox used to be.
    symlink("/old/place/vsbox", dir.path().join("printconf")).unwrap();
    // A stale copy of vsbox (another inode), as an old hard link would be.
    let names = applets();
    let other = names.iter().find(|n| *n != "printconf");
    if let Some(other) = other {
        std::fs::copy(vsbox_bin(), dir.path().join(other)).unwrap();
    }
    let out = vsbox(&["--install", "-s", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let replaced = 1 + usize::from(other.is_some());
    assert!(
        text(&out.stdout).contains(&format!(" {replaced} replaced,")),
        "{}",
        text(&out.stdout)
    );
    let target = std::fs::canonicalize(vsbox_bin()).unwrap();
    assert_eq!(
        std::fs::read_link(dir.path().join("printconf")).unwrap(),
        target
    );
}

#[test]
fn install_usage_errors() {
    assert_eq!(vsbox(&["--install"]).status.code(), Some(2));
    assert_eq!(vsbox(&["--install", "/tmp", "/var"]).status.code(), Some(2));
    let out = vsbox(&["--install", "/nonexistent/vsbox-dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("cannot use /nonexistent/vsbox-dir: No such file or directory (ENOENT)")
    );
}

#[test]
fn every_applet_has_a_man_page_that_renders_cleanly() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let pages: Vec<_> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for name in applets() {
        let found = pages.iter().any(|p| {
            p.file_stem().is_some_and(|s| s == name.as_str())
                && p.extension().is_some_and(|e| {
                    e.len() == 1 && e.to_str().unwrap().chars().all(|c| c.is_ascii_digit())
                })
        });
        assert!(found, "no man page docs/man/{name}.N");
    }
    for page in pages {
        // groff comes with man-db; -ww turns on every warning.
        let out = run(Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page));
        assert!(out.status.success(), "groff failed on {}", page.display());
        assert_eq!(
            text(&out.stderr),
            "",
            "warnings rendering {}",
            page.display()
        );
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `vsbox --list | head -0`: the reader is gone before the writer writes.
    let out = run(Command::new("/bin/sh").arg("-c").arg(format!(
        "\"{}\" --list | true; echo \"${{PIPESTATUS:-}}\"",
        vsbox_bin().display()
    )));
    assert!(out.status.success());
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}
