//! Peer unreachable: the peer's kernel does not answer at all. Either a connect() whose SYNs go
//! unanswered (SYN-SENT), or data sent on an open connection that is never acknowledged while
//! the retransmit timer backs off.
//!
//! Facts from sock_diag (ss -tio): state, timer:(on,...,N), tcp_info retransmits, backoff, rto,
//! unacked, last_ack_recv.

use hangscope_model::{Cause, Evidence, Finding, Severity, TimerKind};

use crate::connection::Conn;
use crate::rules::no_threads_note;
use crate::waiters::{self, Waiter};
use crate::{Ctx, Found, STUCK_MS, log_quotes, wording};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    for conn in Conn::tcp(ctx) {
        let found = match conn.state() {
            "SYN-SENT" => syn_sent(ctx, conn),
            "ESTAB" | "CLOSE-WAIT" | "FIN-WAIT-1" | "LAST-ACK" => unacked(ctx, conn),
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

fn severity(ctx: &Ctx<'_>, w: Option<&Waiter<'_>>) -> Severity {
    match w {
        Some(_) => Severity::Cause,
        // The peer not answering at all is a fault whoever waits; without thread states it is
        // still the best lead, but say so.
        None if !ctx.waiters.known => Severity::Cause,
        None => Severity::Warning,
    }
}

/// The finding either shape makes: the waiting thread's call, then `facts`, then what the logs
/// say about the peer.
fn found(
    ctx: &Ctx<'_>,
    conn: &Conn<'_>,
    w: Option<&Waiter<'_>>,
    summary: String,
    facts: Vec<Evidence>,
    stuck_ms: u64,
) -> Found {
    let mut evidence = waiters::evidence_from(w, ctx.snap.process.pid);
    evidence.extend(facts);
    evidence.extend(log_quotes::evidence(
        ctx.snap,
        w.map(|w| w.thread.tid),
        &conn.peer(),
    ));
    Found {
        finding: Finding {
            severity: severity(ctx, w),
            cause: Cause::PeerUnreachable,
            summary,
            subject: conn.subject(w),
            evidence,
            ruled_out: vec![],
            next_step: path_step(conn),
            ..Finding::default()
        },
        stuck_ms,
    }
}

fn path_step(conn: &Conn<'_>) -> String {
    let host = &conn.inet.peer.addr;
    let port = conn.inet.peer.port;
    format!(
        "Check that {host} is up and reachable from here on port {port}: ping {host}; \
         nc -vz {host} {port}; look for a firewall or route change dropping the packets."
    )
}

fn syn_sent(ctx: &Ctx<'_>, conn: &Conn<'_>) -> Option<Found> {
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
    let peer = conn.peer();
    let attempts = wording::plural(
        u64::from(n) + 1,
        "connection attempt (SYN)",
        "connection attempts (SYN)",
    );
    let listener = Listener::of(ctx, conn);
    let what = match &listener {
        Some(l) if l.full => format!(
            "{attempts} got no answer because the server on :{} is on this host and its \
             listening socket ({}) has a full accept queue ({} waiting, backlog {}): it does \
             not accept() connections, so the kernel drops the SYNs.",
            conn.inet.peer.port, l.who, l.queued, l.backlog
        ),
        _ => format!(
            "{attempts} got no answer; {} is down or unreachable, or a firewall drops the \
             packets.",
            conn.inet.peer.addr
        ),
    };
    let summary = match w {
        Some(w) => format!(
            "{} has waited at least {} in {} for a connection to {peer}: {what}",
            wording::thread(w.thread),
            wording::duration(stuck_ms),
            w.how()
        ),
        None => format!(
            "The connection to {peer} on {} has been opening for at least {}: {what}{}",
            conn.fd_text(),
            wording::duration(stuck_ms),
            no_threads_note(ctx)
        ),
    };
    let mut facts = vec![Evidence::new(
        "state",
        format!(
            "SYN-SENT, {} so far",
            wording::plural(u64::from(n), "retry", "retries")
        ),
        conn.with_timer("ss: SYN-SENT".to_string()),
    )];
    if let Some(i) = conn.info() {
        facts.push(Evidence::new(
            "retransmit timeout",
            wording::duration(u64::from(i.rto_us / 1000)),
            format!("ss: rto:{} backoff:{}", i.rto_us / 1000, i.backoff),
        ));
    }
    facts.extend(conn.local_peer_evidence(ctx.snap.process.pid));
    facts.extend(conn.local_peer_threads(ctx.snap.process.pid));
    let mut f = found(ctx, conn, w, summary, facts, stuck_ms);
    if let Some(l) = listener.filter(|l| l.full) {
        f.finding.next_step = l.next_step;
    }
    Some(f)
}

/// The socket listening on a SYN-SENT connection's port, when the server is on this host: a
/// lookup of the connection's reversed pair finds the listener when no connection exists.
struct Listener {
    /// "fd 3 of process 4242 (metad)".
    who: String,
    queued: u32,
    backlog: u32,
    /// The accept queue is over its backlog: the kernel drops new SYNs (sk_acceptq_is_full).
    full: bool,
    next_step: String,
}

impl Listener {
    fn of(ctx: &Ctx<'_>, conn: &Conn<'_>) -> Option<Listener> {
        let p = conn.inet.local_peer.as_deref()?;
        if p.state != "LISTEN" {
            return None;
        }
        let pid = ctx.snap.process.pid;
        let who = conn.local_holder(pid)?;
        let h = p.holder.as_ref()?;
        Some(Listener {
            who,
            queued: p.recv_q,
            backlog: p.send_q,
            full: p.recv_q > p.send_q,
            next_step: crate::other_end::accept_step(h, pid),
        })
    }
}

fn unacked(ctx: &Ctx<'_>, conn: &Conn<'_>) -> Option<Found> {
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
    let peer = conn.peer();
    let queued = u64::from(conn.inet.send_q);
    let amount = wording::bytes(queued.max(u64::from(info.unacked)));
    let what = format!(
        "{amount} sent there {} not acknowledged: no ACK for {}, {}, retransmit timeout backed \
         off to {}. The peer's kernel does not answer: {} is down, or the path to it drops \
         packets.",
        if amount.ends_with(" bytes") {
            "are"
        } else {
            "is"
        },
        wording::duration(silent_ms),
        wording::plural(u64::from(n), "retransmit", "retransmits"),
        wording::duration(u64::from(info.rto_us / 1000)),
        conn.inet.peer.addr
    );
    let summary = match w {
        Some(w) => format!(
            "{} has waited {} in {} on {peer}; {what}",
            wording::thread(w.thread),
            wording::duration(stuck_ms),
            w.how()
        ),
        None => format!(
            "Data to {peer} on {} is not getting through: {what}{}",
            conn.fd_text(),
            no_threads_note(ctx)
        ),
    };
    let src = format!(
        "ss: Send-Q {} unacked:{} retrans:{}/{} backoff:{} rto:{} lastack:{}",
        conn.inet.send_q,
        info.unacked,
        info.retransmits,
        info.total_retrans,
        info.backoff,
        info.rto_us / 1000,
        info.last_ack_recv_ms
    );
    let facts = vec![Evidence::new(
        "unacknowledged",
        format!(
            "{} in Send-Q, {} in flight, last ACK {} ago",
            wording::bytes(queued),
            wording::plural(u64::from(info.unacked), "segment", "segments"),
            wording::duration(silent_ms)
        ),
        conn.with_timer(src),
    )];
    Some(found(ctx, conn, w, summary, facts, stuck_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn syn_sent_with_retries_and_a_connecting_thread() {
        let mut snap = base(700, "agent");
        let mut s = tcp(5, "192.168.1.4:45000", "192.168.9.9:443", "SYN-SENT");
        timer(&mut s, TimerKind::On, 3000, 3);
        // A kernel that backs off from the first retry: 1 + 2 + 4 s.
        info_of(&mut s).backoff = 3;
        add_socket(&mut snap, 6, s);
        snap.threads
            .push(thread(700, "agent", "connect", vec![], None));
        snap.threads[0].syscall.as_mut().unwrap().args = vec![6, 0, 16];
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0].finding;
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
            holder: Some(hangscope_model::PeerHolder {
                pid: 4242,
                name: "metad".into(),
                fd: 3,
                threads: None,
            }),
            ..Default::default()
        }));
        add_socket(&mut snap, 6, s);
        snap
    }

    #[test]
    fn a_local_server_with_a_full_accept_queue_is_named() {
        let snap = to_local_listener(129, 128);
        let f = &find(&Ctx::new(&snap))[0].finding;
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
        let f = &find(&Ctx::new(&snap))[0].finding;
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
        let f = &found[0].finding;
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
        let f = &found[0].finding;
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
        let f = &found[0].finding;
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
}
