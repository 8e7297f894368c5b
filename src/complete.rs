//! Shell completion: the bash script that `vsbox --install --completion DIR`
//! writes, and the candidates that `vsbox --complete WORDS...` prints for it.
//!
//! The script is a few lines that hand the words to vsbox; everything it
//! offers is read from what vsbox already prints, so it never drifts from
//! the applets: applet names, options from `APPLET --help`, the commands
//! from the "Commands" section of a help (vserver's), and guest names for
//! the places the usage line calls NAME or GUEST (and after --guest).

use std::path::Path;

use crate::Result;
use crate::cli::shell_quote;
use crate::error::Context;

/// Where candidates come from; the dispatcher runs the real applets, unit
/// tests give fixed texts.
pub struct Sources<'a> {
    pub applets: &'a [&'a str],
    /// The standard output of `vsbox ARGS...` (`["vserver", "--help"]`).
    pub help: &'a dyn Fn(&[&str]) -> String,
    /// The configured guests, under `--config-root DIR` when one was given.
    pub guests: &'a dyn Fn(Option<&str>) -> Vec<String>,
}

/// The front end's own options, offered after `vsbox`.
const FRONT_END_OPTIONS: &[&str] = &["--list", "--install", "--help", "--version"];

/// The candidates for the last of `words` (bash's COMP_WORDS up to and
/// including COMP_CWORD): those that start with it, sorted.
pub fn candidates(words: &[String], src: &Sources) -> Vec<String> {
    let Some((current, mut before)) = words.split_last() else {
        return Vec::new();
    };
    if before
        .first()
        .is_some_and(|w| crate::cli::basename(w.as_ref()) == "vsbox")
    {
        before = &before[1..];
        if before.is_empty() {
            let mut all: Vec<&str> = src.applets.to_vec();
            all.extend(FRONT_END_OPTIONS);
            return matching(all, current);
        }
    }
    let Some((applet, args)) = before.split_first() else {
        return Vec::new();
    };
    let applet = crate::cli::basename(applet.as_ref()).to_str().unwrap_or("");
    if !src.applets.contains(&applet) {
        return Vec::new();
    }
    let help = (src.help)(&[applet, "--help"]);
    let valued = options_with_values(&help);
    let positionals = positionals(args, &valued);
    let config_root = args
        .iter()
        .position(|a| a == "--config-root")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);

    if let Some(prev) = args.last().filter(|p| valued.contains(p)) {
        return if prev == "--guest" {
            matching((src.guests)(config_root), current)
        } else {
            Vec::new()
        };
    }
    let commands = commands(&help);
    if current.starts_with('-') {
        // After `vserver NAME COMMAND`, the command's own options.
        let text = match positionals.as_slice() {
            [_, command, ..] if commands.iter().any(|c| c == command) => {
                (src.help)(&[applet, "_", command, "--help"])
            }
            _ => help,
        };
        return matching(options(&text), current);
    }
    match placeholders(&help)
        .get(positionals.len())
        .map(String::as_str)
    {
        Some("NAME" | "GUEST" | "GUESTS") => matching((src.guests)(config_root), current),
        Some("COMMAND") if !commands.is_empty() => matching(commands, current),
        _ => Vec::new(),
    }
}

/// The bash completion script: completes `vsbox` and every applet name
/// through `EXE --complete`; when it offers nothing, bash completes file
/// names.
pub fn bash_script(exe: &Path, applets: &[&str]) -> String {
    let exe = shell_quote(exe.as_os_str());
    format!(
        "# bash completion for vsbox and its applets, written by vsbox --install --completion\n\
         _vsbox() {{\n\
         \x20   local IFS=$'\\n'\n\
         \x20   COMPREPLY=($({exe} --complete \"${{COMP_WORDS[@]:0:COMP_CWORD+1}}\" 2>/dev/null))\n\
         }}\n\
         complete -o default -F _vsbox vsbox {}\n",
        applets.join(" ")
    )
}

/// Writes the script as DIR/vsbox and links every applet name to it there,
/// for bash-completion, which loads DIR/NAME on the first completion of
/// NAME.
pub fn install(dir: &Path, exe: &Path, applets: &[&str]) -> Result<()> {
    // The links name the script by its absolute path.
    let dir = std::path::absolute(dir).context(|| format!("cannot use {}", dir.display()))?;
    let file = dir.join("vsbox");
    let temp = dir.join(".vsbox.vsbox-install");
    std::fs::write(&temp, bash_script(exe, applets))
        .context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, &file)
        .context(|| format!("cannot rename {} to {}", temp.display(), file.display()))?;
    crate::install::install(&dir, &file, applets, crate::install::LinkKind::Symbolic)?;
    Ok(())
}

fn matching<S: AsRef<str>>(all: impl IntoIterator<Item = S>, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = all
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .filter(|s| s.starts_with(prefix))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Words of a help text with their punctuation (`[--json]`, `-t|--tty`,
/// `-s,`) taken off.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || "[]|,()".contains(c))
        .filter(|w| !w.is_empty())
}

/// An option name: `-x` or `--long-name`, not a placeholder such as `-SIG`.
fn is_option(w: &str) -> bool {
    let name = w.trim_start_matches('-');
    w.starts_with('-')
        && w.len() - name.len() <= 2
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && name.chars().any(|c| c.is_ascii_lowercase())
}

/// A value placeholder: `<name>`, `NAME`, `SIG`.
fn is_placeholder(w: &str) -> bool {
    w.starts_with('<') || (w.chars().all(|c| c.is_ascii_uppercase()) && !w.is_empty())
}

fn options(help: &str) -> Vec<String> {
    words(help)
        .filter(|w| is_option(w))
        .map(str::to_string)
        .collect()
}

/// The options that the help shows followed by a value.
fn options_with_values(help: &str) -> Vec<String> {
    let all: Vec<&str> = words(help).collect();
    all.windows(2)
        .filter(|w| is_option(w[0]) && is_placeholder(w[1]))
        .map(|w| w[0].to_string())
        .collect()
}

/// The arguments given so far that are not options or option values.
fn positionals<'a>(args: &'a [String], valued: &[String]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a.starts_with('-') {
            skip = valued.contains(a);
        } else {
            out.push(a.as_str());
        }
    }
    out
}

/// The positional arguments of the usage line, upper-cased without their
/// brackets and dots (`[<guests...>]` is GUESTS); the last one repeats when
/// it takes several.
fn placeholders(help: &str) -> Vec<String> {
    let Some(usage) = help
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("usage:"))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut after_option = false;
    let mut repeats = false;
    for w in words(usage).skip(2) {
        if w.starts_with('-') {
            after_option = is_option(w);
            continue;
        }
        if std::mem::take(&mut after_option) && is_placeholder(w) {
            continue;
        }
        repeats = w.contains("...");
        out.push(
            w.trim_matches(|c| c == '<' || c == '>' || c == '.')
                .to_ascii_uppercase(),
        );
    }
    if repeats && let Some(last) = out.last().cloned() {
        out.extend(std::iter::repeat_n(last, 64));
    }
    out
}

/// The first words of the lines of a "Commands" section.
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VSERVER: &str = "Usage: vserver [--silent] [--profile <profile>] [--config-root <config-root>] [NAME COMMAND ARGS...]\n\n\
        Options:\n  --silent  quiet\n  --help, help  help\n\n\
        Commands (vserver NAME COMMAND --help for one):\n  start    start it\n  status [--json]  x\n";
    const VKILL: &str = "Usage: vkill [-s SIG | -SIG] PID...\n  --ctx N   x\n  --guest NAME  x\n";

    fn complete(words: &[&str]) -> Vec<String> {
        let help = |args: &[&str]| match args {
            ["vserver", "--help"] => VSERVER.to_string(),
            ["vserver", "_", "status", "--help"] => "Usage: vserver NAME status [--json]".into(),
            ["vkill", "--help"] => VKILL.to_string(),
            _ => String::new(),
        };
        let guests = |root: Option<&str>| match root {
            Some(_) => vec!["other".to_string()],
            None => vec!["web1".to_string(), "web2".to_string(), "db".to_string()],
        };
        let src = Sources {
            applets: &["vkill", "vserver", "vps"],
            help: &help,
            guests: &guests,
        };
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        candidates(&words, &src)
    }

    #[test]
    fn applets_after_vsbox() {
        assert_eq!(complete(&["vsbox", "vs"]), ["vserver"]);
        assert_eq!(complete(&["/bin/vsbox", "--l"]), ["--list"]);
    }

    #[test]
    fn vserver_guest_then_command_then_options() {
        assert_eq!(complete(&["vserver", "web"]), ["web1", "web2"]);
        assert_eq!(complete(&["vsbox", "vserver", "--silent", ""]).len(), 3);
        assert_eq!(
            complete(&["vserver", "--profile", "p", "db", "st"]),
            ["start", "status"]
        );
        assert_eq!(complete(&["vserver", "db", "status", "--"]), ["--json"]);
        assert_eq!(complete(&["vserver", "--s"]), ["--silent"]);
        assert!(complete(&["vserver", "db", "start", ""]).is_empty());
        assert_eq!(complete(&["vserver", "--config-root", "/x", ""]), ["other"]);
    }

    #[test]
    fn guests_after_guest_option_and_nothing_for_other_values() {
        assert_eq!(complete(&["vkill", "--guest", "w"]), ["web1", "web2"]);
        assert!(complete(&["vkill", "--ctx", ""]).is_empty());
        assert_eq!(complete(&["vkill", "--g"]), ["--guest"]);
        assert!(complete(&["vkill", "-"]).iter().all(|o| o != "-SIG"));
        assert!(complete(&["nosuch", ""]).is_empty());
    }
}
