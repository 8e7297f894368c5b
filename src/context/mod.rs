//! The guest runtime: capabilities, context flags, resource limits (and,
//! later, cgroups, namespaces, spawn and enter).

pub mod capability;
pub mod cgroup;
pub mod console;
pub mod environment;
pub mod fdpass;
pub mod flags;
pub mod guestfile;
pub mod init;
pub mod initkind;
pub mod mounts;
pub mod notify;
pub mod privileges;
pub mod pty;
pub mod rclinks;
pub mod relay;
pub mod rlimit;
pub mod runlevel;
pub mod runstate;
pub mod scope;
pub mod sealed;
pub mod seccomp;
pub mod spawn;
pub mod user;
pub mod userns;
pub mod vroot;
