//! share the identical package files of guests with a reference guest
//!
//! vunify [--test] [--undo] [--debug] [--stats] [--noflags] [--immutable]
//!        [--immutable-mayunlink] [--method link|reflink] [--exclude-from FILE]
//!        [--progress|--no-progress]
//!        REF GUEST... -- PKG...|ALL
//!
//! REF and GUEST are guest names (/etc/vservers/NAME.conf) or directories
//! (an argument with a '/'). See vunify(8).

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::progress::{Progress, Style};
use vsbox::conf::ConfigRoot;
use vsbox::unify::exclude::{self, ExcludeList};
use vsbox::unify::flags::FlagRequest;
use vsbox::unify::vunify::{self, Method, Options, Reporter, Selection};
use vsbox::{Error, Result};

/// Share the files of packages installed in the same version in REF and in
/// each GUEST (hard links, or shared extents with --method reflink), after
/// comparing their metadata and bytes; conffiles, /etc, /var/log and the
/// exclude list are left alone. Usage: vunify [OPTIONS] REF GUEST... --
/// PKG...|ALL
#[derive(FromArgs)]
struct Args {
    /// show what would be done, change nothing
    #[argh(switch)]
    test: bool,
    /// give each GUEST its own copy of the files shared with REF
    #[argh(switch)]
    undo: bool,
    /// one line per file decision
    #[argh(switch)]
    debug: bool,
    /// print statistics at the end
    #[argh(switch)]
    stats: bool,
    /// set no flag on shared files (default: immutable and iunlink)
    #[argh(switch)]
    noflags: bool,
    /// set the immutable flag on shared files
    #[argh(switch)]
    immutable: bool,
    /// set the immutable and immutable-unlink flags (needs the kernel/ patch)
    #[argh(switch)]
    immutable_mayunlink: bool,
    /// link (hard links, default) or reflink (shared extents: btrfs, xfs)
    #[argh(option, default = "String::from(\"link\")")]
    method: String,
    /// the exclude file (default /etc/vservers/vunify-exclude, if present)
    #[argh(option)]
    exclude_from: Option<PathBuf>,
    /// show progress on stderr even when it is not a terminal (plain lines)
    #[argh(switch)]
    progress: bool,
    /// no status line on stderr (default: one when stderr is a terminal)
    #[argh(switch)]
    no_progress: bool,
    /// REF then the GUESTs
    #[argh(positional)]
    guests: Vec<String>,
}

/// Prints on a line of its own, below any status line.
struct Printer<'a>(&'a Progress);

impl Reporter for Printer<'_> {
    fn line(&mut self, text: &str) {
        self.0.clear();
        println!("{text}");
    }
    fn warn(&mut self, text: &str) {
        self.0.clear();
        eprintln!("vunify: {text}");
    }
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let split = args.iter().position(|a| a == "--");
    let own = &args[..split.unwrap_or(args.len())];
    let args_ = match cli::parse::<Args>("vunify", own)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    let Some(split) = split else {
        return Err(Error::usage(
            "missing '-- PKG...' or '-- ALL' after the guests",
        ));
    };
    let a = args_;
    let mut pkgs = Vec::new();
    for p in &args[split + 1..] {
        pkgs.push(
            p.to_str()
                .ok_or_else(|| Error::usage(format!("package name {p:?} is not UTF-8")))?
                .to_string(),
        );
    }
    let packages = match pkgs.as_slice() {
        [] => return Err(Error::usage("no package after '--' (a name, or ALL)")),
        [all] if all == "ALL" => Selection::All,
        _ => Selection::Names(pkgs),
    };
    if a.guests.len() < 2 {
        return Err(Error::usage("need REF and at least one GUEST"));
    }
    let method = match a.method.as_str() {
        "link" => Method::Link,
        "reflink" => Method::Reflink,
        m => {
            return Err(Error::usage(format!(
                "--method {m}: expected link or reflink"
            )));
        }
    };
    if method == Method::Reflink && (a.undo || a.immutable || a.immutable_mayunlink) {
        return Err(Error::usage(
            "--method reflink shares extents: no flags to set and nothing to undo",
        ));
    }
    let exclude = match &a.exclude_from {
        Some(f) => ExcludeList::load(f, false)?,
        None => ExcludeList::load(
            &ConfigRoot::select(None).dir().join(exclude::DEFAULT_FILE),
            true,
        )?,
    };
    let opts = Options {
        test: a.test,
        undo: a.undo,
        debug: a.debug,
        flags: FlagRequest::from_options(a.noflags, a.immutable, a.immutable_mayunlink),
        method,
        packages,
        exclude,
    };
    let reference = vunify::guest_root(&a.guests[0])?;
    let guests = a.guests[1..]
        .iter()
        .map(|g| vunify::guest_root(g))
        .collect::<Result<Vec<_>>>()?;
    let progress = Progress::new("vunify", Style::choose(a.progress, a.no_progress));
    let stats = vunify::run(&reference, &guests, &opts, &mut Printer(&progress), &progress)?;
    drop(progress);
    if a.stats {
        println!("{}", stats.report(&opts));
    }
    Ok(if stats.errors > 0 { 1 } else { 0 })
}
