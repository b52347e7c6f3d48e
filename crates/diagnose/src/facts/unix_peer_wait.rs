//! The facts of the `unix_peer_wait` rule (`rules/unix_peer_wait.rs`): what it found, as data. The rule
//! decides and sets them; `words/unix_peer_wait.rs` says them.

use hangscope_model::Text;
use serde::Serialize;

use crate::facts::{Holder, OtherThreads, ThreadWait};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct UnixPeerWait {
    pub pid: i32,
    pub waiter: ThreadWait,
    pub socket_inode: u64,
    /// "STREAM" or "SEQPACKET".
    pub sock_type: String,
    /// Bytes unread here.
    pub recv_q: u32,
    /// Socket memory of what was sent and the other end has not read (not bytes).
    pub send_q: u32,
    pub peer_inode: u64,
    /// The other end's path, or this end's when only it is bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    pub blocked: Blocked,
    pub other_end: UnixOtherEnd,
    pub stuck_ms: u64,
}

/// What the thread is blocked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Blocked {
    /// Sending, on a full buffer (cause `peer_not_reading`).
    Writing,
    /// Waiting for a reply to what the other end has not even read (cause `peer_not_reading`).
    RequestUnread,
    /// Waiting for a reply to what the other end read (cause `peer_silent`).
    Reply,
}

/// Who holds the other end.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum UnixOtherEnd {
    Held {
        holder: Holder,
        /// What that process's threads were in, when they were looked at.
        #[serde(skip_serializing_if = "Option::is_none")]
        threads: Option<Box<OtherThreads>>,
        /// When this process holds it: the thread waiting on it there, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        waiter_there: Option<Box<ThreadWait>>,
    },
    /// No process visible here holds it.
    Unheld {
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl UnixPeerWait {
    /// A thread of the other process waits to read its end too: both ends wait for the other.
    pub fn both_reading(&self) -> bool {
        matches!(
            &self.other_end,
            UnixOtherEnd::Held { holder, threads: Some(t), .. }
                if !holder.this_process && t.reads_too.is_some()
        )
    }

    /// "unix socket to /run/metad.sock".
    pub fn label(&self) -> String {
        match &self.path {
            Some(p) => format!("unix socket to {p}"),
            None => format!("unix socket to socket inode {}", self.peer_inode),
        }
    }
}
