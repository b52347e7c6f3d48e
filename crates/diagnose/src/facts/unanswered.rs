//! The facts of the `unanswered` rule (`rules/unanswered.rs`): what it found, as data. The rule
//! decides and sets them; `words/unanswered.rs` says them.

use serde::Serialize;

use crate::connection::LastWord;
use crate::facts::{BlockedThread, ConnFacts, ThreadWait};

/// Connections and threads named one by one; the rest are counted.
pub(crate) const SHOWN: usize = 3;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Unanswered {
    pub pid: i32,
    /// How many accepted connections have a request unanswered.
    pub count: usize,
    /// The first few of them, the oldest first.
    pub requests: Vec<Request>,
    /// A thread waiting to read more on one of them, on that fd alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<ThreadWait>,
    /// An event loop watching one of them among other fds: idle, with the request read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watching: Option<ThreadWait>,
    /// The thread that went into its wait when the oldest request came, and is still in it:
    /// the one that took the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_it: Option<BlockedThread>,
    /// With no thread known to have taken it: the thread blocked longest among those whose
    /// wait began after the request came, what should answer may wait behind. Threads already
    /// in their waits before (a watchdog, a parked pool) are only listed in `blocked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspect: Option<BlockedThread>,
    /// An epoll fd of the process that watches one of the connections, and no thread waits in
    /// it: the event loop that serves them is not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_loop: Option<i32>,
    /// Threads blocked at least as long as a request may wait, longest first (the first few),
    /// leaving out accept loops and threads that made progress.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<BlockedThread>,
}

/// A client's request, read and not answered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Request {
    pub conn: ConnFacts,
    /// Since the request came in (tcp_info last_data_recv).
    pub waited_ms: u64,
    /// Since data last went out (tcp_info last_data_sent).
    pub last_sent_ms: u64,
    /// What told that the request came after the last data that went out.
    pub last_word: LastWord,
    pub bytes_received: u64,
    pub bytes_acked: u64,
}
