//! Peer unreachable: the peer's kernel does not answer at all. Either a connect() whose SYNs go
//! unanswered (SYN-SENT), or data sent on an open connection that is never acknowledged while
//! the retransmit timer backs off. Words in `words/peer_unreachable.rs`.
//!
//! Facts from sock_diag (ss -tio): state, timer:(on,...,N), tcp_info retransmits, backoff, rto,
//! unacked, last_ack_recv.

use hangscope_model::TcpState;
use hangscope_model::{Cause, Next, Severity, Subject, TimerKind};

use crate::connection::Conn;
use crate::facts::peer_unreachable::{PeerUnreachable, Unreachable};
use crate::facts::{ConnFacts, OtherEnd, RuleFacts, ThreadWait};
use crate::waiters::Waiter;
use crate::{Ctx, STUCK_MS, log_quotes};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<PeerUnreachable> {
    let mut out = Vec::new();
    for conn in Conn::tcp(ctx) {
        let found = match conn.state() {
            TcpState::SynSent => syn_sent(ctx, conn),
            TcpState::Established
            | TcpState::CloseWait
            | TcpState::FinWait1
            | TcpState::LastAck => unacked(ctx, conn),
            _ => None,
        };
        out.extend(found);
    }
    out
}

fn retries(conn: &Conn<'_>) -> u32 {
    let timer = conn
        .inet
        .timer
        .as_ref()
        .map(|t| u32::from(t.retrans))
        .unwrap_or(0);
    let info = conn
        .info()
        .map(|i| u32::from(i.retransmits.max(i.backoff)))
        .unwrap_or(0);
    timer.max(info)
}

/// The facts either shape makes: the waiting thread, then what the logs say about the peer.
fn facts(
    ctx: &Ctx<'_>,
    conn: &Conn<'_>,
    w: Option<&Waiter<'_>>,
    retries: u32,
    stuck_ms: u64,
    shape: Unreachable,
) -> PeerUnreachable {
    let pid = ctx.snap.process.pid;
    PeerUnreachable {
        conn: ConnFacts::of(conn, pid),
        waiter: w.map(|w| ThreadWait::of(w, pid)),
        threads_known: ctx.waiters.known,
        opened_here: !conn.is_inbound(ctx),
        retries,
        stuck_ms,
        shape,
        log: log_quotes::quotes(ctx.snap, w.map(|w| w.thread.tid), &conn.peer()),
        host_alive: None,
    }
}

fn syn_sent(ctx: &Ctx<'_>, conn: &Conn<'_>) -> Option<PeerUnreachable> {
    let n = retries(conn);
    let w = ctx.waiters.first_on(&conn.fds);
    // SYNs are retried after 1 s, then 2, 4, 8 s (2^b - 1 s after b doublings, the backoff), or,
    // since Linux 6.5 (tcp_syn_linear_timeouts, 4 by default), first every 1 s without backing
    // off. So n retries took at least n s, and at least 2^b - 1 s: the larger is a lower bound
    // on either kernel.
    let backoff = conn.info().map_or(0, |i| i.backoff);
    let by_retries = u64::from(n)
        .max((1u64 << backoff.min(20)).saturating_sub(1))
        .saturating_mul(1000);
    let stuck_ms = by_retries.max(w.and_then(|w| w.blocked_ms()).unwrap_or(0));
    if n == 0 && stuck_ms < STUCK_MS {
        return None;
    }
    let mut f = facts(
        ctx,
        conn,
        w,
        n,
        stuck_ms,
        Unreachable::SynSent {
            rto_ms: conn.info().map(|i| u64::from(i.rto_us / 1000)),
            backoff: conn.info().map(|i| i.backoff),
            accept_queue_full: false,
        },
    );
    // The lookup of the connection's reversed pair finds the listener when the server is on
    // this host and no connection exists yet.
    let full = matches!(
        f.conn.other_end,
        Some(OtherEnd::Listener { accept_queue, backlog, .. }) if accept_queue > backlog
    );
    if let Unreachable::SynSent {
        accept_queue_full, ..
    } = &mut f.shape
    {
        *accept_queue_full = full;
    }
    Some(f)
}

fn unacked(ctx: &Ctx<'_>, conn: &Conn<'_>) -> Option<PeerUnreachable> {
    let info = conn.info()?;
    if info.unacked == 0 {
        return None;
    }
    // A closed window is the peer not reading (peer_not_reading), not an unreachable peer.
    if info.snd_wnd == Some(0) || conn.timer_is(TimerKind::Persist) {
        return None;
    }
    let n = retries(conn);
    if n == 0 && info.lost == 0 {
        return None;
    }
    let silent_ms = u64::from(info.last_ack_recv_ms);
    let w = ctx.waiters.first_on(&conn.fds);
    let stuck_ms = silent_ms.max(w.and_then(|w| w.blocked_ms()).unwrap_or(0));
    if silent_ms < STUCK_MS {
        return None;
    }
    Some(facts(
        ctx,
        conn,
        w,
        n,
        stuck_ms,
        Unreachable::Unacked {
            send_q: conn.inet.send_q,
            unacked: info.unacked,
            retransmits: info.retransmits,
            total_retrans: info.total_retrans,
            backoff: info.backoff,
            rto_ms: u64::from(info.rto_us / 1000),
            last_ack_ms: silent_ms,
        },
    ))
}

impl RuleFacts for PeerUnreachable {
    const RULE: &'static str = "peer_unreachable";

    fn cause(&self) -> Cause {
        Cause::PeerUnreachable
    }

    fn severity(&self) -> Severity {
        match &self.waiter {
            Some(_) => Severity::Cause,
            // The peer not answering at all is a fault whoever waits; without thread states it
            // is still the best lead, but the words say so.
            None if !self.threads_known => Severity::Cause,
            // Data this process sent on a connection it opened, retransmitted through backed
            // off timeouts: the peer or the path has stopped acknowledging, and whatever in the
            // process needs the answer (a retry loop, a thread waiting elsewhere for its
            // result) waits for it. On an accepted connection it is a client gone away, which
            // leaves a server waiting for nothing.
            None if self.opened_here && self.backed_off() => Severity::Cause,
            None => Severity::Warning,
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        self.conn.subject(self.waiter.as_ref())
    }

    fn next(&self) -> Option<Next> {
        Some(match self.full_listener() {
            Some(h) => Next::process(h.pid),
            None => {
                let (host, port) = (&self.conn.peer.addr, self.conn.peer.port);
                Next::host_port(host.clone(), port).with_command(format!("nc -vz {host} {port}"))
            }
        })
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

    #[test]
    fn syn_sent_with_retries_and_a_connecting_thread() {
        let mut snap = base(700, "agent");
        let mut s = tcp(5, "192.168.1.4:45000", "192.168.9.9:443", "SYN-SENT");
        timer(&mut s, TimerKind::On, 3000, 3);
        // A kernel that backs off from the first retry: 1 + 2 + 4 s.
        info_of(&mut s).backoff = 3;
        add_socket(&mut snap, 6, s);
        snap.threads
            .push(thread(700, "agent", "connect", vec![fd_wait(6, &[])], None));
        snap.threads[0].syscall.as_mut().unwrap().args = vec![6, 0, 16];
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!((f.subject.tid, f.subject.fd), (Some(700), Some(6)));
        assert!(
            f.summary
                .contains("at least 7.0 s in connect() for a connection to 192.168.9.9:443"),
            "{}",
            f.summary
        );
        assert!(
            f.summary
                .contains("4 connection attempts (SYN) got no answer"),
            "{}",
            f.summary
        );
        assert!(f.next_step.contains("nc -vz 192.168.9.9 443"));
    }

    /// A SYN-SENT connection to a server on this host whose lookup found its listener with
    /// `queued` connections waiting and a backlog of `backlog`.
    fn to_local_listener(queued: u32, backlog: u32) -> hangscope_model::Snapshot {
        let mut snap = base(700, "agent");
        let mut s = tcp(5, "127.0.0.1:45000", "127.0.0.1:8080", "SYN-SENT");
        timer(&mut s, TimerKind::On, 1000, 2);
        inet_of(&mut s).local_peer = Some(Box::new(hangscope_model::LocalPeer {
            inode: 90,
            state: "LISTEN".into(),
            recv_q: queued,
            send_q: backlog,
            end: Some(hangscope_model::PeerEnd::Held {
                holder: hangscope_model::PeerHolder {
                    pid: 4242,
                    name: "metad".into(),
                    fd: 3,
                    threads: None,
                    opened: vec![],
                },
            }),
            ..Default::default()
        }));
        add_socket(&mut snap, 6, s);
        snap
    }

    #[test]
    fn a_local_server_with_a_full_accept_queue_is_named() {
        let snap = to_local_listener(129, 128);
        let f = &find(&Ctx::new(&snap))[0];
        assert!(
            f.summary.contains(
                "its listening socket (fd 3 of process 4242 (metad)) has a full accept queue \
                 (129 waiting, backlog 128)"
            ),
            "{}",
            f.summary
        );
        assert!(
            f.next_step
                .starts_with("Look at process 4242 (metad): hangscope 4242")
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.label == "other end"
                    && e.value.ends_with("accept queue 129, backlog 128"))
        );
        // A queue with room does not explain the dropped SYNs: the usual words stand.
        let snap = to_local_listener(3, 128);
        let f = &find(&Ctx::new(&snap))[0];
        assert!(!f.summary.contains("accept queue"), "{}", f.summary);
        assert!(
            f.next_step.contains("nc -vz 127.0.0.1 8080"),
            "{}",
            f.next_step
        );
    }

    #[test]
    fn syn_retries_at_linear_timeouts_are_not_overstated() {
        // Linux 6.5+ retries SYNs every 1 s four times before backing off (backoff stays 0):
        // 4 retries are at least 4 s, not 15.
        let mut snap = base(700, "agent");
        let mut s = tcp(5, "192.168.1.4:45000", "192.168.9.9:443", "SYN-SENT");
        timer(&mut s, TimerKind::On, 1000, 4);
        add_socket(&mut snap, 6, s);
        let found = find(&Ctx::new(&snap));
        let f = &found[0];
        assert!(f.summary.contains("for at least 4.0 s"), "{}", f.summary);
    }

    #[test]
    fn established_with_backoff() {
        let mut snap = base(10, "rsync");
        let mut s = tcp(5, "10.0.0.1:50000", "10.0.0.2:873", "ESTAB");
        timer(&mut s, TimerKind::On, 6400, 5);
        inet_of(&mut s).send_q = 65160;
        let i = info_of(&mut s);
        i.unacked = 45;
        i.retransmits = 5;
        i.backoff = 5;
        i.total_retrans = 9;
        i.rto_us = 6_400_000;
        i.last_ack_recv_ms = 14_000;
        add_socket(&mut snap, 3, s);
        snap.threads.push(thread(
            10,
            "rsync",
            "write",
            vec![fd_wait(3, &[])],
            Some(2000),
        ));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Cause);
        assert!(
            f.summary.contains(
                "63.6 KiB sent there is not acknowledged: no ACK for 14.0 s, 5 retransmits"
            ),
            "{}",
            f.summary
        );
        assert!(f.summary.contains("backed off to 6.4 s"), "{}", f.summary);
    }

    #[test]
    fn request_cut_off_reads_as_one_sentence_per_fact() {
        // The unreachable-peer scenario: a 34-byte request after the peer's link went down.
        let mut snap = base(20, "client");
        let mut s = tcp(6, "10.250.0.1:57664", "10.250.0.2:32951", "ESTAB");
        timer(&mut s, TimerKind::On, 292, 3);
        inet_of(&mut s).send_q = 34;
        let i = info_of(&mut s);
        i.unacked = 1;
        i.retransmits = 3;
        i.backoff = 3;
        i.rto_us = 1_632_000;
        i.last_ack_recv_ms = 4312;
        add_socket(&mut snap, 3, s);
        snap.threads.push(thread(
            22,
            "dump_meta",
            "poll",
            vec![fd_wait(3, &["POLLIN"])],
            Some(2800),
        ));
        let found = find(&Ctx::new(&snap));
        let f = &found[0];
        assert_eq!(
            f.summary,
            "Thread 22 (dump_meta) has waited 4.3 s in poll() on 10.250.0.2:32951; 34 bytes \
             sent there are not acknowledged: no ACK for 4.3 s, 3 retransmits, retransmit \
             timeout backed off to 1.6 s. The peer's kernel does not answer: 10.250.0.2 is \
             down, or the path to it drops packets."
        );
        let e = f
            .evidence
            .iter()
            .find(|e| e.label == "unacknowledged")
            .unwrap();
        assert_eq!(
            e.value,
            "34 bytes in Send-Q, 1 segment in flight, last ACK 4.3 s ago"
        );
    }

    /// A request cut off on the path with `backoff` timeouts so far, on a connection opened
    /// here or `accepted`, while the process's only thread sleeps in a retry loop.
    fn dropped_under_a_sleep_loop(backoff: u8, accepted: bool) -> hangscope_model::Snapshot {
        let mut snap = base(20, "client");
        let mut s = tcp(6, "10.250.0.1:57664", "10.250.0.2:32951", "ESTAB");
        timer(&mut s, TimerKind::On, 800, backoff);
        inet_of(&mut s).send_q = 160;
        inet_of(&mut s).accepted = Some(accepted);
        let i = info_of(&mut s);
        i.unacked = 1;
        i.retransmits = 1;
        i.backoff = backoff;
        i.rto_us = 200_000 << backoff;
        i.last_ack_recv_ms = 4312;
        add_socket(&mut snap, 3, s);
        snap.threads.push(sleeper(20, "client", 100));
        snap
    }

    #[test]
    fn data_backed_off_on_a_connection_opened_here_is_a_cause_with_no_thread_on_it() {
        // As ss showed it: retrans:1/4 backoff:4, a retransmit timer running.
        let f = &find(&Ctx::new(&dropped_under_a_sleep_loop(4, false)))[0];
        assert_eq!(f.severity, Severity::Cause, "{}", f.summary);
        assert!(
            f.summary
                .contains("No thread is blocked on it; this process opened it"),
            "{}",
            f.summary
        );
        assert_eq!(f.facts["opened_here"], true);
        // One or two timeouts may still be a loss the next retransmit repairs.
        let f = &find(&Ctx::new(&dropped_under_a_sleep_loop(2, false)))[0];
        assert_eq!(f.severity, Severity::Warning);
        // A server's answer to a client gone away: the server waits for nothing.
        let f = &find(&Ctx::new(&dropped_under_a_sleep_loop(4, true)))[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary.contains("a client that went away"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn one_fresh_retransmit_or_closed_window_is_not_unreachable() {
        let mut snap = base(10, "x");
        let mut s = tcp(5, "10.0.0.1:50000", "10.0.0.2:873", "ESTAB");
        let i = info_of(&mut s);
        i.unacked = 2;
        i.retransmits = 1;
        i.last_ack_recv_ms = 200;
        add_socket(&mut snap, 3, s);
        assert!(find(&Ctx::new(&snap)).is_empty());
        let i = socket_info(&mut snap, 5);
        i.last_ack_recv_ms = 5000;
        i.snd_wnd = Some(0);
        assert!(find(&Ctx::new(&snap)).is_empty());
        // A connect that just started.
        let mut snap = base(10, "x");
        add_socket(
            &mut snap,
            3,
            tcp(5, "10.0.0.1:50000", "10.0.0.2:873", "SYN-SENT"),
        );
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn facts_name_the_connection_the_waiter_and_where_to_look() {
        let snap = to_local_listener(129, 128);
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.rule, "peer_unreachable");
        let facts = &f.facts;
        assert_eq!(facts["shape"], "syn_sent");
        assert_eq!(facts["accept_queue_full"], true);
        assert_eq!(facts["retries"], 2);
        assert_eq!(facts["conn"]["socket_inode"], 5);
        assert_eq!(facts["conn"]["fd"], 6);
        assert_eq!(facts["conn"]["state"], "SYN-SENT");
        let end = &facts["conn"]["other_end"];
        assert_eq!(end["kind"], "listener");
        assert_eq!(
            (end["inode"].as_u64(), end["accept_queue"].as_u64()),
            (Some(90), Some(129))
        );
        assert_eq!(end["holder"]["pid"], 4242);
        // The listener that does not accept is where to look, not the network.
        assert_eq!(f.next, Some(Next::process(4242)));

        let snap = to_local_listener(3, 128);
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.facts["accept_queue_full"], false);
        let next = f.next.as_ref().expect("next");
        assert_eq!(next.kind, hangscope_model::NextKind::HostPort);
        assert_eq!(
            (next.host.as_deref(), next.port),
            (Some("127.0.0.1"), Some(8080))
        );
    }

    #[test]
    fn facts_of_unacknowledged_data() {
        let mut snap = base(20, "client");
        let mut s = tcp(6, "10.250.0.1:57664", "10.250.0.2:32951", "ESTAB");
        timer(&mut s, TimerKind::On, 292, 3);
        inet_of(&mut s).send_q = 34;
        let i = info_of(&mut s);
        i.unacked = 1;
        i.retransmits = 3;
        i.backoff = 3;
        i.rto_us = 1_632_000;
        i.last_ack_recv_ms = 4312;
        add_socket(&mut snap, 3, s);
        snap.threads.push(thread(
            22,
            "dump_meta",
            "poll",
            vec![fd_wait(3, &["POLLIN"])],
            Some(2800),
        ));
        let f = &find(&Ctx::new(&snap))[0];
        let facts = &f.facts;
        assert_eq!(facts["shape"], "unacked");
        assert_eq!(facts["waiter"]["tid"], 22);
        assert_eq!(facts["waiter"]["fd"], 3);
        assert_eq!(facts["conn"]["socket_inode"], 6);
        assert_eq!(facts["conn"]["peer"]["port"], 32951);
        assert_eq!(
            (facts["send_q"].as_u64(), facts["unacked"].as_u64()),
            (Some(34), Some(1))
        );
        assert_eq!(facts["last_ack_ms"], 4312);
        assert_eq!(facts["rto_ms"], 1632);
        assert_eq!(facts["stuck_ms"], 4312);
        assert_eq!(f.stuck_ms, Some(4312));
        assert!(facts.get("other_end").is_none() && facts["conn"].get("other_end").is_none());
        let next = f.next.as_ref().expect("next");
        assert_eq!(next.kind, hangscope_model::NextKind::HostPort);
        assert_eq!(
            (next.host.as_deref(), next.port, next.command.as_deref()),
            (
                Some("10.250.0.2"),
                Some(32951),
                Some("nc -vz 10.250.0.2 32951")
            )
        );
    }
}
