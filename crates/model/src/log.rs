//! Log files the process writes, and the entries read from their tail.

use serde::{Deserialize, Serialize};

/// A log the process writes (a file, or the journal), with its last entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LogSource {
    /// Path of the log file (as the process sees it), or "journal", or "/dev/kmsg".
    pub path: String,
    /// The target's fd the file is open on, if any.
    pub fd: Option<i32>,
    /// How its lines were parsed: `glog`, `plain`, `json_lines`, `kmsg`, `journal` or `unknown`.
    pub format: LogFormat,
    /// Bytes read from the end of the file.
    pub bytes_read: u64,
    /// The entries, oldest first.
    pub entries: Vec<LogEntry>,
    /// Why the file was picked, e.g. "fd 7 open for writing, name contains 'log'".
    pub reason: String,
    /// What was opened to read it: the path, or "/proc/PID/fd/N" (the exact file the process
    /// writes, also inside a container or after a rename).
    pub read_via: Option<String>,
    /// The read started past the beginning of the file (only the tail was read).
    pub truncated: bool,
    /// The year the entries were dated with when the format has none (glog), and where it came
    /// from, e.g. "file name" or "file mtime".
    pub year: Option<i32>,
    /// Where `year` came from, e.g. "file name" or "file mtime".
    pub year_from: Option<String>,
    /// UTC offset used to turn local times into `time_ms`, e.g. "+08:00" (the collecting
    /// host's zone; a container may log in another).
    pub utc_offset: Option<String>,
    /// For a rotated sibling: the path of the open file it preceded.
    pub rotated_of: Option<String>,
    /// Things the reader should know: where else to look, why nothing was read.
    pub notes: Vec<String>,
    /// Which peer was tried when: attempts, failures and address updates, oldest first.
    pub peer_timeline: Vec<PeerAttempt>,
}

/// One step in the story of which peer the process talked to: "Dump meta from X" (attempt),
/// `Fail to dump meta from X ... [ETimedOut]` (timeout), "ADDR UPDATE old X new Y" (left X,
/// switched to Y).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PeerAttempt {
    /// Time as written in the log line.
    pub time_text: String,
    /// The line's time, milliseconds since the epoch, when the year and zone could be told.
    pub time_ms: Option<i64>,
    /// The thread the line names, when it names one (glog's thread id).
    pub tid: Option<i32>,
    /// "10.0.130.72:10100".
    pub peer: String,
    /// What the line says happened: `attempt`, `timeout`, `error`, `left`, `switched_to` or
    /// `unknown`.
    pub outcome: PeerOutcome,
    /// Index of the entry in `LogSource::entries`.
    pub entry: usize,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PeerOutcome {
    /// The peer was named without a failure: a try, or a success.
    #[default]
    Attempt,
    /// The line says the peer timed out.
    Timeout,
    /// The line says the exchange with the peer failed (not a timeout).
    Error,
    /// An address update / failover moved away from this peer.
    Left,
    /// An address update / failover moved to this peer.
    SwitchedTo,
    #[serde(other)]
    Unknown,
}

impl PeerOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerOutcome::Attempt => "tried",
            PeerOutcome::Timeout => "timed out",
            PeerOutcome::Error => "failed",
            PeerOutcome::Left => "left",
            PeerOutcome::SwitchedTo => "switched to",
            PeerOutcome::Unknown => "?",
        }
    }
}

/// What a kernel or log line reports, when hangscope recognises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogEvent {
    /// "task NAME:TID blocked for more than N seconds" (hung task detector).
    HungTask,
    /// "nfs: server X not responding".
    NfsNotResponding,
    /// The OOM killer killed the process.
    OomKill,
    /// `NAME[PID]: segfault at ...` or another trap.
    Segfault,
    /// A kernel line that names the process or one of its threads.
    NamesProcess,
    /// A log line saying an operation timed out.
    Timeout,
    /// A log line saying the process switched to another peer address.
    AddrUpdate,
    #[serde(other)]
    Other,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Glog,
    /// "timestamp level message".
    Plain,
    JsonLines,
    Kmsg,
    Journal,
    #[default]
    #[serde(other)]
    Unknown,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Fatal,
    #[serde(other)]
    Unknown,
}

/// One entry of a log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LogEntry {
    /// Time as written, e.g. "0917 05:25:27.038408".
    pub time_text: String,
    /// Parsed time, milliseconds since the epoch, when the year and zone could be told.
    pub time_ms: Option<i64>,
    /// The line's level (`debug`, `info`, `warning`, `error`, `fatal`, `unknown`), when its format
    /// has one.
    pub level: Option<LogLevel>,
    /// Thread id as written in the line.
    pub tid: Option<i32>,
    /// Source location, e.g. "dump_meta.cc:104".
    pub location: Option<String>,
    /// The message, continuation lines joined with "\n", as the file has it.
    pub message: crate::Text,
    /// Peer addresses ("10.0.130.72:10100") the message names.
    pub peers: Vec<String>,
    /// The line could not be parsed; `message` holds it verbatim.
    pub malformed: bool,
    /// The thread of the snapshot's process this entry was written by: `tid` mapped to the
    /// host's TID (through NSpid for a process in a PID namespace). `None` when the TID is not a
    /// live thread of the process.
    pub thread_tid: Option<i32>,
    /// That thread's name (`comm`).
    pub thread_name: Option<String>,
    /// Inodes of the process's sockets whose peer is one of `peers`.
    pub socket_inodes: Vec<u64>,
    /// What the line reports, when recognised.
    pub event: Option<LogEvent>,
    /// The error name the message carries in brackets, e.g. "ETimedOut" for "[ETimedOut]:
    /// failed to read response header" (since 1.7; set on reading an older document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An error name a log message carries in brackets, as brpc-style and glog-style services
/// write their status codes: "[ETimedOut]" → "ETimedOut". The collector sets `error` with it;
/// reading a document before 1.7 sets it too.
pub fn error_name_in(message: &str) -> Option<String> {
    let start = message.find("[E")?;
    let rest = message.get(start + 1..)?;
    let end = rest.find(']')?;
    let name = rest.get(..end)?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then(|| name.to_string())
}

impl LogEntry {
    /// A warning or worse, or a line recognised as a timeout / kernel event.
    pub fn is_problem(&self) -> bool {
        matches!(
            self.level,
            Some(LogLevel::Warning | LogLevel::Error | LogLevel::Fatal)
        ) || matches!(
            self.event,
            Some(
                LogEvent::Timeout
                    | LogEvent::HungTask
                    | LogEvent::NfsNotResponding
                    | LogEvent::OomKill
                    | LogEvent::Segfault
            )
        )
    }

    /// The message's first line, for one-line displays.
    pub fn first_line(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

impl LogLevel {
    /// One letter, as glog writes it: D I W E F, "?" when unknown.
    pub fn letter(self) -> char {
        match self {
            LogLevel::Debug => 'D',
            LogLevel::Info => 'I',
            LogLevel::Warning => 'W',
            LogLevel::Error => 'E',
            LogLevel::Fatal => 'F',
            LogLevel::Unknown => '?',
        }
    }
}

impl crate::Snapshot {
    /// Entries written by thread `tid` (the host TID, as in `Snapshot::threads`), with their
    /// source, oldest first within each source. Entries that could not be mapped to a live
    /// thread (e.g. the deadline cut the thread listing) match on the TID as written.
    pub fn log_entries_for_tid(&self, tid: i32) -> Vec<(&LogSource, &LogEntry)> {
        self.logs
            .iter()
            .flat_map(|s| s.entries.iter().map(move |e| (s, e)))
            .filter(|(_, e)| {
                e.thread_tid == Some(tid) || (e.thread_tid.is_none() && e.tid == Some(tid))
            })
            .collect()
    }

    /// Entries naming `peer` ("10.0.130.72:10100", as `Endpoint`'s Display writes it).
    pub fn log_entries_naming_peer(&self, peer: &str) -> Vec<(&LogSource, &LogEntry)> {
        self.logs
            .iter()
            .flat_map(|s| s.entries.iter().map(move |e| (s, e)))
            .filter(|(_, e)| e.peers.iter().any(|p| p == peer))
            .collect()
    }

    /// Problem entries (warnings, errors, timeouts) naming `peer`, newest last.
    pub fn log_problems_naming_peer(&self, peer: &str) -> Vec<(&LogSource, &LogEntry)> {
        let mut v = self.log_entries_naming_peer(peer);
        v.retain(|(_, e)| e.is_problem());
        v
    }

    /// Entries tied to socket `inode` (their peer is that socket's peer).
    pub fn log_entries_for_socket(&self, inode: u64) -> Vec<(&LogSource, &LogEntry)> {
        self.logs
            .iter()
            .flat_map(|s| s.entries.iter().map(move |e| (s, e)))
            .filter(|(_, e)| e.socket_inodes.contains(&inode))
            .collect()
    }

    /// Kernel log entries (from /dev/kmsg) about the process.
    pub fn kernel_events(&self) -> Vec<&LogEntry> {
        self.logs
            .iter()
            .filter(|s| s.format == LogFormat::Kmsg)
            .flat_map(|s| s.entries.iter())
            .collect()
    }
}
