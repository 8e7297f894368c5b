//! run a command in a new or existing security context
//!
//! chcontext [--ctx N] [--secure] [--cap CAP]... [--flag F]... [--root DIR]
//!           [--hostname H] [--domainname D] [--silent] CMD ARGS...
//! chcontext [options] --root DIR --rc

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::conf::guest::DomainName;
use vsbox::context::privileges::Privileges;
use vsbox::context::runstate::RunDir;
use vsbox::context::initkind::InitKind;
use vsbox::context::spawn::{self, Entry, NewContext, SPECTATOR, Setup};
use vsbox::{Error, Result};

/// Run CMD in a new security context (its own processes, IPC, host name,
/// mounts and cgroup), or with --ctx N in the running context N; --ctx 1 is
/// the spectator context: the host's view, with only the privileges reduced.
#[derive(FromArgs)]
struct Args {
    /// the context: join N if it runs, else create it with that number;
    /// 1 runs CMD on the host (default: a new context with a free number)
    #[argh(option)]
    ctx: Option<u32>,
    /// drop the capabilities a guest must not have (see reducecap(8))
    #[argh(switch)]
    secure: bool,
    /// a capability to keep (with --secure) or, as !CAP, to drop (repeatable)
    #[argh(option)]
    cap: Vec<String>,
    /// a context flag: lock, sched, nproc, private, fakeinit or io_uring (repeatable)
    #[argh(option)]
    flag: Vec<String>,
    /// pivot into DIR as the new context's root (a vsbox extension; the seed
    /// ran chcontext inside a chroot)
    #[argh(option)]
    root: Option<PathBuf>,
    /// the host name of the new context
    #[argh(option)]
    hostname: Option<String>,
    /// the NIS domain name of the new context ("none" for none)
    #[argh(option)]
    domainname: Option<String>,
    /// instead of a command, run the guest's runlevel scripts under vinit
    /// (as vserver start does for a guest without its own init); the context
    /// lives until chcontext gets SIGTERM, which runs runlevel 6
    #[argh(switch)]
    rc: bool,
    /// do not print "New security context is N"
    #[argh(switch)]
    silent: bool,
    /// the command and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let (args, command) =
        match cli::parse_with_command::<Args>("chcontext", args, |a| a.command.len())? {
            Parsed::Run(r) => r,
            Parsed::Exit(code) => return Ok(code),
        };
    match (command.is_empty(), args.rc) {
        (true, false) => return Err(Error::usage("no command given")),
        (false, true) => {
            return Err(Error::usage(
                "--rc runs the guest's runlevel scripts: give no command",
            ));
        }
        (true, true) if args.root.is_none() => return Err(Error::usage("--rc needs --root")),
        _ => {}
    }
    let privileges = Privileges::from_options(args.secure, &args.cap, &args.flag)?;
    let flags = privileges.flags.clone();
    for warning in privileges.warnings() {
        eprintln!("chcontext: {warning}");
    }
    match args.ctx {
        Some(0) => {
            return Err(Error::usage(
                "context 0 is the host itself; --ctx 1 is the spectator view",
            ));
        }
        Some(SPECTATOR) => return spawn::run_spectator(&command, &privileges),
        Some(n) if RunDir::from_env().read(n)?.is_some() => {
            return spawn::run_in(n, &Entry::command(&command), &privileges, false);
        }
        _ => {}
    }
    if let Some(warning) = vsbox::context::scope::warning() {
        eprintln!("chcontext: warning: {warning}");
    }
    let domainname = match args.domainname.as_deref() {
        None => DomainName::Host,
        Some("none") => DomainName::None,
        Some(d) => DomainName::Name(d.to_string()),
    };
    let spec = NewContext {
        number: args.ctx,
        name: "",
        root: args.root.as_deref(),
        config_root: None,
        hostname: args.hostname.as_deref(),
        domainname: &domainname,
        flags: &flags,
        die_with_parent: true,
        runlevels: args.rc,
        init: InitKind::from_flags(&flags),
        generate_mtab: false,
        detach: false,
        start_timeout: vsbox::context::spawn::START_TIMEOUT,
        entry: Entry::command(&command),
    };
    let setup = Setup {
        privileges,
        ..Default::default()
    };
    let silent = args.silent;
    spawn::run_new(&spec, &setup, &|n| {
        if !silent {
            eprintln!("New security context is {n}");
        }
    })
}
