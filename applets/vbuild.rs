//! clone a guest, hard-linking its package files and copying the rest
//!
//! vbuild [--test] [--debug] [--noflags] [--immutable] [--immutable-mayunlink]
//!        [--stats] [--progress|--no-progress] [--excldir DIR]... REF NEW
//!
//! Linked files get the immutable and immutable-unlink flags; see vbuild(8).

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::Result;
use vsbox::attr::InodeFlags;
use vsbox::cli::{self, Parsed};
use vsbox::progress::{Progress, Style};
use vsbox::conf::ConfigRoot;
use vsbox::unify::{scan, vbuild};
use vsbox::vserver::build;

/// Clone guest REF into NEW (a new directory, or a configured guest whose
/// VSERVERDIR does not exist yet): the reference's package files that are
/// not conffiles are hard-linked, everything else is copied; one
/// filesystem only. Linked files get the immutable and immutable-unlink
/// flags unless --noflags; --immutable and --immutable-mayunlink choose
/// them one by one.
#[derive(FromArgs)]
struct Args {
    /// show what would be linked and copied, change nothing
    #[argh(switch)]
    test: bool,
    /// print more (with --test: every file and what would be done)
    #[argh(switch)]
    debug: bool,
    /// set no flag on the linked files
    #[argh(switch)]
    noflags: bool,
    /// set the immutable flag on the linked files
    #[argh(switch)]
    immutable: bool,
    /// set the immutable-unlink flag on the linked files
    #[argh(switch)]
    immutable_mayunlink: bool,
    /// print counts of files linked and copied
    #[argh(switch)]
    stats: bool,
    /// show progress on stderr even when it is not a terminal (plain lines)
    #[argh(switch)]
    progress: bool,
    /// no status line on stderr (default: one when stderr is a terminal)
    #[argh(switch)]
    no_progress: bool,
    /// copy this guest directory as structure only, without its files
    /// (repeatable)
    #[argh(option)]
    excldir: Vec<String>,
    /// the reference guest (a name, or a directory with a '/')
    #[argh(positional)]
    reference: String,
    /// the new guest (a name, or a directory with a '/')
    #[argh(positional)]
    new: String,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let args = match cli::parse::<Args>("vbuild", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    let mut flags = InodeFlags::EMPTY;
    if args.immutable {
        flags = flags.union(InodeFlags::IMMUTABLE);
    }
    if args.immutable_mayunlink {
        flags = flags.union(InodeFlags::IUNLINK);
    }
    if flags.is_empty() && !args.noflags {
        flags = InodeFlags::IMMUTABLE.union(InodeFlags::IUNLINK);
    }
    let excluded = args
        .excldir
        .iter()
        .map(|d| vbuild::excluded_dir(d))
        .collect::<Result<Vec<PathBuf>>>()?;
    let reference = scan::guest_dir(&args.reference)?;
    let new = scan::guest_dir(&args.new)?;
    if args.debug {
        eprintln!(
            "vbuild: {} -> {}, flags {flags}",
            reference.display(),
            new.display()
        );
    }
    let opts = vbuild::Options {
        test: args.test,
        flags,
        excluded,
    };
    let progress = Progress::new("vbuild", Style::choose(args.progress, args.no_progress));
    let report = vbuild::vbuild(&reference, &new, &opts, &progress)?;
    drop(progress);
    for w in &report.build.warnings {
        eprintln!("vbuild: {w}");
    }
    if report.build.ssh_keys_removed > 0 {
        // New host keys are made inside the guest, which needs a name.
        if args.new.contains('/') {
            eprintln!(
                "vbuild: warning: {} has no sshd host keys (the reference's were removed): \
                 configure it and run `vserver NAME exec ssh-keygen -A`",
                new.display()
            );
        } else {
            build::ssh_host_keys(&ConfigRoot::select(None), &args.new, &new)?;
        }
    }
    if args.test && args.debug {
        for line in &report.plan {
            println!("{line}");
        }
    }
    if args.stats || args.test {
        print!("{}", report.stats());
    }
    if args.debug && !args.test {
        eprintln!("vbuild: {} made", new.display());
    }
    Ok(0)
}
