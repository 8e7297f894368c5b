//! list every process with its context and guest, like ps
//!
//! vps [ax|aux|-e|-ef] [-o FIELDS] [-p PIDS] [--guest NAME] [--ctx N] [--no-headers]
//!
//! The process table is read from /proc in the host's (spectator) view;
//! see vps(8) for the fields.

use std::ffi::OsString;
use std::io::Write;

use vsbox::procfs::ps::{self, Options};
use vsbox::{Error, Result};

const HELP: &str = "\
Usage: vps [ax|aux|-e|-ef] [-o FIELDS] [-p PIDS] [--guest NAME] [--ctx N] [--no-headers]

List every process with its context number (CONTEXT, 0 for the host) and
guest (VSERVER, MAIN for the host).

Options:
  ax, -e, -A        every process (the default)
  aux, u            user format: USER PID CONTEXT VSERVER %CPU VSZ RSS TT STAT TIME COMMAND
  -f, -ef           full format: USER PID PPID CONTEXT VSERVER TT TIME COMMAND
  -o FIELDS         columns, comma-separated: pid ppid ctx vserver user uid stat
                    tty vsz rss time etime pcpu nlwp comm args
  -p PIDS           only these pids (comma-separated)
  --guest NAME      only the processes of guest NAME (or of the guest in directory NAME)
  --ctx N           only the processes of context N (0: the host)
  --no-headers      no header line
  --help            this help";

pub fn run(args: &[OsString]) -> Result<u8> {
    let mut strings = Vec::with_capacity(args.len());
    for a in args {
        let s = a.to_str().ok_or_else(|| {
            Error::usage(format!(
                "argument is not valid UTF-8: {}",
                a.to_string_lossy()
            ))
        })?;
        if s == "--help" || s == "-h" {
            println!("{HELP}");
            return Ok(0);
        }
        strings.push(s.to_string());
    }
    let options = Options::parse(&strings)?;
    let text = ps::vps(&options)?;
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write the process list", &e))?;
    Ok(0)
}
