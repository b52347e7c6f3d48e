//! The facts of the `peer_not_reading` rule (`rules/peer_not_reading.rs`): what it found, as data. The rule
//! decides and sets them; `words/peer_not_reading.rs` says them.

use serde::Serialize;

use crate::facts::{ConnFacts, HostAlive, ThreadWait};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PeerNotReading {
    pub conn: ConnFacts,
    /// The thread blocked writing; `None` when none is, or thread states were not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<ThreadWait>,
    /// Whether thread states were read at all.
    pub threads_known: bool,
    /// The peer's receive window is closed; otherwise the send buffer is full.
    pub zero_window: bool,
    pub send_q: u32,
    /// The peer's advertised window (tcp_info snd_wnd, Linux 6.2+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snd_wnd: Option<u32>,
    /// Zero-window probes sent (tcp_info probes).
    pub probes: u8,
    /// Since data last went out (tcp_info last_data_sent; probes do not count).
    pub closed_ms: u64,
    /// The longer of that and the writer's measured wait.
    pub stuck_ms: u64,
    /// Since the peer's kernel last ACKed (tcp_info last_ack_recv).
    pub last_ack_ms: u64,
    /// The peer's kernel ACKed since data stopped going out: it answers the window probes.
    pub acked_since_closed: bool,
    /// skmem's t (wmem_alloc) and tb (SO_SNDBUF), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_buffer: Option<SendBuffer>,
    /// Other connections to the same host answer (set by the same-host rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_alive: Option<HostAlive>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SendBuffer {
    /// What is handed to the device (skmem t), often 0 while the queue is full.
    pub wmem_alloc: u32,
    /// The limit (skmem tb).
    pub sndbuf: u32,
}
