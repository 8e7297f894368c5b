//! Generates the applet table from applets/*.rs.
//!
//! Each file applets/NAME.rs is one applet. Its first `//!` line is the
//! one-line summary shown by `vsbox --list`, and it defines
//! `pub fn run(args: &[std::ffi::OsString]) -> vsbox::Result<u8>`.
//! The applet name is the file stem with `_` turned into `-`
//! (applets/vserver_stat.rs is `vserver-stat`). Adding an applet is adding one
//! file: nothing else is edited.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("applets");
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("applets/ directory")
        .map(|e| e.expect("applets/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();

    let mut modules = String::new();
    let mut table = String::from("pub(crate) static APPLETS: &[vsbox::applet::Applet] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .unwrap()
            .to_str()
            .expect("UTF-8 applet file name");
        assert!(
            stem.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "applet file name {stem}.rs: use lower case, digits and _"
        );
        let text = fs::read_to_string(path).expect("applet source");
        let summary = text
            .lines()
            .find_map(|l| l.strip_prefix("//! "))
            .unwrap_or_else(|| panic!("{}: the first //! line is the summary", path.display()));
        let name = stem.replace('_', "-");
        writeln!(
            modules,
            "#[path = {:?}]\nmod {stem};",
            path.display().to_string()
        )
        .unwrap();
        writeln!(
            table,
            "    vsbox::applet::Applet {{ name: {name:?}, summary: {summary:?}, run: {stem}::run }},"
        )
        .unwrap();
    }
    table.push_str("];\n");

    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("applets.rs");
    fs::write(out, modules + &table).expect("write applets.rs");
}
