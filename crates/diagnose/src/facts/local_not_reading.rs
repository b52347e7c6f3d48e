//! The facts of the `local_not_reading` rule (`rules/local_not_reading.rs`): what it found, as data. The rule
//! decides and sets them; `words/local_not_reading.rs` says them.

use serde::Serialize;

use crate::facts::{BlockedThread, ConnFacts};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LocalNotReading {
    pub pid: i32,
    pub conn: ConnFacts,
    /// Bytes unread (Recv-Q).
    pub queued: u32,
    /// Since the newest byte arrived (tcp_info last_data_recv), which bounds how long the
    /// oldest has waited; `None` for UDP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
    /// How many of the process's threads are blocked (none of them reading this socket).
    pub blocked_count: usize,
    /// The first few of them.
    pub blocked: Vec<BlockedThread>,
}
