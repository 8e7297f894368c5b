//! The vsbox multicall binary: dispatch on the name it was called under.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vsbox::applet::{self, Applet};
use vsbox::install::{self, LinkKind};
use vsbox::{Error, cli};

include!(concat!(env!("OUT_DIR"), "/applets.rs"));

const USAGE: &str = "\
usage: vsbox APPLET [ARGS...]     run an applet (or call vsbox under the applet's name)
       vsbox --list               list the applets
       vsbox --install [-s] DIR   link every applet into DIR (-s: symbolic links)
       vsbox --help | --version";

fn main() -> ExitCode {
    // Output into a closed pipe ends the program quietly, as in C tools.
    let _ = vsbox::sys::signal::default_sigpipe();
    let args: Vec<OsString> = std::env::args_os().collect();
    let called_as = args
        .first()
        .map_or(OsStr::new("vsbox"), |a| cli::basename(a));
    let name = called_as.to_str().unwrap_or_default();
    let status = match applet::find(APPLETS, name) {
        Some(applet) => run_applet(applet, &args[1..]),
        // v_sshd CMD... is vservice sshd CMD..., the seed's v_ services.
        None => match (name.strip_prefix("v_"), applet::find(APPLETS, "vservice")) {
            (Some(service), Some(applet)) if !service.is_empty() => {
                let mut rest = vec![OsString::from(service)];
                rest.extend_from_slice(&args[1..]);
                run_applet(applet, &rest)
            }
            _ => front_end(args.get(1..).unwrap_or_default()),
        },
    };
    ExitCode::from(status)
}

fn run_applet(applet: &Applet, args: &[OsString]) -> u8 {
    match (applet.run)(args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("{}: {e}", applet.name);
            e.exit_status()
        }
    }
}

fn front_end(args: &[OsString]) -> u8 {
    let Some(first) = args.first() else {
        eprintln!("{USAGE}");
        return 2;
    };
    let result = match first.to_str() {
        Some("--list") => {
            list();
            Ok(())
        }
        Some("--install") => install(&args[1..]),
        Some("--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("--version") => {
            println!("vsbox {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(name) => match applet::find(APPLETS, name) {
            Some(applet) => return run_applet(applet, &args[1..]),
            None => Err(Error::usage(format!(
                "unknown applet '{name}'; 'vsbox --list' shows the applets"
            ))),
        },
        None => Err(Error::usage(format!(
            "unknown applet '{}'; 'vsbox --list' shows the applets",
            first.to_string_lossy()
        ))),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("vsbox: {e}");
            e.exit_status()
        }
    }
}

fn list() {
    let width = APPLETS.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in APPLETS {
        println!("{:width$}  {}", a.name, a.summary);
    }
}

fn install(args: &[OsString]) -> vsbox::Result<()> {
    let mut kind = LinkKind::Hard;
    let mut dir = None;
    for arg in args {
        match arg.to_str() {
            Some("-s") => kind = LinkKind::Symbolic,
            _ if dir.is_none() => dir = Some(PathBuf::from(arg)),
            _ => return Err(Error::usage(format!("--install takes one DIR\n{USAGE}"))),
        }
    }
    let dir = dir.ok_or_else(|| Error::usage(format!("--install needs a DIR\n{USAGE}")))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find the vsbox binary", &e))?;
    let names: Vec<&str> = APPLETS.iter().map(|a| a.name).collect();
    let report = install::install(&dir, &exe, &names, kind)?;
    println!(
        "{}: {} links ({} created, {} replaced, {} already in place) to {}",
        dir.display(),
        names.len(),
        report.created.len(),
        report.replaced.len(),
        report.unchanged.len(),
        Path::new(&exe).display()
    );
    Ok(())
}
