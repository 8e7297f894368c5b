//! The environment of every process vsbox starts in a guest: the guest's
//! init and each command of exec, enter, suexec and service. It is made
//! afresh, never the caller's: a host's environment holds secrets (tokens,
//! passwords in variables of cron jobs and deploy scripts) and settings
//! (LD_PRELOAD, PATH) that mean nothing, or something harmful, in a guest.

use std::process::Command;

/// PATH in a guest: the usual one of a root shell.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the guest's programs see in `container` (systemd and
/// systemd-detect-virt read it to know they run in a container).
pub const CONTAINER: &str = "vsbox";

/// The variables, in order; later ones win over earlier ones of the same
/// name when applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestEnv {
    vars: Vec<(String, String)>,
}

impl GuestEnv {
    /// PATH, HOME (root's), TERM (the caller's terminal type, when it is a
    /// plain name), container=vsbox, PROFILE (the active profile, if any),
    /// then the guest's own S_ENV variables.
    pub fn new(profile: Option<&str>, extra: &[(String, String)]) -> Self {
        let mut vars = vec![
            ("PATH".to_string(), PATH.to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        if let Some(term) = std::env::var("TERM").ok().filter(|t| is_terminal_name(t)) {
            vars.push(("TERM".to_string(), term));
        }
        vars.push(("container".to_string(), CONTAINER.to_string()));
        if let Some(p) = profile {
            vars.push(("PROFILE".to_string(), p.to_string()));
        }
        vars.extend(extra.iter().filter(|(k, _)| k != "container").cloned());
        GuestEnv { vars }
    }

    /// Gives `cmd` exactly this environment.
    /// The same with `name` set to `value` (over any S_ENV of that name).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    pub fn apply(&self, cmd: &mut Command) {
        cmd.env_clear();
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
    }
}

/// A terminal type as terminfo names them (xterm-256color, screen.linux):
/// nothing else of the caller's TERM reaches the guest.
fn is_terminal_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._+".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(cmd: &Command) -> Vec<(String, String)> {
        cmd.get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
            .collect()
    }

    #[test]
    fn only_what_vsbox_chose_and_s_env_on_top() {
        let env = GuestEnv::new(
            Some("web"),
            &[
                ("LANG".into(), "C.UTF-8".into()),
                ("PATH".into(), "/bin".into()),
                ("container".into(), "lxc".into()),
            ],
        );
        let mut cmd = Command::new("true");
        cmd.env("SECRET", "x");
        env.apply(&mut cmd);
        let vars = env_of(&cmd);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("SECRET"), None);
        assert_eq!(
            get("PATH"),
            Some("/bin"),
            "S_ENV overrides the default PATH"
        );
        assert_eq!(
            get("container"),
            Some("vsbox"),
            "container cannot be overridden"
        );
        assert_eq!(get("PROFILE"), Some("web"));
        assert_eq!(get("LANG"), Some("C.UTF-8"));
        assert_eq!(get("HOME"), Some("/root"));
    }

    #[test]
    fn terminal_names() {
        assert!(is_terminal_name("xterm-256color"));
        assert!(is_terminal_name("screen.linux"));
        assert!(!is_terminal_name(""));
        assert!(!is_terminal_name("xterm\u{1b}]0;pwned"));
        assert!(!is_terminal_name("a b"));
    }
}
