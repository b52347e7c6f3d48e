//! Unanswered requests: the server side of a silent peer. On connections the process accepted,
//! a client's data came in after the last data that went out, was read (Recv-Q 0), and nothing
//! has been sent back for a while. Run on the process a client's verdict pointed at, this says
//! which clients wait and which of its threads have been blocked as long, the likely reason.
//! Words in `words/unanswered.rs`.
//!
//! A warning, not a cause: a long-poll or subscription protocol also leaves a request unanswered
//! on purpose, and an event loop idle with the request read (Redis serving BLPOP, a long poll)
//! looks the same as one that lost it. A cause when a thread of the process went into a wait
//! after the request came and is still there, and nothing waits to read the connection on its
//! own: the thread that took the request is stuck in that wait (Redis's main thread in a
//! `DEBUG SLEEP`, a database backend waiting for a lock). Threads parked before the request
//! came (background workers on their condition variable) are idle by design and named only
//! after it. One finding for all such connections, since a stuck server may owe hundreds.
//!
//! Only a thread reading that very fd (read or recv on it, a poll on it alone) waits "for more
//! of the request"; an event loop watching it among other fds waits for any of them.
//!
//! Facts from tcp_info (ss -ti lastrcv, lastsnd, bytes_received, bytes_acked) of accepted
//! connections, the other end's process when it is on this host, and the threads' syscalls and
//! how long each has been blocked.

use hangscope_model::TcpState;
use hangscope_model::{Cause, Next, Severity, Subject, Thread, WaitObject};

use crate::connection::{Conn, LastWord, Speaker};
use crate::facts::unanswered::{Request, SHOWN, Unanswered};
use crate::facts::{BlockedThread, ConnFacts, RuleFacts, ThreadWait};
use crate::{Ctx, STUCK_MS};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Unanswered> {
    let pid = ctx.snap.process.pid;
    let mut owed: Vec<(&Conn<'_>, (u64, LastWord))> = Conn::tcp(ctx)
        .filter(|c| c.state() == TcpState::Established && c.is_inbound(ctx))
        .filter_map(|c| Some((c, unanswered_ms(ctx, c)?)))
        .collect();
    if owed.is_empty() {
        return vec![];
    }
    owed.sort_by_key(|o| std::cmp::Reverse(o.1.0));
    let all_fds: Vec<i32> = owed
        .iter()
        .flat_map(|(c, _)| c.fds.iter().copied())
        .collect();
    let waiting = ctx.waiters.on_any(&all_fds);
    let reader = waiting
        .iter()
        .find(|w| w.wants_read() && w.alone())
        .copied();
    let watching = waiting
        .iter()
        .find(|w| w.wants_read() && !w.alone())
        .copied();
    let on_conns: Vec<i32> = waiting.iter().map(|w| w.thread.tid).collect();
    let blocked: Vec<(&Thread, u64)> = blocked_threads(ctx)
        .into_iter()
        .filter(|(t, _)| !on_conns.contains(&t.tid))
        .collect();
    let oldest = owed[0].1.0;
    // The thread whose wait began closest to the request's arrival, if close enough — and not
    // at the process's start: a thread parked since then was not woken by the request, however
    // soon after the start it came.
    // The age is read before the window, the waits at its end.
    let window_ms = ctx.snap.window.as_ref().map_or(0, |w| w.duration_ms);
    let age_ms = ctx
        .snap
        .process
        .age_s
        .map(|s| (s * 1000.0) as u64 + window_ms);
    // Only with the loop that serves the connections stopped: an epoll instance watches one of
    // them and no thread waits in it. A blocking server's threads may go into any wait at any
    // time; the coincidence alone says little.
    let stopped_loop = if waiting.is_empty() {
        stopped_loop(ctx, &all_fds)
    } else {
        None
    };
    let took_it = blocked
        .iter()
        .filter(|_| stopped_loop.is_some())
        // Its wait began after the request came, not before; it may have worked on it first,
        // or waited once already (PostgreSQL waits deadlock_timeout, checks, then waits again).
        .filter(|(_, ms)| *ms <= oldest + TOOK_SLACK_MS)
        .filter(|(_, ms)| age_ms.is_none_or(|age| ms + TOOK_SLACK_MS < age))
        .min_by_key(|(_, ms)| ms.abs_diff(oldest))
        .map(|(t, _)| *t);
    let requests = owed
        .iter()
        .take(SHOWN)
        .filter_map(|(c, (ms, last_word))| {
            let i = c.info()?;
            Some(Request {
                conn: ConnFacts::of(c, pid),
                waited_ms: *ms,
                last_word: *last_word,
                last_sent_ms: u64::from(i.last_data_sent_ms),
                bytes_received: i.bytes_received.unwrap_or(0),
                bytes_acked: i.bytes_acked.unwrap_or(0),
            })
        })
        .collect();
    vec![Unanswered {
        pid,
        count: owed.len(),
        requests,
        reader: reader.map(|w| ThreadWait::of(w, pid)),
        watching: watching.map(|w| ThreadWait::of(w, pid)),
        took_it: took_it.map(BlockedThread::of),
        suspect: blocked
            .iter()
            .filter(|_| took_it.is_none())
            .find(|(_, ms)| *ms <= oldest + TOOK_SLACK_MS)
            .map(|(t, _)| BlockedThread::of(t)),
        stopped_loop,
        // The one that took it first; then those blocked longest.
        blocked: took_it
            .into_iter()
            .chain(
                blocked
                    .iter()
                    .map(|(t, _)| *t)
                    .filter(|t| took_it.is_none_or(|k| k.tid != t.tid)),
            )
            .take(SHOWN)
            .map(BlockedThread::of)
            .collect(),
    }]
}

/// An epoll fd whose watch list has one of `fds` and in which no thread waits.
fn stopped_loop(ctx: &Ctx<'_>, fds: &[i32]) -> Option<i32> {
    ctx.snap
        .fds
        .iter()
        .filter(|f| f.kind == hangscope_model::FdKind::Eventpoll)
        .filter(|f| {
            f.info
                .as_ref()
                .is_some_and(|i| i.epoll_watches.iter().any(|w| fds.contains(&w.tfd)))
        })
        .map(|f| f.fd)
        .find(|&ep| {
            !ctx.snap.threads.iter().any(|t| {
                t.syscall.as_ref().is_some_and(|s| {
                    !s.running && s.fd_waits().iter().any(|w| w.2 == Some(ep) || w.0 == ep)
                })
            })
        })
}

/// A thread whose wait began no earlier than this before the request's arrival may have taken
/// that request (tcp_info's age and the thread's time off CPU are both in ms, read at the same
/// look, and reading the request takes the thread a moment).
const TOOK_SLACK_MS: u64 = 1000;

/// How long a request on this accepted connection has waited for its answer, and what told
/// that it came after the last data that went out: all of it was read, nothing is queued to
/// send, and it did not move over the window.
fn unanswered_ms(ctx: &Ctx<'_>, c: &Conn<'_>) -> Option<(u64, LastWord)> {
    let i = c.info()?;
    // Unread data is the local-not-reading rule's; queued or unacked data the peer rules'.
    if c.inet.recv_q > 0 || c.inet.send_q > 0 || i.unacked > 0 {
        return None;
    }
    if i.bytes_received == Some(0) {
        return None;
    }
    let last_word = c.last_word(ctx).filter(|w| w.speaker == Speaker::Peer)?;
    let waited = u64::from(i.last_data_recv_ms);
    if waited < STUCK_MS {
        return None;
    }
    if c.window().is_some_and(|w| w.looks_moving > 0) {
        return None;
    }
    Some((waited, last_word))
}

/// Threads blocked at least STUCK_MS in one wait, longest first — leaving out accept loops and
/// threads that made progress, which are how an idle server waits.
fn blocked_threads<'a>(ctx: &Ctx<'a>) -> Vec<(&'a Thread, u64)> {
    let listening: Vec<i32> = ctx
        .snap
        .sockets
        .iter()
        .filter(
            |s| matches!(&s.detail, hangscope_model::SocketDetail::Tcp(i) if i.state == TcpState::Listen),
        )
        .flat_map(|s| s.fds.iter().copied())
        .collect();
    let mut out: Vec<(&Thread, u64)> =
        ctx.snap
            .threads
            .iter()
            .filter(|t| {
                t.syscall.as_ref().is_some_and(|s| {
                    !s.running
                        && !s.waits_on.iter().any(
                            |w| matches!(w, WaitObject::Fd { fd, .. } if listening.contains(fd)),
                        )
                })
            })
            .filter_map(|t| {
                let a = t.activity.as_ref()?;
                let ms = a.blocked_at_least_ms?;
                (!a.progressed && ms >= STUCK_MS).then_some((t, ms))
            })
            .collect();
    out.sort_by_key(|t| std::cmp::Reverse(t.1));
    out
}

impl RuleFacts for Unanswered {
    const RULE: &'static str = "unanswered";

    fn cause(&self) -> Cause {
        Cause::Unanswered
    }

    fn severity(&self) -> Severity {
        // A thread reading on for more of it: the request may be incomplete, or long-polled.
        if self.took_it.is_some() && self.reader.is_none() {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.requests.first().map_or(0, |r| r.waited_ms)
    }

    fn subject(&self) -> Subject {
        let (tid, name) = match (&self.reader, &self.took_it, &self.watching) {
            (Some(w), _, _) => (Some(w.tid), Some(&w.name)),
            (None, Some(t), _) => (Some(t.tid), Some(&t.name)),
            (None, None, Some(w)) => (Some(w.tid), Some(&w.name)),
            (None, None, None) => match &self.suspect {
                Some(t) => (Some(t.tid), Some(&t.name)),
                None => (None, None),
            },
        };
        let Some(oldest) = self.requests.first() else {
            return Subject::default();
        };
        Subject {
            tid,
            thread_name: name.filter(|n| !n.is_empty()).cloned(),
            ..oldest.conn.subject(None)
        }
    }

    fn next(&self) -> Option<Next> {
        let first = self.took_it.as_ref().or(self.suspect.as_ref());
        Some(match first {
            Some(t) if self.reader.is_none() && self.watching.is_none() => {
                Next::thread(self.pid, t.tid)
            }
            Some(t) if self.took_it.is_some() => Next::thread(self.pid, t.tid),
            _ => Next::process(self.pid).with_command(format!("gdb -p {}", self.pid)),
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
    use hangscope_model::{LocalPeer, PeerHolder, Snapshot, WaitObject};

    /// A server (pid 900) listening on :8080, with an accepted connection on fd 7 from a local
    /// client (pid 950, fd 3) that sent 120 bytes 4.9 s ago; nothing went back. Thread 901 has
    /// been blocked 4.9 s in a futex wait, main in its accept loop.
    fn server(last_sent_ms: u32, bytes_acked: u64) -> Snapshot {
        let mut snap = base(900, "httpd");
        add_socket(
            &mut snap,
            3,
            tcp(10, "127.0.0.1:8080", "0.0.0.0:0", "LISTEN"),
        );
        let mut s = tcp(11, "127.0.0.1:8080", "127.0.0.1:58252", "ESTAB");
        let i = info_of(&mut s);
        i.bytes_received = Some(120);
        i.bytes_acked = Some(bytes_acked);
        i.last_data_recv_ms = 4900;
        i.last_data_sent_ms = last_sent_ms;
        inet_of(&mut s).local_peer = Some(Box::new(LocalPeer {
            inode: 12,
            state: "ESTAB".into(),
            end: Some(hangscope_model::PeerEnd::Held {
                holder: PeerHolder {
                    pid: 950,
                    name: "client".into(),
                    fd: 3,
                    threads: None,
                    opened: vec![],
                },
            }),
            ..LocalPeer::default()
        }));
        add_socket(&mut snap, 7, s);
        snap.threads.push(thread(
            900,
            "httpd",
            "accept4",
            vec![fd_wait(3, &[])],
            Some(9000),
        ));
        let mut worker = thread(901, "handler", "futex", vec![], Some(4900));
        if let Some(sc) = worker.syscall.as_mut() {
            sc.summary = "futex wait on 0x5599".into();
        }
        snap.threads.push(worker);
        snap
    }

    #[test]
    fn a_request_read_and_never_answered_names_the_client_and_the_thread_that_took_it() {
        // Its event loop's epoll fd 5 watches fd 7, and no thread waits in it.
        let mut snap = server(9000, 1);
        add_epoll(&mut snap, 5, &[7]);
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0];
        // The handler went into its wait after the request came (4.9 s, as old as the request).
        assert_eq!((f.severity, f.cause), (Severity::Cause, Cause::Unanswered));
        assert_eq!(
            f.summary,
            "A request from 127.0.0.1:58252 (fd 3 of process 950 (client)) came 4.9 s ago on \
             fd 7 and nothing has been sent back since. No thread waits on it, directly or in \
             its event loop: epoll fd 5, which watches it, has no thread in it. Thread 901 \
             (handler) went into futex wait on 0x5599 after the \
             request came and has been there at least 4.9 s: the thread that took the request \
             is stuck in that wait, not waiting for the client."
        );
        assert_eq!((f.subject.tid, f.subject.fd), (Some(901), Some(7)));
        assert_eq!(f.facts["took_it"]["tid"], 901);
        assert_eq!(f.facts["stopped_loop"], 5);
        // Its wait began later than the request (a PostgreSQL backend waits deadlock_timeout,
        // checks for a deadlock, then waits again): it still took it.
        let mut later = snap.clone();
        later.threads[1] = thread(901, "postgres", "epoll_wait", vec![], Some(3800));
        let f2 = &find(&Ctx::new(&later))[0];
        assert_eq!(f2.severity, Severity::Cause, "{}", f2.summary);
        assert_eq!(f2.facts["took_it"]["tid"], 901);
        assert!(
            f.next_step.contains("/proc/900/task/901/stack"),
            "{}",
            f.next_step
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.label == "request on fd 7" && e.source.contains("lastrcv:4900"))
        );
    }

    #[test]
    fn a_thread_blocked_since_the_request_in_a_server_without_a_loop_is_only_named() {
        // A blocking server (accept loop, no epoll): a thread that went into a wait at about
        // the time the request came may be a coincidence (a watchdog started with the process).
        let f = &find(&Ctx::new(&server(9000, 1)))[0];
        assert_eq!(f.severity, Severity::Warning, "{}", f.summary);
        assert!(f.facts.get("took_it").is_none(), "{}", f.facts);
        assert!(
            f.summary.contains(
                "No thread waits on it. Thread 901 (handler) has been blocked at least 4.9 s in \
                 futex(), and what should answer likely waits behind it."
            ),
            "{}",
            f.summary
        );
        // Its loop serving the connection runs: not stopped.
        let mut snap = server(9000, 1);
        let waits = add_epoll(&mut snap, 5, &[3, 7]);
        snap.threads[0] = thread(900, "httpd", "epoll_wait", waits, None);
        assert!(
            find(&Ctx::new(&snap))[0]
                .facts
                .get("stopped_loop")
                .is_none()
        );
    }

    #[test]
    fn threads_parked_before_the_request_came_did_not_take_it() {
        // Background workers on their condition variable since long before the request (a
        // Redis bio thread): a warning, and the sleeping main thread is the one named.
        let mut snap = server(9000, 1);
        add_epoll(&mut snap, 5, &[7]);
        snap.threads[1] = thread(901, "bio_close_file", "futex", vec![], Some(60_000));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Warning, "{}", f.summary);
        assert!(f.facts.get("took_it").is_none());
        assert!(f.facts.get("suspect").is_none());
        assert!(
            f.summary.contains(
                "No thread waits on it; its blocked threads were already in their waits before \
                 the request came."
            ),
            "{}",
            f.summary
        );
        assert_eq!(f.next.as_ref().and_then(|n| n.tid), None);
        let mut sleeper = thread(
            902,
            "redis-server",
            "clock_nanosleep",
            vec![WaitObject::Sleep { ns: 30_000_000_000 }],
            Some(4800),
        );
        if let Some(sc) = sleeper.syscall.as_mut() {
            sc.summary = "clock_nanosleep 30.0 s".into();
        }
        snap.threads.push(sleeper);
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.facts["took_it"]["tid"], 902);
        assert_eq!(
            f.facts["blocked"][0]["tid"], 902,
            "the one that took it first"
        );
        assert!(
            f.summary.contains(
                "Thread 902 (redis-server) went into clock_nanosleep 30.0 s after the request came"
            ),
            "{}",
            f.summary
        );
        assert_eq!(f.next, Some(Next::thread(900, 902)));
        // In that wait since the process started: it was there before the request came.
        snap.process.age_s = Some(3.0);
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Warning, "{}", f.summary);
        snap.process.age_s = Some(600.0);
        assert_eq!(find(&Ctx::new(&snap))[0].severity, Severity::Cause);
    }

    #[test]
    fn an_event_loop_watching_the_connection_among_others_is_idle_not_reading_more() {
        // Redis serving BLPOP: its loop waits in epoll_wait over the listener and the client,
        // waking every 100 ms; the request was read. Not "expects more of it", not a cause.
        let mut snap = server(9000, 1);
        let waits = add_epoll(&mut snap, 5, &[3, 7]);
        snap.threads[0] = thread(900, "redis-server", "epoll_wait", waits, None);
        snap.threads[1] = thread(901, "bio_close_file", "futex", vec![], Some(60_000));
        // A background thread that parked just when the request came (jemalloc's, started
        // lazily) did not take it while the loop watches the connection.
        snap.threads
            .push(thread(902, "jemalloc_bg_thd", "futex", vec![], Some(4800)));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.facts.get("took_it").is_none(), "{}", f.facts);
        assert!(f.facts.get("reader").is_none(), "{}", f.facts);
        assert_eq!(f.facts["watching"]["tid"], 900);
        assert!(!f.summary.contains("for more of it"), "{}", f.summary);
        assert!(
            f.summary.contains(
                "Thread 900 (redis-server) is idle in its event loop, in epoll_wait() (through \
                 epoll fd 5) watching fd 7 among other fds: it read the request and waits for \
                 anything to happen; a blocking command or a long poll looks the same."
            ),
            "{}",
            f.summary
        );
    }

    #[test]
    fn an_answered_request_or_a_client_connection_is_nothing() {
        // The reply went out after the request.
        assert!(find(&Ctx::new(&server(100, 2000))).is_empty());
        // A connection this process opened: a silent peer, the other rule's.
        let mut snap = server(9000, 1);
        snap.sockets.remove(0);
        snap.fds.remove(0);
        if let hangscope_model::SocketDetail::Tcp(i) = &mut snap.sockets[0].detail {
            i.local = endpoint("127.0.0.1:41000");
            i.peer = endpoint("127.0.0.1:8080");
        }
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn a_request_in_the_millisecond_of_the_last_reply_is_told_by_the_other_end() {
        // The backend of psql's row-lock wait: the query came the millisecond "ready for
        // query" went out, and this end ACKed it with nothing else, so its own ages tie three
        // ways. psql's end, on this host, got that ACK 44 ms after its query.
        let mut snap = server(4900, 1);
        snap.sockets.remove(0);
        snap.fds.remove(0);
        let sock = socket_mut(&mut snap, 11);
        let i = info_of(sock);
        (i.bytes_acked, i.bytes_received) = (Some(415), Some(107));
        (i.last_data_sent_ms, i.last_data_recv_ms, i.last_ack_recv_ms) = (4900, 4900, 4900);
        let inet = inet_of(sock);
        inet.accepted = Some(true);
        let peer = inet.local_peer.as_mut().expect("other end");
        peer.tcp_info = Some(Box::new(hangscope_model::TcpInfo {
            bytes_acked: Some(108),
            bytes_received: Some(415),
            last_data_sent_ms: 4900,
            last_data_recv_ms: 4900,
            last_ack_recv_ms: 4856,
            ..Default::default()
        }));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert!(
            f.summary.starts_with("A request from 127.0.0.1:58252"),
            "{}",
            f.summary
        );
        let e = f
            .evidence
            .iter()
            .find(|e| e.label == "last word")
            .expect("what decided the tie");
        assert!(
            e.value
                .contains("at the other end, on this host, an ACK with no data came 44 ms"),
            "{}",
            e.value
        );
        let w = &f.facts["requests"][0]["last_word"];
        assert_eq!(
            (w["speaker"].as_str(), w["other_end"].as_bool()),
            (Some("peer"), Some(true))
        );

        // Without the other end's view the tie decides nothing, and nothing is claimed.
        inet_of(socket_mut(&mut snap, 11))
            .local_peer
            .as_mut()
            .expect("other end")
            .tcp_info = None;
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn a_thread_waiting_for_more_of_the_request_is_named() {
        let mut snap = server(9000, 1);
        snap.threads[1] = thread(901, "handler", "read", vec![fd_wait(7, &[])], Some(4900));
        let f = &find(&Ctx::new(&snap))[0];
        assert!(
            f.summary
                .contains("Thread 901 (handler) waits on fd 7 in read() for more of it"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn facts_name_the_requests_and_the_blocked_thread() {
        let f = &find(&Ctx::new(&server(9000, 1)))[0];
        assert_eq!(f.rule, "unanswered");
        let facts = &f.facts;
        assert_eq!(facts["count"], 1);
        let r = &facts["requests"][0];
        assert_eq!(r["conn"]["socket_inode"], 11);
        assert_eq!(r["conn"]["fd"], 7);
        assert_eq!(r["waited_ms"], 4900);
        assert_eq!(r["last_sent_ms"], 9000);
        assert_eq!(r["bytes_received"], 120);
        let end = &r["conn"]["other_end"];
        assert_eq!(
            (end["kind"].as_str(), end["inode"].as_u64()),
            (Some("held"), Some(12))
        );
        assert_eq!(end["holder"]["pid"], 950);
        assert_eq!(facts["blocked"][0]["tid"], 901);
        assert_eq!(facts["blocked"][0]["blocked_ms"], 4900);
        assert!(facts.get("reader").is_none());
        assert_eq!(f.stuck_ms, Some(4900));
        assert_eq!(f.next, Some(Next::thread(900, 901)));

        // A thread waits for more of the request: the process's code, not that thread.
        let mut snap = server(9000, 1);
        snap.threads[1] = thread(901, "handler", "read", vec![fd_wait(7, &[])], Some(4900));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.facts["reader"]["tid"], 901);
        assert_eq!(f.facts["reader"]["fd"], 7);
        let next = f.next.as_ref().expect("next");
        assert_eq!(
            (next.kind, next.pid, next.command.as_deref()),
            (
                hangscope_model::NextKind::Process,
                Some(900),
                Some("gdb -p 900")
            )
        );
    }
}
