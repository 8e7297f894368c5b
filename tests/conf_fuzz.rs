//! Generated-input tests of the configuration parser: no panic and no hang
//! on any input, errors that point inside the file, and printconf --quote
//! output that reads back to the same values.
//!
//! The inputs come from a fixed-seed generator, so a failure reproduces; the
//! failing input is printed. VSBOX_FUZZ_ROUNDS scales the run (default 100000).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::rng::Rng;
use vsbox::conf::vars::Variables;
use vsbox::conf::{GuestConfig, printconf, syntax};
use vsbox::context::capability::CapabilityList;
use vsbox::context::flags::ContextFlags;
use vsbox::context::rlimit::Ulimit;
use vsbox::net::iproot::IpRoot;

/// Pieces of real configuration text, to be spliced and mutated.
const SNIPPETS: &[&str] = &[
    "# Description: web\n",
    "source /etc/vservers.conf\n",
    ". ../x.conf\n",
    "IPROOT=\"eth0:127.0.0.2/24 127.0.0.3\"\n",
    "S_CAPS='CAP_NET_RAW !CAP_CHOWN'\n",
    "ULIMIT=\"-HS -u 200 -n 1024\"\n",
    "export S_FLAGS=\"lock sched\"\n",
    "PROFILE=${PROFILE:-prod}\n",
    "case $PROFILE in\nprod|p) A=1;;\n*) A=2\nesac\n",
    "A=a\"b$B\"'c'\\ d${C}\n",
    "X=\"multi\nline\"\n",
    "Y=`id`\n",
    "Z=$(uname)\n",
    "if true; then A=1; fi\n",
    "echo hi | cat > /tmp/x &\n",
    "A=1;B=2 C=3 # c\n",
    "D=\\\n",
    "${",
    "'",
    "\"",
];

const ALPHABET: &[char] = &[
    '$', '{', '}', '(', ')', '\'', '"', '\\', ';', '|', '&', '<', '>', '#', '\n', ' ', '\t', '\r',
    '=', ':', '-', '*', '?', '[', ']', '~', '`', '!', '.', '/', 'a', 'b', 'A', 'Z', '_', '0', '9',
    'é', '\u{0}',
];

fn random_text(rng: &mut Rng) -> String {
    let mut text = String::new();
    for _ in 0..rng.below(6) {
        text.push_str(rng.pick::<&str>(SNIPPETS));
    }
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..rng.below(12) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 => chars.insert(at, *rng.pick(ALPHABET)),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = *rng.pick(ALPHABET),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn rounds() -> usize {
    std::env::var("VSBOX_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

#[test]
fn parser_survives_generated_input_and_points_inside_the_file() {
    let file: Arc<Path> = Arc::from(Path::new("fuzz.conf"));
    let mut rng = Rng(0x5eed_0001);
    let mut errors = 0;
    for round in 0..rounds() {
        let text = random_text(&mut rng);
        let started = Instant::now();
        let result = syntax::parse(&file, &text);
        // A linear parser takes microseconds; seconds mean a loop.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "round {round}: parse hung on {text:?}"
        );
        if let Err(e) = result {
            errors += 1;
            let line = e.line.expect("syntax errors have a line") as usize;
            let lines = text.split('\n').count();
            assert!(
                line >= 1 && line <= lines,
                "round {round}: line {line} outside 1..={lines} for {text:?}"
            );
            assert!(e.col.is_some_and(|c| c >= 1), "round {round}: {e}");
            assert!(!e.message.is_empty());
        }
    }
    // The generator must reach both outcomes, or it tests nothing.
    assert!(
        errors > 0 && errors < rounds(),
        "{errors} errors in {} rounds",
        rounds()
    );
}

#[test]
fn value_parsers_survive_generated_input() {
    let mut rng = Rng(0x5eed_0002);
    let words = [
        "eth0:",
        "127.0.0.1",
        "/24",
        "::1",
        "0.0.0.0",
        "-H",
        "-n",
        "unlimited",
        "9",
        "CAP_NET_RAW",
        "!",
        "lock",
        " ",
        "/255.255.0.0",
        "[",
        "]",
    ];
    for _ in 0..rounds() {
        let text: String = (0..rng.below(10)).map(|_| *rng.pick(&words)).collect();
        let _ = IpRoot::parse(&text);
        let _ = Ulimit::parse(&text);
        let _ = CapabilityList::parse(&text);
        let _ = ContextFlags::parse(&text);
    }
}

/// printconf --quote must be safe for `eval`: whatever a value holds, the
/// quoted line reads back (by the same rules a shell uses) to that value,
/// with nothing expanded. A value holds no control character but tab and
/// newline: the parser refuses the others where they are written.
#[test]
fn quoted_output_reads_back_to_the_same_value() {
    let file: Arc<Path> = Arc::from(Path::new("quoted.conf"));
    let value_chars: Vec<char> = ALPHABET
        .iter()
        .copied()
        .filter(|&c| !c.is_control() || c == '\t' || c == '\n')
        .collect();
    let mut rng = Rng(0x5eed_0003);
    for round in 0..rounds() / 4 {
        let value: String = (0..rng.below(20))
            .map(|_| *rng.pick(&value_chars))
            .collect();
        let mut vars = Variables::default();
        vars.fix("MY_VAR", &value, "test");
        let config = GuestConfig::from_vars("g", None, vars).unwrap();
        let output = printconf::render(&config, true);
        let script = syntax::parse(&file, &output)
            .unwrap_or_else(|e| panic!("round {round}: {output:?}: {e}"));
        let mine = script
            .stmts
            .iter()
            .find_map(|s| match s {
                syntax::Stmt::Assign { items, .. } if items[0].name == "MY_VAR" => {
                    items[0].value.clone()
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("round {round}: MY_VAR missing from {output:?}"));
        let text: String = mine
            .parts
            .iter()
            .map(|p| match p {
                syntax::Part::Lit(s) => s.clone(),
                syntax::Part::Var { name, .. } => {
                    panic!("round {round}: ${name} would expand in {output:?}")
                }
            })
            .collect();
        assert_eq!(text, value, "round {round}");
    }
}
