//! send a signal to processes wherever they run, or to a whole guest
//!
//! vkill [-s SIG | -SIG] PID... | vkill [-s SIG] --ctx N | --guest NAME
//!
//! Each process is signalled through a pidfd after its guest is checked
//! (no pid-reuse race); processes of private guests are refused. See
//! vkill(8).

use std::ffi::OsString;

use vsbox::procfs::kill;
use vsbox::{Error, Result};

const HELP: &str = "\
Usage: vkill [-s SIG | -SIG] PID...
       vkill [-s SIG | -SIG] --ctx N | --guest NAME

Send signal SIG (default TERM) to each PID (host numbering), whichever
guest it runs in, or to every process of a running guest. Processes of
guests with the private flag are refused.

Options:
  -s SIG, --signal SIG, -SIG   the signal: a name (TERM, SIGKILL, hup) or a number
  --ctx N                      every process of context N
  --guest NAME                 every process of guest NAME (or of the guest in directory NAME)
  -l                           list the signal names
  --help                       this help";

enum Target {
    Pids(Vec<i32>),
    Context(u32),
    Guest(String),
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let mut signo = 15;
    let mut pids = Vec::new();
    let mut target = None;
    let mut it = args.iter().map(|a| {
        a.to_str().ok_or_else(|| {
            Error::usage(format!(
                "argument is not valid UTF-8: {}",
                a.to_string_lossy()
            ))
        })
    });
    let mut options = true;
    while let Some(arg) = it.next() {
        let arg = arg?;
        let mut value = |what: &str| -> Result<&str> {
            it.next()
                .ok_or_else(|| Error::usage(format!("{arg} needs {what}")))?
        };
        match arg {
            "--" if options => options = false,
            "--help" | "-h" if options => {
                println!("{HELP}");
                return Ok(0);
            }
            "-l" | "--list" if options => {
                let names: Vec<String> = (1..=31).map(kill::signal_name).collect();
                println!("{}", names.join(" "));
                return Ok(0);
            }
            "-s" | "--signal" if options => signo = kill::parse_signal(value("a signal")?)?,
            "--ctx" if options => {
                let v = value("a context number")?;
                let n = v
                    .parse()
                    .map_err(|_| Error::usage(format!("--ctx: '{}' is not a context number", vsbox::error::shown(v))))?;
                target = Some(Target::Context(n));
            }
            "--guest" if options => {
                target = Some(Target::Guest(value("a guest name")?.to_string()))
            }
            s if options && s.starts_with('-') && s.len() > 1 => {
                signo = kill::parse_signal(&s[1..])?;
            }
            s => pids.push(
                s.parse::<i32>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| Error::usage(format!("'{}' is not a pid", vsbox::error::shown(s))))?,
            ),
        }
    }
    let target = match (target, pids.is_empty()) {
        (Some(_), false) => {
            return Err(Error::usage("give either PIDs or --ctx/--guest, not both"));
        }
        (Some(t), true) => t,
        (None, false) => Target::Pids(pids),
        (None, true) => return Err(Error::usage("no PID given")),
    };
    match target {
        Target::Pids(pids) => {
            let mut failed = false;
            for pid in pids {
                if let Err(e) = kill::kill_pid(pid, signo) {
                    eprintln!("{}", e.report("vkill"));
                    failed = true;
                }
            }
            Ok(u8::from(failed))
        }
        Target::Context(n) => kill::kill_guest(&kill::guest_by_context(n)?, signo).map(|_| 0),
        Target::Guest(name) => {
            kill::kill_guest(&vsbox::procfs::running_guest(&name)?, signo).map(|_| 0)
        }
    }
}
