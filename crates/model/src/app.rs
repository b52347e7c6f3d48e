//! What a server says about itself through its own introspection (PostgreSQL's
//! `pg_stat_activity`), read the way its administrator would on that host. Each server kind is
//! one variant of [`AppView`]; a reader that does not know a kind sees `unknown`.

use serde::{Deserialize, Serialize};

use crate::Text;

/// The server's own view of its sessions, when the target is such a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppView {
    /// A PostgreSQL server process: the postmaster or one of its backends.
    Postgres(PgView),
    /// A kind this reader does not know (written by a newer hangscope).
    #[serde(other)]
    Unknown,
}

/// PostgreSQL's sessions, from `pg_stat_activity` and `pg_blocking_pids()` over the server's
/// unix socket, as the server's OS user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PgView {
    pub server: PgServer,
    /// Every backend but hangscope's own connection (`application_name` "hangscope").
    pub backends: Vec<PgBackend>,
    /// Backends the server had beyond those listed (the listing is bounded).
    #[serde(skip_serializing_if = "crate::is_zero")]
    pub backends_cut: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PgServer {
    /// The postmaster: the target, or the target's parent when the target is a backend.
    pub postmaster_pid: i32,
    pub port: u16,
    /// The directory of the unix socket `.s.PGSQL.PORT` that was used, as the postmaster sees
    /// it (its mount namespace).
    pub socket_dir: Text,
    /// `server_version`, e.g. "15.14 (Debian 15.14-0+deb12u1)".
    pub version: String,
}

/// One row of `pg_stat_activity`. Durations are up to the moment of the query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PgBackend {
    pub pid: i32,
    /// "client backend", "autovacuum launcher", "walwriter", ...
    pub backend_type: String,
    /// "active", "idle", "idle in transaction", "idle in transaction (aborted)", ...; absent
    /// for background processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// "Lock", "Client", "IO", ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_event_type: Option<String>,
    /// "transactionid", "tuple", "relation", "ClientRead", ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_event: Option<String>,
    /// The current or last statement, as the client sent it: cut to 200 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<Text>,
    /// Time in the current `state` (since `state_change`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_ms: Option<u64>,
    /// Time since the transaction began (`xact_start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xact_ms: Option<u64>,
    /// Time since the current or last statement began (`query_start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_ms: Option<u64>,
    /// The client's address; absent for a unix-socket client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// The client's TCP port; absent (or -1 as the server says) for a unix-socket client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usename: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datname: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_name: Option<Text>,
    /// The backends holding the lock it waits for (`pg_blocking_pids`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<i32>,
    /// The lock it waits for, when it waits for one (`pg_locks`, not granted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_wait: Option<PgLockWait>,
}

impl PgBackend {
    /// Idle inside an open transaction: it holds its locks until its client ends it.
    pub fn idle_in_transaction(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.starts_with("idle in transaction"))
    }
}

/// A lock request not granted yet, from `pg_locks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PgLockWait {
    /// "transactionid", "tuple", "relation", ...
    pub locktype: String,
    /// e.g. "ShareLock", "ExclusiveLock".
    pub mode: String,
    /// The table, when the lock (or the row lock taken before it) names one in the database
    /// hangscope connected to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Text>,
    /// Time since the wait began (`waitstart`, PostgreSQL 14 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

impl PgView {
    pub fn backend(&self, pid: i32) -> Option<&PgBackend> {
        self.backends.iter().find(|b| b.pid == pid)
    }
}

/// Whether an executable's path (readlink of /proc/PID/exe) is PostgreSQL's server:
/// `postgres`, or `postmaster` as older packages link it.
pub fn is_postgres_exe(exe: &[u8]) -> bool {
    let exe = exe.strip_suffix(b" (deleted)").unwrap_or(exe);
    let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(exe);
    base == b"postgres" || base == b"postmaster"
}
