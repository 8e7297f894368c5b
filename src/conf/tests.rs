//! Tests of the configuration grammar, its errors, includes and the typed
//! view. Each test writes real files in a temporary configuration root.

use std::path::{Path, PathBuf};

use super::eval::Evaluator;
use super::*;
use crate::context::rlimit::LimitValue;

/// A temporary configuration root, removed on drop.
struct TempRoot {
    dir: PathBuf,
}

impl TempRoot {
    fn new(files: &[(&str, &str)]) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vsbox-conf-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("vservers")).unwrap();
        let root = TempRoot { dir };
        for (name, text) in files {
            root.write(name, text.as_bytes());
        }
        root
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn root(&self) -> ConfigRoot {
        ConfigRoot::new(&self.dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `text` as t.conf; returns the variables (name, value) in order.
fn vars(text: &str) -> Vec<(String, String)> {
    let t = TempRoot::new(&[("t.conf", text)]);
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    eval.run(&t.path("t.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    eval.vars
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}

fn value(text: &str, name: &str) -> String {
    vars(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{name} not set"))
}

/// Runs `text` as t.conf and returns the error as a user sees it, with the
/// temporary directory replaced by `R`.
fn error(text: &str) -> String {
    let t = TempRoot::new(&[("t.conf", text)]);
    error_in(&t, "t.conf")
}

fn error_in(t: &TempRoot, file: &str) -> String {
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    let err = eval.run(&t.path(file)).expect_err("an error");
    err.to_string().replace(t.dir.to_str().unwrap(), "R")
}

#[track_caller]
fn assert_error(text: &str, want: &str) {
    let got = error(text);
    assert!(
        got.starts_with(want),
        "input {text:?}\n got: {got}\nwant: {want}"
    );
}

// ---------------------------------------------------------------- grammar

#[test]
fn plain_assignments_and_separators() {
    let v = vars("A=1\nB=two;C=3 D=4\n\n  E=five  \n");
    let want: Vec<(String, String)> = [
        ("A", "1"),
        ("B", "two"),
        ("C", "3"),
        ("D", "4"),
        ("E", "five"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(v, want);
    assert_eq!(value("A=", "A"), "");
    assert_eq!(value("A=1\nA=2", "A"), "2");
}

#[test]
fn double_quotes_expand_and_escape() {
    assert_eq!(
        value("X=ab\nA=\"<$X> <${X}> \\\" \\$X \\\\ \\` \\n\"", "A"),
        "<ab> <ab> \" $X \\ ` \\n"
    );
    assert_eq!(value("A=\"two\nlines\"", "A"), "two\nlines");
    assert_eq!(value("A=\"a \\\nb\"", "A"), "a b");
    assert_eq!(value("A=\"$\"", "A"), "$");
    assert_eq!(value("A=\"cost: $ 5\"", "A"), "cost: $ 5");
}

#[test]
fn single_quotes_are_literal() {
    assert_eq!(value("A='$X \\ \" ${Y}'", "A"), "$X \\ \" ${Y}");
    assert_eq!(value("A='multi\nline'", "A"), "multi\nline");
}

#[test]
fn unquoted_words_concatenate_escape_and_expand() {
    assert_eq!(value("X=1\nA=a\"b\"'c'\\ d$X${X}", "A"), "abc d11");
    assert_eq!(value("A=x#y", "A"), "x#y");
    assert_eq!(value("A=*.conf", "A"), "*.conf");
    assert_eq!(value("A=1\\\n2", "A"), "12");
}

#[test]
fn unset_variables_expand_empty_and_defaults_apply() {
    assert_eq!(value("A=\"<$NOPE>\"", "A"), "<>");
    assert_eq!(value("A=${NOPE:-dflt}", "A"), "dflt");
    assert_eq!(value("E=\nA=${E:-dflt}", "A"), "dflt");
    assert_eq!(value("S=set\nA=${S:-dflt}", "A"), "set");
    assert_eq!(value("X=x\nA=${NOPE:-\"a $X\"'b'}", "A"), "a xb");
}

#[test]
fn comments_and_description() {
    let t = TempRoot::new(&[(
        "t.conf",
        "# Description: A web server\n#Description: second\nA=1 # trailing\n   # indented\n",
    )]);
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    let desc = eval.run(&t.path("t.conf")).unwrap();
    assert_eq!(desc.as_deref(), Some("A web server"));
    assert_eq!(eval.vars.value("A"), Some("1"));
}

#[test]
fn export_forms() {
    let t = TempRoot::new(&[("t.conf", "B=2\nexport A=1 B\nexport C=3\n")]);
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    eval.run(&t.path("t.conf")).unwrap();
    for name in ["A", "B", "C"] {
        assert!(eval.vars.get(name).unwrap().exported, "{name}");
    }
    assert_eq!(eval.vars.value("C"), Some("3"));
}

/// What `sh` (and bash, busybox sh where installed) make of `text`: the
/// value of `name` afterwards; None for a shell that is not there.
fn shell_value(shell: &[&str], text: &str, name: &str) -> Option<String> {
    let script = format!("{text}\nprintf %s \"${name}\"");
    let out = std::process::Command::new(shell[0])
        .args(&shell[1..])
        .arg("-c")
        .arg(script)
        .env_clear()
        .output()
        .ok()?;
    assert!(out.status.success(), "{shell:?} -c {text:?} failed");
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn export_expands_all_its_words_first_as_the_shell_does() {
    // In one `export` command every word is expanded before any is
    // assigned; a line of plain assignments assigns left to right.
    let cases = [
        ("export A=1 Y=\"[$A]\"", "Y", "[]"),
        ("A=0\nexport A=1 Y=\"[$A]\"", "Y", "[0]"),
        ("export A=1 B=${A:-unset}", "B", "unset"),
        ("A=1 Y=\"[$A]\"", "Y", "[1]"),
        ("A=1\nA=2 Y=\"[$A]\"", "Y", "[2]"),
        ("A=1\nexport A=2\nexport Y=\"[$A]\"", "Y", "[2]"),
    ];
    let mut shells_run = 0;
    for (text, name, want) in cases {
        assert_eq!(value(text, name), want, "{text:?}");
        for shell in [&["sh"][..], &["bash"], &["busybox", "sh"]] {
            if let Some(got) = shell_value(shell, text, name) {
                assert_eq!(got, want, "{shell:?} -c {text:?}");
                shells_run += 1;
            }
        }
    }
    if shells_run == 0 {
        eprintln!("no shell to compare with: checked against the expected values only");
    }
}

#[test]
fn control_characters_are_refused_where_they_are() {
    for (text, want) in [
        (
            "A=\"x\0y\"\n",
            "R/t.conf:1:5: control character U+0000 is not allowed: only tab and newline are\n    A=\"x?y\"\n        ^",
        ),
        ("A=x\x1b[31m\n", "R/t.conf:1:4: control character U+001B"),
        ("B=1\nA='a\x07'\n", "R/t.conf:2:5: control character U+0007"),
        ("A=\"a\\\x7f\"\n", "R/t.conf:1:6: control character U+007F"),
        (
            "A=${B:-\u{9b}31m}\n",
            "R/t.conf:1:8: control character U+009B",
        ),
        ("A=a\\\x01\n", "R/t.conf:1:5: control character U+0001"),
        (
            "source \"f\x00\"\n",
            "R/t.conf:1:10: control character U+0000",
        ),
        (
            "A=\"a\r\nb\"\r\n",
            "R/t.conf:1:5: control character U+000D is not allowed: only tab and newline are (a CRLF line end",
        ),
        (
            "# Description: web\x1b]0;owned\x07\nA=1\n",
            "R/t.conf:1:19: control character U+001B",
        ),
    ] {
        assert_error(text, want);
    }
    // Tabs and newlines in values, CRLF line ends and control characters
    // in ordinary comments are fine.
    assert_eq!(value("A=\"a\tb\nc\"\n", "A"), "a\tb\nc");
    assert_eq!(value("# a \x01 note\nA='\t'\r\n", "A"), "\t");
    let t = TempRoot::new(&[("t.conf", "# Description: web\r\nA=1\r\n")]);
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    assert_eq!(eval.run(&t.path("t.conf")).unwrap().as_deref(), Some("web"));
}

#[test]
fn crlf_line_ends() {
    assert_eq!(
        vars("A=1\r\nB=\"2\"\r\n"),
        vec![("A".into(), "1".into()), ("B".into(), "2".into())]
    );
}

#[test]
fn source_and_dot_relative_to_the_including_file() {
    let t = TempRoot::new(&[
        (
            "vservers/web.conf",
            "source ../base.conf\n. sub/more.conf\nC=$A$B\n",
        ),
        ("base.conf", "A=a\n"),
        ("vservers/sub/more.conf", "B=b\n"),
    ]);
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    eval.run(&t.path("vservers/web.conf")).unwrap();
    assert_eq!(eval.vars.value("C"), Some("ab"));
    assert!(
        eval.vars
            .get("B")
            .unwrap()
            .loc
            .file
            .ends_with("vservers/sub/more.conf")
    );
}

#[test]
fn absolute_etc_vservers_paths_follow_the_config_root() {
    let t = TempRoot::new(&[
        ("vservers.conf", "VSERVERS_ROOT=/srv/guests\n"),
        ("vservers/web.conf", "source /etc/vservers.conf\n"),
    ]);
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    eval.run(&t.path("vservers/web.conf")).unwrap();
    assert_eq!(eval.vars.value("VSERVERS_ROOT"), Some("/srv/guests"));
}

#[test]
fn source_path_may_use_variables() {
    let t = TempRoot::new(&[
        ("t.conf", "F=other.conf\nsource \"$F\"\n"),
        ("other.conf", "X=1\n"),
    ]);
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    eval.run(&t.path("t.conf")).unwrap();
    assert_eq!(eval.vars.value("X"), Some("1"));
}

#[test]
fn case_selects_one_arm() {
    let text = "PROFILE=${PROFILE:-prod}\ncase $PROFILE in\n  prod|production)\n    IPROOT=127.0.0.2\n    S_HOSTNAME=web\n    ;;\n  backup) IPROOT=127.0.0.3 ;;\n  *) IPROOT=127.0.0.4\nesac\n";
    assert_eq!(value(text, "IPROOT"), "127.0.0.2");
    assert_eq!(
        value(&text.replace("prod}", "backup}"), "IPROOT"),
        "127.0.0.3"
    );
    assert_eq!(
        value(&text.replace("prod}", "other}"), "IPROOT"),
        "127.0.0.4"
    );
    assert_eq!(
        value(&text.replace("prod}", "production}"), "S_HOSTNAME"),
        "web"
    );
    // No arm matches: nothing is set.
    assert!(vars("case x in\n a) A=1;;\nesac").is_empty());
    assert_eq!(value("case \"x y\" in 'x y') A=1;; esac", "A"), "1");
}

// ---------------------------------------------------------------- errors

#[test]
fn command_substitution_and_arithmetic_are_refused() {
    assert_error(
        "A=1\nB=$(hostname)\n",
        "R/t.conf:2:3: command substitution $(...) is not allowed\n    B=$(hostname)\n      ^",
    );
    assert_error(
        "B=`hostname`",
        "R/t.conf:1:3: command substitution (`...`) is not allowed",
    );
    assert_error(
        "B=\"x`id`\"",
        "R/t.conf:1:5: command substitution (`...`) is not allowed",
    );
    assert_error(
        "B=$((1+2))",
        "R/t.conf:1:3: arithmetic expansion $((...)) is not allowed",
    );
    assert_error(
        "B=\"$(id)\"",
        "R/t.conf:1:4: command substitution $(...) is not allowed",
    );
}

#[test]
fn operators_are_refused() {
    assert_error("A=1 | cat", "R/t.conf:1:5: pipes are not allowed");
    assert_error("A=1 || B=2", "R/t.conf:1:5: '||' lists are not allowed");
    assert_error(
        "A=1 && B=2",
        "R/t.conf:1:5: '&' (background, && lists) is not allowed",
    );
    assert_error(
        "A=1 &",
        "R/t.conf:1:5: '&' (background, && lists) is not allowed",
    );
    assert_error("A=1 > /tmp/x", "R/t.conf:1:5: redirections are not allowed");
    assert_error("A=1 < /tmp/x", "R/t.conf:1:5: redirections are not allowed");
    assert_error(
        "(A=1)",
        "R/t.conf:1:1: subshells and functions are not allowed",
    );
    assert_error("A=1 )", "R/t.conf:1:5: unexpected ')'");
    assert_error("A=1;;", "R/t.conf:1:4: ';;' outside a case");
}

#[test]
fn commands_and_shell_keywords_are_refused() {
    assert_error(
        "echo hi",
        "R/t.conf:1:1: 'echo' is a command; commands are not allowed",
    );
    assert_error(
        "A=1 echo hi",
        "R/t.conf:1:5: 'echo' after a statement: commands are not allowed",
    );
    assert_error("\"quoted\"", "R/t.conf:1:1: commands are not allowed");
    assert_error(
        "if [ -z \"$A\" ]; then A=1; fi",
        "R/t.conf:1:1: 'if' is not supported",
    );
    assert_error(
        "for x in a; do A=1; done",
        "R/t.conf:1:1: 'for' is not supported",
    );
    assert_error(
        "while true; do :; done",
        "R/t.conf:1:1: 'while' is not supported",
    );
    assert_error(
        "export -n A",
        "R/t.conf:1:8: export options are not supported",
    );
    assert_error("export", "R/t.conf:1:1: export needs at least one VAR");
}

#[test]
fn unterminated_constructs() {
    assert_error("A=1\nB='abc\n", "R/t.conf:2:3: unterminated single quote");
    assert_error("B=\"abc", "R/t.conf:1:3: unterminated double quote");
    assert_error(
        "B=${A",
        "R/t.conf:1:3: only ${VAR} and ${VAR:-default} are supported",
    );
    assert_error("B=${A:-x", "R/t.conf:1:3: unterminated '${'");
    assert_error("B=x\\", "R/t.conf:1:4: backslash at end of file");
}

#[test]
fn unsupported_expansions() {
    assert_error(
        "A=$1",
        "R/t.conf:1:3: special parameter $1 is not supported",
    );
    assert_error(
        "A=\"$?\"",
        "R/t.conf:1:4: special parameter $? is not supported",
    );
    assert_error(
        "A=${B#x}",
        "R/t.conf:1:3: only ${VAR} and ${VAR:-default} are supported",
    );
    assert_error("A=${}", "R/t.conf:1:3: expected a variable name after '${'");
    assert_error("A=~/x", "R/t.conf:1:3: tilde expansion is not supported");
}

#[test]
fn source_errors() {
    assert_error("source", "R/t.conf:1:1: source needs a FILE");
    assert_error("source a b", "R/t.conf:1:10: source takes one FILE");
    assert_error(
        "A=1\n. missing.conf\n",
        "R/t.conf:2:1: cannot read R/missing.conf: No such file or directory (ENOENT)\n    . missing.conf\n    ^",
    );
}

#[test]
fn source_cycles_are_refused() {
    assert_error(
        "source t.conf",
        "R/t.conf:1:1: source cycle: R/t.conf -> R/t.conf",
    );
    let t = TempRoot::new(&[
        ("a.conf", "A=1\nsource b.conf\n"),
        ("b.conf", "\n\n. a.conf\n"),
    ]);
    assert_eq!(
        error_in(&t, "a.conf"),
        "R/b.conf:3:1: source cycle: R/a.conf -> R/b.conf -> R/a.conf\n    . a.conf\n    ^"
    );
}

#[test]
fn repeated_source_is_not_a_cycle() {
    let t = TempRoot::new(&[
        ("a.conf", "source c.conf\nsource c.conf\n"),
        ("c.conf", "X=1\n"),
    ]);
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    eval.run(&t.path("a.conf")).unwrap();
}

#[test]
fn source_depth_is_limited() {
    let files: Vec<(String, String)> = (0..=eval::MAX_DEPTH)
        .map(|i| (format!("f{i}.conf"), format!("source f{}.conf\n", i + 1)))
        .collect();
    let mut files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let last = format!("f{}.conf", eval::MAX_DEPTH + 1);
    files.push((&last, "X=1\n"));
    let t = TempRoot::new(&files);
    let got = error_in(&t, "f0.conf");
    assert!(
        got.starts_with("R/f7.conf:1:1: cannot source R/f8.conf: nested deeper than 8 files"),
        "{got}"
    );
}

#[test]
fn bad_files() {
    let t = TempRoot::new(&[]);
    t.write("t.conf", b"A=1\nB=caf\xe9\n");
    assert!(
        error_in(&t, "t.conf").starts_with("R/t.conf:2:6: not valid UTF-8"),
        "{}",
        error_in(&t, "t.conf")
    );
    t.write("big.conf", &vec![b'#'; eval::MAX_FILE_SIZE as usize + 1]);
    assert!(
        error_in(&t, "big.conf").starts_with("R/big.conf: R/big.conf is larger than 1048576 bytes")
    );
    std::fs::create_dir(t.path("dir.conf")).unwrap();
    assert_eq!(
        error_in(&t, "dir.conf"),
        "R/dir.conf: cannot read R/dir.conf: it is a directory, not a regular file"
    );
}

#[test]
fn only_regular_files_are_read_and_fifos_never_block() {
    let t = TempRoot::new(&[
        ("real.conf", "X=1\n"),
        ("t.conf", "A=1\nsource fifo\n"),
        ("u.conf", "source null\n"),
        ("v.conf", "source link.conf\n"),
    ]);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        t.path("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/null", t.path("null")).unwrap();
    std::os::unix::fs::symlink("real.conf", t.path("link.conf")).unwrap();
    assert_eq!(
        error_in(&t, "t.conf"),
        "R/t.conf:2:1: cannot read R/fifo: it is a FIFO, not a regular file\n    source fifo\n    ^"
    );
    assert!(
        error_in(&t, "u.conf").starts_with(
            "R/u.conf:1:1: cannot read R/null: it is a character device, not a regular file"
        ),
        "{}",
        error_in(&t, "u.conf")
    );
    // The host's own files: a symbolic link to a regular file is followed.
    let root = t.root();
    let mut eval = Evaluator::new(&root, Default::default());
    eval.run(&t.path("v.conf")).unwrap();
    assert_eq!(eval.vars.value("X"), Some("1"));
}

#[test]
fn case_errors() {
    assert_error(
        "case x\n",
        "R/t.conf:1:7: expected 'in' after the case word",
    );
    assert_error(
        "case x in\n a) A=1;;\n",
        "R/t.conf:1:1: case without a matching 'esac'",
    );
    assert_error(
        "case x in\n a A=1;;\nesac",
        "R/t.conf:2:4: expected ')' after the case pattern",
    );
    assert_error(
        "case x in\n a*) A=1;;\nesac",
        "R/t.conf:2:2: case patterns are literal words or a lone '*'",
    );
    assert_error(
        "case x in\n a) echo;;\nesac",
        "R/t.conf:2:5: 'echo' is a command",
    );
    assert_error(
        "case x in\n a) . f.conf;;\nesac",
        "R/t.conf:2:5: a case arm holds assignments only",
    );
    assert_error(
        "case x in\n a|) A=1;;\nesac",
        "R/t.conf:2:4: expected a pattern after '|'",
    );
}

// ---------------------------------------------------------------- the typed view

fn guest(files: &[(&str, &str)], name: &str, profile: Option<&str>) -> Result<GuestConfig, String> {
    let t = TempRoot::new(files);
    load(&t.root(), name, profile).map_err(|e| e.to_string().replace(t.dir.to_str().unwrap(), "R"))
}

#[test]
fn seed_style_guest_with_defaults() {
    let g = guest(
        &[
            ("vservers.conf", "VSERVERS_ROOT=/srv/vs\nS_FLAGS=\"lock\"\n"),
            ("vservers/web1.conf", "# Description: Some vserver\nsource /etc/vservers.conf\nIPROOT=\"eth0:127.0.0.2/8 127.0.0.3\"\nS_CAPS=\"CAP_NET_RAW !CAP_CHOWN\"\nULIMIT=\"-HS -u 200\"\nONBOOT=yes\nPRIORITY=20\nS_DOMAINNAME=none\n"),
        ],
        "web1",
        None,
    )
    .unwrap();
    assert_eq!(g.description.as_deref(), Some("Some vserver"));
    assert_eq!(g.vserver_dir, Path::new("/srv/vs/web1"));
    assert_eq!(g.ip_root.entries().len(), 2);
    assert_eq!(g.flags.to_string(), "lock");
    assert!(g.onboot);
    assert_eq!(g.priority, 20);
    assert!(g.generate_mtab);
    assert_eq!(g.domainname, guest::DomainName::None);
    assert_eq!(g.ulimit.limits[0].rlim(), 200);
}

#[test]
fn defaults_without_vservers_conf() {
    let g = guest(&[("vservers/a.conf", "")], "a", None).unwrap();
    assert_eq!(g.vserver_dir, Path::new("/vservers/a"));
    assert!(g.ip_root.is_host());
    assert_eq!(g.context, None);
    assert!(!g.onboot);
}

#[test]
fn ipv4root_is_the_old_name_of_iproot() {
    let g = guest(&[("vservers/a.conf", "IPV4ROOT=127.0.0.9\n")], "a", None).unwrap();
    assert_eq!(g.ip_root.to_string(), "127.0.0.9");
    let g = guest(
        &[("vservers/a.conf", "IPV4ROOT=127.0.0.9\nIPROOT=127.0.0.8\n")],
        "a",
        None,
    )
    .unwrap();
    assert_eq!(g.ip_root.to_string(), "127.0.0.8");
}

const PROFILED: &str = "PROFILE=prod\ncase \"$PROFILE\" in\nprod)\n\tIPROOT=127.0.0.2\n\tIPROOTDEV=lo\n\tS_HOSTNAME=web-prod\n\t;;\nbackup)\n\tIPROOT=127.0.0.3\n\tS_HOSTNAME=web-backup\n\t;;\nesac\n";

#[test]
fn profiles_from_the_file_and_from_the_caller() {
    let g = guest(&[("vservers/w.conf", PROFILED)], "w", None).unwrap();
    assert_eq!(
        (g.profile.as_deref(), g.hostname.as_deref()),
        (Some("prod"), Some("web-prod"))
    );
    assert_eq!(g.ip_root_dev.as_deref(), Some("lo"));
    let g = guest(&[("vservers/w.conf", PROFILED)], "w", Some("backup")).unwrap();
    assert_eq!(
        (g.profile.as_deref(), g.hostname.as_deref()),
        (Some("backup"), Some("web-backup"))
    );
    assert_eq!(g.ip_root.to_string(), "127.0.0.3");
    let err = guest(&[("vservers/w.conf", PROFILED)], "w", Some("bad name")).unwrap_err();
    assert_eq!(
        err,
        "command line: PROFILE: 'bad name' is not a profile name (letters, digits, '.', '_', '-')"
    );
}

#[test]
fn bad_values_name_file_line_and_what_was_expected() {
    let cases = [
        (
            "S_CAPS=\"CAP_NET_RAW CAP_FLY\"",
            "R/vservers/g.conf:2: S_CAPS: unknown capability 'CAP_FLY'",
        ),
        (
            "S_CAPS=\"CAP_NET_RAW sys_admin\"",
            "R/vservers/g.conf:2: S_CAPS: CAP_SYS_ADMIN is host root (mount, namespaces",
        ),
        (
            "S_CAPS=\"MKNOD\" S_CAPS_HOST_ROOT=no",
            "R/vservers/g.conf:2: S_CAPS: CAP_MKNOD is host root (guests have no device filter",
        ),
        (
            "S_CAPS_HOST_ROOT=maybe",
            "R/vservers/g.conf:2: S_CAPS_HOST_ROOT: 'maybe' is not yes or no",
        ),
        (
            "S_FLAGS=\"lock fast\"",
            "R/vservers/g.conf:2: S_FLAGS: unknown flag 'fast' (expected lock, sched, nproc, private, fakeinit or io_uring)",
        ),
        (
            "ULIMIT=\"-u\"",
            "R/vservers/g.conf:2: ULIMIT: -u needs a number or 'unlimited'",
        ),
        (
            "IPROOT=\"127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7 127.0.0.8 127.0.0.9 127.0.0.10 127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14 127.0.0.15 127.0.0.16 127.0.0.17\"",
            "R/vservers/g.conf:2: IPROOT: 17 addresses; a guest has at most 16",
        ),
        (
            "IPROOT=::ffff:127.0.0.61",
            "R/vservers/g.conf:2: IPROOT: '::ffff:127.0.0.61': an IPv4-mapped IPv6 address is refused; write the IPv4 address 127.0.0.61",
        ),
        (
            "IPV4ROOT=\"127.0.0.60 lo:[::ffff:7f00:3d]/128\"",
            "R/vservers/g.conf:2: IPV4ROOT: 'lo:[::ffff:7f00:3d]/128': an IPv4-mapped IPv6 address is refused; write the IPv4 address 127.0.0.61",
        ),
        (
            "IPV4ROOT=1.2.3",
            "R/vservers/g.conf:2: IPV4ROOT: '1.2.3': not an IP address",
        ),
        (
            "IPROOTDEV=\"eth0:1\"",
            "R/vservers/g.conf:2: IPROOTDEV: 'eth0:1' is not a valid device name",
        ),
        (
            "IPROOTMASK=255.0.255.0",
            "R/vservers/g.conf:2: IPROOTMASK: netmask 255.0.255.0 is not contiguous",
        ),
        (
            "IPROOTBCAST=300.1.1.1",
            "R/vservers/g.conf:2: IPROOTBCAST: '300.1.1.1' is not an IPv4 broadcast address",
        ),
        (
            "S_CONTEXT=1",
            "R/vservers/g.conf:2: S_CONTEXT: context 1 is the spectator context",
        ),
        (
            "S_CONTEXT=0",
            "R/vservers/g.conf:2: S_CONTEXT: context 0 is the host",
        ),
        (
            "S_CONTEXT=70000",
            "R/vservers/g.conf:2: S_CONTEXT: '70000' is not a context number (2..=49151",
        ),
        (
            "S_HOSTNAME=\"a b\"",
            "R/vservers/g.conf:2: S_HOSTNAME: 'a b' is not a valid host name",
        ),
        (
            "S_DOMAINNAME=0123456789012345678901234567890123456789012345678901234567890123456789",
            "R/vservers/g.conf:2: S_DOMAINNAME: '0123456789012345678901234567890123456789012345678901234567890123456789' is longer than 64 bytes",
        ),
        (
            "S_NICE=20",
            "R/vservers/g.conf:2: S_NICE: '20' is not a nice value (-20 to 19)",
        ),
        (
            "ONBOOT=maybe",
            "R/vservers/g.conf:2: ONBOOT: 'maybe' is not yes or no",
        ),
        (
            "GENERATEMTAB=sometimes",
            "R/vservers/g.conf:2: GENERATEMTAB: 'sometimes' is not yes or no",
        ),
        (
            "PRIORITY=high",
            "R/vservers/g.conf:2: PRIORITY: 'high' is not a whole number",
        ),
        (
            "VSERVERDIR=relative/dir",
            "R/vservers/g.conf:2: VSERVERDIR: 'relative/dir' is not an absolute path",
        ),
        (
            "VSERVERS_ROOT=x",
            "R/vservers/g.conf:2: VSERVERS_ROOT: 'x' is not an absolute path",
        ),
    ];
    for (line, want) in cases {
        let err = guest(
            &[("vservers/g.conf", &format!("# first line\n{line}\n"))],
            "g",
            None,
        )
        .unwrap_err();
        assert!(err.starts_with(want), "{line}\n got: {err}\nwant: {want}");
    }
}

#[test]
fn host_root_capabilities_need_the_loud_override() {
    let load = |text: &str| guest(&[("vservers/h.conf", text)], "h", None);
    let err = load("S_CAPS=\"CAP_SYS_PTRACE\"\n").unwrap_err();
    assert!(
        err.contains("S_CAPS_HOST_ROOT=\"yes\" in h.conf"),
        "the error says how to override: {err}"
    );
    let g = load("S_CAPS=\"CAP_SYS_PTRACE MKNOD\"\nS_CAPS_HOST_ROOT=yes\n").unwrap();
    let warning = g.host_root_warning().unwrap();
    assert!(warning.contains("CAP_SYS_PTRACE CAP_MKNOD"), "{warning}");
    // A capability taken away again, or the override alone: no warning.
    let g = load("S_CAPS=\"CAP_SYS_ADMIN !CAP_SYS_ADMIN\"\n").unwrap();
    assert!(g.host_root_warning().is_none());
    let g = load("S_CAPS=\"CAP_NET_RAW CAP_SYS_BOOT\"\nS_CAPS_HOST_ROOT=yes\n").unwrap();
    assert!(g.host_root_warning().is_none());
}

#[test]
fn resource_limits() {
    let g = guest(
        &[(
            "vservers/r.conf",
            "S_MEMORY_MAX=512M\nS_CPU_WEIGHT=200\nS_CPU_MAX=150%\n",
        )],
        "r",
        None,
    )
    .unwrap();
    assert_eq!(g.memory_max, Some(512 << 20));
    assert_eq!(g.cpu_weight, Some(200));
    assert_eq!(g.cpu_max, Some((150_000, 100_000)));
    let g = guest(
        &[(
            "vservers/r.conf",
            "S_MEMORY_MAX=1073741824\nS_CPU_MAX=\"20000 50000\"\n",
        )],
        "r",
        None,
    )
    .unwrap();
    assert_eq!(
        (g.memory_max, g.cpu_max),
        (Some(1 << 30), Some((20_000, 50_000)))
    );
    let g = guest(&[("vservers/r.conf", "S_MEMORY_MAX=2g\n")], "r", None).unwrap();
    assert_eq!(g.memory_max, Some(2 << 30));
    assert_eq!(g.pids_max, None);
    for (text, want) in [
        ("40", LimitValue::Units(40)),
        ("max", LimitValue::Unlimited),
        ("unlimited", LimitValue::Unlimited),
    ] {
        let conf = format!("S_PIDS_MAX={text}\n");
        let g = guest(&[("vservers/r.conf", &conf)], "r", None).unwrap();
        assert_eq!(g.pids_max, Some(want), "{text}");
    }
    for bad in ["0", "-1", "4k", "none"] {
        let conf = format!("S_PIDS_MAX={bad}\n");
        let err = guest(&[("vservers/r.conf", &conf)], "r", None).unwrap_err();
        assert!(err.contains("is not a process limit"), "{bad}: {err}");
    }
}

#[test]
fn bad_value_in_a_sourced_file_names_that_file() {
    let err = guest(
        &[
            ("vservers.conf", "\n\nS_FLAGS=bogus\n"),
            ("vservers/g.conf", "source /etc/vservers.conf\n"),
        ],
        "g",
        None,
    )
    .unwrap_err();
    assert!(
        err.starts_with("R/vservers.conf:3: S_FLAGS: unknown flag 'bogus'"),
        "{err}"
    );
}

#[test]
fn guest_names_and_missing_files() {
    let err = guest(&[], "../etc", None).unwrap_err();
    assert!(err.contains("'../etc' is not a valid guest name"), "{err}");
    let err = guest(&[], "nosuch", None).unwrap_err();
    assert_eq!(
        err,
        "R/vservers/nosuch.conf: cannot read R/vservers/nosuch.conf: No such file or directory (ENOENT)"
    );
}

#[test]
fn printconf_output_plain_and_quoted() {
    let g = guest(
        &[("vservers/p.conf", "# Description: the \"best\" guest\nS_HOSTNAME=p1\nS_CAPS='CAP_NET_RAW  !CHOWN'\nMY_VAR='a $b `c` \\d\nnext'\n")],
        "p",
        None,
    )
    .unwrap();
    let plain = printconf::render(&g, false);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines[0], "S_CONTEXT=");
    assert!(lines.contains(&"S_HOSTNAME=p1"));
    assert!(lines.contains(&"S_CAPS=CAP_NET_RAW !CAP_CHOWN"));
    assert!(lines.contains(&"VSERVERDIR=/vservers/p"));
    assert!(lines.contains(&"GENERATEMTAB=yes"));
    assert!(lines.contains(&"DESCRIPTION=the \"best\" guest"));
    assert_eq!(lines.last(), Some(&"MY_VAR=a $b `c` \\d next"));
    assert_eq!(lines.len(), guest::KNOWN.len() + 2);

    let quoted = printconf::render(&g, true);
    assert!(quoted.contains("\nS_HOSTNAME=\"p1\"\n"));
    assert!(
        quoted.contains("\nMY_VAR=\"a \\$b \\`c\\` \\\\d\nnext\"\n"),
        "{quoted}"
    );
    assert!(quoted.contains("\nDESCRIPTION=\"the \\\"best\\\" guest\"\n"));
}
