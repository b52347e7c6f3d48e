//! The words of findings, made from their facts (`crate::facts`): one file per rule, and here
//! the phrases several rules share — a waiting thread, the other end of a connection, the
//! window, log quotes. Nothing here decides anything; it only says what the facts say.

use hangscope_model::{CallCount, Evidence, Finding, PeerThreads, TimerKind};

use crate::facts::{
    BlockedThread, ConnFacts, EarlierFailure, EndActivity, Facts, HostAlive, LogQuote, OtherEnd,
    OtherThreads, PeerHold, RuleFacts, ThreadWait,
};
use crate::wording::{self, bytes, duration, plural};

pub(crate) mod peer_silent;
pub(crate) mod same_host;
// Chains: a hop with no finding, a chain across hosts.
pub(crate) mod across;
pub(crate) mod chain;
// Waits inside this host.
pub(crate) mod busy;
pub(crate) mod child_wait;
pub(crate) mod exited;
pub(crate) mod lock_retry;
pub(crate) mod lock_wait;
pub(crate) mod managed_runtime;
pub(crate) mod mariadb_lock_wait;
pub(crate) mod mutex_deadlock;
pub(crate) mod mutex_holder_blocked;
pub(crate) mod not_visible;
pub(crate) mod pipe_wait;
pub(crate) mod redis_blocked;
pub(crate) mod shared_mutex_wait;
pub(crate) mod stack;
pub(crate) mod uninterruptible;
pub(crate) mod waiting_loop;

pub(crate) mod connection_dead;
pub(crate) mod last_word;
pub(crate) mod local_not_reading;
pub(crate) mod name_resolution;
pub(crate) mod peer_not_reading;
pub(crate) mod peer_unreachable;
pub(crate) mod pg_idle_in_transaction;
pub(crate) mod pg_lock_wait;
pub(crate) mod stopped;
pub(crate) mod unanswered;
pub(crate) mod unix_peer_wait;

/// What a finding says, made from its facts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Words {
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub ruled_out: Vec<String>,
    pub next_step: String,
}

/// A rule's facts that have words: the rule's file in `words/`.
pub(crate) trait Worded: RuleFacts {
    fn words(&self) -> Words;
}

/// Each rule's facts, worded by its words file.
macro_rules! worded {
    ($($facts:ty => $words:path),* $(,)?) => {
        $(impl Worded for $facts {
            fn words(&self) -> Words {
                $words(self)
            }
        })*
    };
}

worded! {
    crate::facts::busy::Busy => busy::words,
    crate::facts::child_wait::ChildWait => child_wait::words,
    crate::facts::connection_dead::ConnectionDead => connection_dead::words,
    crate::facts::exited::Exited => exited::words,
    crate::facts::local_not_reading::LocalNotReading => local_not_reading::words,
    crate::facts::lock_retry::LockRetry => lock_retry::words,
    crate::facts::lock_wait::LockWait => lock_wait::words,
    crate::facts::managed_runtime::ManagedRuntime => managed_runtime::words,
    crate::facts::mariadb_lock_wait::MariaLockWait => mariadb_lock_wait::words,
    crate::facts::mutex_deadlock::MutexDeadlock => mutex_deadlock::words,
    crate::facts::mutex_holder_blocked::MutexHolderBlocked => mutex_holder_blocked::words,
    crate::facts::name_resolution::NameResolution => name_resolution::words,
    crate::facts::not_visible::NotVisible => not_visible::words,
    crate::facts::peer_not_reading::PeerNotReading => peer_not_reading::words,
    crate::facts::peer_silent::PeerSilent => peer_silent::words,
    crate::facts::peer_unreachable::PeerUnreachable => peer_unreachable::words,
    crate::facts::pg_idle_in_transaction::PgIdleInTransaction => pg_idle_in_transaction::words,
    crate::facts::pg_lock_wait::PgLockWait => pg_lock_wait::words,
    crate::facts::pipe_wait::PipeWait => pipe_wait::words,
    crate::facts::redis_blocked::RedisBlocked => redis_blocked::words,
    crate::facts::same_host::SameHostAlive => same_host::words,
    crate::facts::shared_mutex_wait::SharedMutexWait => shared_mutex_wait::words,
    crate::facts::stopped::Stopped => stopped::words,
    crate::facts::unanswered::Unanswered => unanswered::words,
    crate::facts::uninterruptible::KernelWait => uninterruptible::words,
    crate::facts::unix_peer_wait::UnixPeerWait => unix_peer_wait::words,
    crate::facts::waiting_loop::WaitingLoop => waiting_loop::words,
}

/// The finding of a rule's facts: the words made from them, the facts written beside.
pub(crate) fn finding<F: Worded>(facts: &F) -> Finding {
    let words = facts.words();
    Finding {
        rule: F::RULE.to_string(),
        severity: facts.severity(),
        cause: facts.cause(),
        summary: words.summary,
        subject: facts.subject(),
        evidence: words.evidence,
        ruled_out: words.ruled_out,
        next_step: words.next_step,
        stuck_ms: Some(facts.stuck_ms()),
        // Plain data with string keys: serializing cannot fail.
        facts: serde_json::to_value(facts).unwrap_or_default(),
        next: facts.next(),
    }
}

/// The finding of any rule's facts: the one place a `Facts` value meets its words, so no rule
/// needs its words to be found.
pub(crate) fn finding_of(facts: &Facts) -> Finding {
    match facts {
        Facts::PeerSilent(f) => finding(f.as_ref()),
        Facts::SameHostAlive(f) => finding(f),
        // The network rules.
        Facts::PeerUnreachable(f) => finding(f.as_ref()),
        Facts::PeerNotReading(f) => finding(f.as_ref()),
        Facts::LocalNotReading(f) => finding(f.as_ref()),
        Facts::ConnectionDead(f) => finding(f.as_ref()),
        Facts::Unanswered(f) => finding(f.as_ref()),
        Facts::UnixPeerWait(f) => finding(f.as_ref()),
        Facts::NameResolution(f) => finding(f.as_ref()),
        // Waits inside this host.
        Facts::LockWait(f) => finding(f),
        Facts::LockRetry(f) => finding(f),
        Facts::MutexDeadlock(f) => finding(f),
        Facts::MutexHolderBlocked(f) => finding(f),
        Facts::SharedMutexWait(f) => finding(f),
        Facts::PipeWait(f) => finding(f),
        Facts::Busy(f) => finding(f),
        Facts::Exited(f) => finding(f),
        Facts::ChildWait(f) => finding(f),
        Facts::KernelWait(f) => finding(f),
        Facts::WaitingLoop(f) => finding(f),
        Facts::NotVisible(f) => finding(f),
        Facts::Stopped(f) => finding(f),
        Facts::ManagedRuntime(f) => finding(f.as_ref()),
        Facts::PgLockWait(f) => finding(f.as_ref()),
        Facts::PgIdleInTransaction(f) => finding(f.as_ref()),
        Facts::MariaLockWait(f) => finding(f.as_ref()),
        Facts::RedisBlocked(f) => finding(f),
    }
}

/// The words of any rule's facts, without the finding around them: what a sentence about a
/// chain says of one of its hops.
pub(crate) fn words_of(facts: &Facts) -> Words {
    match facts {
        Facts::PeerSilent(f) => f.words(),
        Facts::SameHostAlive(f) => f.words(),
        Facts::PeerUnreachable(f) => f.words(),
        Facts::PeerNotReading(f) => f.words(),
        Facts::LocalNotReading(f) => f.words(),
        Facts::ConnectionDead(f) => f.words(),
        Facts::Unanswered(f) => f.words(),
        Facts::UnixPeerWait(f) => f.words(),
        Facts::NameResolution(f) => f.words(),
        Facts::LockWait(f) => f.words(),
        Facts::LockRetry(f) => f.words(),
        Facts::MutexDeadlock(f) => f.words(),
        Facts::MutexHolderBlocked(f) => f.words(),
        Facts::SharedMutexWait(f) => f.words(),
        Facts::PipeWait(f) => f.words(),
        Facts::Busy(f) => f.words(),
        Facts::Exited(f) => f.words(),
        Facts::ChildWait(f) => f.words(),
        Facts::KernelWait(f) => f.words(),
        Facts::WaitingLoop(f) => f.words(),
        Facts::NotVisible(f) => f.words(),
        Facts::Stopped(f) => f.words(),
        Facts::ManagedRuntime(f) => f.words(),
        Facts::PgLockWait(f) => f.words(),
        Facts::PgIdleInTransaction(f) => f.words(),
        Facts::MariaLockWait(f) => f.words(),
        Facts::RedisBlocked(f) => f.words(),
    }
}

/// The sentence rules add when thread states were not read.
pub(crate) const NO_THREADS: &str =
    "Thread states were not read, so whether a thread waits on it is not known.";

/// "Thread 31576 (dump_meta)".
pub(crate) fn thread(w: &ThreadWait) -> String {
    thread_of(w.tid, &w.name)
}

/// "Thread 31576 (dump_meta)", of any thread.
pub(crate) fn thread_of(tid: i32, name: &str) -> String {
    thread_named("Thread", tid, name)
}

/// "thread 31576 (dump_meta)", inside a sentence.
pub(crate) fn thread_in_sentence(tid: i32, name: &str) -> String {
    thread_named("thread", tid, name)
}

fn thread_named(word: &str, tid: i32, name: &str) -> String {
    if name.is_empty() {
        format!("{word} {tid}")
    } else {
        format!("{word} {tid} ({name})")
    }
}

/// "fd 29", or "a socket" when no fd of the process was matched to it.
pub(crate) fn fd_text(c: &ConnFacts) -> String {
    match c.fd {
        Some(fd) => format!("fd {fd}"),
        None => "a socket".into(),
    }
}

/// The end of a summary that names no waiting thread: " " and [`NO_THREADS`] when thread states
/// were not read, nothing when they were.
pub(crate) fn no_threads_note(threads_known: bool) -> String {
    if threads_known {
        String::new()
    } else {
        format!(" {NO_THREADS}")
    }
}

/// "poll()" or "epoll_wait() (through epoll fd 8)".
pub(crate) fn how(w: &ThreadWait) -> String {
    let call = wording::call(&w.syscall);
    match w.via_epoll {
        Some(ep) => format!("{call} (through epoll fd {ep})"),
        None => call,
    }
}

/// "futex wait on 0x5599" or "poll()": a blocked thread's call as the threads table shows it.
pub(crate) fn blocked_call(t: &BlockedThread) -> String {
    if t.call.is_empty() {
        wording::call(&t.syscall)
    } else {
        t.call.clone()
    }
}

/// The "waiting in" evidence: the call as strace would show it, and where it was read.
pub(crate) fn waiting_in(w: &ThreadWait) -> Evidence {
    Evidence::new("waiting in", w.call.clone(), w.source.clone())
}

/// A log line quoted as evidence.
pub(crate) fn log_quote(q: &LogQuote) -> Evidence {
    Evidence::new("log", q.line.clone(), q.path.clone())
}

/// "Before that, the same thread failed the same way with 10.0.130.73:10100 (ETimedOut, log
/// 05:25:37)."
pub(crate) fn earlier_failure(f: &EarlierFailure) -> String {
    let when = match &f.error {
        Some(err) => format!("{err}, log {}", f.clock),
        None => format!("log {}", f.clock),
    };
    if f.same_port {
        format!(
            "Before that, the same thread failed the same way with {} ({when}).",
            f.peer
        )
    } else {
        format!(
            "Before that, the same thread logged a failure with {} ({when}).",
            f.peer
        )
    }
}

/// "fd 7 of process 4242 (metad)", or "fd 7 of this same process".
pub(crate) fn holder(h: &crate::facts::Holder) -> String {
    if h.this_process {
        format!("fd {} of this same process", h.fd)
    } else {
        format!("fd {} of process {} ({})", h.fd, h.pid, h.name)
    }
}

/// What the other end did with what was sent: the sentence a rule appends to its summary.
pub(crate) fn other_end_sentence(end: &OtherEnd, port: u16) -> Option<String> {
    match end {
        OtherEnd::Listener { .. } => None, // the opening rule speaks of listeners
        OtherEnd::NotAccepted { listener, .. } => {
            let end = listener.as_deref();
            let listener = match end.and_then(OtherEnd::holder) {
                Some(h) => format!("the socket listening there, {}", holder(h)),
                None => "the listening socket".into(),
            };
            let held = match end {
                Some(l) => match (l.holder(), l.held()) {
                    (Some(h), Some(held)) => held_sentence(h, held),
                    _ => String::new(),
                },
                None => String::new(),
            };
            Some(format!(
                "The server on :{port} has not even accepted the connection: it waits in the \
                 accept queue of {listener}.{held}"
            ))
        }
        OtherEnd::Held {
            recv_q,
            holder: h,
            threads,
            ..
        } => {
            let who = holder(h);
            if *recv_q > 0 {
                return Some(format!(
                    "The other end is {who} on this host, which has not read it: {} wait in \
                     its receive queue.",
                    bytes(u64::from(*recv_q))
                ));
            }
            let threads = threads
                .as_ref()
                .map(|t| match &t.held {
                    Some(held) => held_sentence(h, held),
                    None => other_threads_sentence(t, h.fd),
                })
                .unwrap_or_default();
            Some(format!(
                "The other end is {who} on this host, which has read everything sent.{threads}"
            ))
        }
        OtherEnd::Unheld { .. } => None,
    }
}

/// What holds the process at the other end, as a sentence for a summary.
pub(crate) fn held_sentence(h: &crate::facts::Holder, held: &PeerHold) -> String {
    let who = format!("Process {} ({})", h.pid, h.name);
    match held {
        PeerHold::Signal => format!(
            " {who} is stopped by a signal (state T): it answers nothing until it gets SIGCONT."
        ),
        PeerHold::Debugger { tracer } => format!(
            " {who} is held in a tracing stop by process {}{}: it answers nothing until its debugger resumes or detaches it.",
            tracer.pid,
            tracer
                .name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
        PeerHold::Frozen { freezer } => format!(
            " {who} is frozen by its cgroup {} (cgroup v{} freezer): it answers nothing until the cgroup is thawed.",
            freezer.cgroup, freezer.version
        ),
    }
}

/// The next step when the process at the other end is held: let it run.
fn held_step(h: &crate::facts::Holder, held: &PeerHold) -> String {
    match held {
        PeerHold::Signal => format!(
            "Resume process {} ({}), which is stopped: kill -CONT {}; then find what stopped it (hangscope {}).",
            h.pid, h.name, h.pid, h.pid
        ),
        PeerHold::Debugger { tracer } => format!(
            "Look at process {}, the debugger holding process {} ({}): continue or detach there.",
            tracer.pid, h.pid, h.name
        ),
        PeerHold::Frozen { freezer } => match freezer.set_in.first() {
            Some(file) => format!(
                "Thaw the cgroup of process {} ({}) when it should run: {}.",
                h.pid,
                h.name,
                crate::facts::stopped::thaw_command(freezer, file)
            ),
            None => format!(
                "Find which cgroup above {} freezes process {} and thaw it.",
                freezer.cgroup, h.pid
            ),
        },
    }
}

/// What the other end's threads say, as a sentence for a summary.
pub(crate) fn other_threads_sentence(t: &OtherThreads, fd: i32) -> String {
    match &t.activity {
        EndActivity::ReadsIt { tid, name, .. } => format!(
            " Its thread {tid} ({name}) waits to read fd {fd} too: both ends wait for the other, \
             so the request is likely incomplete (a missing terminator or length, or not \
             flushed) or the two disagree on the protocol."
        ),
        EndActivity::IdleLoop {
            tid,
            name,
            syscall,
            among,
            ..
        } => {
            let set = if *among > 1 {
                format!("over {among} fds, fd {fd} among them")
            } else {
                format!("watching fd {fd} among others")
            };
            format!(
                " Its thread {tid} ({name}) is idle in its event loop, in {} {set}: it read the \
                 request and waits for anything to happen; a blocking command or a long poll \
                 looks the same.",
                wording::call(syscall)
            )
        }
        EndActivity::Other { tid, name, call } => {
            format!(" Its thread {tid} ({name}) is in {call} on fd {fd}.")
        }
        EndActivity::Elsewhere => {
            let where_ = if t.threads.elsewhere.is_empty() {
                String::new()
            } else {
                format!(" (they are in {})", calls_of(&t.threads.elsewhere))
            };
            // The calls by name only, and the first few: the full calls are in the evidence,
            // and the verdict must stay a sentence one reads to its end.
            const NAMED: usize = 3;
            let mut busy: Vec<String> = t
                .threads
                .busy
                .iter()
                .take(NAMED)
                .map(|b| {
                    let call = if b.syscall.is_empty() {
                        b.call.clone()
                    } else {
                        wording::call(&b.syscall)
                    };
                    format!("thread {} ({}) is in {call}", b.tid, b.name)
                })
                .collect();
            if t.threads.busy.len() > NAMED {
                busy.push(format!("{} more", t.threads.busy.len() - NAMED));
            }
            if busy.is_empty() {
                format!(
                    " None of its {} threads waits on fd {fd}{where_}: what should answer is \
                     busy or blocked elsewhere.",
                    t.threads.count
                )
            } else {
                format!(
                    " None of its {} threads waits on fd {fd}, directly or in an event loop, \
                     so it read the request and did not go back to wait for more: {}.",
                    t.threads.count,
                    busy.join("; ")
                )
            }
        }
    }
}

/// The other end on this host as evidence: its holder and its queues.
pub(crate) fn other_end_evidence(c: &ConnFacts) -> Option<Evidence> {
    let end = c.other_end.as_ref()?;
    let lookup = format!("sock_diag lookup of {} -> {}", c.peer, c.local);
    let queues = |r: u32, s: u32| format!("Recv-Q {r} Send-Q {s}");
    let held_src = |h: &crate::facts::Holder, inode: u64| {
        format!("; /proc/{}/fd/{} -> socket:[{inode}]", h.pid, h.fd)
    };
    let (value, source) = match end {
        OtherEnd::NotAccepted {
            state,
            recv_q,
            send_q,
            listener,
        } => {
            let value = match listener.as_deref() {
                Some(OtherEnd::Listener {
                    accept_queue,
                    backlog,
                    holder: h,
                    ..
                }) => format!(
                    "not accepted yet by the socket listening there, {}: accept queue \
                     {accept_queue}, backlog {backlog}",
                    holder(h)
                ),
                _ => format!(
                    "not accepted yet: the connection waits in the accept queue of the socket \
                     listening on port {}",
                    c.peer.port
                ),
            };
            (
                value,
                format!("{lookup}: {state} inode 0 {}", queues(*recv_q, *send_q)),
            )
        }
        OtherEnd::Listener {
            inode,
            accept_queue,
            backlog,
            holder: h,
            ..
        } => (
            format!(
                "the socket listening there, {}: accept queue {accept_queue}, backlog {backlog}",
                holder(h)
            ),
            format!(
                "{lookup}: LISTEN {}{}",
                queues(*accept_queue, *backlog),
                held_src(h, *inode)
            ),
        ),
        OtherEnd::Held {
            inode,
            state,
            recv_q,
            send_q,
            holder: h,
            ..
        } => (
            format!(
                "{}, {state}, {} unread",
                holder(h),
                bytes(u64::from(*recv_q))
            ),
            format!(
                "{lookup}: {state} {}{}",
                queues(*recv_q, *send_q),
                held_src(h, *inode)
            ),
        ),
        OtherEnd::Unheld {
            inode,
            state,
            recv_q,
            send_q,
            reason,
        } => (
            reason.clone().unwrap_or_else(|| {
                if *inode == 0 {
                    state.to_string()
                } else {
                    format!("socket:[{inode}], holder unknown")
                }
            }),
            if *inode == 0 {
                format!("{lookup}: {state} inode 0 {}", queues(*recv_q, *send_q))
            } else {
                format!("{lookup}: {state} {}", queues(*recv_q, *send_q))
            },
        ),
    };
    Some(Evidence::new("other end", value, source))
}

/// What the threads of the process at the other end were in, as evidence.
pub(crate) fn other_threads_evidence(c: &ConnFacts) -> Option<Evidence> {
    let end = c.other_end.as_ref()?;
    let (h, t) = match end {
        OtherEnd::Held {
            holder, threads, ..
        }
        | OtherEnd::Listener {
            holder, threads, ..
        } => (holder, threads.as_ref()?),
        OtherEnd::NotAccepted { listener, .. } => match listener.as_deref()? {
            OtherEnd::Listener {
                holder, threads, ..
            } => (holder, threads.as_ref()?),
            _ => return None,
        },
        OtherEnd::Unheld { .. } => return None,
    };
    Some(peer_threads_evidence(h.pid, h.fd, &t.threads))
}

/// Calls and their thread counts, most common first: "futex ×10, epoll_wait".
pub(crate) fn calls_of(calls: &[CallCount]) -> String {
    calls
        .iter()
        .map(|c| {
            if c.count == 1 {
                c.syscall.clone()
            } else {
                format!("{} ×{}", c.syscall, c.count)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The other end's threads as evidence: those on its fd (`fd` of process `pid`) with their
/// calls, or where the others are.
pub(crate) fn peer_threads_evidence(pid: i32, fd: i32, t: &PeerThreads) -> Evidence {
    let value = if t.on_fd.is_empty() {
        format!(
            "none of its {} threads waits on fd {fd}; they are in {}",
            t.count,
            calls_of(&t.elsewhere)
        )
    } else {
        t.on_fd
            .iter()
            .map(|r| format!("thread {} ({}) in {}", r.tid, r.name, r.call))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Evidence::new("its threads", value, format!("/proc/{pid}/task/*/syscall"))
}

/// Where to look next for the process at the other end of `c`.
pub(crate) fn other_end_step(c: &ConnFacts) -> String {
    let host = &c.peer.addr;
    let port = c.peer.port;
    if let Some(end) = &c.other_end
        && let (Some(h), Some(held)) = (end.holder(), end.held())
    {
        return held_step(h, held);
    }
    if let Some(OtherEnd::NotAccepted { listener, .. }) = &c.other_end
        && let Some(h) = listener.as_deref().and_then(OtherEnd::holder)
    {
        return accept_step(h);
    }
    if let Some(h) = c.other_end.as_ref().and_then(OtherEnd::holder) {
        return if h.this_process {
            format!(
                "The other end is fd {} of this same process: find the code that should serve \
                 it and why it does not run (see what its threads wait for).",
                h.fd
            )
        } else {
            format!(
                "Look at process {} ({}), which holds the other end as fd {}: hangscope {}.",
                h.pid, h.name, h.fd, h.pid
            )
        };
    }
    if wording::is_loopback(host) {
        format!(
            "Look at the process on this host that owns port {port} \
             (ss -tnp 'sport = :{port}'), e.g. run hangscope on it."
        )
    } else {
        format!(
            "Look at the process that owns :{port} on {host} \
             (e.g. run hangscope there on the process listening on {port})."
        )
    }
}

/// The next step when a listener does not accept: where its accept loop should run.
pub(crate) fn accept_step(h: &crate::facts::Holder) -> String {
    if h.this_process {
        format!(
            "The listener is fd {} of this same process: find the thread that should call \
             accept() on it, and what it waits for instead.",
            h.fd
        )
    } else {
        format!(
            "Look at process {} ({}): hangscope {}; find the thread that should call accept() \
             on fd {}, and what it waits for instead.",
            h.pid, h.name, h.pid, h.fd
        )
    }
}

/// ss's timer column, e.g. "timer:(keepalive,325ms,0)".
pub(crate) fn timer_text(c: &ConnFacts) -> Option<String> {
    let t = c.timer.as_ref()?;
    let kind = match t.kind {
        TimerKind::Off => return None,
        TimerKind::On => "on",
        TimerKind::Keepalive => "keepalive",
        TimerKind::TimeWait => "timewait",
        TimerKind::Persist => "persist",
        TimerKind::Unknown => "unknown",
    };
    Some(format!("timer:({kind},{}ms,{})", t.expires_ms, t.retrans))
}

/// `src` (an "ss: ..." evidence source) with the timer column appended, when there is one.
pub(crate) fn with_timer(c: &ConnFacts, mut src: String) -> String {
    if let Some(t) = timer_text(c) {
        src.push(' ');
        src.push_str(&t);
    }
    src
}

/// "watched: 0 bytes in, 0 bytes out, 0 retransmits over the 2.0 s window", when the window
/// measured the bytes (TCP with tcp_info's byte counters, Linux 4.1+).
pub(crate) fn window_evidence(c: &ConnFacts) -> Option<Evidence> {
    let wf = c.window.as_ref()?;
    let w = &wf.window;
    let inn = w.bytes_received?;
    let out = w.bytes_acked.or(w.bytes_sent)?;
    let mut value = format!("{} in, {} out", bytes(inn), bytes(out));
    if let Some(r) = w.retrans {
        value.push_str(&format!(
            ", {}",
            plural(u64::from(r), "retransmit", "retransmits")
        ));
    }
    if w.recv_q_first != wf.recv_q_last || w.send_q_first != wf.send_q_last {
        value.push_str(&format!(
            ", Recv-Q {} → {}, Send-Q {} → {}",
            w.recv_q_first, wf.recv_q_last, w.send_q_first, wf.send_q_last
        ));
    }
    value.push_str(&format!(" over the {} window", duration(w.duration_ms)));
    let mut src = format!(
        "sock_diag, {} looks: Δbytes_received:{inn} Δbytes_acked:{}",
        w.looks,
        w.bytes_acked.unwrap_or(0)
    );
    if let (Some(i), Some(o)) = (w.segs_in, w.segs_out) {
        src.push_str(&format!(" Δsegs_in:{i} Δsegs_out:{o}"));
    }
    if let Some(r) = w.retrans {
        src.push_str(&format!(" Δretrans:{r}"));
    }
    if let Some(m) = w.last_data_recv_moved {
        src.push_str(if m {
            " lastrcv:moved"
        } else {
            " lastrcv:still"
        });
    }
    Some(Evidence::new("watched", value, src))
}

/// What other connections to the same host did, each as ":PORT (service) what".
pub(crate) fn alive_parts(h: &HostAlive) -> Vec<(String, String)> {
    h.conns
        .iter()
        .map(|c| {
            let service = c
                .peer
                .service
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let what = match c.data_ago_ms {
                Some(ms) => format!("sent data {} ago", duration(ms)),
                None => format!("idle, its kernel ACKed {} ago", duration(c.ack_ago_ms)),
            };
            (format!(":{}{service}", c.peer.port), what)
        })
        .collect()
}

/// "host down or network loss: other connections to 10.0.130.72 answer (:2181 sent data 1.2 s
/// ago)".
pub(crate) fn host_alive_ruled_out(h: &HostAlive) -> String {
    let facts: Vec<String> = alive_parts(h)
        .into_iter()
        .map(|(port, what)| format!("{port} {what}"))
        .collect();
    format!(
        "host down or network loss: other connections to {} answer ({})",
        h.host,
        facts.join("; ")
    )
}

/// "Another connection to 10.0.130.72 (:2181) sent data 1.2 s ago, so host and network are
/// alive."
pub(crate) fn host_alive_sentence(h: &HostAlive) -> Option<String> {
    let (port, what) = alive_parts(h).into_iter().next()?;
    Some(format!(
        "Another connection to {} ({port}) {what}, so host and network are alive.",
        h.host
    ))
}

/// Ends `summary` with the sentence that other connections to the same host answer, when they do.
pub(crate) fn push_host_alive(summary: &mut String, alive: Option<&HostAlive>) {
    if let Some(sentence) = alive.and_then(host_alive_sentence) {
        summary.push(' ');
        summary.push_str(&sentence);
    }
}

// Phrases of the rules about waits inside this host: locks, mutexes, pipes, threads.

/// "Thread 31576 (dump_meta)", from a thread's tid and name.
pub(crate) fn thread_ref(t: &crate::facts::ThreadRef) -> String {
    if t.name.is_empty() {
        format!("Thread {}", t.tid)
    } else {
        format!("Thread {} ({})", t.tid, t.name)
    }
}

/// "501 (transfer-a)": the thread without the word, to list several in one sentence.
pub(crate) fn thread_short(t: &crate::facts::ThreadRef) -> String {
    if t.name.is_empty() {
        t.tid.to_string()
    } else {
        format!("{} ({})", t.tid, t.name)
    }
}
