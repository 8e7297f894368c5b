//! vsbox: the vserver tool set on mainline Linux.
//!
//! The library holds everything the applets do; applets (in applets/) only
//! parse their arguments, call in here and print. Layers point down:
//! applets -> conf/context/... -> sys -> rustix / linux-raw-sys.

pub mod applet;
pub mod attr;
pub mod cli;
pub mod complete;
pub mod conf;
pub mod context;
pub mod error;
pub mod install;
pub mod json;
pub mod net;
pub mod procfs;
pub mod progress;
pub mod sys;
pub mod unify;
pub mod vserver;

pub use error::{Error, Result};
