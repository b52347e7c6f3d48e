//! The facts of the `name_resolution` rule (`rules/name_resolution.rs`): what it found, as data. The rule
//! decides and sets them; `words/name_resolution.rs` says them.

use hangscope_model::Text;
use serde::Serialize;

use crate::facts::{ConnFacts, ThreadWait};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct NameResolution {
    pub waiter: ThreadWait,
    pub socket_inode: u64,
    pub resolver: Resolver,
}

/// Who answers the lookup.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Resolver {
    /// A DNS server, over UDP or TCP.
    Dns { conn: Box<ConnFacts> },
    /// nscd, which caches name lookups.
    Nscd(UnixService),
    /// sssd, which answers user and host lookups through libnss_sss.
    Sssd(UnixService),
}

/// The process at the other end of a unix socket, and the path it is bound to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UnixService {
    /// Empty when the peer is not bound to a path.
    pub path: Text,
    pub pid: i32,
    pub name: Text,
}

impl NameResolution {
    /// "UDP 10.0.0.5:39000 -> 10.0.0.53:53" or "unix socket to /var/lib/sss/pipes/nss (sssd_nss,
    /// pid 640)".
    pub fn label(&self) -> String {
        match &self.resolver {
            Resolver::Dns { conn } => conn.label(),
            Resolver::Nscd(s) | Resolver::Sssd(s) => {
                format!("unix socket to {} ({}, pid {})", s.path, s.name, s.pid)
            }
        }
    }
}
