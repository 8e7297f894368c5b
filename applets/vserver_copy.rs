//! copy a guest and its configuration to another machine with rsync over ssh
//!
//! vserver-copy [--dry-run] [--stop|--live] [--delete] NAME|DIR [USER@]HOST[:DIR]|/DIR
//!
//! See vserver-copy(8) and src/unify/copy.rs.

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::conf::ConfigRoot;
use vsbox::unify::copy;
use vsbox::vserver::guest::{Guest, Options};
use vsbox::{Error, Result};

/// Copy guest NAME (its tree, NAME.conf and NAME.sh) to [USER@]HOST[:DIR]
/// with rsync -aHAX --numeric-ids --one-file-system over ssh; paths keep
/// their names under DIR (default /). A destination starting with / or .
/// is a local directory.
#[derive(FromArgs)]
struct Args {
    /// print the rsync command and run it with -n -v (nothing is copied)
    #[argh(switch, short = 'n')]
    dry_run: bool,
    /// stop the guest if it runs, and leave it stopped
    #[argh(switch)]
    stop: bool,
    /// copy even though the guest runs (a first pass before a final copy
    /// with --stop)
    #[argh(switch)]
    live: bool,
    /// delete files in the destination tree that the guest no longer has
    #[argh(switch)]
    delete: bool,
    /// the guest name, or its directory (an argument containing '/')
    #[argh(positional)]
    name: String,
    /// [USER@]HOST[:DIR], or a local /DIR
    #[argh(positional)]
    dest: String,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let args = match cli::parse::<Args>("vserver-copy", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    if args.stop && args.live {
        return Err(Error::usage("--stop and --live exclude each other"));
    }
    let dest = copy::destination(&args.dest)?;
    let plan = if args.name.contains('/') {
        copy::plan(&PathBuf::from(&args.name), &[], dest)?
    } else {
        let root = ConfigRoot::select(None);
        let guest = Guest::load(&root, &args.name, None, Options::default())?;
        if guest.context()?.is_some() {
            if args.stop && !args.dry_run {
                guest.stop()?;
            } else if !args.live && !args.dry_run {
                return Err(Error::failure(format!(
                    "{} is running: a copy could catch files half-written; \
                     use --stop (stop it first) or --live (copy anyway)",
                    args.name
                )));
            }
        }
        let dir = root.guests_dir();
        let files = [
            dir.join(format!("{}.conf", args.name)),
            dir.join(format!("{}.sh", args.name)),
        ];
        copy::plan(&guest.config.vserver_dir, &files, dest)?
    };
    let cmd = plan.command(args.dry_run, args.delete);
    if args.dry_run {
        println!("{}", copy::shell_words(&cmd));
    }
    copy::run(&cmd)
}
