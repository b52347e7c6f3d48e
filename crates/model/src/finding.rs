//! Findings: what diagnosis concludes, with the evidence and the next step.

use serde::{Deserialize, Serialize};

/// What one rule found: in words, and as data (`rule`, `facts`, `next`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    /// The rule that made it: a stable id, one per rule, e.g. "peer_silent" (since 1.3; empty
    /// in older documents).
    #[serde(default)]
    pub rule: String,
    /// How much it weighs: `cause` (something that should have ended has not), `warning` (looks
    /// wrong, may be normal) or `info` (context).
    pub severity: Severity,
    /// The class of cause it names, e.g. `peer_silent`, `lock_wait`; an older reader takes one it
    /// does not know as `other`.
    pub cause: Cause,
    /// A one-sentence statement in plain words, with numbers and units.
    pub summary: String,
    /// What it is about: the thread, fd and connection, where it names them.
    pub subject: Subject,
    /// Facts behind the finding, each checkable with ss, lsof or strace.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// What was ruled out, and why ("host and network alive: :2181 answered 1.2 s ago").
    #[serde(default)]
    pub ruled_out: Vec<String>,
    /// Where to look next.
    pub next_step: String,
    /// How long its subject has been stuck, in milliseconds: what ranks findings of one
    /// severity (since 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck_ms: Option<u64>,
    /// The facts the rule found, as typed values: the words above are made from them. Their
    /// shape is the rule's (see docs/snapshot-schema.md, "Findings"); absent for a rule not yet
    /// written that way (since 1.3).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub facts: serde_json::Value,
    /// Where to look next, as data a program can follow (since 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Next>,
}

/// Where to look next: the process, thread, host and port, file or command a finding points
/// at. Which fields are set depends on `kind` (since 1.3, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Next {
    /// What to look at: `process`, `thread`, `host_port`, `file` or `command` (`other` for one this
    /// reader does not know).
    pub kind: NextKind,
    /// The process to look at (`process`, `thread`), on this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The thread to look at (`thread`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// The host (`host_port`): an address as the connection names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The port on that host (`host_port`), or on this host when `host` is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The file (`file`), or the mount point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A command to run, as a person would type it (`command`, or beside any other kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NextKind {
    /// A process on this host: `pid`.
    Process,
    /// A thread: `pid` and `tid`.
    Thread,
    /// A service on another host, or on this host when the process behind it is not known:
    /// `host`, `port`.
    HostPort,
    /// A file or mount: `path`.
    File,
    /// A command: `command`.
    #[default]
    Command,
    #[serde(other)]
    Other,
}

impl Next {
    pub fn process(pid: i32) -> Self {
        Next {
            kind: NextKind::Process,
            pid: Some(pid),
            command: Some(format!("hangscope {pid}")),
            ..Next::default()
        }
    }

    pub fn thread(pid: i32, tid: i32) -> Self {
        Next {
            kind: NextKind::Thread,
            pid: Some(pid),
            tid: Some(tid),
            ..Next::default()
        }
    }

    pub fn host_port(host: impl Into<String>, port: u16) -> Self {
        Next {
            kind: NextKind::HostPort,
            host: Some(host.into()),
            port: Some(port),
            ..Next::default()
        }
    }

    pub fn file(path: impl Into<String>) -> Self {
        Next {
            kind: NextKind::File,
            path: Some(path.into()),
            ..Next::default()
        }
    }

    pub fn command(command: impl Into<String>) -> Self {
        Next {
            kind: NextKind::Command,
            command: Some(command.into()),
            ..Next::default()
        }
    }

    /// The same target with a command to run beside it.
    pub fn with_command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Context that helps read the rest.
    #[default]
    Info,
    /// Looks wrong, but may be normal.
    Warning,
    /// A cause: something that should have ended has not.
    Cause,
}

/// The class of cause a finding names.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
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
    /// The process could not be seen: its fd table or its threads' system calls were denied,
    /// so no verdict about it is possible (not "nothing stuck").
    NotVisible,
    /// The process cannot run: stopped by a signal or a debugger, or frozen by its cgroup.
    Stopped,
    /// A thread waits for a child process to exit (context; a wait chain goes on there).
    ChildWait,
    /// A database session idle inside an open transaction, holding locks others wait for:
    /// its client has not ended the transaction (since 1.5).
    IdleInTransaction,
    /// A wait the program asked for and that ends on an event it chose: a client blocked in
    /// Redis's BLPOP until a value is pushed (since 1.6).
    ByDesign,
    #[serde(other)]
    #[default]
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
            Cause::NotVisible => "not seen",
            Cause::Stopped => "stopped",
            Cause::ChildWait => "child wait",
            Cause::IdleInTransaction => "idle in transaction",
            Cause::ByDesign => "by design",
            Cause::Other => "other",
        }
    }
}

/// What a finding is about. Any of the parts may be absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Subject {
    /// The thread, when the finding is about one.
    pub tid: Option<i32>,
    /// That thread's `comm`.
    pub thread_name: Option<crate::Text>,
    /// The fd, when the finding is about one.
    pub fd: Option<i32>,
    /// Socket inode, when the subject is a connection.
    pub socket_inode: Option<u64>,
    /// "TCP 10.0.130.71:42428 -> 10.0.130.72:10100".
    pub connection: Option<String>,
}

/// One fact behind a finding.
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
