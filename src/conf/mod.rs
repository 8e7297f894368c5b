//! vserver configuration: /etc/vservers.conf and /etc/vservers/NAME.conf in
//! the seed's shell-variable format, parsed by our own strict parser (never
//! run through a shell), with typed views and profiles.

pub mod error;
pub mod eval;
pub mod guest;
pub mod printconf;
pub mod root;
pub mod syntax;
pub mod vars;

pub use error::{ConfError, Location};
pub use guest::{GuestConfig, load};
pub use root::ConfigRoot;

#[cfg(test)]
mod tests;
