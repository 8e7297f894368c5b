//! a live top-like view of every process with its guest
//!
//! vtop [-d SECS] [-n N] [-b] [-m] | vtop --exec-top [TOP ARGS...]
//!
//! Refreshes every 2 s; P sorts by CPU, M by memory, q quits. --exec-top
//! runs the host's top in the spectator context instead. See vtop(8).

use std::ffi::OsString;
use std::time::Duration;

use vsbox::context::privileges::Privileges;
use vsbox::context::spawn;
use vsbox::procfs::top::{self, SortBy, TopOptions};
use vsbox::{Error, Result};

const HELP: &str = "\
Usage: vtop [-d SECS] [-n N] [-b] [-m]
       vtop --exec-top [TOP ARGS...]

Show every process with its context and guest, refreshed every SECS
seconds (default 2), busiest first. Keys: P sort by CPU, M sort by
memory, q quit.

Options:
  -d SECS       refresh interval (0.1 to 3600)
  -n N          stop after N screens
  -b            batch mode: print screens one after another (also when not on a terminal)
  -m            sort by memory from the start
  --exec-top    run the host's top (from PATH) in the spectator context instead,
                with the remaining arguments
  --help        this help";

pub fn run(args: &[OsString]) -> Result<u8> {
    if args.first().is_some_and(|a| a == "--exec-top") {
        let mut command = vec![OsString::from("top")];
        command.extend_from_slice(&args[1..]);
        let privileges = Privileges::from_options(false, &[], &[])?;
        return spawn::run_spectator(&command, &privileges);
    }
    let mut options = TopOptions {
        delay: Duration::from_secs(2),
        sort: SortBy::Cpu,
        iterations: None,
        batch: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let arg = arg.to_str().unwrap_or("");
        let mut value = |what: &str| -> Result<String> {
            it.next()
                .and_then(|v| v.to_str())
                .map(str::to_string)
                .ok_or_else(|| Error::usage(format!("{arg} needs {what}")))
        };
        match arg {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(0);
            }
            "-d" => {
                let v = value("a number of seconds")?;
                options.delay = vsbox::cli::decimal_seconds(&v)
                    .filter(|d| (Duration::from_millis(100)..=Duration::from_secs(3600)).contains(d))
                    .ok_or_else(|| Error::usage(format!("-d: '{}' is not 0.1 to 3600 seconds", vsbox::error::shown(&v))))?;
            }
            "-n" => {
                let v = value("a count")?;
                options.iterations = Some(
                    v.parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| Error::usage(format!("-n: '{}' is not a count", vsbox::error::shown(&v))))?,
                );
            }
            "-b" => options.batch = true,
            "-m" => options.sort = SortBy::Memory,
            "--exec-top" => return Err(Error::usage("--exec-top must come first")),
            _ => {
                return Err(Error::usage(format!("unknown option '{}'", arg)));
            }
        }
    }
    top::run(&options)?;
    Ok(0)
}
