//! Disk unification (U1-U9): package databases read from guest trees,
//! identical package files shared between guests by hard links (with the
//! immutable and immutable-unlink flags) or by shared extents, and the
//! tools around it (vbuild, vdu, vfiles, vcheck, vapt/vrpm).
//!
//! Every guest tree is hostile: paths are resolved inside the guest root
//! only, never through a symlink out of it; database files are size-limited
//! and parsed without panics.

mod blocks;
pub mod compare;
pub mod copy;
pub mod dpkg;
pub mod exclude;
pub mod flags;
pub mod guestfs;
pub mod md5;
pub mod pkgdb;
pub mod pkgmgr;
pub mod replace;
pub mod rpm;
pub mod scan;
pub mod sha256;
pub mod vbuild;
pub mod vcheck;
pub mod vdu;
pub mod vfiles;
pub mod vunify;
