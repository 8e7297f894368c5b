//! run apt-get in guests (inside their contexts), then re-unify what changed
//!
//! vapt [--unify REF] GUEST...|ALL -- APT-GET-ARGS
//!
//! See vapt(8) and src/unify/pkgmgr.rs.

use std::ffi::OsString;

use vsbox::unify::pkgmgr::Manager;

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    vsbox::unify::pkgmgr::main(Manager::Apt, args)
}
