//! The vserver command's library: guest creation and lifecycle.

pub mod all;
pub mod ask;
pub mod build;
pub mod companion;
pub mod guest;
