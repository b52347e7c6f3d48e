//! What a server says about itself through its own introspection (PostgreSQL's
//! `pg_stat_activity`), read the way its administrator would on that host. Each server kind is
//! one variant of [`AppView`]; a reader that does not know a kind sees `unknown`.

use serde::{Deserialize, Serialize};

use crate::Text;

/// The server's own view of its sessions, when the target is such a server (since 1.5; `kind` is
/// `postgres`, `mariadb` or `redis`, the variant below).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppView {
    /// A PostgreSQL server process: the postmaster or one of its backends.
    Postgres(PgView),
    /// A MariaDB (or MySQL) server, `mariadbd` / `mysqld` (since 1.6).
    Mariadb(MariaView),
    /// A client of a redis-server on this host: the server's `CLIENT LIST` entries for the
    /// target's connections to it (since 1.6).
    Redis(RedisView),
    /// A kind this reader does not know (written by a newer hangscope).
    #[serde(other)]
    Unknown,
}

/// PostgreSQL's sessions, from `pg_stat_activity` and `pg_blocking_pids()` over the server's
/// unix socket, as the server's OS user (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PgView {
    /// The server the backends belong to.
    pub server: PgServer,
    /// Every backend but hangscope's own connection (`application_name` "hangscope").
    pub backends: Vec<PgBackend>,
    /// Backends the server had beyond those listed (the listing is bounded).
    #[serde(skip_serializing_if = "crate::is_zero")]
    pub backends_cut: u32,
}

/// The PostgreSQL server that was asked (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PgServer {
    /// The postmaster: the target, or the target's parent when the target is a backend.
    pub postmaster_pid: i32,
    /// The TCP port the server listens on, which also names its unix socket `.s.PGSQL.PORT`.
    pub port: u16,
    /// The directory of the unix socket `.s.PGSQL.PORT` that was used, as the postmaster sees
    /// it (its mount namespace).
    pub socket_dir: Text,
    /// `server_version`, e.g. "15.14 (Debian 15.14-0+deb12u1)".
    pub version: String,
}

/// One row of `pg_stat_activity`. Durations are up to the moment of the query (since 1.5, with its
/// fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PgBackend {
    /// The backend's process ID on this host (`pid`).
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
    /// The role it is logged in as (`usename`); absent for background processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usename: Option<Text>,
    /// The database it is connected to (`datname`); absent for background processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datname: Option<Text>,
    /// The name its client gave (`application_name`); absent when empty.
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

/// A lock request not granted yet, from `pg_locks` (since 1.5, with its fields).
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

/// A MariaDB server's sessions, from information_schema `PROCESSLIST`, `INNODB_TRX`,
/// `INNODB_LOCK_WAITS` and `INNODB_LOCKS`, over the server's unix socket as its OS user (or
/// root), with unix_socket authentication (since 1.6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MariaView {
    /// The server the sessions belong to.
    pub server: MariaServer,
    /// Every connection but hangscope's own.
    pub sessions: Vec<MariaSession>,
    /// Connections the server had beyond those listed (the listing is bounded).
    #[serde(skip_serializing_if = "crate::is_zero")]
    pub sessions_cut: u32,
}

/// The MariaDB server that was asked (since 1.6, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MariaServer {
    /// The server's process ID (mariadbd or mysqld).
    pub pid: i32,
    /// The unix socket used, as the server sees it (its mount namespace).
    pub socket: Text,
    /// `VERSION()`, e.g. "10.11.19-MariaDB-0+deb12u1".
    pub version: String,
    /// The OS user the client ran as ("mysql", "root").
    pub asked_as: String,
}

/// One connection: a row of `PROCESSLIST`, with its InnoDB transaction when it has one (since 1.6,
/// with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MariaSession {
    /// The connection id (`ID`, what `KILL` takes).
    pub id: u64,
    /// The server's OS thread serving it (`TID`, 10.5 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// `USER`: the account it is logged in as; absent for the server's own threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Text>,
    /// `HOST`: "host:port" for a TCP client (the host may be a name), "localhost" for a unix
    /// socket client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Text>,
    /// `DB`: its default database; absent when none is selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<Text>,
    /// `COMMAND`: "Query", "Sleep", "Daemon", ...
    pub command: String,
    /// Time in the current command (`TIME_MS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    /// `STATE`: what the statement is doing, e.g. "Updating", "Waiting for table metadata lock";
    /// absent when the server says nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The statement running (`INFO`), cut to 200 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Text>,
    /// Its InnoDB transaction's state ("RUNNING", "LOCK WAIT"); absent with no transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trx_state: Option<String>,
    /// Time since its transaction began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trx_ms: Option<u64>,
    /// Time since it began waiting for a lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// The connections holding the lock it waits for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<u64>,
    /// The table of the lock it waits for, e.g. "`shop`.`ledger`".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_table: Option<Text>,
    /// That lock's mode ("X", "S", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_mode: Option<String>,
}

impl MariaSession {
    /// Idle (`Sleep`) with a transaction open: it holds its locks until its client ends it.
    pub fn idle_in_transaction(&self) -> bool {
        self.command == "Sleep" && self.trx_state.is_some()
    }
}

impl MariaView {
    pub fn session(&self, id: u64) -> Option<&MariaSession> {
        self.sessions.iter().find(|s| s.id == id)
    }
}

/// Whether an executable's path is MariaDB's or MySQL's server.
pub fn is_mariadb_exe(exe: &[u8]) -> bool {
    let exe = exe.strip_suffix(b" (deleted)").unwrap_or(exe);
    let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(exe);
    base == b"mariadbd" || base == b"mysqld"
}

/// What a redis-server on this host says of the target's connections to it, from `CLIENT
/// LIST` over the same loopback address the target uses (since 1.6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RedisView {
    /// The redis-server's process ID: the process holding the other end of the target's connection.
    pub server_pid: i32,
    /// The address asked, "127.0.0.1:6379".
    pub address: String,
    /// The entries whose `addr` is one of the target's connections.
    pub clients: Vec<RedisClient>,
}

/// One `CLIENT LIST` entry (since 1.6, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RedisClient {
    /// The client's id (`id`, what `CLIENT KILL ID` takes).
    pub id: u64,
    /// The client's end, "127.0.0.1:40112".
    pub addr: String,
    /// The name the client set with `CLIENT SETNAME`; absent when it set none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Seconds since it connected.
    pub age_s: u64,
    /// Seconds since its last command.
    pub idle_s: u64,
    /// e.g. "b" (blocked in a blocking command), "N" (nothing special), "x" (in MULTI).
    pub flags: String,
    /// Its last or current command, e.g. "blpop", "xread", "client|list".
    pub cmd: String,
    /// The database number it has selected (`db`).
    pub db: i64,
}

impl RedisClient {
    /// Blocked in a blocking command (BLPOP, XREAD BLOCK, WAIT, ...): flag `b`.
    pub fn blocked(&self) -> bool {
        self.flags.contains('b')
    }
}

/// Whether an executable's path is a Redis (or Valkey) server; Debian's `redis-server` is a
/// link to `redis-check-rdb`, which /proc/PID/exe names.
pub fn is_redis_exe(exe: &[u8]) -> bool {
    let exe = exe.strip_suffix(b" (deleted)").unwrap_or(exe);
    let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(exe);
    matches!(
        base,
        b"redis-server" | b"redis-check-rdb" | b"valkey-server" | b"valkey-check-rdb"
    )
}
