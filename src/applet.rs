//! The applet table entry type shared by build.rs's generated table and the
//! dispatcher.

use std::ffi::OsString;

/// The entry point of an applet: its arguments (without the applet name) in,
/// the process exit status out.
pub type AppletMain = fn(&[OsString]) -> crate::Result<u8>;

pub struct Applet {
    pub name: &'static str,
    pub summary: &'static str,
    pub run: AppletMain,
}

/// Finds an applet by the name it was called under.
pub fn find<'a>(table: &'a [Applet], name: &str) -> Option<&'a Applet> {
    table.iter().find(|a| a.name == name)
}
