//! Dead or half-open connections: keepalive probes go unanswered while a thread waits on the
//! connection, or the peer closed it (CLOSE-WAIT: FIN received) and a thread still waits on it
//! or nobody ever closes it. Words in `words/connection_dead.rs`.
//!
//! Facts from sock_diag (ss -tio): state, timer:(keepalive,...,probes), tcp_info probes and
//! last_ack_recv; waiters from /proc/PID/task/TID/syscall.

use hangscope_model::TcpState;
use hangscope_model::{Cause, Next, Severity, Subject, TimerKind};

use crate::connection::Conn;
use crate::facts::connection_dead::{ConnectionDead, Dead};
use crate::facts::{ConnFacts, RuleFacts, ThreadWait};
use crate::{Ctx, STUCK_MS};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<ConnectionDead> {
    let mut out = Vec::new();
    for conn in Conn::tcp(ctx) {
        let shape = match conn.state() {
            TcpState::Established => keepalive_unanswered(conn),
            TcpState::CloseWait => peer_closed(ctx, conn),
            _ => None,
        };
        let Some(shape) = shape else { continue };
        let pid = ctx.snap.process.pid;
        let w = ctx.waiters.first_on(&conn.fds);
        let stuck_ms = match &shape {
            Dead::KeepaliveUnanswered { last_ack_ms, .. } => *last_ack_ms,
            Dead::PeerClosed { since_ms, .. } => since_ms.unwrap_or(0),
        };
        out.push(ConnectionDead {
            pid,
            conn: ConnFacts::of(conn, pid),
            waiter: w.map(|w| ThreadWait::of(w, pid)),
            threads_known: ctx.waiters.known,
            stuck_ms,
            shape,
            host_alive: None,
        });
    }
    out
}

fn keepalive_unanswered(conn: &Conn<'_>) -> Option<Dead> {
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
    Some(Dead::KeepaliveUnanswered {
        probes,
        tcp_info_probes: info.probes,
        last_ack_ms: silent_ms,
    })
}

fn peer_closed(ctx: &Ctx<'_>, conn: &Conn<'_>) -> Option<Dead> {
    if !ctx.waiters.known {
        return None;
    }
    // When the FIN came is not recorded; the last packet from the peer bounds it.
    let since_ms = conn
        .info()
        .map(|i| u64::from(i.last_ack_recv_ms.min(i.last_data_recv_ms)));
    // A server closes its end right after the FIN; only a lasting CLOSE-WAIT matters, unless
    // a thread waits on it.
    if ctx.waiters.first_on(&conn.fds).is_none() && since_ms.is_none_or(|ms| ms < STUCK_MS) {
        return None;
    }
    Some(Dead::PeerClosed {
        since_ms,
        // The FIN takes a sequence number, so Recv-Q counts it until the program reads the end
        // (a read returning 0): a CLOSE-WAIT socket whose data was all read shows Recv-Q 1.
        unread: conn.inet.recv_q.saturating_sub(1),
        recv_q: conn.inet.recv_q,
    })
}

impl RuleFacts for ConnectionDead {
    const RULE: &'static str = "connection_dead";

    fn cause(&self) -> Cause {
        match self.shape {
            Dead::KeepaliveUnanswered { .. } => Cause::ConnectionDead,
            Dead::PeerClosed { .. } => Cause::PeerClosed,
        }
    }

    fn severity(&self) -> Severity {
        if self.waiter.is_some() {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        self.conn.subject(self.waiter.as_ref())
    }

    fn next(&self) -> Option<Next> {
        Some(match (&self.shape, &self.waiter) {
            (Dead::KeepaliveUnanswered { .. }, _) => {
                let host = &self.conn.peer.addr;
                Next::host_port(host.clone(), self.conn.peer.port)
                    .with_command(format!("ping {host}"))
            }
            // The fix is in this process: the thread that misses the end of the stream, or
            // whatever owns the fd.
            (Dead::PeerClosed { .. }, Some(w)) => Next::thread(self.pid, w.tid),
            (Dead::PeerClosed { .. }, None) => Next::process(self.pid),
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
        let f = &found[0];
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
        let waits = add_epoll(&mut snap, 4, &[8]);
        snap.threads
            .push(thread(1, "proxy", "epoll_wait", waits, Some(2000)));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0];
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

    #[test]
    fn facts_tell_the_two_shapes_apart() {
        let mut snap = base(1, "client");
        let mut s = tcp(3, "10.2.0.1:40000", "10.2.0.9:6379", "ESTAB");
        timer(&mut s, TimerKind::Keepalive, 1000, 4);
        let i = info_of(&mut s);
        i.probes = 2;
        i.last_ack_recv_ms = 64_000;
        add_socket(&mut snap, 8, s);
        snap.threads.push(thread(
            2,
            "redis-io",
            "poll",
            vec![fd_wait(8, &["POLLIN"])],
            Some(2000),
        ));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(
            (f.rule.as_str(), f.cause),
            ("connection_dead", Cause::ConnectionDead)
        );
        let facts = &f.facts;
        assert_eq!(facts["shape"], "keepalive_unanswered");
        assert_eq!(
            (facts["probes"].as_u64(), facts["tcp_info_probes"].as_u64()),
            (Some(4), Some(2))
        );
        assert_eq!(facts["last_ack_ms"], 64_000);
        assert_eq!(facts["waiter"]["tid"], 2);
        assert_eq!(facts["waiter"]["fd"], 8);
        assert_eq!(facts["conn"]["socket_inode"], 3);
        let next = f.next.as_ref().expect("next");
        assert_eq!(
            (next.kind, next.host.as_deref(), next.port),
            (
                hangscope_model::NextKind::HostPort,
                Some("10.2.0.9"),
                Some(6379)
            )
        );

        // The peer closed: the fix is in this process, at the thread that missed the end.
        let mut snap = base(1, "proxy");
        let mut s = tcp(3, "10.2.0.1:40000", "10.2.0.9:80", "CLOSE-WAIT");
        // 11 bytes unread, and the FIN.
        inet_of(&mut s).recv_q = 12;
        info_of(&mut s).last_ack_recv_ms = 4000;
        info_of(&mut s).last_data_recv_ms = 3000;
        add_socket(&mut snap, 8, s);
        snap.threads.push(thread(
            5,
            "proxy",
            "read",
            vec![fd_wait(8, &[])],
            Some(2000),
        ));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(
            (f.rule.as_str(), f.cause),
            ("connection_dead", Cause::PeerClosed)
        );
        assert_eq!(f.facts["shape"], "peer_closed");
        assert_eq!(f.facts["since_ms"], 3000);
        assert_eq!(
            (&f.facts["unread"], &f.facts["recv_q"]),
            (&11.into(), &12.into())
        );
        assert!(
            f.summary.contains("with 11 bytes still unread"),
            "{}",
            f.summary
        );
        assert_eq!(f.stuck_ms, Some(3000));
        assert_eq!(f.next, Some(Next::thread(1, 5)));
    }
}
