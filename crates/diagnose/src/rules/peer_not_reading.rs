//! Peer not reading: the peer's kernel is alive (it answers window probes) but its receive
//! buffer is full because the process at the other end stopped reading. The sender sees a
//! zero window, a persist timer, a full Send-Q, and a thread blocked in write. Words in
//! `words/peer_not_reading.rs`.
//!
//! Facts from sock_diag (ss -tio): snd_wnd (since Linux 6.2), timer:(persist,...), probes,
//! Send-Q, skmem w/tb; the writer from /proc/PID/task/TID/syscall.

use hangscope_model::TcpState;
use hangscope_model::{Cause, Next, Severity, Subject, TimerKind};

use crate::connection::Conn;
use crate::facts::peer_not_reading::{PeerNotReading, SendBuffer};
use crate::facts::{ConnFacts, RuleFacts, ThreadWait};
use crate::{Ctx, STUCK_MS};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<PeerNotReading> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for conn in Conn::tcp(ctx) {
        if !matches!(conn.state(), TcpState::Established | TcpState::CloseWait) {
            continue;
        }
        let Some(info) = conn.info() else { continue };
        let send_q = u64::from(conn.inet.send_q);
        let zero_window = info.snd_wnd == Some(0)
            || conn.timer_is(TimerKind::Persist)
            || (info.probes > 0 && info.unacked == 0 && send_q > 0);
        let buffer_full = match (conn.inet.wmem_alloc, conn.inet.sndbuf) {
            (Some(w), Some(b)) if b > 0 => u64::from(w) * 10 >= u64::from(b) * 9,
            _ => false,
        };
        let writer = ctx
            .waiters
            .on_any(&conn.fds)
            .into_iter()
            .find(|w| w.wants_write());
        if !(zero_window || (buffer_full && send_q > 0 && writer.is_some())) {
            continue;
        }
        // Zero-window probes do not count as data: last_data_sent is when data last went out.
        let closed_ms = u64::from(info.last_data_sent_ms);
        let stuck_ms = closed_ms.max(writer.and_then(|w| w.blocked_ms()).unwrap_or(0));
        if stuck_ms < STUCK_MS {
            continue;
        }
        let last_ack_ms = u64::from(info.last_ack_recv_ms);
        out.push(PeerNotReading {
            conn: ConnFacts::of(conn, pid),
            writer: writer.map(|w| ThreadWait::of(w, pid)),
            threads_known: ctx.waiters.known,
            zero_window,
            send_q: conn.inet.send_q,
            snd_wnd: info.snd_wnd,
            probes: info.probes,
            closed_ms,
            stuck_ms,
            last_ack_ms,
            acked_since_closed: last_ack_ms < closed_ms,
            send_buffer: match (conn.inet.wmem_alloc, conn.inet.sndbuf) {
                (Some(wmem_alloc), Some(sndbuf)) => Some(SendBuffer { wmem_alloc, sndbuf }),
                _ => None,
            },
            host_alive: None,
        });
    }
    out
}

impl RuleFacts for PeerNotReading {
    const RULE: &'static str = "peer_not_reading";

    fn cause(&self) -> Cause {
        Cause::PeerNotReading
    }

    fn severity(&self) -> Severity {
        // Without a blocked writer the program buffers or drops the data: it may cope.
        if self.writer.is_some() {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        self.conn.subject(self.writer.as_ref())
    }

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

    fn zero_window(snap: &mut hangscope_model::Snapshot) {
        let mut s = tcp(9, "127.0.0.1:48000", "127.0.0.1:9000", "ESTAB");
        timer(&mut s, TimerKind::Persist, 1200, 0);
        inet_of(&mut s).send_q = 2_621_440;
        let i = info_of(&mut s);
        i.snd_wnd = Some(0);
        i.probes = 3;
        i.last_data_sent_ms = 5200;
        i.last_ack_recv_ms = 400;
        i.bytes_acked = Some(6_000_000);
        add_socket(snap, 4, s);
    }

    #[test]
    fn writer_blocked_on_zero_window() {
        let mut snap = base(300, "uploader");
        zero_window(&mut snap);
        snap.threads.push(thread(
            301,
            "sender",
            "write",
            vec![fd_wait(4, &[])],
            Some(2000),
        ));
        snap.threads[0].syscall.as_mut().unwrap().args = vec![4, 0, 65536];
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!((f.subject.tid, f.subject.fd), (Some(301), Some(4)));
        assert!(f.summary.starts_with("Thread 301 (sender) has been blocked 5.2 s in write(), writing to 127.0.0.1:9000: the peer's receive window is closed (0 bytes) and 2.5 MiB wait in Send-Q; its kernel answers (last ACK 400 ms ago)"), "{}", f.summary);
        assert!(
            f.next_step.contains("ss -tnp 'sport = :9000'"),
            "{}",
            f.next_step
        );
    }

    #[test]
    fn send_buffer_is_the_queue_not_wmem_alloc() {
        // Loopback, kernel 6.18: 24 KiB not yet sent, skmem t0 tb32768.
        let mut snap = base(300, "uploader");
        zero_window(&mut snap);
        let inet = inet_of(&mut snap.sockets[0]);
        inet.send_q = 24_576;
        inet.wmem_alloc = Some(0);
        inet.sndbuf = Some(32_768);
        snap.threads.push(thread(
            301,
            "sender",
            "sendto",
            vec![fd_wait(4, &[])],
            Some(2000),
        ));
        snap.threads[0].syscall.as_mut().unwrap().args = vec![4, 0, 65536];
        let found = find(&Ctx::new(&snap));
        let e = found[0]
            .evidence
            .iter()
            .find(|e| e.label == "send buffer")
            .unwrap();
        assert_eq!(e.value, "24.0 KiB queued of a 32.0 KiB buffer");
    }

    #[test]
    fn no_writer_is_a_warning_and_fresh_is_nothing() {
        let mut snap = base(300, "uploader");
        zero_window(&mut snap);
        snap.threads
            .push(thread(300, "main", "epoll_wait", vec![], None));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found[0].severity, Severity::Warning);
        socket_info(&mut snap, 9).last_data_sent_ms = 20;
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn facts_name_the_writer_the_window_and_the_reader_on_this_host() {
        let mut snap = base(300, "uploader");
        zero_window(&mut snap);
        inet_of(&mut snap.sockets[0]).local_peer = Some(Box::new(hangscope_model::LocalPeer {
            inode: 91,
            state: "ESTAB".into(),
            recv_q: 4_000_000,
            end: Some(hangscope_model::PeerEnd::Held {
                holder: hangscope_model::PeerHolder {
                    pid: 4242,
                    name: "sink".into(),
                    fd: 11,
                    threads: None,
                    opened: vec![],
                },
            }),
            ..Default::default()
        }));
        snap.threads.push(thread(
            301,
            "sender",
            "write",
            vec![fd_wait(4, &[])],
            Some(2000),
        ));
        snap.threads[0].syscall.as_mut().unwrap().args = vec![4, 0, 65536];
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.rule, "peer_not_reading");
        let facts = &f.facts;
        assert_eq!(facts["writer"]["tid"], 301);
        assert_eq!(facts["writer"]["fd"], 4);
        assert_eq!(facts["conn"]["socket_inode"], 9);
        assert_eq!(facts["conn"]["fd"], 4);
        assert_eq!(facts["zero_window"], true);
        assert_eq!(facts["snd_wnd"], 0);
        assert_eq!(facts["send_q"], 2_621_440);
        assert_eq!(
            (facts["closed_ms"].as_u64(), facts["last_ack_ms"].as_u64()),
            (Some(5200), Some(400))
        );
        assert_eq!(facts["acked_since_closed"], true);
        let end = &facts["conn"]["other_end"];
        assert_eq!(end["kind"], "held");
        assert_eq!(
            (end["inode"].as_u64(), end["recv_q"].as_u64()),
            (Some(91), Some(4_000_000))
        );
        assert_eq!(end["holder"]["pid"], 4242);
        assert_eq!(f.next, Some(Next::process(4242)));
        assert!(
            f.next_step
                .contains("it is fd 11 of process 4242 (sink) on this host (hangscope 4242)"),
            "{}",
            f.next_step
        );

        // Nobody here: the service on its port.
        let mut snap = base(300, "uploader");
        zero_window(&mut snap);
        let f = &find(&Ctx::new(&snap))[0];
        assert!(f.facts.get("writer").is_none());
        assert_eq!(f.facts["threads_known"], false);
        let next = f.next.as_ref().expect("next");
        assert_eq!(next.kind, hangscope_model::NextKind::HostPort);
        assert_eq!(
            (next.host.as_deref(), next.port),
            (Some("127.0.0.1"), Some(9000))
        );
    }

    #[test]
    fn an_other_end_not_accepted_says_why_as_the_lookup_did_in_words_of_its_own() {
        let mut snap = base(300, "uploader");
        zero_window(&mut snap);
        let why = "not accepted yet: the connection waits in the accept queue of the socket \
                   listening on port 9000";
        inet_of(&mut snap.sockets[0]).local_peer = Some(Box::new(hangscope_model::LocalPeer {
            inode: 0,
            state: "ESTAB".into(),
            recv_q: 2_000_000,
            end: Some(hangscope_model::PeerEnd::NotAccepted { listener: None }),
            ..Default::default()
        }));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.facts["conn"]["other_end"]["kind"], "not_accepted");
        // The words, not the facts, say it: the facts have the state and the queues.
        assert_eq!(f.facts["conn"]["other_end"]["state"], "ESTAB");
        let e = f
            .evidence
            .iter()
            .find(|e| e.label == "other end")
            .expect("other end");
        assert_eq!(e.value, why);
        assert!(
            f.summary.ends_with(
                "The server on :9000 has not even accepted the connection: it waits \
                            in the accept queue of the listening socket."
            ),
            "{}",
            f.summary
        );
    }
}
