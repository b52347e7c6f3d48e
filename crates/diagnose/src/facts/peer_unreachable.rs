//! The facts of the `peer_unreachable` rule (`rules/peer_unreachable.rs`): what it found, as data. The rule
//! decides and sets them; `words/peer_unreachable.rs` says them.

use serde::Serialize;

use crate::facts::{ConnFacts, HostAlive, LogQuote, OtherEnd, ThreadWait};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PeerUnreachable {
    pub conn: ConnFacts,
    /// The first thread waiting on the connection; `None` when none does or thread states were
    /// not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiter: Option<ThreadWait>,
    /// Whether thread states were read at all.
    pub threads_known: bool,
    /// The process opened the connection (it was not accepted from a listener).
    pub opened_here: bool,
    /// Retransmissions so far: the larger of the timer's count and tcp_info's retransmits and
    /// backoff.
    pub retries: u32,
    pub stuck_ms: u64,
    #[serde(flatten)]
    pub shape: Unreachable,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<LogQuote>,
    /// Other connections to the same host answer (set by the same-host rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_alive: Option<HostAlive>,
}

/// Which of the two ways the peer does not answer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub(crate) enum Unreachable {
    /// A connect() whose SYNs go unanswered.
    SynSent {
        /// tcp_info's retransmit timeout and backoff; `None` without tcp_info.
        #[serde(skip_serializing_if = "Option::is_none")]
        rto_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        backoff: Option<u8>,
        /// The server is on this host (`conn.other_end` is its listener) and its accept queue is
        /// over its backlog: the kernel drops the SYNs (sk_acceptq_is_full).
        accept_queue_full: bool,
    },
    /// Data sent on an open connection that is never acknowledged.
    Unacked {
        send_q: u32,
        /// Segments in flight (tcp_info unacked).
        unacked: u32,
        retransmits: u8,
        total_retrans: u32,
        backoff: u8,
        rto_ms: u64,
        /// Since the peer's kernel last ACKed (tcp_info last_ack_recv).
        last_ack_ms: u64,
    },
}

/// Retransmit timeouts in a row, each twice the last, after which unacknowledged data is no
/// passing loss: at the 200 ms minimum RTO, three take 1.4 s without an ACK, and one lost
/// segment on a working path is recovered by the first.
pub(crate) const BACKOFF_DEAD: u8 = 3;

impl PeerUnreachable {
    /// Data unacknowledged through `BACKOFF_DEAD` retransmit timeouts or more.
    pub fn backed_off(&self) -> bool {
        matches!(self.shape, Unreachable::Unacked { backoff, .. } if backoff >= BACKOFF_DEAD)
    }

    /// The listener whose full accept queue drops the SYNs, when that is why.
    pub fn full_listener(&self) -> Option<&crate::facts::Holder> {
        match (&self.shape, &self.conn.other_end) {
            (
                Unreachable::SynSent {
                    accept_queue_full: true,
                    ..
                },
                Some(OtherEnd::Listener { holder, .. }),
            ) => Some(holder),
            _ => None,
        }
    }
}
