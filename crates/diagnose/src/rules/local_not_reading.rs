//! Local process not reading: data arrived on a socket (Recv-Q > 0) and has sat there, and no
//! thread of the process is in read, recv, poll or epoll_wait on it. Whatever should read it is
//! busy or blocked elsewhere.
//!
//! Facts from sock_diag (ss -tn Recv-Q, tcp_info last_data_recv) and
//! /proc/PID/task/TID/syscall for every thread.

use hangscope_model::{Cause, Evidence, Finding, Severity, Thread};

use crate::connection::{Conn, Proto};
use crate::{Ctx, Found, STUCK_MS, wording};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    // Without thread states there is no telling whether someone is about to read.
    if !ctx.waiters.known {
        return out;
    }
    for conn in Conn::all(ctx) {
        if conn.inet.recv_q == 0 || !matches!(conn.state(), "ESTAB" | "UNCONN") {
            continue;
        }
        let waiters = ctx.waiters.on_any(&conn.fds);
        if waiters.iter().any(|w| w.wants_read()) {
            continue;
        }
        // How long the newest byte has waited bounds how long the oldest has.
        let waited_ms = conn.info().map(|i| u64::from(i.last_data_recv_ms));
        let severity = match (conn.proto, waited_ms) {
            (Proto::Tcp, Some(ms)) if ms >= STUCK_MS => Severity::Cause,
            (Proto::Tcp, Some(_)) => continue,
            _ => Severity::Warning,
        };
        let queued = u64::from(conn.inet.recv_q);
        let fd = conn.fd_text();
        let others: Vec<&Thread> = ctx
            .snap
            .threads
            .iter()
            .filter(|t| t.syscall.as_ref().is_some_and(|s| !s.running))
            .take(3)
            .collect();
        // The verdict names what the threads do; which thread is in which call is evidence.
        let blocked = ctx
            .snap
            .threads
            .iter()
            .filter(|t| t.syscall.as_ref().is_some_and(|s| !s.running))
            .count();
        let mut calls: Vec<String> = Vec::new();
        for t in &others {
            let name = t
                .syscall
                .as_ref()
                .map(|s| s.name.as_str())
                .unwrap_or_default();
            let call = wording::call(name);
            if !calls.contains(&call) {
                calls.push(call);
            }
        }
        let newest = match waited_ms {
            Some(ms) => format!(", the newest arrived {} ago", wording::duration(ms)),
            None => String::new(),
        };
        let elsewhere = match blocked {
            0 => String::new(),
            1 => format!(": its one waiting thread is in {}", calls.join(", ")),
            n => format!(": its {n} waiting threads are in {}", calls.join(", ")),
        };
        let summary = format!(
            "Data from {} sits unread in the receive queue of {fd} ({}{newest}), and no \
             thread reads it{elsewhere}.",
            conn.peer(),
            wording::bytes(queued),
        );
        let mut evidence = vec![Evidence::new(
            "receive queue",
            format!(
                "{} unread{}",
                wording::bytes(queued),
                match waited_ms {
                    Some(ms) => format!(", last data arrived {} ago", wording::duration(ms)),
                    None => String::new(),
                }
            ),
            match waited_ms {
                Some(ms) => format!("ss: Recv-Q {} lastrcv:{ms}", conn.inet.recv_q),
                None => format!("ss: Recv-Q {}", conn.inet.recv_q),
            },
        )];
        evidence.extend(conn.window_evidence());
        for t in &others {
            if let Some(sc) = &t.syscall {
                let what = if sc.summary.is_empty() {
                    wording::call(&sc.name)
                } else {
                    sc.summary.clone()
                };
                evidence.push(Evidence::new(
                    format!("thread {} ({})", t.tid, t.name),
                    what,
                    format!("/proc/{}/task/{}/syscall", ctx.snap.process.pid, t.tid),
                ));
            }
        }
        let next_step = match others.first() {
            Some(t) => format!(
                "Find why the code that reads {fd} does not run: look at what {} waits for \
                 (/proc/{}/task/{}/stack, or a debugger backtrace).",
                wording::thread(t).to_lowercase(),
                ctx.snap.process.pid,
                t.tid
            ),
            None => format!("Find why the code that reads {fd} does not run."),
        };
        out.push(Found {
            finding: Finding {
                severity,
                cause: Cause::LocalNotReading,
                summary,
                subject: conn.subject(None),
                evidence,
                ruled_out: vec![format!(
                    "the peer: it sent the data, {} is waiting here",
                    wording::bytes(queued)
                )],
                next_step,
                ..Finding::default()
            },
            stuck_ms: waited_ms.unwrap_or(0),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
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
        let f = &found[0].finding;
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
        let f = &found[0].finding;
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
            .finding
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
}
