//! Dead or half-open connections: keepalive probes go unanswered while a thread waits on the
//! connection, or the peer closed it (CLOSE-WAIT: FIN received) and a thread still waits on it
//! or nobody ever closes it.
//!
//! Facts from sock_diag (ss -tio): state, timer:(keepalive,...,probes), tcp_info probes and
//! last_ack_recv; waiters from /proc/PID/task/TID/syscall.

use hangscope_model::{Cause, Evidence, Finding, Severity, TimerKind};

use crate::connection::Conn;
use crate::rules::no_threads_note;
use crate::{Ctx, Found, STUCK_MS, waiters, wording};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    for conn in Conn::tcp(ctx) {
        let found = match conn.state() {
            "ESTAB" => keepalive_unanswered(ctx, conn),
            "CLOSE-WAIT" => peer_closed(ctx, conn),
            _ => None,
        };
        out.extend(found);
    }
    out
}

fn keepalive_unanswered(ctx: &Ctx<'_>, conn: &Conn<'_>) -> Option<Found> {
    let info = conn.info()?;
    let timer_probes = conn
        .inet
        .timer
        .as_ref()
        .filter(|t| t.kind == TimerKind::Keepalive)
        .map(|t| t.retrans)
        .unwrap_or(0);
    let probes = timer_probes.max(if info.unacked == 0 { info.probes } else { 0 });
    if probes == 0 || info.unacked > 0 {
        return None;
    }
    let silent_ms = u64::from(info.last_ack_recv_ms);
    if silent_ms < STUCK_MS {
        return None;
    }
    let w = ctx.waiters.first_on(&conn.fds);
    let severity = if w.is_some() {
        Severity::Cause
    } else {
        Severity::Warning
    };
    let peer = conn.peer();
    let what = format!(
        "{} got no answer and nothing came from the peer for {}; {} is down or the path to it \
         is cut, and the kernel drops the connection only after the last probe fails.",
        wording::plural(u64::from(probes), "keepalive probe", "keepalive probes"),
        wording::duration(silent_ms),
        conn.inet.peer.addr
    );
    let summary = match w {
        Some(w) => format!(
            "{} waits in {} on a dead connection to {peer}: {what}",
            wording::thread(w.thread),
            w.how()
        ),
        None => format!(
            "The connection to {peer} on {} is dead: {what}{}",
            conn.fd_text(),
            no_threads_note(ctx)
        ),
    };
    let mut evidence = waiters::evidence_from(w, ctx.snap.process.pid);
    evidence.push(Evidence::new(
        "keepalive",
        format!(
            "{} unanswered, last ACK {} ago",
            wording::plural(u64::from(probes), "probe", "probes"),
            wording::duration(silent_ms)
        ),
        format!(
            "ss: {} probes:{} lastack:{}",
            conn.timer_text().unwrap_or_default(),
            info.probes,
            info.last_ack_recv_ms
        ),
    ));
    evidence.extend(conn.window_evidence());
    Some(Found {
        finding: Finding {
            severity,
            cause: Cause::ConnectionDead,
            summary,
            subject: conn.subject(w),
            evidence,
            ruled_out: vec![],
            next_step: format!(
                "Check whether {} is up and reachable (ping {}); the program should time out \
                 its wait instead of relying on keepalive.",
                conn.inet.peer.addr, conn.inet.peer.addr
            ),
            ..Finding::default()
        },
        stuck_ms: silent_ms,
    })
}

fn peer_closed(ctx: &Ctx<'_>, conn: &Conn<'_>) -> Option<Found> {
    if !ctx.waiters.known {
        return None;
    }
    let w = ctx.waiters.first_on(&conn.fds);
    // When the FIN came is not recorded; the last packet from the peer bounds it.
    let since_ms = conn
        .info()
        .map(|i| u64::from(i.last_ack_recv_ms.min(i.last_data_recv_ms)));
    let peer = conn.peer();
    let fd = conn.fd_text();
    let unread = u64::from(conn.inet.recv_q);
    let unread_text = if unread > 0 {
        format!(" with {} still unread", wording::bytes(unread))
    } else {
        String::new()
    };
    let (severity, summary, next_step) = match w {
        Some(w) => (
            Severity::Cause,
            format!(
                "{} waits in {} on {fd}, but {peer} closed that connection{unread_text} \
                 (CLOSE-WAIT): the program missed the end of the stream and waits for data \
                 that cannot come.",
                wording::thread(w.thread),
                w.how()
            ),
            format!(
                "Fix the program so it handles end-of-file on {fd} (a read returning 0) and \
                 closes the socket; with edge-triggered epoll, read until EAGAIN."
            ),
        ),
        None => {
            // A server closes its end right after the FIN; only a lasting CLOSE-WAIT matters.
            if since_ms.is_none_or(|ms| ms < STUCK_MS) {
                return None;
            }
            (
                Severity::Warning,
                format!(
                    "{peer} closed its connection on {fd}{unread_text} and the program has not \
                     closed its end (CLOSE-WAIT); no thread waits on it."
                ),
                format!(
                    "Find the code that owns {fd}: it stopped using the connection without \
                     closing it, or the thread that would close it is stuck."
                ),
            )
        }
    };
    let mut evidence = waiters::evidence_from(w, ctx.snap.process.pid);
    evidence.push(Evidence::new(
        "state",
        match since_ms {
            Some(ms) => format!(
                "CLOSE-WAIT, Recv-Q {unread}, last packet from the peer {} ago",
                wording::duration(ms)
            ),
            None => format!("CLOSE-WAIT, Recv-Q {unread}"),
        },
        "ss: CLOSE-WAIT",
    ));
    evidence.extend(conn.window_evidence());
    Some(Found {
        finding: Finding {
            severity,
            cause: Cause::PeerClosed,
            summary,
            subject: conn.subject(w),
            evidence,
            ruled_out: vec![],
            next_step,
            ..Finding::default()
        },
        stuck_ms: since_ms.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn keepalive_probes_unanswered_under_a_waiting_thread() {
        let mut snap = base(1, "client");
        let mut s = tcp(3, "10.2.0.1:40000", "10.2.0.9:6379", "ESTAB");
        timer(&mut s, TimerKind::Keepalive, 1000, 4);
        let i = info_of(&mut s);
        i.probes = 4;
        i.last_ack_recv_ms = 64_000;
        add_socket(&mut snap, 8, s);
        snap.threads.push(thread(
            2,
            "redis-io",
            "poll",
            vec![fd_wait(8, &["POLLIN"])],
            Some(2000),
        ));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0].finding;
        assert_eq!(
            (f.severity, f.cause),
            (Severity::Cause, Cause::ConnectionDead)
        );
        assert!(f.summary.starts_with("Thread 2 (redis-io) waits in poll() on a dead connection to 10.2.0.9:6379: 4 keepalive probes got no answer and nothing came from the peer for 1 min 4 s"), "{}", f.summary);
    }

    #[test]
    fn close_wait_with_a_waiter_is_a_cause() {
        let mut snap = base(1, "proxy");
        add_socket(
            &mut snap,
            8,
            tcp(3, "10.2.0.1:40000", "10.2.0.9:80", "CLOSE-WAIT"),
        );
        add_epoll(&mut snap, 4, &[8]);
        snap.threads.push(thread(
            1,
            "proxy",
            "epoll_wait",
            vec![fd_wait(4, &[])],
            Some(2000),
        ));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0].finding;
        assert_eq!(
            (f.severity, f.cause, f.subject.fd),
            (Severity::Cause, Cause::PeerClosed, Some(8))
        );
        assert!(
            f.summary
                .contains("10.2.0.9:80 closed that connection (CLOSE-WAIT)"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn fresh_close_wait_without_waiter_is_nothing() {
        let mut snap = base(1, "server");
        let mut s = tcp(3, "10.2.0.1:80", "10.2.0.9:40000", "CLOSE-WAIT");
        info_of(&mut s).last_ack_recv_ms = 5;
        add_socket(&mut snap, 8, s);
        snap.threads
            .push(thread(1, "server", "accept4", vec![], None));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
