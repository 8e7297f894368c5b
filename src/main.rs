//! The vsbox multicall binary: dispatch on the name it was called under.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vsbox::applet::{self, Applet};
use vsbox::install::{self, LinkKind};
use vsbox::{Error, cli, complete};

include!(concat!(env!("OUT_DIR"), "/applets.rs"));

const USAGE: &str = "\
usage: vsbox APPLET [ARGS...]     run an applet (or call vsbox under the applet's name)
       vsbox --list               list the applets
       vsbox --install [-s] DIR [--completion CDIR]
                                  link every applet into DIR (-s: symbolic links);
                                  write the bash completion into CDIR
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
            eprintln!("{}", e.report(applet.name));
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
        // The entry point of the bash completion script, not for people.
        Some("--complete") => {
            complete(&args[1..]);
            Ok(())
        }
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
            None => Err(unknown_applet(name)),
        },
        None => Err(unknown_applet(&first.to_string_lossy())),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", e.report("vsbox"));
            e.exit_status()
        }
    }
}

fn unknown_applet(name: &str) -> Error {
    Error::usage(format!(
        "unknown applet '{}'; 'vsbox --list' shows the applets",
        vsbox::error::shown(name)
    ))
}

fn list() {
    let width = APPLETS.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in APPLETS {
        println!("{:width$}  {}", a.name, a.summary);
    }
}

/// Prints the completion candidates for the words bash gives.
fn complete(words: &[OsString]) {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    // Helps come from the applets themselves, so that they never drift.
    let help = |args: &[&str]| {
        std::process::Command::new(&exe)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    };
    let guests = |root: Option<&str>| {
        let root = vsbox::conf::ConfigRoot::select(root.map(PathBuf::from));
        vsbox::vserver::all::guest_names(&root).unwrap_or_default()
    };
    let names: Vec<&str> = APPLETS.iter().map(|a| a.name).collect();
    let words: Vec<String> = words
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let sources = complete::Sources {
        applets: &names,
        help: &help,
        guests: &guests,
    };
    for candidate in complete::candidates(&words, &sources) {
        println!("{candidate}");
    }
}

fn install(args: &[OsString]) -> vsbox::Result<()> {
    let mut kind = LinkKind::Hard;
    let mut dir = None;
    let mut completion = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-s") => kind = LinkKind::Symbolic,
            Some("--completion") => {
                let cdir = args
                    .next()
                    .ok_or_else(|| Error::usage("--completion needs a directory"))?;
                completion = Some(PathBuf::from(cdir));
            }
            _ if dir.is_none() => dir = Some(PathBuf::from(arg)),
            _ => return Err(Error::usage("--install takes one DIR")),
        }
    }
    let dir = dir.ok_or_else(|| Error::usage("--install needs a DIR"))?;
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
    if let Some(cdir) = completion {
        complete::install(&cdir, &exe, &names)?;
        println!(
            "{}: bash completion for vsbox and the applets",
            cdir.display()
        );
    }
    Ok(())
}
