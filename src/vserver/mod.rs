//! The vserver command's library: guest creation and lifecycle.

pub mod build;
