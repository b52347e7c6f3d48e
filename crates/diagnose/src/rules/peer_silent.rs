//! Peer application silent: the process sent a request on a connection it opened, the peer's
//! kernel acknowledged every byte, nothing came back, and a thread waits for the reply. The
//! seed incident's case. Words in `words/peer_silent.rs`.
//!
//! Facts from tcp_info (include/uapi/linux/tcp.h, ss -ti): bytes_acked, unacked,
//! last_data_sent/recv, last_ack_recv; the waiting thread from /proc/PID/task/TID/syscall.

use hangscope_model::{Cause, Next, Severity, Subject, TimerKind};
use hangscope_model::{LocalPeer, TcpState};

use crate::connection::{Conn, Speaker};
use crate::facts::peer_silent::PeerSilent;
use crate::facts::{ConnFacts, RuleFacts, ThreadWait, Upstream};
use crate::{Ctx, STUCK_MS, log_quotes};

/// More requests than this without a single byte back is not request/reply traffic.
const ONE_WAY_SEGMENTS: u32 = 8;

/// An ACK this much older than the last send still counts as the ACK of that send.
const ACK_SLACK_MS: u32 = 500;

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<PeerSilent> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for conn in Conn::tcp(ctx) {
        if conn.state() != TcpState::Established || conn.is_inbound(ctx) {
            continue;
        }
        let Some(info) = conn.info() else { continue };
        // Data still unacknowledged, queued, or unread belongs to the other rules.
        if info.unacked > 0 || conn.inet.send_q > 0 || conn.inet.recv_q > 0 {
            continue;
        }
        // Keepalive probes going unanswered: the connection is dead, not the peer silent.
        if info.probes > 0 || conn.inet.timer.as_ref().is_some_and(|t| t.retrans > 0) {
            continue;
        }
        let sent = conn.bytes_sent();
        if sent == Some(0) {
            continue;
        }
        // The request went out after the last data that came in (see `last_word` for the
        // same millisecond both ways).
        let Some(last_word) = conn.last_word(ctx).filter(|w| w.speaker == Speaker::Us) else {
            continue;
        };
        // Many data segments out and not one byte ever back: a one-way stream (metrics,
        // logs), where silence is the protocol, not a fault.
        if info.bytes_received == Some(0) && info.data_segs_out.unwrap_or(0) > ONE_WAY_SEGMENTS {
            continue;
        }
        let silent_ms = u64::from(info.last_data_sent_ms);
        let waiters = ctx.waiters.on_any(&conn.fds);
        let reader = waiters.iter().find(|w| w.wants_read()).copied();
        if reader.is_none() && ctx.waiters.known {
            // Nobody waits for an answer: a one-way protocol or an idle pool connection.
            continue;
        }
        let stuck_ms = silent_ms.max(reader.and_then(|w| w.blocked_ms()).unwrap_or(0));
        if stuck_ms < STUCK_MS {
            continue;
        }
        let peer = conn.peer();
        let port = conn.inet.peer.port;
        out.push(PeerSilent {
            conn: ConnFacts::of(conn, pid),
            waiter: reader.map(|w| ThreadWait::of(w, pid)),
            request_bytes: sent,
            silent_ms,
            stuck_ms,
            last_recv_ms: u64::from(info.last_data_recv_ms),
            last_ack_ms: u64::from(info.last_ack_recv_ms),
            last_word,
            acked_since_request: info.last_ack_recv_ms.saturating_add(ACK_SLACK_MS)
                < info.last_data_sent_ms,
            keepalive: conn.timer_is(TimerKind::Keepalive),
            bytes_acked: info.bytes_acked.unwrap_or(0),
            bytes_received: info.bytes_received.unwrap_or(0),
            unacked: info.unacked,
            retransmits: info.retransmits,
            total_retrans: info.total_retrans,
            rtt_us: info.rtt_us,
            loop_still_serving: reader.is_some_and(|w| w.via_epoll.is_some() && w.progressed()),
            threads_known: ctx.waiters.known,
            earlier_failure: reader
                .and_then(|w| log_quotes::earlier_failure(ctx.snap, w.thread.tid, &peer, port)),
            log: log_quotes::quotes(ctx.snap, reader.map(|w| w.thread.tid), &peer),
            host_alive: None,
            upstream: conn
                .inet
                .local_peer
                .as_deref()
                .and_then(LocalPeer::holder)
                .filter(|h| h.pid != pid)
                .and_then(|h| Upstream::of(conn, h)),
        });
    }
    out
}

impl RuleFacts for PeerSilent {
    const RULE: &'static str = "peer_silent";

    fn cause(&self) -> Cause {
        Cause::PeerSilent
    }

    fn severity(&self) -> Severity {
        match &self.waiter {
            // An event loop that keeps serving other connections is not stuck as a whole;
            // this one request is.
            Some(_) if self.loop_still_serving => Severity::Warning,
            Some(_) if self.other_end_idle() => Severity::Warning,
            Some(_) => Severity::Cause,
            None => Severity::Warning,
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        self.conn.subject(self.waiter.as_ref())
    }

    /// The other end; for a proxy, still the proxy: its own diagnosis is what names its
    /// upstream (a process on this host, or another host), so a wait chain goes through it.
    fn next(&self) -> Option<Next> {
        Some(self.conn.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::Finding;

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }
    use hangscope_model::{LocalPeer, PeerHolder, PeerThread, PeerThreads, Severity, Snapshot};

    #[test]
    fn seed_incident_names_thread_fd_and_peer() {
        let snap = seed();
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.subject.tid, Some(31576));
        assert_eq!(f.subject.fd, Some(29));
        assert_eq!(
            f.subject.connection.as_deref(),
            Some("TCP 10.0.130.71:42428 -> 10.0.130.72:10100")
        );
        assert!(
            f.summary.starts_with(
                "Thread 31576 (dump_meta) has waited 7.9 s in poll() for a reply from \
                 10.0.130.72:10100 that is not coming: the 32-byte request was acknowledged \
                 by the peer's kernel, and keepalives are answered (last ACK 675 ms ago), so host and \
                 network are alive; the service on :10100 is not answering."
            ),
            "{}",
            f.summary
        );
        assert!(
            f.summary
                .contains("10.0.130.73:10100 (ETimedOut, log 05:25:37)"),
            "{}",
            f.summary
        );
        assert!(
            f.next_step.contains(":10100 on 10.0.130.72"),
            "{}",
            f.next_step
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.label == "log" && e.value.contains("ETimedOut"))
        );
    }

    #[test]
    fn a_postgres_backends_connection_on_its_servers_port_is_inbound() {
        // The seed's silent connection, as if its local port were a PostgreSQL server's that
        // the target serves as a backend (the postmaster, not the backend, listens there).
        let mut snap = seed();
        assert!(!find(&Ctx::new(&snap)).is_empty());
        snap.app = Some(hangscope_model::AppView::Postgres(
            hangscope_model::PgView {
                server: hangscope_model::PgServer {
                    postmaster_pid: 1,
                    port: 42428,
                    ..Default::default()
                },
                ..Default::default()
            },
        ));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    /// The seed's connection as a 2.0 s window of 15 looks measured it: nothing moved.
    fn silent_window() -> hangscope_model::ConnectionWindow {
        hangscope_model::ConnectionWindow {
            duration_ms: 2004,
            looks: 15,
            bytes_sent: Some(0),
            bytes_acked: Some(0),
            bytes_received: Some(0),
            segs_in: Some(1),
            segs_out: Some(1),
            retrans: Some(0),
            unacked_first: Some(0),
            unacked_last: Some(0),
            last_data_recv_moved: Some(false),
            last_data_sent_moved: Some(false),
            ..Default::default()
        }
    }

    /// The seed incident with its peer on this host, as the lookup of the other end reports it.
    fn seed_with_local_peer(peer: LocalPeer) -> Snapshot {
        let mut snap = seed();
        inet_of(socket_mut(&mut snap, 692518610)).local_peer = Some(Box::new(peer));
        snap
    }

    fn held_by(pid: i32, name: &str, fd: i32, recv_q: u32) -> LocalPeer {
        LocalPeer {
            inode: 777,
            state: "ESTAB".into(),
            recv_q,
            end: Some(hangscope_model::PeerEnd::Held {
                holder: PeerHolder {
                    pid,
                    name: name.into(),
                    fd,
                    threads: None,
                    opened: vec![],
                },
            }),
            ..LocalPeer::default()
        }
    }

    #[test]
    fn a_peer_on_this_host_is_named_with_what_it_did_with_the_request() {
        let snap = seed_with_local_peer(held_by(4242, "metad", 7, 0));
        let f = &find(&Ctx::new(&snap))[0];
        assert!(
            f.summary.contains(
                "The other end is fd 7 of process 4242 (metad) on this host, which has read \
                 everything sent."
            ),
            "{}",
            f.summary
        );
        assert_eq!(
            f.next_step,
            "Look at process 4242 (metad), which holds the other end as fd 7: hangscope 4242."
        );
        let e = f
            .evidence
            .iter()
            .find(|e| e.label == "other end")
            .expect("other end");
        assert_eq!(
            e.value,
            "fd 7 of process 4242 (metad), ESTAB, 0 bytes unread"
        );
        assert!(
            e.source.ends_with("; /proc/4242/fd/7 -> socket:[777]"),
            "{}",
            e.source
        );

        let snap = seed_with_local_peer(held_by(4242, "metad", 7, 32));
        let f = &find(&Ctx::new(&snap))[0];
        assert!(
            f.summary
                .contains("which has not read it: 32 bytes wait in its receive queue"),
            "{}",
            f.summary
        );
    }

    fn peer_thread(tid: i32, name: &str, syscall: &str, call: &str, among: u32) -> PeerThread {
        PeerThread {
            tid,
            name: name.into(),
            call: call.into(),
            syscall: syscall.into(),
            events: if syscall == "read" {
                vec![]
            } else {
                vec!["EPOLLIN".into()]
            },
            among,
        }
    }

    /// The seed's request, its other end held by process 4242 (redis-server) as fd 7, whose
    /// threads are `t`.
    fn with_peer_threads(t: PeerThreads) -> Snapshot {
        let mut peer = held_by(4242, "redis-server", 7, 0);
        if let Some(h) = peer.holder_mut() {
            h.threads = Some(t);
        }
        seed_with_local_peer(peer)
    }

    #[test]
    fn the_other_end_idle_in_its_event_loop_is_no_cause() {
        // Redis serving BLPOP: the server read the request; its loop watches fd 7 among 3 fds.
        let snap = with_peer_threads(PeerThreads {
            count: 5,
            on_fd: vec![peer_thread(
                4242,
                "redis-server",
                "epoll_wait",
                "epoll_wait(5, ..)",
                3,
            )],
            elsewhere: vec!["futex ×4".into()],
            ..PeerThreads::default()
        });
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Warning, "{}", f.summary);
        assert!(!f.summary.contains("both ends wait"), "{}", f.summary);
        assert!(!f.summary.contains("not coming"), "{}", f.summary);
        assert!(
            f.summary.contains(
                "Its thread 4242 (redis-server) is idle in its event loop, in epoll_wait() over 3 \
                 fds, fd 7 among them: it read the request and waits for anything to happen; a \
                 blocking command or a long poll looks the same."
            ),
            "{}",
            f.summary
        );
        assert_eq!(
            f.facts["conn"]["other_end"]["threads"]["activity"]["kind"],
            "idle_loop"
        );
        // A set of that fd alone, or a read on it: both ends wait, a cause.
        for (syscall, among) in [("epoll_wait", 1), ("read", 1), ("read", 0)] {
            let snap = with_peer_threads(PeerThreads {
                count: 1,
                on_fd: vec![peer_thread(4242, "redis-server", syscall, "call", among)],
                ..PeerThreads::default()
            });
            let f = &find(&Ctx::new(&snap))[0];
            assert_eq!(f.severity, Severity::Cause, "{syscall} {among}");
            assert!(f.summary.contains("both ends wait"), "{}", f.summary);
        }
        // An older document's epoll wait, set size unknown: not claimed a deadlock.
        let snap = with_peer_threads(PeerThreads {
            count: 1,
            on_fd: vec![peer_thread(4242, "redis-server", "epoll_wait", "call", 0)],
            ..PeerThreads::default()
        });
        let f = &find(&Ctx::new(&snap))[0];
        assert!(!f.summary.contains("both ends wait"), "{}", f.summary);
    }

    #[test]
    fn the_other_end_blocked_elsewhere_names_the_thread_that_is() {
        // Redis in DEBUG SLEEP: no thread on fd 7; the main thread sleeps, bio threads parked.
        let snap = with_peer_threads(PeerThreads {
            count: 5,
            elsewhere: vec!["futex ×4".into(), "clock_nanosleep".into()],
            busy: vec![peer_thread(
                4242,
                "redis-server",
                "clock_nanosleep",
                "clock_nanosleep 30.0 s",
                0,
            )],
            ..PeerThreads::default()
        });
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert!(
            f.summary.contains(
                "None of its 5 threads waits on fd 7, directly or in an event loop, so it read \
                 the request and did not go back to wait for more: thread 4242 (redis-server) \
                 is in clock_nanosleep()."
            ),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_proxy_at_the_other_end_names_the_upstream_it_waits_on() {
        // nginx read the request (sent 7.9 s ago) and forwarded it 2 ms later to its upstream,
        // which has not answered.
        let mut up = tcp(900, "127.0.0.1:39230", "127.0.0.1:18081", "ESTAB");
        let i = info_of(&mut up);
        i.bytes_acked = Some(101);
        i.bytes_received = Some(0);
        i.last_data_sent_ms = 7876;
        i.last_data_recv_ms = 7876;
        up.fds = vec![9];
        // An idle keep-alive upstream connection that answered long ago is not it.
        let mut old = tcp(901, "127.0.0.1:39240", "127.0.0.1:18082", "ESTAB");
        let i = info_of(&mut old);
        i.bytes_acked = Some(101);
        i.bytes_received = Some(300);
        i.last_data_sent_ms = 60_000;
        i.last_data_recv_ms = 59_990;
        let mut peer = held_by(3347, "nginx", 5, 0);
        if let Some(h) = peer.holder_mut() {
            h.threads = Some(PeerThreads {
                count: 1,
                on_fd: vec![peer_thread(
                    3347,
                    "nginx",
                    "epoll_wait",
                    "epoll_wait(7, ..)",
                    4,
                )],
                ..PeerThreads::default()
            });
            h.opened = vec![old, up];
        }
        let snap = seed_with_local_peer(peer);
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert!(
            f.summary.contains(
                "The other end is fd 5 of process 3347 (nginx) on this host, which passed the \
                 request on and waits itself on the upstream 127.0.0.1:18081 (its fd 9): its \
                 100-byte request went there 2 ms after ours came in, and nothing has come back \
                 in 7.9 s."
            ),
            "{}",
            f.summary
        );
        assert!(!f.summary.contains("not answering"), "{}", f.summary);
        assert_eq!(f.facts["upstream"]["peer"]["port"], 18081);
        assert_eq!(f.facts["upstream"]["fd"], 9);
        // Followed through the proxy, whose own finding names the upstream.
        assert_eq!(f.next, Some(Next::process(3347)));
        assert!(f.next_step.contains("port 18081"), "{}", f.next_step);
        assert!(
            f.evidence.iter().any(|e| e.label == "its upstream"
                && e.value == "127.0.0.1:39230 -> 127.0.0.1:18081: 100 bytes sent 7.9 s ago, nothing back"),
            "{:?}",
            f.evidence
        );
    }

    #[test]
    fn a_connection_the_server_never_accepted_is_said_so() {
        let snap = seed_with_local_peer(LocalPeer {
            inode: 0,
            state: "ESTAB".into(),
            recv_q: 32,
            end: Some(hangscope_model::PeerEnd::NotAccepted { listener: None }),
            ..LocalPeer::default()
        });
        let f = &find(&Ctx::new(&snap))[0];
        assert!(
            f.summary
                .contains("The server on :10100 has not even accepted the connection"),
            "{}",
            f.summary
        );
        // With the listener found, it is named, and the next step is its accept loop.
        let snap = seed_with_local_peer(LocalPeer {
            inode: 0,
            state: "ESTAB".into(),
            recv_q: 32,
            end: Some(hangscope_model::PeerEnd::NotAccepted {
                listener: Some(Box::new(LocalPeer {
                    inode: 900,
                    state: "LISTEN".into(),
                    recv_q: 3,
                    send_q: 128,
                    ..held_by(4242, "metad", 3, 3)
                })),
            }),
            ..LocalPeer::default()
        });
        let f = &find(&Ctx::new(&snap))[0];
        assert!(
            f.summary.contains(
                "it waits in the accept queue of the socket listening there, fd 3 of process \
                 4242 (metad)."
            ),
            "{}",
            f.summary
        );
        assert!(
            f.next_step.starts_with(
                "Look at process 4242 (metad): hangscope 4242; find the thread that should call \
                 accept() on fd 3"
            ),
            "{}",
            f.next_step
        );
        assert!(f.evidence.iter().any(|e| {
            e.label == "other end"
                && e.value
                    .ends_with("fd 3 of process 4242 (metad): accept queue 3, backlog 128")
        }));
    }

    #[test]
    fn both_ends_in_this_process_point_at_its_own_fd() {
        let snap = seed_with_local_peer(held_by(31516, "zbs-metad", 41, 0));
        let f = &find(&Ctx::new(&snap))[0];
        assert!(
            f.summary
                .contains("The other end is fd 41 of this same process"),
            "{}",
            f.summary
        );
        assert!(
            f.next_step
                .starts_with("The other end is fd 41 of this same process")
        );
    }

    #[test]
    fn window_adds_measured_silence() {
        let mut snap = seed();
        inet_of(socket_mut(&mut snap, 692518610)).window = Some(Box::new(silent_window()));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let e = found[0]
            .evidence
            .iter()
            .find(|e| e.label == "watched")
            .expect("window evidence");
        assert_eq!(
            e.value,
            "0 bytes in, 0 bytes out, 0 retransmits over the 2.0 s window"
        );
        assert_eq!(
            e.source,
            "sock_diag, 15 looks: Δbytes_received:0 Δbytes_acked:0 Δsegs_in:1 Δsegs_out:1 \
             Δretrans:0 lastrcv:still"
        );
        // Evidence order: what the thread does, the request, the reply, then the window.
        let labels: Vec<&str> = found[0].evidence.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(&labels[..4], ["waiting in", "request", "reply", "watched"]);
    }

    #[test]
    fn no_window_or_closed_during_it_adds_nothing() {
        // --window 0: the finding stands on the ages alone.
        let snap = seed();
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        assert!(
            !found[0].evidence.iter().any(|e| e.label == "watched"),
            "{:#?}",
            found[0].evidence
        );
        // Closed during the window: its counters stop short, so no claim over the window.
        let mut snap = seed();
        inet_of(socket_mut(&mut snap, 692518610)).window =
            Some(Box::new(hangscope_model::ConnectionWindow {
                closed_during_window: true,
                ..silent_window()
            }));
        let found = find(&Ctx::new(&snap));
        assert!(!found[0].evidence.iter().any(|e| e.label == "watched"));
    }

    #[test]
    fn failover_between_replicas_on_one_host() {
        // Two replicas on one host behind different ports: the earlier timeout names the other.
        let mut snap = seed();
        let e = &mut snap.logs[0].entries[3];
        e.message = e
            .message
            .replace("10.0.130.73:10100", "10.0.130.72:10200")
            .into();
        e.peers = vec!["10.0.130.72:10200".into()];
        let found = find(&Ctx::new(&snap));
        let f = &found[0];
        assert!(
            f.summary.ends_with(
                "Before that, the same thread logged a failure with 10.0.130.72:10200 \
                 (ETimedOut, log 05:25:37)."
            ),
            "{}",
            f.summary
        );
    }

    #[test]
    fn no_ack_since_the_request_says_how_long_nothing_came_back() {
        let mut snap = seed();
        socket_info(&mut snap, 692518610).last_ack_recv_ms = 7878;
        let found = find(&Ctx::new(&snap));
        let f = &found[0];
        assert!(
            f.summary.contains(
                "the 32-byte request was acknowledged by the peer's kernel and nothing came \
                 back in 7.9 s; the service on :10100 is not answering."
            ),
            "{}",
            f.summary
        );
    }

    #[test]
    fn other_names_ports_and_epoll() {
        // A client on another port, reaching its socket through epoll, IPv6.
        let mut snap = base(900, "billing");
        let mut s = tcp(77, "[2001:db8::5]:51000", "[2001:db8::9]:5432", "ESTAB");
        let i = info_of(&mut s);
        i.bytes_acked = Some(201);
        i.bytes_received = Some(5000);
        i.last_data_sent_ms = 4200;
        i.last_data_recv_ms = 4300;
        i.last_ack_recv_ms = 4150;
        add_socket(&mut snap, 11, s);
        let waits = add_epoll(&mut snap, 5, &[11]);
        snap.threads
            .push(thread(901, "db-pool", "epoll_wait", waits, Some(4100)));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!((f.subject.tid, f.subject.fd), (Some(901), Some(11)));
        assert!(
            f.summary.contains("reply from [2001:db8::9]:5432"),
            "{}",
            f.summary
        );
        assert!(f.summary.contains("200-byte request"), "{}", f.summary);
        assert!(
            f.summary.contains("epoll_wait() (through epoll fd 5)"),
            "{}",
            f.summary
        );
        // No later ACK: do not claim the host is alive.
        assert!(
            !f.summary.contains("host and network are alive"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn answered_or_short_or_unwatched_is_not_silent() {
        let mut snap = seed();
        // The reply came after the request.
        socket_info(&mut snap, 692518610).last_data_recv_ms = 10;
        assert!(find(&Ctx::new(&snap)).is_empty());

        let mut snap = seed();
        // A request in flight for 300 ms is normal latency.
        socket_info(&mut snap, 692518610).last_data_sent_ms = 300;
        socket_info(&mut snap, 692518610).last_data_recv_ms = 300;
        snap.threads[1]
            .activity
            .as_mut()
            .unwrap()
            .blocked_at_least_ms = Some(300);
        assert!(find(&Ctx::new(&snap)).is_empty());

        let mut snap = seed();
        // Threads known, none waits on fd 29: a one-way or idle pool connection.
        snap.threads.retain(|t| t.tid != 31576);
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn one_way_stream_is_not_silent() {
        // A metrics client pushing lines to a collector that never answers, watched by an
        // idle event loop.
        let mut snap = base(70, "statsd-relay");
        let mut s = tcp(12, "10.9.0.2:47000", "10.9.0.3:2003", "ESTAB");
        let i = info_of(&mut s);
        i.bytes_acked = Some(2_000_001);
        i.data_segs_out = Some(4000);
        i.last_data_sent_ms = 1500;
        i.last_data_recv_ms = 3_600_000;
        add_socket(&mut snap, 9, s);
        let waits = add_epoll(&mut snap, 4, &[9]);
        snap.threads
            .push(thread(70, "relay", "epoll_wait", waits, Some(2000)));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn server_side_connection_is_not_silent() {
        // An HTTP server that answered and waits for the next request on a kept-alive
        // connection looks like "sent last, nothing back" from its side.
        let mut snap = base(50, "httpd");
        add_socket(&mut snap, 3, tcp(10, "0.0.0.0:8080", "0.0.0.0:0", "LISTEN"));
        let mut s = tcp(11, "10.1.1.1:8080", "10.1.1.2:40000", "ESTAB");
        let i = info_of(&mut s);
        i.bytes_acked = Some(5000);
        i.last_data_sent_ms = 9000;
        i.last_data_recv_ms = 9001;
        add_socket(&mut snap, 7, s);
        snap.threads.push(thread(
            50,
            "httpd",
            "poll",
            vec![fd_wait(7, &["POLLIN"])],
            Some(2000),
        ));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    /// psql (pid 4111) whose UPDATE waits on a row lock, as measured on PostgreSQL 15: the
    /// query went out the millisecond the server's "ready for query" came, and the server's
    /// delayed ACK followed 44 ms later with no data.
    fn psql_on_a_row_lock() -> Snapshot {
        let mut snap = base(4111, "psql");
        let mut s = tcp(838196, "127.0.0.1:38108", "127.0.0.1:45432", "ESTAB");
        let i = info_of(&mut s);
        i.bytes_acked = Some(108);
        i.bytes_received = Some(415);
        i.data_segs_out = Some(3);
        i.data_segs_in = Some(2);
        i.last_data_sent_ms = 2468;
        i.last_data_recv_ms = 2468;
        i.last_ack_recv_ms = 2424;
        i.ato_us = 40_000;
        add_socket(&mut snap, 3, s);
        snap.threads.push(thread(
            4111,
            "psql",
            "poll",
            vec![fd_wait(3, &["POLLIN", "POLLERR"])],
            Some(2400),
        ));
        snap
    }

    #[test]
    fn a_request_sent_the_millisecond_the_last_reply_came_is_told_by_the_late_ack() {
        let snap = psql_on_a_row_lock();
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Cause);
        assert!(
            f.summary.starts_with(
                "Thread 4111 (psql) has waited 2.5 s in poll() for a reply from \
                 127.0.0.1:45432 that is not coming: the 107-byte request was acknowledged"
            ),
            "{}",
            f.summary
        );
        let e = f
            .evidence
            .iter()
            .find(|e| e.label == "last word")
            .expect("what decided the tie");
        assert!(
            e.value.contains("an ACK with no data came 44 ms later"),
            "{}",
            e.value
        );
        assert_eq!(e.source, "ss: lastsnd:2468 lastrcv:2468 lastack:2424");
        assert_eq!(f.facts["last_word"]["by"], "bare_ack");
        assert_eq!(f.facts["last_word"]["ack_after_ms"], 44);

        // The same tie with the ACK on the reply itself: a reply that came at once.
        let mut snap = psql_on_a_row_lock();
        socket_info(&mut snap, 838196).last_ack_recv_ms = 2468;
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn a_connection_accepted_from_a_listener_is_not_a_request_of_ours() {
        // A PostgreSQL backend (it holds no listener: the postmaster does) on a port in the
        // ephemeral range, idle after answering psql on :38108.
        let backend = |accepted: Option<bool>| {
            let mut snap = base(4112, "postgres");
            let mut s = tcp(838880, "127.0.0.1:45432", "127.0.0.1:38108", "ESTAB");
            let i = info_of(&mut s);
            i.bytes_acked = Some(900);
            i.bytes_received = Some(300);
            i.last_data_sent_ms = 3000;
            i.last_data_recv_ms = 3050;
            i.last_ack_recv_ms = 2960;
            inet_of(&mut s).accepted = accepted;
            add_socket(&mut snap, 7, s);
            let waits = add_epoll(&mut snap, 9, &[7]);
            snap.threads
                .push(thread(4112, "postgres", "epoll_wait", waits, Some(3000)));
            snap
        };
        assert!(find(&Ctx::new(&backend(Some(true)))).is_empty());
        // Listeners not known (an older snapshot): the ports are all there is, and both are
        // in the ephemeral range, so it reads as a connection the backend opened.
        assert_eq!(find(&Ctx::new(&backend(None))).len(), 1);
        // And a client on a low port to a server in the ephemeral range is ours when the
        // listeners say so, whatever the ports suggest.
        let mut snap = psql_on_a_row_lock();
        let i = inet_of(socket_mut(&mut snap, 838196));
        i.local = endpoint("127.0.0.1:1022");
        i.accepted = Some(false);
        assert_eq!(find(&Ctx::new(&snap)).len(), 1);
    }

    #[test]
    fn without_threads_only_a_warning() {
        let mut snap = seed();
        snap.threads.clear();
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(
            found[0].summary.contains("not known"),
            "{}",
            found[0].summary
        );
    }
}
