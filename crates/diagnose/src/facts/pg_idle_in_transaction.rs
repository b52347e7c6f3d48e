//! The facts of the `pg_idle_in_transaction` rule (`rules/pg_idle_in_transaction.rs`): what it found, as data. The rule
//! decides and sets them; `words/pg_idle_in_transaction.rs` says them.

use hangscope_model::Text;
use serde::Serialize;

use crate::facts::pg_lock_wait::PgSession;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PgIdleInTransaction {
    pub postmaster: i32,
    /// The target is this backend (else the target is the postmaster).
    pub this_process: bool,
    pub backend: PgSession,
    /// The backends that wait for a lock it holds.
    pub blocks: Vec<i32>,
    pub client: PgClient,
}

/// The client of a backend.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum PgClient {
    /// A process on this host, at the other end of the backend's connection.
    Process {
        pid: i32,
        name: Text,
        fd: i32,
        /// "ADDR:PORT", or "local".
        address: String,
    },
    /// Known by its address only: another host, or this host when the backend's own sockets
    /// were not read (the target is the postmaster) or its peer was not resolved.
    Address {
        address: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
    },
    Unknown,
}
