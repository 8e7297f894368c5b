//! list the TCP and UDP sockets of a guest, or of every running guest
//!
//! vnetstat [--json] [NAME]
//!
//! A socket belongs to the guest whose cgroup made it (sock_diag netlink,
//! INET_DIAG_CGROUP_ID); see vnetstat(8).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::net::sockdiag::{self, GuestSocket};

/// List the TCP and UDP sockets of guest NAME, or of every running guest.
#[derive(FromArgs)]
struct Args {
    /// print a JSON array of {"guest", "proto", "local", "peer", "state",
    /// "uid", "inode"} objects
    #[argh(switch)]
    json: bool,
    /// the guest (default: every running guest, with a GUEST column)
    #[argh(positional)]
    name: Option<String>,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let args = match cli::parse::<Args>("vnetstat", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    let sockets = sockdiag::guest_sockets(args.name.as_deref())?;
    let text = if args.json {
        json(&sockets)
    } else {
        table(&sockets, args.name.is_none())
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| vsbox::Error::io("cannot write the socket list", &e))?;
    Ok(0)
}

fn table(sockets: &[GuestSocket], guest_column: bool) -> String {
    let mut rows = vec![["GUEST", "PROTO", "LOCAL", "PEER", "STATE"].map(String::from)];
    rows.extend(sockets.iter().map(|g| {
        let s = &g.socket;
        [
            g.guest.clone(),
            s.proto_name().to_string(),
            sockdiag::format_addr(&s.local),
            sockdiag::format_addr(&s.peer),
            s.state_name().to_string(),
        ]
    }));
    let mut width = [0; 5];
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate().skip(usize::from(!guest_column)) {
            if i == 4 {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ", w = width[i]);
            }
        }
        out.push('\n');
    }
    out
}

fn json(sockets: &[GuestSocket]) -> String {
    vsbox::json::list(sockets.iter().map(|g| {
        let s = &g.socket;
        vsbox::json::Object::new()
            .str("guest", &g.guest)
            .str("proto", s.proto_name())
            .str("local", sockdiag::format_addr(&s.local))
            .str("peer", sockdiag::format_addr(&s.peer))
            .str("state", s.state_name())
            .num("uid", s.uid)
            .num("inode", s.inode)
    }))
}
