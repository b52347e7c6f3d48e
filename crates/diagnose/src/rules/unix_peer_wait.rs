//! Unix socket peer wait: a thread blocked on a connected unix stream socket, whose other end a
//! local process holds — a daemon, a sidecar, another part of the same program. Blocked writing,
//! the socket's buffer is full because that process does not read: a cause. Blocked reading
//! while what was sent still sits unread at the other end: the request was never even read, a
//! cause. Blocked reading with everything read: it waits for that process to answer — a warning
//! that names the process, as the pipe rule does, since an idle client also waits so; a cause
//! when a thread of that process waits to read too. Words in `words/unix_peer_wait.rs`.
//!
//! A wait over a set (an event loop in epoll_wait over a listener, a control channel, its
//! clients) is a wait on the set: an idle nginx worker watching its master's channel waits for
//! whichever fd speaks first, not for its master. Through a set, only evidence about this
//! socket counts — what it sent still unread there, or a full buffer — never "no answer yet".
//!
//! Facts from unix_diag (ss -x: Recv-Q is bytes unread here; Send-Q is the socket memory of
//! what was sent and the peer has not read yet, skb truesize rather than bytes), the peer's
//! holder from /proc/*/fd, and /proc/PID/task/TID/syscall.

use hangscope_model::TcpState;
use hangscope_model::{Cause, Next, Severity, SocketDetail, Subject};

use crate::connection::socket_fds;
use crate::facts::unix_peer_wait::{Blocked, UnixOtherEnd, UnixPeerWait};
use crate::facts::{Holder, OtherThreads, RuleFacts, ThreadWait};
use crate::rules::name_resolution;
use crate::waiters::Want;
use crate::{Ctx, STUCK_MS};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<UnixPeerWait> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for sock in &ctx.snap.sockets {
        let SocketDetail::Unix(u) = &sock.detail else {
            continue;
        };
        // A datagram socket has no connection to wait on; a name lookup has its own rule.
        if !matches!(u.sock_type.as_str(), "STREAM" | "SEQPACKET")
            || u.state != TcpState::Established
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
        let blocked = if writing {
            Blocked::Writing
        } else if u.send_q > 0 {
            Blocked::RequestUnread
        } else {
            Blocked::Reply
        };
        // Nothing about this member says a reply is owed: the set waits for any of them.
        if blocked == Blocked::Reply && !w.alone() {
            continue;
        }
        let other_end = match &u.peer {
            Some(p) => UnixOtherEnd::Held {
                holder: Holder::new(p.pid, &p.name, p.fd, pid),
                threads: p.threads.as_ref().map(|t| Box::new(OtherThreads::of(t))),
                waiter_there: (p.pid == pid)
                    .then(|| ctx.waiters.first_on(&[p.fd]))
                    .flatten()
                    .map(|w| Box::new(ThreadWait::of(w, pid))),
            },
            None => UnixOtherEnd::Unheld {
                reason: u.peer_unresolved.clone(),
            },
        };
        out.push(UnixPeerWait {
            pid,
            waiter: ThreadWait::of(w, pid),
            socket_inode: sock.inode,
            sock_type: u.sock_type.clone(),
            recv_q: u.recv_q,
            send_q: u.send_q,
            peer_inode: u.peer_inode,
            path: u
                .peer
                .as_ref()
                .and_then(|p| p.path.clone())
                .or_else(|| u.path.clone()),
            blocked,
            other_end,
            stuck_ms: w.blocked_ms().unwrap_or(0),
        });
    }
    out
}

impl RuleFacts for UnixPeerWait {
    const RULE: &'static str = "unix_peer_wait";

    fn cause(&self) -> Cause {
        match self.blocked {
            Blocked::Writing | Blocked::RequestUnread => Cause::PeerNotReading,
            Blocked::Reply => Cause::PeerSilent,
        }
    }

    fn severity(&self) -> Severity {
        match self.blocked {
            Blocked::Writing | Blocked::RequestUnread => Severity::Cause,
            // Both ends waiting to read is stuck for good; one waiting alone may be idle.
            Blocked::Reply if self.both_reading() => Severity::Cause,
            Blocked::Reply => Severity::Warning,
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        Subject {
            tid: Some(self.waiter.tid),
            thread_name: Some(self.waiter.name.clone()).filter(|n| !n.is_empty()),
            fd: Some(self.waiter.fd),
            socket_inode: Some(self.socket_inode),
            connection: Some(self.label()),
        }
    }

    fn next(&self) -> Option<Next> {
        Some(match &self.other_end {
            UnixOtherEnd::Held { holder, .. } => Next::process(holder.pid),
            UnixOtherEnd::Unheld { .. } => {
                Next::command(format!("ss -xp | grep {}", self.peer_inode))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Finding, Snapshot, UnixSocket};

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

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
        let f = &found[0];
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
                among: 1,
            }]));
        }
        let f = &find(&Ctx::new(&snap))[0];
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
        let f = &find(&Ctx::new(&snap))[0];
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
        let f = &found[0];
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
        let f = &found[0];
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
    fn an_event_loop_over_several_fds_owes_no_reply_on_one() {
        // An idle nginx worker: epoll_wait over its listener, an eventfd and the channel to its
        // master. Nothing about the channel says an answer is owed.
        let mut snap = unix_wait("read", &[], 0, 0);
        let waits = add_epoll(&mut snap, 7, &[4, 5, 8]);
        snap.threads[0] = thread(801, "rpc", "epoll_wait", waits, Some(60_000));
        assert!(find(&Ctx::new(&snap)).is_empty());
        // What it sent still unread at the other end is about this socket: still a cause.
        unix_mut(&mut snap).send_q = 768;
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(
            (f.severity, f.cause),
            (Severity::Cause, Cause::PeerNotReading)
        );
        // The epoll set of that one socket alone is a wait on it.
        let mut snap = unix_wait("read", &[], 0, 0);
        let waits = add_epoll(&mut snap, 7, &[5]);
        snap.threads[0] = thread(801, "rpc", "epoll_wait", waits, Some(60_000));
        assert_eq!(find(&Ctx::new(&snap)).len(), 1);
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
        let f = &find(&Ctx::new(&snap))[0];
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
        let f = &found[0];
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

    #[test]
    fn facts_decide_the_severity_and_name_the_other_end() {
        let f = &find(&Ctx::new(&unix_wait("read", &[], 0, 0)))[0];
        assert_eq!(
            (f.rule.as_str(), f.cause),
            ("unix_peer_wait", Cause::PeerSilent)
        );
        let facts = &f.facts;
        assert_eq!(facts["blocked"], "reply");
        assert_eq!(facts["waiter"]["tid"], 801);
        assert_eq!(facts["waiter"]["fd"], 5);
        assert_eq!(facts["socket_inode"], 7000);
        assert_eq!(facts["peer_inode"], 7001);
        assert_eq!(facts["stuck_ms"], 6000);
        assert_eq!(facts["other_end"]["kind"], "held");
        assert_eq!(facts["other_end"]["holder"]["pid"], 4242);
        assert_eq!(facts["other_end"]["holder"]["fd"], 20);
        assert_eq!(f.next, Some(Next::process(4242)));

        // The other process's thread waiting to read too is a fact, and makes it a cause.
        let mut snap = unix_wait("read", &[], 0, 0);
        if let Some(p) = unix_mut(&mut snap).peer.as_mut() {
            p.threads = Some(peer_threads(vec![hangscope_model::PeerThread {
                tid: 4250,
                name: "session".into(),
                call: "read(20, 0x7f00, 4096)".into(),
                syscall: "read".into(),
                events: vec![],
                among: 1,
            }]));
        }
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.facts["other_end"]["threads"]["reads_too"][0], 4250);

        let f = &find(&Ctx::new(&unix_wait("sendmsg", &[], 0, 212_992)))[0];
        assert_eq!(
            (f.facts["blocked"].as_str(), f.cause),
            (Some("writing"), Cause::PeerNotReading)
        );

        let mut snap = unix_wait("read", &[], 0, 0);
        unix_mut(&mut snap).peer = None;
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.facts["other_end"]["kind"], "unheld");
        let next = f.next.as_ref().expect("next");
        assert_eq!(next.command.as_deref(), Some("ss -xp | grep 7001"));
    }
}
