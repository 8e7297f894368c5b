//! start, stop, enter and run commands in a guest
//!
//! vserver [--silent] [--verbose] [--nodev] NAME build [OPTIONS]|start|stop
//!         |restart|status|running|enter|exec [-t] CMD...|suexec USER CMD...
//!         |service SVC ACTION|delete [--force]|rename NEW
//! vserver list [--json]

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::conf::ConfigRoot;
use vsbox::context::spawn::Entry;
use vsbox::vserver::build::BuildOptions;
use vsbox::vserver::guest::{Guest, Options, format_uptime};
use vsbox::vserver::list;
use vsbox::{Error, Result};

/// Manage guest NAME: one of the commands below. exec, enter, suexec and
/// service on a stopped guest run in a context made for them, after the
/// pre-start step. Commands never get the caller's own descriptors: their
/// stdin, stdout and stderr are pipes that vserver copies (it reads its
/// stdin eagerly: give </dev/null in loops), and enter and exec -t run on a
/// pseudo-terminal of the guest's own, relayed to the caller's terminal.
/// `vserver list [--json]` lists every configured guest, running or stopped
/// (as vserver-stat --all).
#[derive(FromArgs)]
struct Args {
    /// print nothing but errors
    #[argh(switch)]
    silent: bool,
    /// tell what is being done
    #[argh(switch)]
    verbose: bool,
    /// do not set up or remove IP aliases
    #[argh(switch)]
    nodev: bool,
    /// the profile to use (default: $PROFILE, the running guest's, or the
    /// file's)
    #[argh(option)]
    profile: Option<String>,
    /// where vservers.conf and vservers/ are (default: $VSBOX_CONFIG_ROOT,
    /// else /etc)
    #[argh(option)]
    config_root: Option<PathBuf>,
    /// the guest, the command and its arguments
    #[argh(positional, greedy, arg_name = "NAME COMMAND ARGS")]
    rest: Vec<String>,
}

/// The commands: name, arguments, what it does. Dispatch takes only these;
/// `vserver --help` lists them and `vserver NAME COMMAND --help` shows one.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("build", "[OPTIONS]", "make the guest's configuration and tree"),
    ("start", "", "start the guest"),
    ("stop", "", "stop the guest"),
    ("restart", "", "stop, then start the guest"),
    (
        "status",
        "[--json]",
        "whether it runs, its processes and uptime (exit status 3 if stopped)",
    ),
    ("running", "", "exit status 0 if the guest runs, 1 if not"),
    ("enter", "", "a root login shell in the guest"),
    (
        "exec",
        "[-t|--tty] CMD ARGS...",
        "run CMD in the guest (-t: on a terminal)",
    ),
    (
        "suexec",
        "USER CMD ARGS...",
        "run CMD as USER, from the guest's own /etc/passwd",
    ),
    (
        "service",
        "SVC start|stop|restart|status",
        "run the guest's /etc/init.d/SVC",
    ),
    (
        "delete",
        "[--force]",
        "remove the tree, the configuration and the companion script (--force: stop it first)",
    ),
    ("rename", "NEW", "give the guest the name NEW"),
    (
        "log",
        "[-f|--follow]",
        "the guest's console output, kept on the host (-f: and what comes)",
    ),
    (
        "console",
        "",
        "attach to the guest's /dev/console (Ctrl-] detaches)",
    ),
];

const BUILD_OPTIONS: &str = "\
Options:
  -m, --method METHOD   busybox, skeleton, host, clone:OTHER or
                        debootstrap[:SUITE[:MIRROR]] (default: busybox;
                        MIRROR: the host's apt sources' Debian mirror)
  --variant VARIANT     debootstrap's variant (default: its own, with
                        systemd; minbase: the smallest)
  --include PKG,PKG     packages debootstrap installs too
  --hostname H          the guest's host name
  --ip IPROOT           the guest's addresses
  --description TEXT    one line about the guest
  --excldir DIR         a directory not copied (repeatable)
  --vservers-root DIR   where the guest's tree is made
  --stats               print what was copied
  --progress            show progress on stderr even when it is not a
                        terminal (plain lines)
  --no-progress         no status line (default: one when stderr is a
                        terminal; --silent turns it off too)
  -h, --help            this help

With no options on a terminal, build asks for them.";

/// `vserver --help`'s list of the commands.
fn commands_help() -> String {
    let mut text = String::from("Commands (vserver NAME COMMAND --help for one):\n");
    for (name, args, what) in COMMANDS {
        let call = format!("{name} {args}");
        text.push_str(&format!("  {call:<40} {what}\n"));
    }
    text
}

/// `vserver NAME COMMAND --help`.
fn command_help(command: &str, args: &str, what: &str) {
    println!("Usage: vserver [OPTIONS] NAME {command} {args}\n\n{what}");
    if command == "build" {
        println!("\n{BUILD_OPTIONS}");
    }
}

fn is_help(arg: &OsString) -> bool {
    arg == "--help" || arg == "-h"
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let parsed =
        cli::parse_with_command_noted::<Args>("vserver", args, |a| a.rest.len(), &commands_help())?;
    let (args, rest) = match parsed {
        Parsed::Run(r) => r,
        Parsed::Exit(code) => return Ok(code),
    };
    if let [list, more @ ..] = rest.as_slice() {
        if list == "list" && more.len() <= 1 {
            let json = match more {
                [] => false,
                [flag] if flag == "--json" => true,
                [flag] if is_help(flag) => {
                    println!("Usage: vserver list [--json]\n\nevery configured guest, running or stopped");
                    return Ok(0);
                }
                _ => return Err(Error::usage("vserver list [--json]")),
            };
            let root = ConfigRoot::select(args.config_root);
            return list::print(&root, json).map(|()| 0);
        }
    }
    let [name, command, more @ ..] = rest.as_slice() else {
        return Err(Error::usage("usage: vserver [OPTIONS] NAME COMMAND ..."));
    };
    let command = command.to_str().unwrap_or("");
    let Some(&(_, command_args, what)) = COMMANDS.iter().find(|c| c.0 == command) else {
        return Err(Error::usage(format!(
            "unknown command '{}'",
            vsbox::error::shown(command)
        )));
    };
    if more.first().is_some_and(is_help) || (command == "build" && more.iter().any(is_help)) {
        command_help(command, command_args, what);
        return Ok(0);
    }
    let name = name
        .to_str()
        .ok_or_else(|| Error::usage("the guest name is not valid UTF-8"))?;
    let options = Options {
        silent: args.silent,
        verbose: args.verbose,
        nodev: args.nodev,
    };
    let root = ConfigRoot::select(args.config_root);
    // build makes the configuration the other commands read.
    if command == "build" {
        return build(&root, name, more, options);
    }
    let profile = args
        .profile
        .or_else(|| std::env::var("PROFILE").ok().filter(|p| !p.is_empty()));
    let guest = Guest::load(&root, name, profile.as_deref(), options)?;
    let no_more = |what: &str| {
        if more.is_empty() {
            Ok(())
        } else {
            Err(Error::usage(format!(
                "vserver NAME {what} takes no arguments"
            )))
        }
    };
    let result = match command {
        "start" => no_more("start").and_then(|()| guest.start()).map(|()| 0),
        "stop" => no_more("stop").and_then(|()| guest.stop()).map(|()| 0),
        "restart" => {
            no_more("restart")?;
            guest.stop()?;
            guest.start().map(|()| 0)
        }
        "running" => Ok(if guest.context()?.is_some() { 0 } else { 1 }),
        "status" => status(&guest, more),
        "enter" => {
            no_more("enter")?;
            guest.run(&Entry {
                command: &[],
                user: None,
                login: true,
                env: None,
                terminal: true,
            })
        }
        "exec" => {
            let (terminal, cmd) = match more {
                [flag, cmd @ ..] if flag == "-t" || flag == "--tty" => (true, cmd),
                cmd => (false, cmd),
            };
            if cmd.is_empty() {
                return Err(Error::usage("vserver NAME exec [-t] CMD ARGS..."));
            }
            guest.run(&Entry {
                terminal,
                ..Entry::command(cmd)
            })
        }
        "suexec" => {
            let [user, cmd @ ..] = more else {
                return Err(Error::usage("vserver NAME suexec USER CMD ARGS..."));
            };
            if cmd.is_empty() {
                return Err(Error::usage("vserver NAME suexec USER CMD ARGS..."));
            }
            let user = user
                .to_str()
                .ok_or_else(|| Error::usage("the user name is not valid UTF-8"))?;
            guest.run(&Entry {
                command: cmd,
                user: Some(user),
                login: false,
                env: None,
                terminal: false,
            })
        }
        "service" => {
            let [service, action] = more else {
                return Err(Error::usage(
                    "vserver NAME service SVC start|stop|restart|status",
                ));
            };
            let service = service
                .to_str()
                .ok_or_else(|| Error::usage("the service name is not valid UTF-8"))?;
            guest.service(service, action)
        }
        "delete" => {
            let force = match more {
                [] => false,
                [flag] if flag == "--force" => true,
                _ => return Err(Error::usage("vserver NAME delete [--force]")),
            };
            vsbox::vserver::delete::delete(&guest, force)?;
            if !options.silent {
                println!("Server {name} is deleted");
            }
            Ok(0)
        }
        "log" => {
            let follow = match more {
                [] => false,
                [flag] if flag == "-f" || flag == "--follow" => true,
                _ => return Err(Error::usage("vserver NAME log [-f|--follow]")),
            };
            guest.console_log(follow).map(|()| 0)
        }
        "console" => no_more("console")
            .and_then(|()| guest.attach_console())
            .map(|()| 0),
        "rename" => {
            let [new] = more else {
                return Err(Error::usage("vserver NAME rename NEW"));
            };
            let new = new
                .to_str()
                .ok_or_else(|| Error::usage("the new name is not valid UTF-8"))?;
            vsbox::vserver::rename::rename(&guest, new)?;
            if !options.silent {
                println!("Server {name} is now {new}");
            }
            Ok(0)
        }
        other => Err(Error::usage(format!(
            "unknown command '{}'",
            vsbox::error::shown(other)
        ))),
    };
    // Around a command run in the guest, vsbox's own failures exit 125:
    // the command's status 1 stays its own (126, 127: it could not run).
    if matches!(command, "enter" | "exec" | "suexec" | "service") {
        result.map_err(Error::around_guest_command)
    } else {
        result
    }
}

/// `vserver NAME build [OPTIONS]`: see BUILD_OPTIONS.
fn build(root: &ConfigRoot, name: &str, args: &[OsString], options: Options) -> Result<u8> {
    let mut opts = BuildOptions::default();
    let mut stats = false;
    let (mut progress, mut no_progress) = (false, options.silent);
    let mut excluded = Vec::new();
    let mut words = args.iter().map(|a| {
        a.to_str()
            .ok_or_else(|| Error::usage("build options must be UTF-8"))
    });
    while let Some(word) = words.next() {
        let word = word?;
        let mut value = || -> Result<String> {
            Ok(words
                .next()
                .ok_or_else(|| Error::usage(format!("{word} needs a value")))??
                .to_string())
        };
        match word {
            "-m" | "--method" => opts.method = value()?.parse()?,
            "--variant" => opts.variant = Some(value()?),
            "--include" => opts.include = vsbox::vserver::build::parse_include(&value()?)?,
            "--hostname" => opts.hostname = Some(value()?),
            "--ip" => opts.ip = Some(value()?),
            "--description" => opts.description = Some(value()?),
            "--excldir" => excluded.push(PathBuf::from(value()?)),
            "--vservers-root" => opts.vservers_root = Some(PathBuf::from(value()?)),
            "--stats" => stats = true,
            "--progress" => progress = true,
            "--no-progress" => no_progress = true,
            other => {
                return Err(Error::usage(format!(
                    "unknown build option '{}'",
                    vsbox::error::shown(other)
                )));
            }
        }
    }
    if !excluded.is_empty() {
        opts.excluded = excluded;
    }
    opts.progress = vsbox::progress::Style::choose(progress, no_progress);
    // On a terminal with no options, ask, as newvserver did.
    use std::io::IsTerminal;
    if args.is_empty() && std::io::stdin().is_terminal() {
        vsbox::vserver::ask::ask_build_options(name, &mut opts, &mut std::io::stdin().lock(), &mut std::io::stdout())?;
    }
    let report = vsbox::vserver::build::build(root, name, &opts)?;
    for warning in &report.warnings {
        eprintln!("vserver {name}: warning: {warning}");
    }
    if stats {
        print!("{}", report.stats());
    }
    if !options.silent {
        println!(
            "Server {name} built in {} ({})",
            report.path.display(),
            opts.method
        );
    }
    Ok(0)
}

fn status(guest: &Guest, more: &[OsString]) -> Result<u8> {
    let json = match more {
        [] => false,
        [flag] if flag == "--json" => true,
        _ => return Err(Error::usage("vserver NAME status [--json]")),
    };
    let s = guest.status()?;
    let name = guest.name();
    if json {
        println!("{}", list::status_object(name, &s).finish());
    } else if s.running {
        println!("Server {name} is running");
        println!("{} processes running", s.processes);
        if let Some(u) = s.uptime_secs {
            println!("Vserver uptime: {}", format_uptime(u));
        }
    } else {
        println!("Server {name} is not running");
    }
    Ok(if s.running { 0 } else { 3 })
}
