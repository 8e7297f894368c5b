//! run rpm in guests (inside their contexts), then re-unify what changed
//!
//! vrpm [--unify REF] GUEST...|ALL -- RPM-ARGS
//!
//! See vrpm(8) and src/unify/pkgmgr.rs.

use std::ffi::OsString;

use vsbox::unify::pkgmgr::Manager;

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    vsbox::unify::pkgmgr::main(Manager::Rpm, args)
}
