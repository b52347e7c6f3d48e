//! What the sock_diag dumps (or the exact lookups standing in for them) returned: the data
//! both fill, apart from either.

use std::collections::{HashMap, HashSet};
use std::io;

use hangscope_model::{NetlinkSocket, PacketSocket};

use super::inet_diag::InetEntry;
use super::unix_diag::UnixEntry;

/// What the dumps returned, already filtered to the sockets that matter.
#[derive(Debug, Default)]
pub struct Dumps {
    pub inet: HashMap<u64, InetEntry>,
    /// Every UNIX socket of the namespace: peers' names are looked up here too.
    pub unix: HashMap<u64, UnixEntry>,
    pub netlink: HashMap<u64, NetlinkSocket>,
    pub packet: HashMap<u64, PacketSocket>,
    pub inet_ok: bool,
    pub unix_ok: bool,
    pub netlink_ok: bool,
    pub packet_ok: bool,
    /// (what, error) of each dump that failed.
    pub failures: Vec<(String, io::Error)>,
    /// Dumps the kernel flagged NLM_F_DUMP_INTR.
    pub interrupted: Vec<String>,
    /// Reply messages that did not parse.
    pub malformed: Vec<String>,
    /// Connections to this host whose other end was not looked up: over the cap or the deadline.
    pub peers_not_looked_up: usize,
    /// Exact lookups of a connection's other end that failed, with the first error.
    pub peer_lookup_failures: (usize, Option<String>),
    /// Every TCP listening address of the namespace, whoever holds it (IPv4-mapped addresses
    /// as IPv4): complete only when `inet_ok`.
    pub listeners: HashSet<std::net::SocketAddr>,
}

impl Dumps {
    /// Whether any dump returned the socket with this inode.
    pub fn contains(&self, inode: u64) -> bool {
        self.inet.contains_key(&inode)
            || self.unix.contains_key(&inode)
            || self.netlink.contains_key(&inode)
            || self.packet.contains_key(&inode)
    }
}
