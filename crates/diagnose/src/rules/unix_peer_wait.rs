//! Unix socket peer wait: a thread blocked on a connected unix stream socket, whose other end a
//! local process holds — a daemon, a sidecar, another part of the same program. Blocked writing,
//! the socket's buffer is full because that process does not read: a cause. Blocked reading
//! while what was sent still sits unread at the other end: the request was never even read, a
//! cause. Blocked reading with everything read: it waits for that process to answer — a warning
//! that names the process, as the pipe rule does, since an idle client also waits so.
//!
//! Facts from unix_diag (ss -x: Recv-Q is bytes unread here; Send-Q is the socket memory of
//! what was sent and the peer has not read yet, skb truesize rather than bytes), the peer's
//! holder from /proc/*/fd, and /proc/PID/task/TID/syscall.

use hangscope_model::{
    Cause, Evidence, Finding, Severity, Snapshot, Socket, SocketDetail, Subject, UnixSocket,
};

use crate::connection::socket_fds;
use crate::other_end::{holder_words, peer_threads_evidence, peer_threads_sentence};
use crate::rules::name_resolution;
use crate::waiters::{Waiter, Want};
use crate::{Ctx, Found, STUCK_MS, wording};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for sock in &ctx.snap.sockets {
        let SocketDetail::Unix(u) = &sock.detail else {
            continue;
        };
        // A datagram socket has no connection to wait on; a name lookup has its own rule.
        if !matches!(u.sock_type.as_str(), "STREAM" | "SEQPACKET")
            || u.state != "ESTAB"
            || u.peer_inode == 0
            || name_resolution::resolves_names(ctx, sock)
        {
            continue;
        }
        let fds = socket_fds(ctx.snap, sock);
        let Some(w) = ctx
            .waiters
            .on_any(&fds)
            .into_iter()
            .find(|w| !w.progressed() && w.blocked_ms().unwrap_or(0) >= STUCK_MS)
        else {
            continue;
        };
        let writing = w.want == Want::Write;
        // Data here to read: the reader is about to run, not stuck on the other end.
        if !writing && u.recv_q > 0 {
            continue;
        }
        let unread_there = u.send_q > 0;
        let stuck_ms = w.blocked_ms().unwrap_or(0);
        let other = OtherEnd::of(ctx.snap, u);
        let fd = w.fd;
        // What the other process's threads do there, when it was looked at.
        let (theirs, both_reading) = u
            .peer
            .as_ref()
            .filter(|p| p.pid != pid)
            .and_then(|p| Some(peer_threads_sentence(p.threads.as_ref()?, p.fd)))
            .unwrap_or_default();
        let (severity, cause, mut summary) = if writing {
            (
                Severity::Cause,
                Cause::PeerNotReading,
                format!(
                    "{} has been blocked for at least {} in {} sending on unix socket fd {fd}: \
                     its buffer is full because the other end{}, {}, does not read.",
                    wording::thread(w.thread),
                    wording::duration(stuck_ms),
                    w.how(),
                    other.on,
                    other.owner
                ),
            )
        } else if unread_there {
            (
                Severity::Cause,
                Cause::PeerNotReading,
                format!(
                    "{} has waited at least {} in {} for a reply on unix socket fd {fd}, but \
                     what it sent has not been read at the other end{}: {} does not read.",
                    wording::thread(w.thread),
                    wording::duration(stuck_ms),
                    w.how(),
                    other.on,
                    other.owner
                ),
            )
        } else {
            (
                // Both ends waiting to read is stuck for good; one waiting alone may be idle.
                if both_reading {
                    Severity::Cause
                } else {
                    Severity::Warning
                },
                Cause::PeerSilent,
                format!(
                    "{} has waited at least {} in {} on unix socket fd {fd}, whose other end{} \
                     is {}: everything sent has been read there, and no answer has come.",
                    wording::thread(w.thread),
                    wording::duration(stuck_ms),
                    w.how(),
                    other.on,
                    other.owner
                ),
            )
        };
        summary.push_str(&theirs);
        let mut evidence = vec![w.evidence(pid), socket_evidence(sock, u)];
        let waiter_there = other.same_process_waiter(ctx);
        evidence.extend(other.evidence);
        evidence.extend(waiter_there);
        if let Some(p) = &u.peer
            && let Some(t) = &p.threads
        {
            evidence.push(peer_threads_evidence(p.pid, p.fd, t));
        }
        out.push(Found {
            finding: Finding {
                severity,
                cause,
                summary,
                subject: subject(w, sock, &other.label),
                evidence,
                ruled_out: vec![],
                next_step: other.next_step,
                ..Finding::default()
            },
            stuck_ms,
        });
    }
    out
}

/// Who holds the other end, in the reader's words, with the evidence and where to look next.
struct OtherEnd {
    /// " (/run/metad.sock)", or nothing when neither end is bound to a path.
    on: String,
    /// "fd 20 of process 4242 (metad)".
    owner: String,
    /// "unix socket to /run/metad.sock".
    label: String,
    evidence: Option<Evidence>,
    next_step: String,
    /// The other end's fd when this same process holds it.
    own_fd: Option<i32>,
}

impl OtherEnd {
    fn of(snap: &Snapshot, u: &UnixSocket) -> Self {
        let path = u
            .peer
            .as_ref()
            .and_then(|p| p.path.clone())
            .or_else(|| u.path.clone());
        let on = path
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        let label = match &path {
            Some(p) => format!("unix socket to {p}"),
            None => format!("unix socket to socket inode {}", u.peer_inode),
        };
        let Some(peer) = &u.peer else {
            let why = u
                .peer_unresolved
                .clone()
                .unwrap_or_else(|| "held by no process visible here".into());
            return OtherEnd {
                on,
                owner: format!("socket inode {}, {why}", u.peer_inode),
                label,
                evidence: None,
                next_step: format!(
                    "Find the process that holds socket inode {}: ss -xp | grep {} (from the \
                     host's PID namespace if it runs in a container), then run hangscope on it.",
                    u.peer_inode, u.peer_inode
                ),
                own_fd: None,
            };
        };
        let evidence = Some(Evidence::new(
            "other end",
            format!("process {} ({}) fd {}", peer.pid, peer.name, peer.fd),
            format!(
                "/proc/{}/fd/{} -> socket:[{}]",
                peer.pid, peer.fd, u.peer_inode
            ),
        ));
        let owner = holder_words(peer.pid, &peer.name, peer.fd, snap.process.pid);
        if peer.pid == snap.process.pid {
            return OtherEnd {
                on,
                owner,
                label,
                evidence,
                next_step: format!(
                    "Find the code of this process that should serve fd {}, and why it does \
                     not run: see what its threads wait for above.",
                    peer.fd
                ),
                own_fd: Some(peer.fd),
            };
        }
        OtherEnd {
            on,
            owner,
            label,
            evidence,
            next_step: format!(
                "Look at process {} ({}): hangscope {}.",
                peer.pid, peer.name, peer.pid
            ),
            own_fd: None,
        }
    }

    /// When this process holds the other end too: which of its threads waits there, if any.
    fn same_process_waiter(&self, ctx: &Ctx<'_>) -> Option<Evidence> {
        let fd = self.own_fd?;
        let pid = ctx.snap.process.pid;
        Some(match ctx.waiters.first_on(&[fd]) {
            Some(w) => Evidence::new(
                format!("fd {fd}"),
                format!("{} waits on it in {}", wording::thread(w.thread), w.how()),
                w.source(pid),
            ),
            None => Evidence::new(
                format!("fd {fd}"),
                "no thread of this process waits on it",
                format!("/proc/{pid}/task/*/syscall"),
            ),
        })
    }
}

fn socket_evidence(sock: &Socket, u: &UnixSocket) -> Evidence {
    // Send-Q counts the buffers the peer still holds, not bytes: say only whether it is empty.
    let unread = if u.send_q > 0 {
        ", what it sent not yet all read by the other end"
    } else {
        ", everything it sent read by the other end"
    };
    Evidence::new(
        "socket",
        format!(
            "unix {}, {} unread here{unread}",
            u.sock_type.to_lowercase(),
            wording::bytes(u64::from(u.recv_q))
        ),
        format!(
            "ss -x: Recv-Q {} Send-Q {} inode {} peer {}",
            u.recv_q, u.send_q, sock.inode, u.peer_inode
        ),
    )
}

fn subject(w: &Waiter<'_>, sock: &Socket, label: &str) -> Subject {
    Subject {
        tid: Some(w.thread.tid),
        thread_name: Some(w.thread.name.clone()).filter(|n| !n.is_empty()),
        fd: Some(w.fd),
        socket_inode: Some(sock.inode),
        connection: Some(label.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    /// Process 800 (client), thread 801 in `syscall` on fd 5, a unix stream to /run/metad.sock
    /// whose other end process 4242 (metad) holds as fd 20.
    fn unix_wait(syscall: &str, events: &[&str], recv_q: u32, send_q: u32) -> Snapshot {
        let mut snap = base(800, "client");
        let mut sock = unix_to(7000, "/run/metad.sock", "metad");
        if let SocketDetail::Unix(u) = &mut sock.detail {
            u.recv_q = recv_q;
            u.send_q = send_q;
        }
        add_socket(&mut snap, 5, sock);
        snap.threads.push(thread(
            801,
            "rpc",
            syscall,
            vec![fd_wait(5, events)],
            Some(6_000),
        ));
        snap
    }

    fn unix_mut(snap: &mut Snapshot) -> &mut UnixSocket {
        match &mut socket_mut(snap, 7000).detail {
            SocketDetail::Unix(u) => u,
            _ => unreachable!("the test socket is a unix socket"),
        }
    }

    #[test]
    fn waiting_for_an_answer_after_the_request_was_read_names_the_peer() {
        let found = find(&Ctx::new(&unix_wait("read", &[], 0, 0)));
        assert_eq!(found.len(), 1);
        let f = &found[0].finding;
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.cause, Cause::PeerSilent);
        assert_eq!(
            f.summary,
            "Thread 801 (rpc) has waited at least 6.0 s in read() on unix socket fd 5, whose \
             other end (/run/metad.sock) is fd 20 of process 4242 (metad): everything sent has \
             been read there, and no answer has come."
        );
        assert_eq!(f.next_step, "Look at process 4242 (metad): hangscope 4242.");
        assert_eq!(f.subject.tid, Some(801));
        assert_eq!(f.subject.fd, Some(5));
        assert_eq!(f.subject.socket_inode, Some(7000));
        assert!(f.evidence.iter().any(|e| e.label == "other end"
            && e.value == "process 4242 (metad) fd 20"
            && e.source == "/proc/4242/fd/20 -> socket:[7001]"));
    }

    fn peer_threads(on_fd: Vec<hangscope_model::PeerThread>) -> hangscope_model::PeerThreads {
        hangscope_model::PeerThreads {
            count: 3,
            on_fd,
            elsewhere: vec!["futex ×2".into()],
            ..Default::default()
        }
    }

    #[test]
    fn both_ends_waiting_to_read_is_a_cause() {
        let mut snap = unix_wait("read", &[], 0, 0);
        if let Some(p) = unix_mut(&mut snap).peer.as_mut() {
            p.threads = Some(peer_threads(vec![hangscope_model::PeerThread {
                tid: 4250,
                name: "session".into(),
                call: "read(20, 0x7f00, 4096)".into(),
                syscall: "read".into(),
                events: vec![],
            }]));
        }
        let f = &find(&Ctx::new(&snap))[0].finding;
        assert_eq!(f.severity, Severity::Cause);
        assert!(
            f.summary.ends_with(
                "Its thread 4250 (session) waits to read fd 20 too: both ends wait for the \
                 other, so the request is likely incomplete (a missing terminator or length, \
                 or not flushed) or the two disagree on the protocol."
            ),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| e.label == "its threads"
            && e.value == "thread 4250 (session) in read(20, 0x7f00, 4096)"
            && e.source == "/proc/4242/task/*/syscall"));
    }

    #[test]
    fn a_peer_whose_threads_are_elsewhere_stays_a_warning_that_says_where() {
        let mut snap = unix_wait("read", &[], 0, 0);
        if let Some(p) = unix_mut(&mut snap).peer.as_mut() {
            p.threads = Some(peer_threads(vec![]));
        }
        let f = &find(&Ctx::new(&snap))[0].finding;
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary.ends_with(
                "None of its 3 threads waits on fd 20 (they are in futex ×2): what should \
                 answer is busy or blocked elsewhere."
            ),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_request_the_peer_never_read_is_a_cause() {
        let found = find(&Ctx::new(&unix_wait("poll", &["POLLIN"], 0, 768)));
        let f = &found[0].finding;
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.cause, Cause::PeerNotReading);
        assert!(
            f.summary.contains("has not been read at the other end"),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| e.label == "socket"
            && e.value.contains("what it sent not yet all read")
            && e.source.contains("Send-Q 768")));
    }

    #[test]
    fn a_writer_blocked_on_a_full_socket_is_a_cause() {
        let found = find(&Ctx::new(&unix_wait("sendmsg", &[], 0, 212_992)));
        let f = &found[0].finding;
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.cause, Cause::PeerNotReading);
        assert!(f.summary.contains("its buffer is full"), "{}", f.summary);
    }

    #[test]
    fn data_waiting_here_or_a_short_wait_is_nothing() {
        assert!(find(&Ctx::new(&unix_wait("read", &[], 34, 0))).is_empty());
        let mut snap = unix_wait("read", &[], 0, 0);
        snap.threads[0] = thread(801, "rpc", "read", vec![fd_wait(5, &[])], Some(300));
        assert!(find(&Ctx::new(&snap)).is_empty());
        // A loop that keeps serving other fds is not stuck on this one.
        snap.threads[0] = thread(801, "rpc", "read", vec![fd_wait(5, &[])], None);
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn a_listening_or_datagram_socket_is_nothing() {
        let mut snap = unix_wait("read", &[], 0, 0);
        unix_mut(&mut snap).state = "LISTEN".into();
        assert!(find(&Ctx::new(&snap)).is_empty());
        let mut snap = unix_wait("read", &[], 0, 0);
        unix_mut(&mut snap).sock_type = "DGRAM".into();
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn a_lookup_through_nscd_is_left_to_the_name_rule() {
        let mut snap = base(800, "client");
        add_socket(&mut snap, 5, unix_to(7000, "/var/run/nscd/socket", "nscd"));
        snap.threads.push(thread(
            801,
            "rpc",
            "read",
            vec![fd_wait(5, &[])],
            Some(6_000),
        ));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn an_unresolved_peer_says_how_to_find_it() {
        let mut snap = unix_wait("read", &[], 0, 0);
        let u = unix_mut(&mut snap);
        u.peer = None;
        u.peer_unresolved = Some("held by no process visible here".into());
        let f = &find(&Ctx::new(&snap))[0].finding;
        assert!(
            f.summary
                .contains("socket inode 7001, held by no process visible here"),
            "{}",
            f.summary
        );
        assert!(
            f.next_step.contains("ss -xp | grep 7001"),
            "{}",
            f.next_step
        );
    }

    #[test]
    fn the_other_end_in_the_same_process_names_who_waits_there() {
        let mut snap = unix_wait("read", &[], 0, 0);
        if let Some(p) = unix_mut(&mut snap).peer.as_mut() {
            p.pid = 800;
            p.name = "client".into();
            p.fd = 6;
        }
        snap.threads.push(thread(
            802,
            "server",
            "read",
            vec![fd_wait(6, &[])],
            Some(6_000),
        ));
        let found = find(&Ctx::new(&snap));
        let f = &found[0].finding;
        assert!(
            f.summary.contains("is fd 6 of this same process"),
            "{}",
            f.summary
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.label == "fd 6" && e.value.contains("Thread 802 (server) waits")),
            "{:?}",
            f.evidence
        );
    }
}
