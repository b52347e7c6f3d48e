//! Findings as data. A rule that finds something returns a typed facts value (what it saw: which
//! thread, which connection, how long, what the other end did); its severity is decided from
//! those facts, and its words — summary, evidence, what was ruled out, the next step — are made
//! from them by separate functions in `words/`, as ruff and clippy keep a lint's detection apart
//! from its message. Context rules (other connections to the same host alive, a loop waiting
//! for the stuck thread) add to the facts of the findings they read, never to their text.
//!
//! Each rule's facts live in `facts/<rule>.rs`, data only: the rule (`rules/<rule>.rs`) finds
//! and sets them, its words (`words/<rule>.rs`) say them, and `words::finding_of` is the one
//! place a facts value meets its words, so facts depend on neither.
//!
//! The facts are written out with the finding (`Finding::facts`), so a program gets "which
//! thread, which peer, how long" without parsing English.

use hangscope_model::{
    Cause, ConnectionWindow, Endpoint, LocalPeer, Next, PeerHolder, PeerThreads, Severity,
    SocketDetail, SocketTimer, Subject, Text,
};
use hangscope_model::{PeerEnd, TcpState};
use serde::Serialize;

use crate::connection::{Conn, Proto};
use crate::waiters::{Waiter, Want};

// Each rule's facts, data only: the rules depend on these, never these on the rules.
pub(crate) mod across;
pub(crate) mod busy;
pub(crate) mod child_wait;
pub(crate) mod connection_dead;
pub(crate) mod exited;
pub(crate) mod local_not_reading;
pub(crate) mod lock_retry;
pub(crate) mod lock_wait;
pub(crate) mod managed_runtime;
pub(crate) mod mariadb_lock_wait;
pub(crate) mod mutex_deadlock;
pub(crate) mod mutex_holder_blocked;
pub(crate) mod name_resolution;
pub(crate) mod not_visible;
pub(crate) mod peer_not_reading;
pub(crate) mod peer_silent;
pub(crate) mod peer_unreachable;
pub(crate) mod pg_idle_in_transaction;
pub(crate) mod pg_lock_wait;
pub(crate) mod pipe_wait;
pub(crate) mod redis_blocked;
pub(crate) mod same_host;
pub(crate) mod shared_mutex_wait;
pub(crate) mod stopped;
pub(crate) mod unanswered;
pub(crate) mod uninterruptible;
pub(crate) mod unix_peer_wait;
pub(crate) mod waiting_loop;

/// The facts of one rule's finding.
pub(crate) trait RuleFacts: Serialize {
    /// The rule's stable id, written as `Finding::rule`: its file's name.
    const RULE: &'static str;
    /// [`Self::RULE`], of a value whose type is not named (a [`Facts`]).
    fn rule(&self) -> &'static str {
        Self::RULE
    }
    fn cause(&self) -> Cause;
    fn severity(&self) -> Severity;
    /// How long the subject has been stuck, for ranking.
    fn stuck_ms(&self) -> u64;
    fn subject(&self) -> Subject;
    fn next(&self) -> Option<Next>;
}

/// The facts of every rule that returns them.
#[derive(Debug, Clone)]
pub(crate) enum Facts {
    PeerSilent(Box<peer_silent::PeerSilent>),
    SameHostAlive(same_host::SameHostAlive),
    // The network rules.
    PeerUnreachable(Box<peer_unreachable::PeerUnreachable>),
    PeerNotReading(Box<peer_not_reading::PeerNotReading>),
    LocalNotReading(Box<local_not_reading::LocalNotReading>),
    ConnectionDead(Box<connection_dead::ConnectionDead>),
    Unanswered(Box<unanswered::Unanswered>),
    UnixPeerWait(Box<unix_peer_wait::UnixPeerWait>),
    NameResolution(Box<name_resolution::NameResolution>),
    // Waits inside this host.
    LockWait(lock_wait::LockWait),
    LockRetry(lock_retry::LockRetry),
    MutexDeadlock(mutex_deadlock::MutexDeadlock),
    MutexHolderBlocked(mutex_holder_blocked::MutexHolderBlocked),
    SharedMutexWait(shared_mutex_wait::SharedMutexWait),
    PipeWait(pipe_wait::PipeWait),
    Busy(busy::Busy),
    Exited(exited::Exited),
    ChildWait(child_wait::ChildWait),
    KernelWait(uninterruptible::KernelWait),
    WaitingLoop(waiting_loop::WaitingLoop),
    NotVisible(not_visible::NotVisible),
    Stopped(stopped::Stopped),
    ManagedRuntime(Box<managed_runtime::ManagedRuntime>),
    // What a server says of its own sessions.
    PgLockWait(Box<pg_lock_wait::PgLockWait>),
    PgIdleInTransaction(Box<pg_idle_in_transaction::PgIdleInTransaction>),
    MariaLockWait(Box<mariadb_lock_wait::MariaLockWait>),
    RedisBlocked(redis_blocked::RedisBlocked),
}

/// Calls `$e` with the rule's facts, whichever rule it is.
macro_rules! each {
    ($facts:expr, $f:ident => $e:expr) => {
        match $facts {
            Facts::PeerSilent($f) => $e,
            Facts::SameHostAlive($f) => $e,
            // The network rules.
            Facts::PeerUnreachable($f) => $e,
            Facts::PeerNotReading($f) => $e,
            Facts::LocalNotReading($f) => $e,
            Facts::ConnectionDead($f) => $e,
            Facts::Unanswered($f) => $e,
            Facts::UnixPeerWait($f) => $e,
            Facts::NameResolution($f) => $e,
            // Waits inside this host.
            Facts::LockWait($f) => $e,
            Facts::LockRetry($f) => $e,
            Facts::MutexDeadlock($f) => $e,
            Facts::MutexHolderBlocked($f) => $e,
            Facts::SharedMutexWait($f) => $e,
            Facts::PipeWait($f) => $e,
            Facts::Busy($f) => $e,
            Facts::Exited($f) => $e,
            Facts::ChildWait($f) => $e,
            Facts::KernelWait($f) => $e,
            Facts::WaitingLoop($f) => $e,
            Facts::NotVisible($f) => $e,
            Facts::Stopped($f) => $e,
            Facts::ManagedRuntime($f) => $e,
            Facts::PgLockWait($f) => $e,
            Facts::PgIdleInTransaction($f) => $e,
            Facts::MariaLockWait($f) => $e,
            Facts::RedisBlocked($f) => $e,
        }
    };
}

impl Facts {
    /// The id of the rule that found these facts (`Finding::rule`).
    pub fn rule(&self) -> &'static str {
        each!(self, f => f.rule())
    }

    /// The facts as a finding writes them out (`Finding::facts`).
    pub fn to_json(&self) -> serde_json::Value {
        // Plain data with string keys: serializing cannot fail.
        each!(self, f => serde_json::to_value(f).unwrap_or_default())
    }

    pub fn severity(&self) -> Severity {
        each!(self, f => f.severity())
    }

    pub fn cause(&self) -> Cause {
        each!(self, f => f.cause())
    }

    pub fn subject(&self) -> Subject {
        each!(self, f => f.subject())
    }

    pub fn stuck_ms(&self) -> u64 {
        each!(self, f => f.stuck_ms())
    }

    /// Where a context rule records that other connections to the same host answer; `None`
    /// for a rule whose words do not use it.
    pub fn host_alive_mut(&mut self) -> Option<&mut Option<HostAlive>> {
        match self {
            Facts::PeerSilent(f) => Some(&mut f.host_alive),
            Facts::SameHostAlive(_) | Facts::Stopped(_) | Facts::ManagedRuntime(_) => None,
            // A server's own view: no connection of the target's to corroborate.
            Facts::PgLockWait(_)
            | Facts::PgIdleInTransaction(_)
            | Facts::MariaLockWait(_)
            | Facts::RedisBlocked(_) => None,
            // The network rules.
            Facts::PeerUnreachable(f) => Some(&mut f.host_alive),
            Facts::PeerNotReading(f) => Some(&mut f.host_alive),
            Facts::ConnectionDead(f) => Some(&mut f.host_alive),
            Facts::LocalNotReading(_)
            | Facts::Unanswered(_)
            | Facts::UnixPeerWait(_)
            | Facts::NameResolution(_) => None,
            // Waits inside this host: no connection to corroborate.
            Facts::LockWait(_)
            | Facts::LockRetry(_)
            | Facts::MutexDeadlock(_)
            | Facts::MutexHolderBlocked(_)
            | Facts::SharedMutexWait(_)
            | Facts::PipeWait(_)
            | Facts::Busy(_)
            | Facts::Exited(_)
            | Facts::ChildWait(_)
            | Facts::KernelWait(_)
            | Facts::WaitingLoop(_)
            | Facts::NotVisible(_) => None,
        }
    }
}

/// A thread's wait on an fd, as a finding names it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThreadWait {
    pub tid: i32,
    pub name: Text,
    /// The syscall, e.g. "poll"; empty when not known.
    pub syscall: String,
    /// The fd it waits on.
    pub fd: i32,
    /// The epoll fd it waits in, when it reaches `fd` through one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_epoll: Option<i32>,
    /// The call as strace shows it, e.g. "poll([{fd=5, events=POLLIN}], 1, 4500)".
    pub call: String,
    /// Blocked in this wait at least this long, measured over the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_ms: Option<u64>,
    /// The thread made progress during the window: an event loop still serving others.
    pub progressed: bool,
    /// Where the call was read: /proc/PID/task/TID/syscall.
    pub source: String,
}

impl ThreadWait {
    pub fn of(w: &Waiter<'_>, pid: i32) -> Self {
        ThreadWait {
            tid: w.thread.tid,
            name: w.thread.name.clone(),
            syscall: w.syscall().to_string(),
            fd: w.fd,
            via_epoll: w.via_epoll,
            call: w.strace(),
            blocked_ms: w.blocked_ms(),
            progressed: w.progressed(),
            source: w.source(pid),
        }
    }
}

/// A process and fd that hold the other end of a connection.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Holder {
    pub pid: i32,
    pub name: Text,
    pub fd: i32,
    /// The target itself holds it.
    pub this_process: bool,
}

impl Holder {
    fn of(h: &PeerHolder, pid: i32) -> Self {
        Holder::new(h.pid, &h.name, h.fd, pid)
    }

    /// Process `holder`'s fd, as the target `pid` sees it.
    pub fn new(holder: i32, name: &str, fd: i32, pid: i32) -> Self {
        Holder {
            pid: holder,
            name: name.into(),
            fd,
            this_process: holder == pid,
        }
    }
}

/// What the threads of the process at the other end were in.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OtherThreads {
    #[serde(flatten)]
    pub threads: PeerThreads,
    /// What it does with its end, from its threads (`other_end_activity`).
    pub activity: EndActivity,
    /// A thread blocked reading that very fd, as `activity` `reads_it` says: both ends wait
    /// for the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads_too: Option<(i32, Text)>,
    /// Something outside the process holds it from running: whatever its threads wait in,
    /// it answers nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<PeerHold>,
}

/// What the process at the other end of a connection does with its end, from one look at its
/// threads. Only a thread blocked reading that very fd waits for this connection; an event
/// loop watching it among other fds waits for whichever speaks first, as every idle server
/// does, and as one holding a request on purpose (a blocking command, a long poll) does too.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum EndActivity {
    /// A thread blocks reading that fd: read or recv on it, or a poll or epoll whose set is
    /// only it. Both ends wait for the other.
    ReadsIt { tid: i32, name: Text, call: String },
    /// An event loop watches the fd among `among` fds and waits there: it has read what came
    /// and waits for anything; an idle server and a blocking command look the same.
    IdleLoop {
        tid: i32,
        name: Text,
        call: String,
        syscall: String,
        among: u32,
    },
    /// No thread waits on the fd: what should answer is blocked or busy elsewhere (a lock, a
    /// sleep, a wait on something other than this client).
    Elsewhere,
    /// A thread waits on the fd otherwise (to write, or in a call that names no direction).
    Other { tid: i32, name: Text, call: String },
}

/// What the process at the other end does with its end of the connection, from its threads'
/// waits on `t.on_fd` (the fd it holds) — the question every "both ends wait" claim asks: a
/// protocol deadlock only when a thread blocks reading that very fd, not when an event loop
/// watches it among others.
pub(crate) fn other_end_activity(t: &PeerThreads) -> EndActivity {
    // A call that names no direction and waits on no events (ioctl, fsync) is not a read.
    let reads =
        |r: &&hangscope_model::PeerThread| match crate::waiters::want_of(&r.syscall, &r.events) {
            Want::Read => true,
            Want::Either => !r.events.is_empty(),
            Want::Write | Want::Connect => false,
        };
    // A set of unknown size (an older document) is taken as a set unless the call reads
    // one fd by its nature.
    let alone = |r: &hangscope_model::PeerThread| {
        r.among == 1 || (r.among == 0 && crate::waiters::one_fd_call(&r.syscall))
    };
    if let Some(r) = t.on_fd.iter().filter(reads).find(|r| alone(r)) {
        return EndActivity::ReadsIt {
            tid: r.tid,
            name: r.name.clone(),
            call: r.call.clone(),
        };
    }
    if let Some(r) = t.on_fd.iter().find(reads) {
        return EndActivity::IdleLoop {
            tid: r.tid,
            name: r.name.clone(),
            call: r.call.clone(),
            syscall: r.syscall.clone(),
            among: r.among,
        };
    }
    match t.on_fd.first() {
        Some(r) => EndActivity::Other {
            tid: r.tid,
            name: r.name.clone(),
            call: r.call.clone(),
        },
        None => EndActivity::Elsewhere,
    }
}

/// What holds the process at the other end from running.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum PeerHold {
    /// A stop signal (state T).
    Signal,
    /// A tracing stop (state t) by its tracer.
    Debugger { tracer: hangscope_model::Tracer },
    /// Its cgroup is frozen or freezing.
    Frozen { freezer: hangscope_model::Freezer },
}

impl PeerHold {
    fn of(t: &PeerThreads) -> Option<Self> {
        if let Some(f) = &t.freezer {
            return Some(PeerHold::Frozen { freezer: f.clone() });
        }
        match (t.state.as_str(), &t.tracer) {
            ("t", Some(tracer)) => Some(PeerHold::Debugger {
                tracer: tracer.clone(),
            }),
            ("T" | "t", _) => Some(PeerHold::Signal),
            _ => None,
        }
    }
}

impl OtherThreads {
    pub fn of(t: &PeerThreads) -> Self {
        let activity = other_end_activity(t);
        OtherThreads {
            threads: t.clone(),
            reads_too: match &activity {
                EndActivity::ReadsIt { tid, name, .. } => Some((*tid, name.clone())),
                _ => None,
            },
            activity,
            held: PeerHold::of(t),
        }
    }

    /// Its event loop watches the fd among others and waits: nothing says it owes an answer.
    pub fn idle_loop(&self) -> bool {
        self.held.is_none() && matches!(self.activity, EndActivity::IdleLoop { .. })
    }
}

/// The other end of a TCP connection to this host, as the exact sock_diag lookup found it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum OtherEnd {
    /// A connected socket that a process holds.
    Held {
        inode: u64,
        state: TcpState,
        /// What it received and its process has not read.
        recv_q: u32,
        send_q: u32,
        holder: Holder,
        /// Its threads, when a thread of the target waits on this connection (and the holder is
        /// another process).
        #[serde(skip_serializing_if = "Option::is_none")]
        threads: Option<OtherThreads>,
    },
    /// No connection at the other end: the lookup found the socket listening there.
    Listener {
        inode: u64,
        accept_queue: u32,
        backlog: u32,
        holder: Holder,
        #[serde(skip_serializing_if = "Option::is_none")]
        threads: Option<OtherThreads>,
    },
    /// In the accept queue of a listener that has not accepted it (inode 0).
    NotAccepted {
        state: TcpState,
        recv_q: u32,
        send_q: u32,
        /// The listener, when found.
        #[serde(skip_serializing_if = "Option::is_none")]
        listener: Option<Box<OtherEnd>>,
    },
    /// Found, but whose it is could not be told.
    Unheld {
        inode: u64,
        state: TcpState,
        recv_q: u32,
        send_q: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl OtherEnd {
    /// The other end of `conn`, when it is on this host and was looked up.
    pub fn of(conn: &Conn<'_>, pid: i32) -> Option<Self> {
        conn.inet
            .local_peer
            .as_deref()
            .map(|p| OtherEnd::of_peer(p, pid))
    }

    fn of_peer(p: &LocalPeer, pid: i32) -> Self {
        let threads = |h: &PeerHolder| {
            h.threads
                .as_ref()
                .filter(|_| h.pid != pid)
                .map(OtherThreads::of)
        };
        match &p.end {
            Some(PeerEnd::NotAccepted { listener }) => OtherEnd::NotAccepted {
                state: p.state,
                recv_q: p.recv_q,
                send_q: p.send_q,
                listener: listener
                    .as_deref()
                    .map(|l| Box::new(OtherEnd::of_peer(l, pid))),
            },
            Some(PeerEnd::Held { holder: h }) if p.state == TcpState::Listen => {
                OtherEnd::Listener {
                    inode: p.inode,
                    accept_queue: p.recv_q,
                    backlog: p.send_q,
                    holder: Holder::of(h, pid),
                    threads: threads(h),
                }
            }
            Some(PeerEnd::Held { holder: h }) => OtherEnd::Held {
                inode: p.inode,
                state: p.state,
                recv_q: p.recv_q,
                send_q: p.send_q,
                holder: Holder::of(h, pid),
                threads: threads(h),
            },
            Some(PeerEnd::Unheld { reason }) => OtherEnd::Unheld {
                inode: p.inode,
                state: p.state,
                recv_q: p.recv_q,
                send_q: p.send_q,
                reason: Some(reason.clone()),
            },
            None => OtherEnd::Unheld {
                inode: p.inode,
                state: p.state,
                recv_q: p.recv_q,
                send_q: p.send_q,
                reason: None,
            },
        }
    }

    /// What holds the process at the other end (or the listener's) from running, if anything.
    pub fn held(&self) -> Option<&PeerHold> {
        match self {
            OtherEnd::Held { threads, .. } | OtherEnd::Listener { threads, .. } => {
                threads.as_ref()?.held.as_ref()
            }
            OtherEnd::NotAccepted { listener, .. } => listener.as_deref()?.held(),
            OtherEnd::Unheld { .. } => None,
        }
    }

    /// The process to look at next: the holder, or for a connection not accepted, the
    /// listener's.
    pub fn holder(&self) -> Option<&Holder> {
        match self {
            OtherEnd::Held { holder, .. } | OtherEnd::Listener { holder, .. } => Some(holder),
            OtherEnd::NotAccepted { listener, .. } => listener.as_deref()?.holder(),
            OtherEnd::Unheld { .. } => None,
        }
    }

    /// Where to look next for the other end.
    pub fn next(&self) -> Option<Next> {
        let h = self.holder()?;
        Some(Next::process(h.pid))
    }
}

/// A connection the process at the other end opened itself and waits on: our request reached
/// it, its own request went out to `peer` no earlier, and nothing came back — a proxy waiting on
/// its upstream.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Upstream {
    /// Its fd for it, in the process at the other end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    pub local: Endpoint,
    pub peer: Endpoint,
    /// Payload bytes of its request the upstream's kernel acknowledged.
    pub request_bytes: u64,
    /// Bytes of its request not acknowledged yet.
    pub unacked: u32,
    /// Since its request went out (tcp_info last_data_sent, at the later look).
    pub silent_ms: u64,
    /// Since the upstream last sent anything on it.
    pub last_recv_ms: u64,
}

/// Our request may have reached the other end this long before its own went out and still be
/// what it forwarded: the two were read at different looks.
const FORWARD_SLACK_MS: u64 = 1000;

impl Upstream {
    /// Of the connections the holder at the other end of `ours` opened, the one it waits on for
    /// our request: sent no earlier than ours (give or take the looks' gap), nothing back
    /// since, for long enough; the closest in time when several are.
    pub fn of(ours: &Conn<'_>, holder: &PeerHolder) -> Option<Upstream> {
        let our_sent = u64::from(ours.info()?.last_data_sent_ms);
        holder
            .opened
            .iter()
            .filter_map(|s| {
                let SocketDetail::Tcp(i) = &s.detail else {
                    return None;
                };
                let t = i.tcp_info.as_deref()?;
                let sent = u64::from(t.last_data_sent_ms);
                let waits = t.bytes_acked.unwrap_or(0) > 1 || t.unacked > 0;
                // Nothing came back since it sent: the receive age is older, or it never
                // received (connect() sets both to the same moment).
                let unanswered =
                    t.last_data_sent_ms < t.last_data_recv_ms || t.bytes_received == Some(0);
                let fits = sent <= our_sent + FORWARD_SLACK_MS && sent >= crate::STUCK_MS;
                (i.state == TcpState::Established && i.recv_q == 0 && waits && unanswered && fits)
                    .then(|| {
                        (
                            sent.abs_diff(our_sent),
                            Upstream {
                                fd: s.fds.first().copied(),
                                local: i.local.clone(),
                                peer: i.peer.clone(),
                                request_bytes: t.bytes_acked.unwrap_or(0).saturating_sub(1),
                                unacked: t.unacked,
                                silent_ms: sent,
                                last_recv_ms: u64::from(t.last_data_recv_ms),
                            },
                        )
                    })
            })
            .min_by_key(|(gap, _)| *gap)
            .map(|(_, u)| u)
    }
}

/// A connection as findings name it: its addresses, socket and fd.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnFacts {
    pub proto: Proto,
    pub socket_inode: u64,
    /// The process's fd for it, when one was matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    pub local: Endpoint,
    pub peer: Endpoint,
    /// ss's state name, e.g. "ESTAB".
    pub state: TcpState,
    /// Its timer, as ss's timer column shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer: Option<SocketTimer>,
    /// Its other end, when that is on this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_end: Option<OtherEnd>,
    /// How it changed over the sampling window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowFacts>,
}

/// A connection's counters over the sampling window, and its queues at the last look.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WindowFacts {
    #[serde(flatten)]
    pub window: ConnectionWindow,
    pub recv_q_last: u32,
    pub send_q_last: u32,
}

impl ConnFacts {
    pub fn of(conn: &Conn<'_>, pid: i32) -> Self {
        ConnFacts {
            proto: conn.proto,
            socket_inode: conn.sock.inode,
            fd: conn.fd(),
            local: conn.inet.local.clone(),
            peer: conn.inet.peer.clone(),
            state: conn.state(),
            timer: conn.inet.timer.clone(),
            other_end: OtherEnd::of(conn, pid),
            window: conn.window().map(|w| WindowFacts {
                window: w.clone(),
                recv_q_last: conn.inet.recv_q,
                send_q_last: conn.inet.send_q,
            }),
        }
    }

    /// "10.0.130.72:10100".
    pub fn peer_addr(&self) -> String {
        self.peer.to_string()
    }

    /// "TCP 10.0.130.71:42428 -> 10.0.130.72:10100".
    pub fn label(&self) -> String {
        let proto = match self.proto {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        };
        format!("{proto} {} -> {}", self.local, self.peer)
    }

    /// The subject of a finding about this connection, through `waiter` when a thread waits.
    pub fn subject(&self, waiter: Option<&ThreadWait>) -> Subject {
        Subject {
            tid: waiter.map(|w| w.tid),
            thread_name: waiter.map(|w| w.name.clone()).filter(|n| !n.is_empty()),
            fd: waiter.map(|w| w.fd).or(self.fd),
            socket_inode: Some(self.socket_inode),
            connection: Some(self.label()),
        }
    }

    /// Where to look next: the process at the other end on this host, else the service on its
    /// host and port.
    pub fn next(&self) -> Next {
        self.other_end
            .as_ref()
            .and_then(OtherEnd::next)
            .unwrap_or_else(|| Next::host_port(self.peer.addr.clone(), self.peer.port))
    }
}

/// A log line quoted beside a finding.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LogQuote {
    /// The log file (or "journal", "kmsg").
    pub path: String,
    /// The line as the report shows it.
    pub line: String,
}

/// The same thread failed earlier with another peer: a client failing over between replicas.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EarlierFailure {
    /// The other peer, "10.0.130.73:10100".
    pub peer: String,
    /// On the same port as this one: the likeliest replica.
    pub same_port: bool,
    /// The error the log names, e.g. "ETimedOut".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The log line's clock, "05:25:37".
    pub clock: String,
}

/// Other connections to the same host that answered after a stuck one went quiet: host and
/// network are alive. Set by the same-host context rule on the findings it reads.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostAlive {
    pub host: String,
    /// Those that sent data first, then those only ACKed.
    pub conns: Vec<AliveConn>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AliveConn {
    pub socket_inode: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    pub peer: Endpoint,
    /// It sent data this long ago; `None` when it is idle and only its kernel ACKed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_ago_ms: Option<u64>,
    pub ack_ago_ms: u64,
    pub bytes_received: u64,
    /// Since its last data came in (tcp_info last_data_recv), whatever it was.
    pub last_recv_ms: u64,
    /// "TCP 10.0.130.71:42430 -> 10.0.130.72:2181".
    pub label: String,
}

/// A thread of the target blocked in some call, not on the finding's fd: where what should act
/// is instead.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BlockedThread {
    pub tid: i32,
    pub name: Text,
    /// The syscall, e.g. "futex".
    pub syscall: String,
    /// The call as the threads collector summed it up, e.g. "futex wait on 0x5599"; empty when
    /// it did not.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub call: String,
    /// Blocked in it at least this long, measured over the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_ms: Option<u64>,
}

impl BlockedThread {
    pub fn of(t: &hangscope_model::Thread) -> Self {
        let sc = t.syscall.as_ref();
        BlockedThread {
            tid: t.tid,
            name: t.name.clone(),
            syscall: sc.map(|s| s.name.clone()).unwrap_or_default(),
            call: sc.map(|s| s.summary.clone()).unwrap_or_default(),
            blocked_ms: t.activity.as_ref().and_then(|a| a.blocked_at_least_ms),
        }
    }
}

// Facts shared by the rules about waits inside this host: locks, mutexes, pipes, threads.

/// A thread as findings name it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThreadRef {
    pub tid: i32,
    /// Its `comm`; empty when not known.
    pub name: Text,
}

impl ThreadRef {
    pub fn of(t: &hangscope_model::Thread) -> Self {
        ThreadRef {
            tid: t.tid,
            name: t.name.clone(),
        }
    }

    /// The subject of a finding about this thread.
    pub fn subject(&self) -> Subject {
        Subject {
            tid: Some(self.tid),
            thread_name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            ..Subject::default()
        }
    }
}
