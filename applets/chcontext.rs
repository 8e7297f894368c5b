//! run a command in a new or existing security context
//!
//! chcontext [--ctx N] [--root DIR] [--hostname H] [--domainname D]
//!           [--flag F]... [--silent] CMD ARGS...

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::conf::guest::DomainName;
use vsbox::context::flags::ContextFlags;
use vsbox::context::spawn::{self, NewContext, NoHooks};

/// Run CMD in a new security context (its own processes, IPC, host name and
/// mounts), or with --ctx N in the running context N.
#[derive(FromArgs)]
struct Args {
    /// the context: join N if it runs, else create it with that number
    /// (default: a new context with a free number)
    #[argh(option)]
    ctx: Option<u32>,
    /// pivot into DIR as the context's root (a vsbox extension; the seed
    /// ran chcontext inside a chroot)
    #[argh(option)]
    root: Option<PathBuf>,
    /// the host name of the new context
    #[argh(option)]
    hostname: Option<String>,
    /// the NIS domain name of the new context ("none" for none)
    #[argh(option)]
    domainname: Option<String>,
    /// a context flag: lock, sched, nproc, private or fakeinit (repeatable)
    #[argh(option)]
    flag: Vec<String>,
    /// do not print "New security context is N"
    #[argh(switch)]
    silent: bool,
    /// the command and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let (args, command) =
        match cli::parse_with_command::<Args>("chcontext", args, |a| a.command.len())? {
            Parsed::Run(r) => r,
            Parsed::Exit(code) => return Ok(code),
        };
    if command.is_empty() {
        return Err(vsbox::Error::usage(
            "no command given (see chcontext --help)",
        ));
    }
    let flags = ContextFlags::parse(&args.flag.join(" ")).map_err(vsbox::Error::usage)?;
    if let Some(n) = args.ctx {
        if let Some(_running) = vsbox::context::runstate::RunDir::from_env().read(n)? {
            return spawn::run_in(n, &command, &NoHooks);
        }
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
        hostname: args.hostname.as_deref(),
        domainname: &domainname,
        flags: &flags,
        die_with_parent: true,
        command: &command,
    };
    let silent = args.silent;
    spawn::run_new(&spec, &NoHooks, &|n| {
        if !silent {
            eprintln!("New security context is {n}");
        }
    })
}
