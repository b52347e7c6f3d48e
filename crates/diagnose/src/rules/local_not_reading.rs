//! Local process not reading: data arrived on a socket (Recv-Q > 0) and has sat there, and no
//! thread of the process is in read, recv, poll or epoll_wait on it. Whatever should read it is
//! busy or blocked elsewhere. Words in `words/local_not_reading.rs`.
//!
//! Facts from sock_diag (ss -tn Recv-Q, tcp_info last_data_recv) and
//! /proc/PID/task/TID/syscall for every thread.

use hangscope_model::TcpState;
use hangscope_model::{Cause, Next, Severity, Subject};

use crate::connection::{Conn, Proto};
use crate::facts::local_not_reading::LocalNotReading;
use crate::facts::{BlockedThread, ConnFacts, RuleFacts};
use crate::{Ctx, STUCK_MS};

/// Threads named one by one; the rest are counted.
const SHOWN: usize = 3;

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<LocalNotReading> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    // Without thread states there is no telling whether someone is about to read.
    if !ctx.waiters.known {
        return out;
    }
    let blocked: Vec<_> = ctx
        .snap
        .threads
        .iter()
        .filter(|t| t.syscall.as_ref().is_some_and(|s| !s.running))
        .collect();
    for conn in Conn::all(ctx) {
        if conn.inet.recv_q == 0
            || !matches!(conn.state(), TcpState::Established | TcpState::Unconnected)
        {
            continue;
        }
        let waiters = ctx.waiters.on_any(&conn.fds);
        if waiters.iter().any(|w| w.wants_read()) {
            continue;
        }
        let waited_ms = conn.info().map(|i| u64::from(i.last_data_recv_ms));
        // Data that just arrived on a busy connection is about to be read.
        if conn.proto == Proto::Tcp && waited_ms.is_some_and(|ms| ms < STUCK_MS) {
            continue;
        }
        out.push(LocalNotReading {
            pid,
            conn: ConnFacts::of(conn, pid),
            queued: conn.inet.recv_q,
            waited_ms,
            blocked_count: blocked.len(),
            blocked: blocked
                .iter()
                .take(SHOWN)
                .map(|t| BlockedThread::of(t))
                .collect(),
        });
    }
    out
}

impl RuleFacts for LocalNotReading {
    const RULE: &'static str = "local_not_reading";

    fn cause(&self) -> Cause {
        Cause::LocalNotReading
    }

    fn severity(&self) -> Severity {
        // TCP says how long the data has waited; a datagram's wait is not known.
        match (self.conn.proto, self.waited_ms) {
            (Proto::Tcp, Some(_)) => Severity::Cause,
            _ => Severity::Warning,
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.waited_ms.unwrap_or(0)
    }

    fn subject(&self) -> Subject {
        self.conn.subject(None)
    }

    fn next(&self) -> Option<Next> {
        Some(match self.blocked.first() {
            Some(t) => Next::thread(self.pid, t.tid),
            None => Next::process(self.pid),
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
    use hangscope_model::WaitObject;

    fn unread(snap: &mut hangscope_model::Snapshot, last_recv_ms: u32) {
        let mut s = tcp(40, "127.0.0.1:51000", "127.0.0.1:7000", "ESTAB");
        inet_of(&mut s).recv_q = 4096;
        let i = info_of(&mut s);
        i.bytes_acked = Some(20);
        i.bytes_received = Some(4096);
        i.last_data_recv_ms = last_recv_ms;
        add_socket(snap, 3, s);
    }

    #[test]
    fn data_waits_while_thread_sleeps() {
        let mut snap = base(400, "consumer");
        unread(&mut snap, 3500);
        snap.threads.push(thread(
            400,
            "consumer",
            "clock_nanosleep",
            vec![WaitObject::Sleep {
                ns: 3_600_000_000_000,
            }],
            Some(2000),
        ));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.subject.fd, Some(3));
        assert_eq!(
            f.summary,
            "Data from 127.0.0.1:7000 sits unread in the receive queue of fd 3 (4.0 KiB, the \
             newest arrived 3.5 s ago), and no thread reads it: its one waiting thread is in \
             clock_nanosleep()."
        );
    }

    #[test]
    fn the_step_names_the_thread_as_it_is_called() {
        let mut snap = base(400, "consumer");
        unread(&mut snap, 3500);
        snap.threads.push(thread(
            401,
            "MetaConsumer",
            "clock_nanosleep",
            vec![WaitObject::Sleep {
                ns: 3_600_000_000_000,
            }],
            Some(2000),
        ));
        let f = &find(&Ctx::new(&snap))[0];
        assert!(
            f.next_step
                .contains("look at what thread 401 (MetaConsumer) waits for"),
            "{}",
            f.next_step
        );
    }

    #[test]
    fn many_threads_are_summed_up_not_listed() {
        // The unread-client scenario: main joins the consumer, a watchdog and the consumer
        // sleep.
        let mut snap = base(400, "client");
        unread(&mut snap, 1500);
        snap.threads
            .push(thread(400, "client", "futex", vec![], Some(1000)));
        snap.threads
            .push(thread(402, "client", "clock_nanosleep", vec![], Some(1000)));
        snap.threads
            .push(thread(403, "consumer", "clock_nanosleep", vec![], None));
        let found = find(&Ctx::new(&snap));
        let f = &found[0];
        assert!(
            f.summary.ends_with(
                "no thread reads it: its 3 waiting threads are in futex(), clock_nanosleep()."
            ),
            "{}",
            f.summary
        );
        assert_eq!(
            f.evidence
                .iter()
                .filter(|e| e.label.starts_with("thread "))
                .count(),
            3
        );
    }

    #[test]
    fn window_shows_the_queue_growing() {
        let mut snap = base(400, "consumer");
        unread(&mut snap, 3500);
        inet_of(socket_mut(&mut snap, 40)).window =
            Some(Box::new(hangscope_model::ConnectionWindow {
                duration_ms: 2000,
                looks: 2,
                bytes_acked: Some(0),
                bytes_received: Some(2048),
                recv_q_first: 2048,
                send_q_first: 0,
                moving: true,
                ..Default::default()
            }));
        snap.threads.push(thread(
            400,
            "consumer",
            "clock_nanosleep",
            vec![WaitObject::Sleep { ns: 1_000_000_000 }],
            Some(2000),
        ));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let e = found[0]
            .evidence
            .iter()
            .find(|e| e.label == "watched")
            .expect("window evidence");
        assert_eq!(
            e.value,
            "2.0 KiB in, 0 bytes out, Recv-Q 2048 → 4096, Send-Q 0 → 0 over the 2.0 s window"
        );
    }

    #[test]
    fn reader_fresh_data_or_unknown_threads_is_nothing() {
        let mut snap = base(400, "consumer");
        unread(&mut snap, 3500);
        snap.threads.push(thread(
            400,
            "consumer",
            "recvfrom",
            vec![fd_wait(3, &[])],
            Some(2000),
        ));
        assert!(find(&Ctx::new(&snap)).is_empty(), "a reader is there");
        let mut snap = base(400, "consumer");
        unread(&mut snap, 20);
        snap.threads
            .push(thread(400, "consumer", "clock_nanosleep", vec![], None));
        assert!(
            find(&Ctx::new(&snap)).is_empty(),
            "busy server: data just arrived"
        );
        let mut snap = base(400, "consumer");
        unread(&mut snap, 3500);
        assert!(find(&Ctx::new(&snap)).is_empty(), "threads not read");
    }

    #[test]
    fn facts_name_the_queue_and_where_the_threads_are() {
        let mut snap = base(400, "client");
        unread(&mut snap, 1500);
        snap.threads
            .push(thread(400, "client", "futex", vec![], Some(1000)));
        let mut sleeper = thread(402, "consumer", "clock_nanosleep", vec![], Some(1000));
        sleeper.syscall.as_mut().unwrap().summary = "clock_nanosleep(1 h)".into();
        snap.threads.push(sleeper);
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.rule, "local_not_reading");
        let facts = &f.facts;
        assert_eq!(facts["conn"]["socket_inode"], 40);
        assert_eq!(facts["conn"]["fd"], 3);
        assert_eq!(facts["conn"]["proto"], "tcp");
        assert_eq!(facts["queued"], 4096);
        assert_eq!(facts["waited_ms"], 1500);
        assert_eq!(facts["blocked_count"], 2);
        assert_eq!(facts["blocked"][0]["tid"], 400);
        assert_eq!(facts["blocked"][1]["call"], "clock_nanosleep(1 h)");
        assert_eq!(f.next, Some(Next::thread(400, 400)));

        // A datagram's wait is not known: a warning.
        let mut snap = base(400, "collector");
        let mut s = udp(41, "10.0.0.5:5000", "10.0.0.9:6000");
        inet_of(&mut s).recv_q = 700;
        add_socket(&mut snap, 4, s);
        snap.threads
            .push(thread(400, "collector", "futex", vec![], Some(1000)));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.facts["conn"]["proto"], "udp");
        assert!(f.facts.get("waited_ms").is_none());
        assert_eq!(
            f.subject.connection.as_deref(),
            Some("UDP 10.0.0.5:5000 -> 10.0.0.9:6000")
        );
    }
}
