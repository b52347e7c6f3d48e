//! `hangscope scan`'s report: one entry per process the scan lists, ranked. Its own document,
//! with its own version (`SCAN_SCHEMA_VERSION`); the format is in `docs/scan-format.md`.

use serde::{Deserialize, Serialize};

use crate::{Cause, Host, Severity, Text};

/// The version of the scan report's format; MINOR bumps only add fields.
pub const SCAN_SCHEMA_VERSION: &str = "1.0";

/// The whole scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ScanReport {
    pub scan_schema_version: String,
    pub generator: String,
    pub host: Host,
    /// Wall clock when the scan began, ms since the Unix epoch.
    pub taken_at_ms: u64,
    /// Time between the scan's two looks at every thread; 0 for one look.
    pub window_ms: u64,
    /// User-space processes and their threads at the last look.
    pub processes: u32,
    pub threads: u32,
    /// CPU time this run spent in the looks at every thread (user + system), ms.
    pub look_cpu_ms: u64,
    /// Processes picked for the full look, and of those how many were read before the deadline.
    pub suspects: u32,
    pub diagnosed: u32,
    /// The deadline came before every process was looked at, or every suspect read.
    #[serde(skip_serializing_if = "crate::is_false")]
    pub cut_short: bool,
    /// Ranked: causes first, longest stuck first; a chain's members follow their root.
    pub entries: Vec<ScanEntry>,
}

/// One process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ScanEntry {
    pub pid: i32,
    /// The process's `comm`.
    pub name: Text,
    pub status: EntryStatus,
    /// Why the cheap look picked it, e.g. "thread 812 still in flock"; empty for a process
    /// listed only as a chain's member or with `--all`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub picked: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// The top finding's rule, severity and class; empty / absent when none.
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The verdict in words (the top finding's summary), or what the cheap look saw.
    pub summary: String,
    /// The next command to run; empty when nothing is stuck.
    pub next_step: String,
    /// How long it has been stuck, when the finding says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck_ms: Option<u64>,
    /// The root of the wait chain this process is in, when that is another process: the
    /// entry is listed after the root's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_pid: Option<i32>,
    /// The wait chain from this process to its root (PIDs, this one first), when it has hops.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<i32>,
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
pub enum EntryStatus {
    /// The full diagnosis names a cause.
    Cause,
    /// Diagnosed: no cause, but a warning, or it is the root or a member of a stuck chain.
    Suspect,
    /// Picked by the cheap look, but not read in full before the deadline (or it exited).
    NotDiagnosed,
    /// Nothing looks stuck (listed with `--all`, or a suspect the diagnosis cleared).
    #[default]
    Healthy,
}

/// The cgroup of a process, and the container its path names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Container {
    pub cgroup: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}
