//! The facts of the `peer_silent` rule (`rules/peer_silent.rs`): what it found, as data. The rule
//! decides and sets them; `words/peer_silent.rs` says them.

use serde::Serialize;

use crate::connection::LastWord;
use crate::facts::{
    ConnFacts, EarlierFailure, HostAlive, LogQuote, OtherEnd, ThreadWait, Upstream,
};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PeerSilent {
    pub conn: ConnFacts,
    /// The thread waiting for the reply; `None` when thread states were not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiter: Option<ThreadWait>,
    /// Payload bytes of the request the peer acknowledged; `None` before Linux 4.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    /// Since the request went out (tcp_info last_data_sent).
    pub silent_ms: u64,
    /// The longer of the silence and the thread's measured wait.
    pub stuck_ms: u64,
    /// Since the last data came in (tcp_info last_data_recv).
    pub last_recv_ms: u64,
    /// Since the peer's kernel last ACKed (tcp_info last_ack_recv).
    pub last_ack_ms: u64,
    /// What told that the request is the last data on the connection.
    pub last_word: LastWord,
    /// The peer's kernel ACKed after the request's own ACK: it is up (keepalives, or
    /// window probes, answered).
    pub acked_since_request: bool,
    /// The keepalive timer is running.
    pub keepalive: bool,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub unacked: u32,
    pub retransmits: u8,
    pub total_retrans: u32,
    pub rtt_us: u32,
    /// The thread waits through epoll and served other fds during the window: an event loop
    /// that is not stuck as a whole.
    pub loop_still_serving: bool,
    /// Whether thread states were read at all.
    pub threads_known: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_failure: Option<EarlierFailure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<LogQuote>,
    /// Other connections to the same host answer (set by the same-host rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_alive: Option<HostAlive>,
    /// The process at the other end, on this host, forwarded the request and waits on this
    /// connection of its own: a proxy waiting on its upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
}

impl PeerSilent {
    /// The process at the other end read the request and idles in its event loop, which
    /// watches this connection among others: a blocking command or a long poll looks the same,
    /// so nothing says an answer is owed yet.
    pub fn other_end_idle(&self) -> bool {
        self.upstream.is_none()
            && matches!(
                &self.conn.other_end,
                Some(OtherEnd::Held { recv_q: 0, threads: Some(t), .. }) if t.idle_loop()
            )
    }
}
