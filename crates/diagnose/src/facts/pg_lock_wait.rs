//! The facts of the `pg_lock_wait` rule (`rules/pg_lock_wait.rs`): what it found, as data. The rule
//! decides and sets them; `words/pg_lock_wait.rs` says them.

use hangscope_model::{PgBackend, Text};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PgLockWait {
    pub postmaster: i32,
    /// The target is this backend (else the target is the postmaster).
    pub this_process: bool,
    pub backend: PgSession,
    /// How long it has waited, and from what: `waitstart` of the lock (PostgreSQL 14+), else
    /// the start of its statement (an upper bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
    pub measured_from: Measured,
    /// The lock it waits for, as `pg_locks` lists the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<hangscope_model::PgLockWait>,
    /// `pg_blocking_pids()`.
    pub blocked_by: Vec<i32>,
    /// The blocker to look at: one not itself waiting when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<PgSession>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Measured {
    /// `pg_locks.waitstart`: exactly the wait.
    LockRequest,
    /// `pg_stat_activity.query_start`: the statement, which waits at most that long.
    Statement,
    Unknown,
}

/// A backend as findings name it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PgSession {
    pub pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xact_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_event: Option<String>,
    /// Its current or last statement (cut).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usename: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datname: Option<Text>,
    /// "ADDR:PORT" of its client, "local" for a unix-socket client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl PgSession {
    pub fn of(b: &PgBackend) -> Self {
        PgSession {
            pid: b.pid,
            state: b.state.clone(),
            state_ms: b.state_ms,
            xact_ms: b.xact_ms,
            wait_event_type: b.wait_event_type.clone(),
            wait_event: b.wait_event.clone(),
            query: b.query.clone(),
            usename: b.usename.clone(),
            datname: b.datname.clone(),
            client: client_of(b),
        }
    }

    pub fn idle_in_transaction(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.starts_with("idle in transaction"))
    }
}

impl PgLockWait {
    /// The backend the next look is at.
    pub fn holder_pid(&self) -> i32 {
        self.holder
            .as_ref()
            .map(|h| h.pid)
            .or_else(|| self.blocked_by.first().copied())
            .unwrap_or(self.backend.pid)
    }
}

/// "127.0.0.1:60110", "[::1]:5000", or "local" (a unix socket) for a client backend.
pub(crate) fn client_of(b: &PgBackend) -> Option<String> {
    match (&b.client_addr, b.client_port) {
        (Some(a), Some(p)) if a.contains(':') => Some(format!("[{a}]:{p}")),
        (Some(a), Some(p)) => Some(format!("{a}:{p}")),
        (Some(a), None) => Some(a.clone()),
        (None, _) if b.backend_type == "client backend" => Some("local".into()),
        (None, _) => None,
    }
}
