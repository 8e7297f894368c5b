//! printconf end to end: configuration root by option and environment,
//! profiles, --quote output evaluated by a real shell, and errors.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::tempdir::TempDir;
use common::vsbox_bin;

const GLOBAL: &str = "# site defaults\nVSERVERS_ROOT=/srv/vservers\nS_FLAGS=\"lock\"\n";

const WEB1: &str = r#"# Description: The web server
source /etc/vservers.conf
S_CONTEXT=100
PROFILE=${PROFILE:-prod}
case $PROFILE in
prod)
	IPROOT="lo:127.0.0.2/8 127.0.0.3"
	S_HOSTNAME=web1
	;;
backup)
	IPROOT=127.0.0.4
	S_HOSTNAME=web1-backup
	;;
esac
S_CAPS="CAP_NET_RAW !CAP_CHOWN"
ULIMIT="-HS -u 200 -n 1024"
ONBOOT=yes
PRIORITY=10
SITE_NOTE='costs $5 and "quotes" `x` \ back'
"#;

fn setup() -> TempDir {
    let dir = TempDir::new("printconf");
    dir.write("vservers.conf", GLOBAL);
    dir.write("vservers/web1.conf", WEB1);
    dir
}

fn printconf(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(vsbox_bin());
    cmd.arg("printconf")
        .args(args)
        .env_remove("PROFILE")
        .env_remove("VSBOX_CONFIG_ROOT");
    cmd.env("VSBOX_CONFIG_ROOT", dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "printconf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn prints_every_effective_variable() {
    let dir = setup();
    let out = stdout(&printconf(&dir, &["web1"], &[]));
    let want = "\
S_CONTEXT=100
IPROOT=lo:127.0.0.2/8 127.0.0.3
IPROOTDEV=
IPROOTMASK=
IPROOTBCAST=
S_HOSTNAME=web1
S_DOMAINNAME=
S_CAPS=CAP_NET_RAW !CAP_CHOWN
S_CAPS_HOST_ROOT=no
S_FLAGS=lock
ULIMIT=-HS -u 200 -n 1024
S_NICE=
ONBOOT=yes
PRIORITY=10
PROFILE=prod
VSERVERS_ROOT=/srv/vservers
VSERVERDIR=/srv/vservers/web1
GENERATEMTAB=yes
S_MEMORY_MAX=
S_PIDS_MAX=
S_CPU_WEIGHT=
S_CPU_MAX=
S_START_TIMEOUT=300
S_STOP_TIMEOUT=30
S_USERNS=no
S_ENV=
DESCRIPTION=The web server
SITE_NOTE=costs $5 and \"quotes\" `x` \\ back
";
    assert_eq!(out, want);
}

#[test]
fn profile_from_option_and_environment() {
    let dir = setup();
    let by_env = stdout(&printconf(&dir, &["web1"], &[("PROFILE", "backup")]));
    assert!(
        by_env.contains("\nS_HOSTNAME=web1-backup\n") && by_env.contains("\nIPROOT=127.0.0.4\n"),
        "{by_env}"
    );
    assert!(by_env.contains("\nPROFILE=backup\n"));
    let by_option = stdout(&printconf(
        &dir,
        &["--profile", "backup", "web1"],
        &[("PROFILE", "prod")],
    ));
    assert_eq!(by_option, by_env, "--profile wins over $PROFILE");
}

#[test]
fn config_root_option_wins_over_environment() {
    let dir = setup();
    let other = TempDir::new("printconf-other");
    let out = printconf(
        &other,
        &["--config-root", dir.path().to_str().unwrap(), "web1"],
        &[],
    );
    assert!(stdout(&out).contains("\nS_HOSTNAME=web1\n"));
}

/// The seed's scripts did `eval $(printconf.sh --quote NAME)`: the values
/// must come out exactly, and nothing in them may run.
#[test]
fn quoted_output_evaluates_exactly_in_a_shell() {
    let dir = setup();
    let marker = dir.path().join("ran");
    dir.write(
        "vservers/evil.conf",
        &format!(
            "S_HOSTNAME=ok\nX='$(touch {m})`touch {m}`\"; touch {m}; \"'\n",
            m = marker.display()
        ),
    );
    for name in ["web1", "evil"] {
        let script = format!(
            "eval \"$(\"$VSBOX\" printconf --quote {name})\" && printf '%s|%s|%s' \"$S_HOSTNAME\" \"$SITE_NOTE\" \"$X\""
        );
        let out = Command::new("/bin/sh")
            .args(["-c", &script])
            .env("VSBOX", vsbox_bin())
            .env("VSBOX_CONFIG_ROOT", dir.path())
            .env_remove("PROFILE")
            .output()
            .unwrap();
        let got = stdout(&out);
        match name {
            "web1" => assert_eq!(got, "web1|costs $5 and \"quotes\" `x` \\ back|"),
            _ => assert_eq!(
                got,
                format!(
                    "ok||$(touch {m})`touch {m}`\"; touch {m}; \"",
                    m = marker.display()
                )
            ),
        }
    }
    assert!(!marker.exists(), "a value ran a command through eval");
}

#[test]
fn syntax_error_exits_2_with_file_line_column_and_caret() {
    let dir = setup();
    dir.write(
        "vservers/bad.conf",
        "S_HOSTNAME=bad\nIPROOT=$(hostname -i)\n",
    );
    let out = printconf(&dir, &["bad"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing printed on error");
    let err = String::from_utf8(out.stderr).unwrap();
    let want = format!(
        "printconf: {}/vservers/bad.conf:2:8: command substitution $(...) is not allowed\n    IPROOT=$(hostname -i)\n           ^\n",
        dir.path().display()
    );
    assert_eq!(err, want);
}

#[test]
fn bad_value_and_missing_guest() {
    let dir = setup();
    dir.write(
        "vservers/caps.conf",
        "source /etc/vservers.conf\nS_CAPS=CAP_TELEPORT\n",
    );
    let out = printconf(&dir, &["caps"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!(
            "printconf: {}/vservers/caps.conf:2: S_CAPS: unknown capability 'CAP_TELEPORT'",
            dir.path().display()
        )),
        "{err}"
    );

    let out = printconf(&dir, &["ghost"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("vservers/ghost.conf: No such file or directory (ENOENT)"),
        "{err}"
    );

    let out = printconf(&dir, &["../../etc/passwd"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("is not a valid guest name")
    );
}

#[test]
fn usage_errors() {
    let dir = setup();
    assert_eq!(printconf(&dir, &[], &[]).status.code(), Some(2));
    assert_eq!(
        printconf(&dir, &["--bogus", "web1"], &[]).status.code(),
        Some(2)
    );
}

/// Runs printconf NAME like `printconf`, but gives up after `limit`: the
/// process is then killed (by its pid) and None returned.
fn printconf_bounded(dir: &TempDir, name: &str, limit: Duration) -> Option<Output> {
    let mut child = Command::new(vsbox_bin())
        .args(["printconf", name])
        .env("VSBOX_CONFIG_ROOT", dir.path())
        .env_remove("PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

#[test]
fn a_fifo_in_the_configuration_is_refused_without_hanging() {
    // Seconds here; the VM's qemu without KVM is much slower.
    let limit = Duration::from_secs(if std::env::var_os("VSBOX_TEST_VM").is_some() {
        120
    } else {
        20
    });
    let dir = setup();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    dir.write(
        "vservers/sourcer.conf",
        &format!("S_HOSTNAME=x\nsource {}\n", fifo.display()),
    );
    let out = printconf_bounded(&dir, "sourcer", limit).expect("printconf hung on a FIFO");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "printconf: {0}/vservers/sourcer.conf:2:1: cannot read {0}/fifo: it is a FIFO, not a regular file\n    source {0}/fifo\n    ^\n",
            dir.path().display()
        )
    );

    // The guest's own file and vservers.conf are read the same way.
    std::fs::remove_file(dir.path().join("vservers/web1.conf")).unwrap();
    mkfifo(&dir.path().join("vservers/web1.conf"));
    let out = printconf_bounded(&dir, "web1", limit).expect("printconf hung on a FIFO");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("web1.conf: it is a FIFO, not a regular file"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("vservers.conf")).unwrap();
    mkfifo(&dir.path().join("vservers.conf"));
    let out = printconf_bounded(&dir, "sourcer", limit).expect("printconf hung on a FIFO");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("vservers.conf: it is a FIFO, not a regular file"),
        "{err}"
    );
}

#[test]
fn control_characters_in_values_are_refused_not_printed() {
    let dir = setup();
    dir.write("vservers/nul.conf", "S_HOSTNAME=x\nNOTE=\"a\0b\"\n");
    for args in [&["nul"][..], &["--quote", "nul"]] {
        let out = printconf(&dir, args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: printed {:?}", out.stdout);
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with(&format!(
                "printconf: {}/vservers/nul.conf:2:8: control character U+0000 is not allowed",
                dir.path().display()
            )),
            "{err}"
        );
        assert!(!err.contains('\0'), "the error shows the NUL raw: {err:?}");
    }
}
