//! Unanswered requests: the server side of a silent peer. On connections the process accepted,
//! a client's data came in after the last data that went out, was read (Recv-Q 0), and nothing
//! has been sent back for a while. Run on the process a client's verdict pointed at, this says
//! which clients wait and which of its threads have been blocked as long, the likely reason.
//!
//! A warning, not a cause: a long-poll or subscription protocol also leaves a request unanswered
//! on purpose. One finding for all such connections, since a stuck server may owe hundreds.
//!
//! Facts from tcp_info (ss -ti lastrcv, lastsnd, bytes_received, bytes_acked) of accepted
//! connections, the other end's process when it is on this host, and the threads' syscalls and
//! how long each has been blocked.

use hangscope_model::{Cause, Evidence, Finding, Severity, Subject, Thread, WaitObject};

use crate::connection::Conn;
use crate::{Ctx, Found, STUCK_MS, wording};

/// Connections and threads named one by one; the rest are counted.
const SHOWN: usize = 3;

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let pid = ctx.snap.process.pid;
    let mut owed: Vec<(&Conn<'_>, u64)> = Conn::tcp(ctx)
        .filter(|c| c.state() == "ESTAB" && c.is_inbound(ctx))
        .filter_map(|c| Some((c, unanswered_ms(c)?)))
        .collect();
    if owed.is_empty() {
        return vec![];
    }
    owed.sort_by_key(|o| std::cmp::Reverse(o.1));
    let (oldest, oldest_ms) = owed[0];
    let blocked = blocked_threads(ctx);
    let all_fds: Vec<i32> = owed
        .iter()
        .flat_map(|(c, _)| c.fds.iter().copied())
        .collect();
    let readers: Vec<_> = ctx
        .waiters
        .on_any(&all_fds)
        .into_iter()
        .filter(|w| w.wants_read())
        .collect();

    let from = |c: &Conn<'_>| match c.local_holder(pid) {
        Some(who) => format!("{} ({who})", c.peer()),
        None => c.peer(),
    };
    let requests = if owed.len() == 1 {
        format!("A request from {}", from(oldest))
    } else {
        format!(
            "{} requests from clients have had no reply; the oldest, from {},",
            owed.len(),
            from(oldest)
        )
    };
    let mut summary = format!(
        "{requests} came {} ago on {} and nothing has been sent back since.",
        wording::duration(oldest_ms),
        oldest.fd_text()
    );
    if let Some(w) = readers.first() {
        summary.push_str(&format!(
            " {} waits on fd {} in {} for more of it: the client may consider the request \
             complete while this side expects more.",
            wording::thread(w.thread),
            w.fd,
            w.how()
        ));
    } else if let Some((t, ms)) = blocked.first() {
        summary.push_str(&format!(
            " No thread waits on {}. {} has been blocked at least {} in {}, and what should \
             answer likely waits behind it.",
            if owed.len() == 1 {
                "it"
            } else {
                "those connections"
            },
            wording::thread(t),
            wording::duration(*ms),
            t.syscall
                .as_ref()
                .map_or_else(|| "an unknown call".into(), |s| wording::call(&s.name))
        ));
    }
    summary.push_str(" (A long-poll or subscription protocol also leaves requests waiting.)");

    let mut evidence = Vec::new();
    for (c, ms) in owed.iter().take(SHOWN) {
        let Some(i) = c.info() else { continue };
        evidence.push(Evidence::new(
            format!("request on fd {}", c.fd().unwrap_or(-1)),
            format!(
                "from {}: last data in {} ago, last data out {} ago",
                from(c),
                wording::duration(*ms),
                wording::duration(u64::from(i.last_data_sent_ms))
            ),
            format!(
                "ss: bytes_received:{} bytes_acked:{} lastrcv:{} lastsnd:{} Recv-Q 0",
                i.bytes_received.unwrap_or(0),
                i.bytes_acked.unwrap_or(0),
                i.last_data_recv_ms,
                i.last_data_sent_ms
            ),
        ));
    }
    if owed.len() > SHOWN {
        evidence.push(Evidence::new(
            "more requests",
            format!("{} more connections like these", owed.len() - SHOWN),
            "sock_diag",
        ));
    }
    for w in readers.iter().take(1) {
        evidence.push(w.evidence(pid));
    }
    for (t, ms) in blocked.iter().take(SHOWN) {
        evidence.push(Evidence::new(
            format!("thread {} ({})", t.tid, t.name),
            format!(
                "blocked at least {} in {}",
                wording::duration(*ms),
                call_of(t)
            ),
            format!("/proc/{pid}/task/{}/syscall, sampled", t.tid),
        ));
    }
    let next_step = match blocked.first() {
        Some((t, _)) if readers.is_empty() => format!(
            "See what thread {} waits for: /proc/{pid}/task/{}/stack, or a debugger backtrace \
             (gdb -p {pid}, thread apply all bt); the code that answers these requests likely \
             waits behind it.",
            t.tid, t.tid
        ),
        _ => format!(
            "Find why the code that answers these requests does not run: a debugger backtrace \
             (gdb -p {pid}, thread apply all bt)."
        ),
    };
    let tid = readers
        .first()
        .map(|w| w.thread)
        .or(blocked.first().map(|(t, _)| *t));
    vec![Found {
        finding: Finding {
            severity: Severity::Warning,
            cause: Cause::Unanswered,
            summary,
            subject: Subject {
                tid: tid.map(|t| t.tid),
                thread_name: tid.map(|t| t.name.clone()).filter(|n| !n.is_empty()),
                fd: oldest.fd(),
                socket_inode: Some(oldest.sock.inode),
                connection: Some(oldest.label()),
            },
            evidence,
            ruled_out: vec![],
            next_step,
            ..Finding::default()
        },
        stuck_ms: oldest_ms,
    }]
}

/// How long a request on this accepted connection has waited for its answer: data came in
/// after the last data went out, all of it was read, nothing is queued to send, and it did
/// not move over the window.
fn unanswered_ms(c: &Conn<'_>) -> Option<u64> {
    let i = c.info()?;
    // Unread data is the local-not-reading rule's; queued or unacked data the peer rules'.
    if c.inet.recv_q > 0 || c.inet.send_q > 0 || i.unacked > 0 {
        return None;
    }
    if i.bytes_received == Some(0) {
        return None;
    }
    let after = i.last_data_recv_ms < i.last_data_sent_ms || c.bytes_sent() == Some(0);
    let waited = u64::from(i.last_data_recv_ms);
    if !after || waited < STUCK_MS {
        return None;
    }
    if c.window().is_some_and(|w| w.looks_moving > 0) {
        return None;
    }
    Some(waited)
}

/// Threads blocked at least STUCK_MS in one wait, longest first — leaving out accept loops and
/// threads that made progress, which are how an idle server waits.
fn blocked_threads<'a>(ctx: &Ctx<'a>) -> Vec<(&'a Thread, u64)> {
    let listening: Vec<i32> = ctx
        .snap
        .sockets
        .iter()
        .filter(
            |s| matches!(&s.detail, hangscope_model::SocketDetail::Tcp(i) if i.state == "LISTEN"),
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

/// "futex wait on 0x5599…" or "poll()": the thread's call as the threads table shows it.
fn call_of(t: &Thread) -> String {
    match &t.syscall {
        Some(s) if !s.summary.is_empty() => s.summary.clone(),
        Some(s) => wording::call(&s.name),
        None => "an unknown call".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{LocalPeer, PeerHolder, Snapshot};

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
            holder: Some(PeerHolder {
                pid: 950,
                name: "client".into(),
                fd: 3,
                threads: None,
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
    fn a_request_read_and_never_answered_names_the_client_and_the_blocked_thread() {
        let found = find(&Ctx::new(&server(9000, 1)));
        assert_eq!(found.len(), 1);
        let f = &found[0].finding;
        assert_eq!(
            (f.severity, f.cause),
            (Severity::Warning, Cause::Unanswered)
        );
        assert!(
            f.summary.starts_with(
                "A request from 127.0.0.1:58252 (fd 3 of process 950 (client)) came 4.9 s ago \
                 on fd 7 and nothing has been sent back since. No thread waits on it. Thread \
                 901 (handler) has been blocked at least 4.9 s in futex()"
            ),
            "{}",
            f.summary
        );
        assert_eq!((f.subject.tid, f.subject.fd), (Some(901), Some(7)));
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
    fn a_thread_waiting_for_more_of_the_request_is_named() {
        let mut snap = server(9000, 1);
        snap.threads[1] = thread(901, "handler", "read", vec![fd_wait(7, &[])], Some(4900));
        let f = &find(&Ctx::new(&snap))[0].finding;
        assert!(
            f.summary
                .contains("Thread 901 (handler) waits on fd 7 in read() for more of it"),
            "{}",
            f.summary
        );
    }
}
