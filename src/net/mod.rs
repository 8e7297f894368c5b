//! Networking: the guest's addresses (IPROOT), the ipv4root BPF programs
//! that confine its sockets to them, their aliases on the host's devices
//! over rtnetlink, host commands bound to addresses, and socket listings.

pub mod alias;
pub mod bpf;
pub mod chbind;
pub mod iproot;
pub mod ipv4root;
pub mod rtnetlink;
pub mod sockdiag;
