//! The facts of the `mariadb_lock_wait` rule (`rules/mariadb_lock_wait.rs`): what it found, as data. The rule
//! decides and sets them; `words/mariadb_lock_wait.rs` says them.

use hangscope_model::{MariaSession, Text};
use serde::Serialize;

use crate::facts::pg_idle_in_transaction::PgClient;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MariaLockWait {
    /// The server's process.
    pub server: i32,
    pub waiter: MariaConn,
    pub holder: MariaConn,
    /// The table and mode of the lock waited for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The holder's client.
    pub client: PgClient,
}

/// A connection as the finding names it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MariaConn {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trx_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Text>,
    /// `Sleep` with its transaction open.
    pub idle_in_transaction: bool,
}

impl MariaConn {
    pub(crate) fn of(s: &MariaSession) -> Self {
        MariaConn {
            id: s.id,
            tid: s.tid,
            command: s.command.clone(),
            time_ms: s.time_ms,
            trx_ms: s.trx_ms,
            wait_ms: s.wait_ms,
            info: s.info.clone(),
            host: s.host.clone(),
            idle_in_transaction: s.idle_in_transaction(),
        }
    }
}
