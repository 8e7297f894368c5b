//! Generated-input tests of the package database parsers (dpkg status,
//! .list, .md5sums, .conffiles; rpm query output): random mutations of
//! valid files never panic, and every path they accept is absolute, clean
//! and inside the guest.
//!
//! Fixed seed, so a failure reproduces (the failing input is printed).
//! VSBOX_FUZZ_ROUNDS scales the run (default 20000 per parser).

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::rng::Rng;
use vsbox::unify::{dpkg, rpm};

const STATUS: &str = "Package: dpkg\nEssential: yes\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 1.21.22\nDescription: x\n y\n .\n z\n\
Conffiles:\n /etc/dpkg/dpkg.cfg f4413ffb515f8f753624ae3bb365b81b\n /etc/x y obsolete\n\n\
Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9\n\n";
const LIST: &str = "/.\n/usr\n/usr/bin\n/usr/bin/dpkg\n/etc/dpkg/dpkg.cfg\n";
const MD5SUMS: &str = "0123456789abcdef0123456789abcdef  usr/bin/dpkg\n\
fedcba9876543210fedcba9876543210  usr/share/doc/dpkg/copyright\n";
const CONFFILES: &str = "/etc/dpkg/dpkg.cfg\nremove-on-upgrade /etc/old\n";
const RPM: &str = "@P\tbash\t(none)\t5.2-3\tx86_64\t8\n@F\t0\t\t/usr/share/doc/bash\n\
@F\t17\t0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\t/etc/skel/.bashrc\n\
@P\tglibc\t2\t2.39-1\ti686\t1\n@F\t0\t0123456789abcdef0123456789abcdef\t/usr/lib/libc.so.6\n";

/// Pieces spliced into the inputs.
const PIECES: &[&[u8]] = &[
    b"\n",
    b"\n\n",
    b" ",
    b"\t",
    b":",
    b"/",
    b"/..",
    b"../",
    b"\0",
    b"\r\n",
    b"\xff\xfe",
    b"\xc3",
    b"Package: ",
    b"Status: install ok installed\n",
    b"Conffiles:\n",
    b" /etc/a 00\n",
    b"obsolete",
    b"@P\t",
    b"@F\t",
    b"(none)",
    b"0123456789abcdef",
    b"//",
    b"/./",
    b"\xe2\x82",
];

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 => v.truncate(at),
            1 if at < v.len() => v[at] = rng.next() as u8,
            2 if at < v.len() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let p = PIECES[rng.below(PIECES.len())];
                v.splice(at..at, p.iter().copied());
            }
            4 => {
                // A long line.
                let n = rng.below(9000);
                v.splice(at..at, std::iter::repeat_n(b'a', n));
            }
            _ => {
                let from = rng.below(v.len());
                let end = (from + rng.below(40)).min(v.len());
                let chunk = v[from..end].to_vec();
                v.splice(at..at, chunk);
            }
        }
    }
    v
}

fn check_path(p: &str, input: &[u8]) {
    assert!(
        p.starts_with('/')
            && !p.contains('\0')
            && !p.split('/').any(|c| c == ".." || c == ".")
            && (p == "/" || !p.ends_with('/'))
            && !p.contains("//")
            && p.len() < 4096,
        "accepted bad path {p:?} from {:?}",
        String::from_utf8_lossy(input)
    );
}

#[test]
fn mutated_databases_never_panic() {
    let rounds: usize = std::env::var("VSBOX_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20000);
    let mut rng = Rng(0x5eed_da7a_0bad_f00d);
    for round in 0..rounds {
        let which = round % 5;
        let base = [STATUS, LIST, MD5SUMS, CONFFILES, RPM][which].as_bytes();
        let input = mutate(&mut rng, base);
        let r = catch_unwind(AssertUnwindSafe(|| match which {
            0 => dpkg::parse_status(&input, "status").map(|s| {
                for e in &s {
                    e.conffiles.iter().for_each(|p| check_path(p, &input));
                }
            }),
            1 => {
                dpkg::parse_list(&input, "l").map(|v| v.iter().for_each(|p| check_path(p, &input)))
            }
            2 => dpkg::parse_md5sums(&input, "m")
                .map(|v| v.iter().for_each(|(p, _)| check_path(p, &input))),
            3 => dpkg::parse_conffiles(&input, "c")
                .map(|v| v.iter().for_each(|p| check_path(p, &input))),
            _ => rpm::parse_query(&input, "q").map(|v| {
                for p in &v {
                    p.files.iter().for_each(|f| check_path(f, &input));
                    p.digests.iter().for_each(|(f, _)| check_path(f, &input));
                }
            }),
        }));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(!msg.is_empty() && msg.len() < 1000, "bad message {msg:?}");
            }
            Err(_) => panic!(
                "parser {which} panicked on round {round}: {:?}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
}
