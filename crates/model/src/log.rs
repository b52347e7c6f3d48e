//! Log files the process writes, and the entries read from their tail.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LogSource {
    /// Path of the log file, or "journal", or "kmsg".
    pub path: String,
    /// The target's fd the file is open on, if any.
    pub fd: Option<i32>,
    pub format: LogFormat,
    /// Bytes read from the end of the file.
    pub bytes_read: u64,
    /// The entries, oldest first.
    pub entries: Vec<LogEntry>,
    /// Why the file was picked, e.g. "fd 7 open for writing, name contains 'log'".
    pub reason: String,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LogEntry {
    /// Time as written, e.g. "0917 05:25:27.038408".
    pub time_text: String,
    /// Parsed time, milliseconds since the epoch, when the year and zone could be told.
    pub time_ms: Option<i64>,
    pub level: Option<LogLevel>,
    /// Thread id as written in the line.
    pub tid: Option<i32>,
    /// Source location, e.g. "dump_meta.cc:104".
    pub location: Option<String>,
    /// The message, continuation lines joined with "\n".
    pub message: String,
    /// Peer addresses ("10.0.130.72:10100") the message names.
    pub peers: Vec<String>,
    /// The line could not be parsed; `message` holds it verbatim.
    pub malformed: bool,
}
