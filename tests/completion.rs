//! Bash completion, typed for real: `vsbox --install --completion DIR`
//! writes the script, a bash in tmux sources it, and Tab completes guest
//! names, vserver commands, options and applets.

mod common;

use std::process::Command;

use common::process::wait_until;
use common::tempdir::TempDir;
use common::tmux::Tmux;
use common::vsbox_bin;

#[test]
fn tab_completes_guests_commands_options_and_applets_in_bash() {
    if !Tmux::available() || Command::new("bash").arg("--version").output().is_err() {
        eprintln!("skipped: no tmux or no bash");
        return;
    }
    let dir = TempDir::new("completion");
    let (bin, comp, root) = (
        dir.path().join("bin"),
        dir.path().join("completion"),
        dir.path().join("etc"),
    );
    for d in [&bin, &comp, &root.join("vservers")] {
        std::fs::create_dir_all(d).unwrap();
    }
    for guest in ["alpha-web", "beta-db"] {
        dir.write(&format!("etc/vservers/{guest}.conf"), "");
    }
    let out = Command::new(vsbox_bin())
        .args(["--install", "-s"])
        .arg(&bin)
        .arg("--completion")
        .arg(&comp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = comp.join("vsbox");
    assert!(script.is_file());
    // bash-completion loads DIR/NAME for NAME: every applet has its link.
    assert_eq!(std::fs::read_link(comp.join("vserver")).unwrap(), script);

    let session = Tmux::start(
        "completion",
        200,
        50,
        &format!(
            "PATH={bin}:$PATH VSBOX_CONFIG_ROOT={root} PS1='$ ' exec bash --norc --noprofile",
            bin = bin.display(),
            root = root.display()
        ),
    );
    session.send_keys(&[&format!("source {}", script.display()), "Enter"]);
    session.send_keys(&["clear", "Enter"]);
    wait_until("a clear prompt", || session.capture().trim() == "$");

    // Two guests: the first Tab shows nothing new, the second lists both.
    session.send_keys(&["vserver ", "Tab", "Tab"]);
    wait_until("the guest names", || {
        let screen = session.capture();
        screen.contains("alpha-web") && screen.contains("beta-db")
    });
    // One guest starts with b, one command of it with sta.
    session.send_keys(&["b", "Tab", "sta", "Tab", "Tab"]);
    wait_until("the commands", || {
        let screen = session.capture();
        screen.contains("vserver beta-db sta")
            && screen.contains("start")
            && screen.contains("status")
    });
    session.send_keys(&["tu", "Tab", "--j", "Tab"]);
    wait_until("status and its option", || {
        session
            .capture()
            .contains("$ vserver beta-db status --json")
    });
    session.send_keys(&["C-u", "vkill --guest al", "Tab"]);
    wait_until("a guest after --guest", || {
        session.capture().contains("$ vkill --guest alpha-web")
    });
    session.send_keys(&["C-u", "vsbox vserver-s", "Tab"]);
    wait_until("an applet after vsbox", || {
        session.capture().contains("$ vsbox vserver-stat")
    });
    session.send_keys(&["C-u", "vserver alpha-web build --me", "Tab"]);
    wait_until("a build option", || {
        session
            .capture()
            .contains("$ vserver alpha-web build --method")
    });
}
