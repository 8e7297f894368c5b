//! Networking: the guest's addresses (and, later, the ipv4root BPF programs
//! and rtnetlink address management).

pub mod alias;
pub mod iproot;
pub mod rtnetlink;
