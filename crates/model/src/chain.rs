//! Wait chains: from the target, process to process, along the waits hangscope can prove, to
//! the one that holds everything up (since 1.5).

use serde::{Deserialize, Serialize};

use crate::{Cause, Next, Severity, Text};

/// The walk from the target to the root of its wait (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Chain {
    /// The processes in order, the target first; each waits on the next. The last is the
    /// root, unless `end` says the walk stopped before one was found.
    pub hops: Vec<Hop>,
    /// Why the walk ended where it did.
    pub end: ChainEnd,
}

/// One process of a chain, and how it waits on the next (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Hop {
    /// The process's PID, on its own host.
    pub pid: i32,
    /// The thread that waits (or runs, at a busy root), when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// The process's `comm`.
    pub name: Text,
    /// The host the process runs on (its hostname).
    pub host: String,
    /// For a process on another host: the address that host was reached at, the peer address
    /// of the connection the chain followed there (since 1.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reached_at: Option<String>,
    /// The rule whose finding this hop is; empty when the process has no finding (an idle
    /// root).
    pub rule: String,
    /// That finding's cause class; absent when the process has no finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// That finding's severity; absent when the process has no finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// That finding's summary, or for an idle root what its threads do.
    pub summary: String,
    /// That finding's next step.
    pub next_step: String,
    /// That finding's typed facts.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub facts: serde_json::Value,
    /// Where that finding points: for every hop but the last, the next hop's process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Next>,
    /// How long this process has waited on the next, when the finding says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck_ms: Option<u64>,
}

/// Why a chain ends at its last hop (since 1.5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainEnd {
    /// The target's own finding points at no other process: a one-hop chain.
    #[default]
    Here,
    /// The last hop is the root: it waits on nothing another process on this host holds
    /// (it runs, is stopped, waits in the kernel, waits on another host, or is idle holding
    /// what the others wait for). `why` is the root's cause; absent for an idle root.
    Root {
        /// The root's cause; absent for an idle root.
        #[serde(skip_serializing_if = "Option::is_none")]
        why: Option<Cause>,
        /// The root's process has no finding: it is idle while the others wait on it.
        #[serde(default, skip_serializing_if = "crate::is_false")]
        idle: bool,
    },
    /// The last hop waits on a process already in the chain: a cycle (a deadlock across
    /// processes). `back_to` is that hop's place in `hops`.
    Cycle {
        /// The index in `hops` of the hop the last one waits on.
        back_to: usize,
    },
    /// The last hop waits on a service on another host: the chain continues there.
    OtherHost {
        /// The other host, as the last finding's `next` names it (an address or a name).
        host: String,
        /// The service's port there; absent when the finding names none.
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        /// This host's end of that connection, "198.18.0.1:42428", when known: the host there
        /// finds the connection by it (since 1.6).
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// The next process could not be read (it exited, or it is not visible).
    NotSeen {
        /// The process the last hop waits on.
        pid: i32,
        /// Why it could not be read, in words.
        reason: String,
    },
    /// The walk stopped at its bound on hops.
    HopLimit {
        /// The bound on the processes followed after the target.
        limit: usize,
    },
    /// The run's deadline came before the next process was read.
    Deadline {
        /// The process the last hop waits on, not read.
        pid: i32,
    },
}

impl ChainEnd {
    /// Whether the walk stopped at a process it could not read: the chain may go on there.
    pub fn unread(&self) -> bool {
        matches!(self, ChainEnd::NotSeen { .. } | ChainEnd::Deadline { .. })
    }
}

impl Chain {
    /// The processes after the target.
    pub fn followed(&self) -> usize {
        self.hops.len().saturating_sub(1)
    }

    /// The root hop: the last, when the chain ends at one.
    pub fn root(&self) -> Option<&Hop> {
        match self.end {
            ChainEnd::Root { .. } | ChainEnd::OtherHost { .. } | ChainEnd::Cycle { .. } => {
                self.hops.last()
            }
            _ => None,
        }
    }
}
