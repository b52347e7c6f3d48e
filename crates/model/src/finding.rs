//! Findings: what diagnosis concludes, with the evidence and the next step.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    pub severity: Severity,
    pub cause: Cause,
    /// A one-sentence statement in plain words, with numbers and units.
    pub summary: String,
    pub subject: Subject,
    /// Facts behind the finding, each checkable with ss, lsof or strace.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// What was ruled out, and why ("host and network alive: :2181 answered 1.2 s ago").
    #[serde(default)]
    pub ruled_out: Vec<String>,
    /// Where to look next.
    pub next_step: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Context that helps read the rest.
    Info,
    /// Looks wrong, but may be normal.
    Warning,
    /// A cause: something that should have ended has not.
    Cause,
}

/// The class of cause a finding names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    PeerSilent,
    PeerUnreachable,
    PeerNotReading,
    LocalNotReading,
    ConnectionDead,
    PeerClosed,
    NameResolution,
    LockWait,
    Deadlock,
    PipeWait,
    Busy,
    WaitingLoop,
    SameHostAlive,
    ReconnectChurn,
    /// A thread in uninterruptible sleep (D): waiting on a file system, device or the kernel.
    DiskWait,
    /// The process has exited (a zombie its parent has not reaped).
    Exited,
    /// Clients' requests this process read and has not answered (the server side of a silent
    /// peer).
    Unanswered,
    #[serde(other)]
    Other,
}

impl Cause {
    /// Short label for tables, in the reader's words.
    pub fn label(self) -> &'static str {
        match self {
            Cause::PeerSilent => "peer silent",
            Cause::PeerUnreachable => "peer unreachable",
            Cause::PeerNotReading => "peer not reading",
            Cause::LocalNotReading => "not reading",
            Cause::ConnectionDead => "connection dead",
            Cause::PeerClosed => "peer closed",
            Cause::NameResolution => "name lookup",
            Cause::LockWait => "lock wait",
            Cause::Deadlock => "deadlock",
            Cause::PipeWait => "pipe wait",
            Cause::Busy => "busy",
            Cause::WaitingLoop => "waiting loop",
            Cause::SameHostAlive => "same host ok",
            Cause::ReconnectChurn => "reconnecting",
            Cause::DiskWait => "kernel wait (D)",
            Cause::Exited => "exited",
            Cause::Unanswered => "unanswered",
            Cause::Other => "other",
        }
    }
}

/// What a finding is about. Any of the parts may be absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Subject {
    pub tid: Option<i32>,
    pub thread_name: Option<String>,
    pub fd: Option<i32>,
    /// Socket inode, when the subject is a connection.
    pub socket_inode: Option<u64>,
    /// "TCP 10.0.130.71:42428 -> 10.0.130.72:10100".
    pub connection: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Evidence {
    /// What the fact is, e.g. "last data received".
    pub label: String,
    /// The value with its unit, e.g. "7.9 s ago".
    pub value: String,
    /// Where it was read, e.g. "tcp_info", "/proc/31516/task/31576/syscall", "log".
    #[serde(default)]
    pub source: String,
}

impl Evidence {
    pub fn new(
        label: impl Into<String>,
        value: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Evidence {
            label: label.into(),
            value: value.into(),
            source: source.into(),
        }
    }
}
