//! The facts of a chain across hosts (`crate::hosts`): each hop with its finding's facts, found
//! again from the snapshot it was read from, and what the process at the far end of each
//! crossing did with the connection. Data only: `words/across.rs` says them.

use hangscope_model::{Hop, HostHop, Snapshot};

use super::Facts;

/// The joined chain, as its verdict is told.
pub(crate) struct Across<'a> {
    /// Every hop of the joined chain, in order.
    pub hops: Vec<HopSeen<'a>>,
    /// Each host the chain crossed to, in order.
    pub crossings: Vec<Crossing<'a>>,
    /// This host's address on the first crossing's connection, when known.
    pub from_addr: Option<String>,
    /// The host the chain ends at, which could not be followed.
    pub not_followed: Option<&'a HostHop>,
}

/// One hop of the joined chain.
pub(crate) struct HopSeen<'a> {
    pub hop: &'a Hop,
    /// The snapshot it was read from.
    pub snap: Option<&'a Snapshot>,
    /// Its finding's facts; `None` for a hop with no finding of its own.
    pub facts: Option<Facts>,
}

/// One host the chain crossed to.
pub(crate) struct Crossing<'a> {
    /// The place in `Across::hops` of the first hop on that host.
    pub base: usize,
    pub host: &'a HostHop,
    pub served: Served,
}

/// What the process at the far end of a crossing did with the connection, from its own host's
/// view.
pub(crate) enum Served {
    /// The host's document does not say which socket is the connection.
    Unknown,
    /// No socket there has the connection's addresses (NAT or a proxy between): the process
    /// holds the listener on `local`.
    Listener { local: String },
    /// The process holds the connection as `fd`.
    Connection {
        fd: i32,
        /// Bytes waiting in its receive queue; `None` when the socket was not read.
        recv_q: Option<u32>,
        /// The thread that waits on the fd, with its system call.
        waiter: Option<(i32, String)>,
        /// Whether the threads' system calls were read.
        threads_known: bool,
    },
}
