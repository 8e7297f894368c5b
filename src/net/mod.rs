//! Networking: the guest's addresses (and, later, the ipv4root BPF programs
//! and rtnetlink address management).

pub mod alias;
pub mod bpf;
pub mod iproot;
pub mod ipv4root;
pub mod rtnetlink;
pub mod sockdiag;
