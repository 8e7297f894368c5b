//! A socket probe for the networking tests and benchmarks: copied into
//! guests (it is static, like vsbox) and run there, or run under chbind, to
//! see what the kernel does with one socket call at a time.
//!
//! Each command prints one line per event and exits 0; a refused call prints
//! `error NAME` (the errno name) and exits 1.
//!
//! ```text
//! netprobe socket inet|inet6                 create a TCP socket
//! netprobe bind tcp|udp ADDR                 bind, print `bound LOCAL`
//! netprobe serve tcp ADDR|-|-6 [v6only]     bind (- = no bind, -6 = IPv6 no bind) and listen, print
//!                                            `listening LOCAL`, accept one, print
//!                                            `accepted PEER on LOCAL`; v6only sets
//!                                            IPV6_V6ONLY first, as nginx does
//! netprobe connect tcp ADDR                  print `connected LOCAL to PEER`
//! netprobe recv udp ADDR                     bind, print `listening LOCAL`, wait for
//!                                            one datagram, print `from PEER`
//! netprobe send udp ADDR [broadcast]         send one datagram unbound, print
//!                                            `sent from LOCAL`
//! netprobe loop-bind N ADDR                  N x socket+bind+close, print `ns/op X`
//! netprobe loop-connect N ADDR               N x connect+accept+close against our
//!                                            own listener on ADDR, print `ns/op X`
//! netprobe throughput MIB ADDR               send MIB MiB over TCP to our own
//!                                            listener, print `MiB/s X`
//! netprobe unix-serve NAME                   bind the abstract unix socket @NAME and
//!                                            listen, print `listening @NAME`, accept
//!                                            one, print `accepted`
//! netprobe unix-connect NAME                 connect to the abstract unix socket
//!                                            @NAME, print `connected @NAME`
//! netprobe io_uring                          io_uring_setup(1, NULL): print
//!                                            `error EFAULT` (the kernel's answer)
//!                                            or `error EPERM` (a filter's)
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketType, sockopt};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["socket", family] => socket_only(family),
        ["bind", kind, addr] => bind_only(kind, addr),
        ["serve", "tcp", addr] => serve(addr, false),
        ["serve", "tcp", addr, "v6only"] => serve(addr, true),
        ["connect", "tcp", addr] => connect(addr),
        ["recv", "udp", addr] => recv(addr),
        ["send", "udp", addr, rest @ ..] => send(addr, rest == ["broadcast"]),
        ["loop-bind", n, addr] => loop_bind(number(n), addr),
        ["loop-connect", n, addr] => loop_connect(number(n), addr),
        ["throughput", mib, addr] => throughput(number(mib), addr),
        ["unix-serve", name] => unix_serve(name),
        ["unix-connect", name] => unix_connect(name),
        ["io_uring"] => io_uring(),
        _ => {
            eprintln!("netprobe: bad arguments {words:?} (see examples/netprobe.rs)");
            std::process::exit(2)
        }
    };
    if let Err(e) = result {
        println!("error {}", errno_name(e));
        std::process::exit(1);
    }
}

fn number(text: &str) -> u64 {
    text.parse().unwrap_or_else(|_| {
        eprintln!("netprobe: '{text}' is not a number");
        std::process::exit(2)
    })
}

fn address(text: &str) -> SocketAddr {
    text.parse().unwrap_or_else(|_| {
        eprintln!("netprobe: '{text}' is not ADDRESS:PORT");
        std::process::exit(2)
    })
}

fn errno_name(e: Errno) -> String {
    for (errno, name) in [
        (Errno::PERM, "EPERM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::AFNOSUPPORT, "EAFNOSUPPORT"),
        (Errno::ADDRNOTAVAIL, "EADDRNOTAVAIL"),
        (Errno::ADDRINUSE, "EADDRINUSE"),
        (Errno::CONNREFUSED, "ECONNREFUSED"),
        (Errno::TIMEDOUT, "ETIMEDOUT"),
        (Errno::INVAL, "EINVAL"),
        (Errno::FAULT, "EFAULT"),
        (Errno::NETUNREACH, "ENETUNREACH"),
    ] {
        if e == errno {
            return name.to_string();
        }
    }
    format!("errno{}", e.raw_os_error())
}

fn family_of(addr: &SocketAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    }
}

fn new_socket(family: AddressFamily, kind: SocketType) -> Result<OwnedFd, Errno> {
    rustix::net::socket(family, kind, None)
}

fn local(fd: impl AsFd) -> Result<SocketAddr, Errno> {
    let any = rustix::net::getsockname(fd)?;
    SocketAddr::try_from(any).map_err(|_| Errno::AFNOSUPPORT)
}

/// Prints a line at once: the tests read the lines while the probe runs.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn socket_only(family: &str) -> Result<(), Errno> {
    let family = match family {
        "inet" => AddressFamily::INET,
        _ => AddressFamily::INET6,
    };
    new_socket(family, SocketType::STREAM)?;
    say(format_args!("ok"));
    Ok(())
}

fn kind_of(kind: &str) -> SocketType {
    if kind == "udp" {
        SocketType::DGRAM
    } else {
        SocketType::STREAM
    }
}

fn bind_only(kind: &str, addr: &str) -> Result<(), Errno> {
    let addr = address(addr);
    let fd = new_socket(family_of(&addr), kind_of(kind))?;
    rustix::net::bind(&fd, &addr)?;
    say(format_args!("bound {}", local(&fd)?));
    Ok(())
}

fn serve(addr: &str, v6only: bool) -> Result<(), Errno> {
    let fd = if addr == "-" {
        // listen() without bind(): the kernel binds 0.0.0.0 and a port itself.
        new_socket(AddressFamily::INET, SocketType::STREAM)?
    } else if addr == "-6" {
        // The same in IPv6: a dual-stack [::] that also takes IPv4.
        new_socket(AddressFamily::INET6, SocketType::STREAM)?
    } else {
        let addr = address(addr);
        let fd = new_socket(family_of(&addr), SocketType::STREAM)?;
        sockopt::set_socket_reuseaddr(&fd, true)?;
        if v6only {
            sockopt::set_ipv6_v6only(&fd, true)?;
        }
        rustix::net::bind(&fd, &addr)?;
        fd
    };
    rustix::net::listen(&fd, 16)?;
    say(format_args!("listening {}", local(&fd)?));
    let (conn, peer) = rustix::net::acceptfrom(&fd)?;
    let peer = peer
        .and_then(|p| SocketAddr::try_from(p).ok())
        .ok_or(Errno::AFNOSUPPORT)?;
    say(format_args!("accepted {peer} on {}", local(&conn)?));
    Ok(())
}

fn connect(addr: &str) -> Result<(), Errno> {
    let addr = address(addr);
    let fd = new_socket(family_of(&addr), SocketType::STREAM)?;
    rustix::net::connect(&fd, &addr)?;
    let peer = rustix::net::getpeername(&fd)?
        .and_then(|p| SocketAddr::try_from(p).ok())
        .ok_or(Errno::AFNOSUPPORT)?;
    say(format_args!("connected {} to {peer}", local(&fd)?));
    Ok(())
}

fn recv(addr: &str) -> Result<(), Errno> {
    let addr = address(addr);
    let fd = new_socket(family_of(&addr), SocketType::DGRAM)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    say(format_args!("listening {}", local(&fd)?));
    let mut buf = [0u8; 64];
    let (_, _, from) = rustix::net::recvfrom(&fd, &mut buf, rustix::net::RecvFlags::empty())?;
    let from = from
        .and_then(|p| SocketAddr::try_from(p).ok())
        .ok_or(Errno::AFNOSUPPORT)?;
    say(format_args!("from {from}"));
    Ok(())
}

fn send(addr: &str, broadcast: bool) -> Result<(), Errno> {
    let addr = address(addr);
    let fd = new_socket(family_of(&addr), SocketType::DGRAM)?;
    if broadcast {
        sockopt::set_socket_broadcast(&fd, true)?;
    }
    rustix::net::sendto(&fd, b"probe", rustix::net::SendFlags::empty(), &addr)?;
    say(format_args!("sent from {}", local(&fd)?));
    Ok(())
}

fn report_rate(n: u64, start: Instant) {
    let ns = start.elapsed().as_nanos() / u128::from(n.max(1));
    say(format_args!("ns/op {ns}"));
}

fn loop_bind(n: u64, addr: &str) -> Result<(), Errno> {
    let addr = address(addr);
    let start = Instant::now();
    for _ in 0..n {
        let fd = new_socket(family_of(&addr), SocketType::STREAM)?;
        rustix::net::bind(&fd, &addr)?;
    }
    report_rate(n, start);
    Ok(())
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_io_error(&e).unwrap_or(Errno::INVAL)
}

fn loop_connect(n: u64, addr: &str) -> Result<(), Errno> {
    let listener = TcpListener::bind(address(addr)).map_err(io_errno)?;
    let target = listener.local_addr().map_err(io_errno)?;
    let start = Instant::now();
    for _ in 0..n {
        let client = TcpStream::connect(target).map_err(io_errno)?;
        let (server, _) = listener.accept().map_err(io_errno)?;
        drop((client, server));
    }
    report_rate(n, start);
    Ok(())
}

fn throughput(mib: u64, addr: &str) -> Result<(), Errno> {
    let listener = TcpListener::bind(address(addr)).map_err(io_errno)?;
    let target = listener.local_addr().map_err(io_errno)?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            match conn.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let start = Instant::now();
    let mut client = TcpStream::connect(target).map_err(io_errno)?;
    let chunk = vec![0x5au8; 1 << 16];
    for _ in 0..mib * 16 {
        client.write_all(&chunk).map_err(io_errno)?;
    }
    drop(client);
    let received = reader.join().map_err(|_| Errno::IO)?.map_err(io_errno)?;
    let secs = start.elapsed().as_secs_f64();
    say(format_args!(
        "MiB/s {:.0}",
        received as f64 / (1024.0 * 1024.0) / secs
    ));
    Ok(())
}

fn abstract_address(name: &str) -> Result<rustix::net::SocketAddrUnix, Errno> {
    rustix::net::SocketAddrUnix::new_abstract_name(name.as_bytes())
}

fn unix_serve(name: &str) -> Result<(), Errno> {
    let fd = new_socket(AddressFamily::UNIX, SocketType::STREAM)?;
    rustix::net::bind(&fd, &abstract_address(name)?)?;
    rustix::net::listen(&fd, 8)?;
    say(format_args!("listening @{name}"));
    let _peer = rustix::net::accept(&fd)?;
    say(format_args!("accepted"));
    Ok(())
}

fn unix_connect(name: &str) -> Result<(), Errno> {
    let fd = new_socket(AddressFamily::UNIX, SocketType::STREAM)?;
    rustix::net::connect(&fd, &abstract_address(name)?)?;
    say(format_args!("connected @{name}"));
    Ok(())
}

/// io_uring_setup with no parameters: the kernel, when it gets the call,
/// answers EFAULT and makes no ring.
fn io_uring() -> Result<(), Errno> {
    vsbox::sys::seccomp::probe::io_uring_setup().map_err(|e| Errno::from_raw_os_error(e.raw()))?;
    say(format_args!("io_uring ring made"));
    Ok(())
}
