//! Who waits on which fd: the threads' decoded syscalls (/proc/PID/task/TID/syscall, see
//! proc_pid_syscall(5)) turned into an index from fd to waiting threads.
//!
//! A thread waits on an fd directly (poll, select, read, write, connect) or through an epoll
//! instance (epoll_wait on an epoll fd whose watch list, from /proc/PID/fdinfo, names the fd).
//! The threads collector decodes both (`collect/src/threads/syscall.rs`: the fd argument of
//! an fd syscall, a poll array, an fd set, an epoll fd's watch list as `WaitObject::Fd` with
//! `via_epoll`); this index only reads what it decoded, so the two cannot disagree.
//!
//! A wait over a set of fds is a wait on the set: an event loop in epoll_wait over a listener,
//! a control channel and its clients waits for whichever speaks first, not for each of them.
//! `Waiter::among` says how many fds the call waits on, so a rule blames one member's other end
//! only on evidence specific to that member.

use std::collections::HashMap;

use hangscope_model::{FdKind, Snapshot, Thread};

/// What the waiting thread expects from the fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Data to read (POLLIN, read, recv, accept).
    Read,
    /// Room to write (POLLOUT, write, send).
    Write,
    /// The connection to open (connect).
    Connect,
    /// Either, or the syscall does not say.
    Either,
}

#[derive(Debug, Clone)]
pub(crate) struct Waiter<'a> {
    pub thread: &'a Thread,
    pub fd: i32,
    /// The epoll fd the thread waits in, when it reaches `fd` through one.
    pub via_epoll: Option<i32>,
    pub want: Want,
    /// How many fds the call waits on, this one included: 1 for a read, a recv or a poll on
    /// this fd alone; more for an event loop watching it among others. An epoll fd counts as
    /// its watch list; 0 when not known (an epoll fd whose watch list was not read).
    pub among: usize,
}

impl Waiter<'_> {
    /// The call waits on this fd alone: what it waits for is this fd's other end.
    pub fn alone(&self) -> bool {
        self.among == 1
    }

    pub fn wants_read(&self) -> bool {
        matches!(self.want, Want::Read | Want::Either)
    }

    pub fn wants_write(&self) -> bool {
        matches!(self.want, Want::Write | Want::Either | Want::Connect)
    }

    /// The syscall name, e.g. "poll".
    pub fn syscall(&self) -> &str {
        self.thread
            .syscall
            .as_ref()
            .map(|s| s.name.as_str())
            .unwrap_or_default()
    }

    /// How long the thread has been in this wait at least, from the sampling window.
    pub fn blocked_ms(&self) -> Option<u64> {
        self.thread
            .activity
            .as_ref()
            .and_then(|a| a.blocked_at_least_ms)
    }

    /// The thread made progress during the window (an event loop still serving others).
    pub fn progressed(&self) -> bool {
        self.thread.activity.as_ref().is_some_and(|a| a.progressed)
    }

    /// "poll()" or "epoll_wait() on epoll fd 8".
    pub fn how(&self) -> String {
        let call = crate::wording::call(self.syscall());
        match self.via_epoll {
            Some(ep) => format!("{call} (through epoll fd {ep})"),
            None => call,
        }
    }

    /// The strace-like line the threads collector wrote, or a plain one.
    pub fn strace(&self) -> String {
        match &self.thread.syscall {
            Some(s) if !s.summary.is_empty() => s.summary.clone(),
            _ => format!("{} on fd {}", self.how(), self.fd),
        }
    }

    /// Where the syscall was read, for the evidence's source.
    pub fn source(&self, pid: i32) -> String {
        format!("/proc/{pid}/task/{}/syscall", self.thread.tid)
    }
}

/// The glibc mutex a thread waits for in futex(), and its owner's TID, when the threads collector
/// could read the owner (the mutex word + 8). Not when the thread's stack says it waits in
/// something else (a condition variable, a join): the word + 8 is then not an owner.
pub(crate) fn mutex_wait(t: &Thread) -> Option<(u64, i32)> {
    if not_a_mutex(t) || owner_not_in_word(t) {
        return None;
    }
    t.syscall.as_ref()?.waits_on.iter().find_map(|w| match w {
        hangscope_model::WaitObject::Futex {
            addr,
            owner_tid: Some(owner),
            ..
        } => Some((*addr, *owner)),
        _ => None,
    })
}

/// Whether the thread's stack says its futex wait is for something other than a mutex (a
/// condition variable, a join): the word + 8 the collector read as an owner is then none.
pub(crate) fn not_a_mutex(t: &Thread) -> bool {
    t.user_stack
        .as_ref()
        .and_then(|s| s.sync_wait())
        .is_some_and(|(k, _)| k != hangscope_model::SyncWait::Mutex)
}

/// Whether the thread's stack says its mutex is one whose word records no owner: Rust std's
/// and parking_lot's keep only a locked/contended state, so the word + 8 is the guarded data,
/// not a TID. (C++'s std::mutex is glibc's: its innermost lock frame is glibc's.)
fn owner_not_in_word(t: &Thread) -> bool {
    t.user_stack
        .as_ref()
        .and_then(|s| s.sync_wait())
        .is_some_and(|(k, f)| {
            k == hangscope_model::SyncWait::Mutex
                && f.function
                    .as_ref()
                    .is_some_and(|n| n.as_str().contains("::"))
        })
}

/// The futex word of a wait the stack names a mutex's when the word gives no owner (a Rust
/// mutex's, or a glibc one whose owner could not be read).
pub(crate) fn ownerless_mutex_wait(t: &Thread) -> Option<u64> {
    let (kind, _) = t.user_stack.as_ref()?.sync_wait()?;
    if kind != hangscope_model::SyncWait::Mutex || mutex_wait(t).is_some() {
        return None;
    }
    t.syscall.as_ref()?.waits_on.iter().find_map(|w| match w {
        hangscope_model::WaitObject::Futex { addr, .. } => Some(*addr),
        _ => None,
    })
}

pub(crate) struct Waiters<'a> {
    by_fd: HashMap<i32, Vec<Waiter<'a>>>,
    /// Whether thread states were read at all. Without them "nobody waits" cannot be told from
    /// "not known", and rules word their findings more cautiously.
    pub known: bool,
}

const READS: &[&str] = &[
    "read", "readv", "pread64", "preadv", "preadv2", "recvfrom", "recvmsg", "recvmmsg", "accept",
    "accept4",
];
const WRITES: &[&str] = &[
    "write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg", "sendmmsg",
    "sendfile", "splice",
];

impl<'a> Waiters<'a> {
    pub fn new(snap: &'a Snapshot) -> Self {
        let mut by_fd: HashMap<i32, Vec<Waiter<'a>>> = HashMap::new();
        let known = snap.threads.iter().any(|t| t.syscall.is_some());
        for t in &snap.threads {
            let Some(sc) = &t.syscall else { continue };
            if sc.running {
                continue;
            }
            let fds = sc.fd_waits();
            // An epoll fd alone is one whose watch list was not read: a set of unknown size.
            let unread_epoll = |fd: i32| snap.fd(fd).is_some_and(|f| f.kind == FdKind::Eventpoll);
            let among = match fds.as_slice() {
                [(fd, _, None)] if unread_epoll(*fd) => 0,
                _ => fds.len(),
            };
            for (fd, events, via_epoll) in fds {
                by_fd.entry(fd).or_default().push(Waiter {
                    thread: t,
                    fd,
                    via_epoll,
                    want: want_of(&sc.name, events),
                    among,
                });
            }
        }
        Waiters { by_fd, known }
    }

    /// Threads waiting on any of these fds.
    pub fn on_any(&self, fds: &[i32]) -> Vec<&Waiter<'a>> {
        fds.iter()
            .filter_map(|fd| self.by_fd.get(fd))
            .flatten()
            .collect()
    }

    /// The first thread waiting on any of `fds`.
    pub fn first_on(&self, fds: &[i32]) -> Option<&Waiter<'a>> {
        fds.iter()
            .filter_map(|fd| self.by_fd.get(fd))
            .flatten()
            .next()
    }
}

/// What a thread in `syscall` waiting for `events` on an fd expects: the events say it when
/// there are any (poll, epoll), else the call's name (read, write).
pub(crate) fn want_of(syscall: &str, events: &[String]) -> Want {
    want_of_events(events).unwrap_or_else(|| want_of_syscall(syscall))
}

/// A call that waits on one fd by its nature (read, recv, accept, write...), not on a set.
pub(crate) fn one_fd_call(name: &str) -> bool {
    READS.contains(&name) || WRITES.contains(&name)
}

fn want_of_syscall(name: &str) -> Want {
    if READS.contains(&name) {
        Want::Read
    } else if WRITES.contains(&name) {
        Want::Write
    } else if name == "connect" {
        Want::Connect
    } else {
        Want::Either
    }
}

/// POLLIN/EPOLLIN and friends mean read, POLLOUT/EPOLLOUT write; `None` when none is named.
fn want_of_events(events: &[String]) -> Option<Want> {
    let norm = |e: &String| e.trim_start_matches('E').to_string();
    let read = events.iter().map(norm).any(|e| {
        matches!(
            e.as_str(),
            "POLLIN" | "POLLPRI" | "POLLRDNORM" | "POLLRDBAND" | "POLLRDHUP"
        )
    });
    let write = events
        .iter()
        .map(norm)
        .any(|e| matches!(e.as_str(), "POLLOUT" | "POLLWRNORM" | "POLLWRBAND"));
    match (read, write) {
        (true, false) => Some(Want::Read),
        (false, true) => Some(Want::Write),
        (true, true) => Some(Want::Either),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use hangscope_model::{SyscallState, WaitObject};

    use super::*;

    fn in_futex(owner: Option<i32>, frames: &[&str]) -> Thread {
        Thread {
            tid: 2,
            syscall: Some(SyscallState {
                name: "futex".into(),
                waits_on: vec![WaitObject::Futex {
                    addr: 0x7f00,
                    op: "FUTEX_WAIT_PRIVATE".into(),
                    owner_tid: owner,
                    other_waiters: vec![],
                    waiters: 1,
                    owner_pid: None,
                    shared_file: None,
                }],
                ..SyscallState::default()
            }),
            user_stack: (!frames.is_empty()).then(|| crate::testkit::stack_of(frames)),
            ..Thread::default()
        }
    }

    /// The word + 8 read as an owner is one only when the thread is not shown waiting in
    /// something else.
    #[test]
    fn a_futex_wait_is_a_mutex_wait_unless_the_stack_says_otherwise() {
        assert_eq!(mutex_wait(&in_futex(Some(7), &[])), Some((0x7f00, 7)));
        assert_eq!(
            mutex_wait(&in_futex(
                Some(7),
                &["__lll_lock_wait", "___pthread_mutex_lock"]
            )),
            Some((0x7f00, 7))
        );
        assert_eq!(
            mutex_wait(&in_futex(
                Some(7),
                &["__futex_abstimed_wait_common", "___pthread_cond_wait"]
            )),
            None
        );
        assert_eq!(
            mutex_wait(&in_futex(Some(7), &["__pthread_clockjoin_ex", "main"])),
            None
        );
        assert_eq!(
            mutex_wait(&in_futex(None, &["___pthread_mutex_lock"])),
            None
        );
    }
}
