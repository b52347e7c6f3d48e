//! The snapshot model: what hangscope saw of one process, as plain serde types.
//!
//! Everything downstream (diagnosis, rendering, replay of a saved file) depends on this crate
//! only, so it builds and tests without a live process. The field-by-field contract is in
//! `docs/snapshot-schema.md`.
//!
//! Compatibility: a document carries `schema_version` "MAJOR.MINOR". Readers ignore fields they
//! do not know and treat missing optional fields as absent, so additive changes (a MINOR bump)
//! load both ways; a different MAJOR is refused with a message that names both versions.

mod app;
mod chain;
mod document;
mod fd;
mod finding;
mod gap;
mod hosts;
mod lock;
mod log;
mod process;
mod scan;
mod socket;
mod stack;
pub mod text;
mod thread;
pub mod units;

pub use app::{
    AppView, MariaServer, MariaSession, MariaView, PgBackend, PgLockWait, PgServer, PgView,
    RedisClient, RedisView, is_mariadb_exe, is_postgres_exe, is_redis_exe,
};
pub use chain::{Chain, ChainEnd, Hop};
pub use document::{
    Document, DocumentError, RootVerdict, SCHEMA_VERSION, Verdict, Window, json_schema,
};
pub use fd::{Access, EpollWatch, Fd, FdInfo, FdKind, FileStat, PipeEnd, TimerfdSettings};
pub use finding::{Cause, Evidence, Finding, Next, NextKind, Severity, Subject};
pub use gap::{Gap, GapReason, GapTopic};
pub use hosts::{FoundBy, HopFailure, HopFailureKind, HostHop, Served};
pub use lock::{FileLock, LockAccess, LockClass};
pub use log::{
    LogEntry, LogEvent, LogFormat, LogLevel, LogSource, PeerAttempt, PeerOutcome, error_name_in,
};
pub use process::{
    Child, DeadlockLink, Freezer, Host, Process, Runtime, RuntimeDeadlock, RuntimeKind,
    RuntimeThread, RuntimeView, Tracer, UnavailableReason, ViewUnavailable,
};
pub use scan::{Container, EntryStatus, SCAN_SCHEMA_VERSION, ScanEntry, ScanReport};
pub use socket::{
    CallCount, ConnectionLook, ConnectionWindow, Endpoint, InetSocket, LocalPeer, NetlinkSocket,
    PacketSocket, PeerEnd, PeerHolder, PeerThread, PeerThreads, Socket, SocketDetail, SocketFamily,
    SocketTimer, StateChange, TcpInfo, TcpState, TimerKind, UnixPeer, UnixSocket,
};
pub use stack::{Frame, StackSource, SyncWait, ThreadRuntime, UserStack};
pub use text::{Escape, Text};
pub use thread::{Activity, Looping, SyscallArg, SyscallState, Thread, ThreadLook, WaitObject};

/// For `skip_serializing_if`: absent in JSON means false, which keeps 20,000-fd documents small.
pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Everything hangscope read about one process at one time (plus what it could not read).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default)]
pub struct Snapshot {
    /// Wall-clock time the collection started, milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    /// How long collection took, in milliseconds.
    pub collect_ms: u64,
    /// The machine it was taken on.
    pub host: Host,
    /// The target process.
    pub process: Process,
    /// The target's threads, from /proc/PID/task; the one asked about (`hangscope TID`) first.
    pub threads: Vec<Thread>,
    /// Open file descriptors, sorted by number.
    pub fds: Vec<Fd>,
    /// Sockets the process holds, keyed by inode; each fd of kind `socket` points here by inode.
    pub sockets: Vec<Socket>,
    /// File locks that involve the process: held through one of its fds, or waited for.
    pub locks: Vec<FileLock>,
    /// Log files (and the journal) the process writes, with their last entries.
    pub logs: Vec<LogSource>,
    /// The sampling window, when more than one look was taken.
    pub window: Option<Window>,
    /// What the server the process belongs to says about itself, through its own
    /// introspection (PostgreSQL's `pg_stat_activity`), when it is such a server (since 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<AppView>,
    /// What could not be read, and why. Never silently dropped.
    pub gaps: Vec<Gap>,
    /// FUSE mounts a thread waits on, with the processes that may serve them (since 1.5).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fuse: Vec<FuseMount>,
    /// The ports the kernel hands out to clients (net.ipv4.ip_local_port_range, as hangscope's
    /// network namespace has it), when readable (since 1.6): a hint of which end of a
    /// connection is the client when the listeners are not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_ports: Option<PortRange>,
}

/// A range of ports, both ends included (since 1.6, with its fields).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct PortRange {
    /// The lowest port of the range.
    pub first: u16,
    /// The highest port of the range.
    pub last: u16,
}

impl PortRange {
    /// Linux's default ip_local_port_range, for a snapshot that does not say.
    pub const LINUX_DEFAULT: PortRange = PortRange {
        first: 32768,
        last: 60999,
    };

    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// A FUSE mount whose server a thread waits for (since 1.5, with its fields).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default)]
pub struct FuseMount {
    /// Where it is mounted, from /proc/PID/mountinfo.
    pub mount_point: Text,
    /// "fuse.sshfs", "fuseblk", ...
    pub fs_type: String,
    /// The mount's source field, e.g. "host:/export".
    pub source: Option<String>,
    /// The threads waiting on it.
    pub tids: Vec<i32>,
    /// The path the first of them asked for, when its call names one.
    pub path: Option<Text>,
    /// Every process holding /dev/fuse (the server is among them).
    pub holders: Vec<FuseServer>,
    /// The holder that serves this mount, when it could be told.
    pub server: Option<i32>,
    /// How: "cmdline" (its command line names the mount point) or "only_holder" (the only
    /// process holding /dev/fuse); empty when not told.
    pub matched_by: String,
}

/// A process holding /dev/fuse (since 1.5, with its fields).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default)]
pub struct FuseServer {
    /// Its PID.
    pub pid: i32,
    /// Its `comm`.
    pub name: Text,
    /// Its fd on /dev/fuse.
    pub fd: i32,
    /// Its arguments, from /proc/PID/cmdline.
    pub cmdline: Vec<Text>,
}

impl Snapshot {
    pub fn fd(&self, fd: i32) -> Option<&Fd> {
        self.fds
            .binary_search_by_key(&fd, |f| f.fd)
            .ok()
            .and_then(|i| self.fds.get(i))
    }

    pub fn socket(&self, inode: u64) -> Option<&Socket> {
        self.sockets.iter().find(|s| s.inode == inode)
    }

    /// The socket an fd refers to, when it is a socket fd whose connection was found.
    pub fn socket_of_fd(&self, fd: i32) -> Option<&Socket> {
        self.fd(fd)
            .and_then(|f| f.socket_inode)
            .and_then(|ino| self.socket(ino))
    }

    pub fn thread(&self, tid: i32) -> Option<&Thread> {
        self.threads.iter().find(|t| t.tid == tid)
    }
}
