//! print the effective configuration of a guest, one VAR=value per line
//!
//! printconf [--quote] [--profile P] [--config-root DIR] NAME
//!
//! Reads vservers.conf and vservers/NAME.conf under the configuration root
//! (/etc, or $VSBOX_CONFIG_ROOT) with the profile applied (--profile, else
//! $PROFILE, else PROFILE= in the files) and prints every variable.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::conf::{self, ConfigRoot};

/// Print the effective configuration of guest NAME, one VAR=value per line.
#[derive(FromArgs)]
struct Args {
    /// put values in double quotes, for `eval` in a shell
    #[argh(switch)]
    quote: bool,
    /// the profile to apply (default: $PROFILE, else PROFILE= in the file)
    #[argh(option)]
    profile: Option<String>,
    /// where vservers.conf and vservers/ are (default: $VSBOX_CONFIG_ROOT, else /etc)
    #[argh(option)]
    config_root: Option<PathBuf>,
    /// the guest
    #[argh(positional)]
    name: String,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let args = match cli::parse::<Args>("printconf", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    let root = ConfigRoot::select(args.config_root);
    let profile = args
        .profile
        .or_else(|| std::env::var("PROFILE").ok().filter(|p| !p.is_empty()));
    let config = conf::load(&root, &args.name, profile.as_deref())?;
    let text = conf::printconf::render(&config, args.quote);
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| vsbox::Error::io("cannot write the configuration", &e))?;
    Ok(0)
}
