//! The facts of the `connection_dead` rule (`rules/connection_dead.rs`): what it found, as data. The rule
//! decides and sets them; `words/connection_dead.rs` says them.

use serde::Serialize;

use crate::facts::{ConnFacts, HostAlive, ThreadWait};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectionDead {
    /// The process, whose code the next step points at when the peer closed.
    pub pid: i32,
    pub conn: ConnFacts,
    /// The first thread waiting on the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiter: Option<ThreadWait>,
    /// Whether thread states were read at all.
    pub threads_known: bool,
    pub stuck_ms: u64,
    #[serde(flatten)]
    pub shape: Dead,
    /// Other connections to the same host answer (set by the same-host rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_alive: Option<HostAlive>,
}

/// Which way the connection is dead.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub(crate) enum Dead {
    /// Keepalive probes go unanswered (cause `connection_dead`).
    KeepaliveUnanswered {
        /// Probes unanswered: the larger of the keepalive timer's count and tcp_info's.
        probes: u8,
        /// tcp_info's probes, as ss prints them.
        tcp_info_probes: u8,
        /// Since the peer's kernel last ACKed (tcp_info last_ack_recv).
        last_ack_ms: u64,
    },
    /// The peer closed it, CLOSE-WAIT (cause `peer_closed`).
    PeerClosed {
        /// Since the last packet from the peer, which bounds when its FIN came; `None` without
        /// tcp_info.
        #[serde(skip_serializing_if = "Option::is_none")]
        since_ms: Option<u64>,
        /// Bytes it sent that are still unread: Recv-Q, less the FIN it counts until the
        /// program reads the end.
        unread: u32,
        /// Recv-Q as ss shows it.
        recv_q: u32,
    },
}
