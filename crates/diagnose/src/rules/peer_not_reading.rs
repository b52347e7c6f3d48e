//! Peer not reading: the peer's kernel is alive (it answers window probes) but its receive
//! buffer is full because the process at the other end stopped reading. The sender sees a
//! zero window, a persist timer, a full Send-Q, and a thread blocked in write.
//!
//! Facts from sock_diag (ss -tio): snd_wnd (since Linux 6.2), timer:(persist,...), probes,
//! Send-Q, skmem w/tb; the writer from /proc/PID/task/TID/syscall.

use hangscope_model::{Cause, Evidence, Finding, Severity, TimerKind};

use crate::connection::Conn;
use crate::rules::NO_THREADS;
use crate::{Ctx, Found, STUCK_MS, wording};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    for conn in Conn::tcp(ctx) {
        if !matches!(conn.state(), "ESTAB" | "CLOSE-WAIT") {
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
        let peer = conn.peer();
        let acked_recently = u64::from(info.last_ack_recv_ms) < closed_ms;
        let window = if zero_window {
            "the peer's receive window is closed (0 bytes)"
        } else {
            "the send buffer is full"
        };
        let alive = if acked_recently {
            format!(
                "its kernel answers (last ACK {} ago), so the process at {peer} has stopped \
                 reading its socket.",
                wording::duration(u64::from(info.last_ack_recv_ms))
            )
        } else {
            format!("the process at {peer} has stopped reading its socket, or its host is gone.")
        };
        let (severity, summary) = match writer {
            Some(w) => (
                Severity::Cause,
                format!(
                    "{} has been blocked {} in {}, writing to {peer}: {window} and {} wait in \
                     Send-Q; {alive}",
                    wording::thread(w.thread),
                    wording::duration(stuck_ms),
                    w.how(),
                    wording::bytes(send_q)
                ),
            ),
            None => (
                Severity::Warning,
                format!(
                    "{} to {peer} on {} could not be sent for {}: {window}; {alive}{}",
                    wording::bytes(send_q),
                    conn.fd_text(),
                    wording::duration(stuck_ms),
                    if ctx.waiters.known {
                        " No thread is blocked writing it, so the program buffers or drops the data."
                            .to_string()
                    } else {
                        format!(" {NO_THREADS}")
                    }
                ),
            ),
        };
        let summary = match conn.local_peer_sentence(ctx.snap.process.pid) {
            Some(s) => format!("{summary} {s}"),
            None => summary,
        };
        let mut evidence = crate::waiters::evidence_from(writer, ctx.snap.process.pid);
        let src = format!(
            "ss: Send-Q {} snd_wnd:{} probes:{} lastsnd:{} lastack:{}",
            conn.inet.send_q,
            info.snd_wnd
                .map(|w| w.to_string())
                .unwrap_or_else(|| "?".into()),
            info.probes,
            info.last_data_sent_ms,
            info.last_ack_recv_ms
        );
        evidence.push(Evidence::new(
            "window",
            format!(
                "{window}, {} queued, nothing sent for {}",
                wording::bytes(send_q),
                wording::duration(closed_ms)
            ),
            conn.with_timer(src),
        ));
        evidence.extend(conn.window_evidence());
        // skmem's t (wmem_alloc) counts only what is handed to the device, often 0 while the
        // queue is full; the queue is Send-Q, the limit tb (SO_SNDBUF).
        if let (Some(w), Some(b)) = (conn.inet.wmem_alloc, conn.inet.sndbuf) {
            evidence.push(Evidence::new(
                "send buffer",
                format!(
                    "{} queued of a {} buffer",
                    wording::bytes(send_q),
                    wording::bytes(u64::from(b))
                ),
                format!("ss: Send-Q {send_q} skmem:(t{w},tb{b})"),
            ));
        }
        let ruled_out = if acked_recently {
            vec![format!(
                "network loss and host down: the peer's kernel answers window probes (last \
                 ACK {} ago)",
                wording::duration(u64::from(info.last_ack_recv_ms))
            )]
        } else {
            vec![]
        };
        let pid = ctx.snap.process.pid;
        evidence.extend(conn.local_peer_evidence(pid));
        evidence.extend(conn.local_peer_threads(pid));
        let port = conn.inet.peer.port;
        let next_step = format!(
            "Find why the process at {peer} does not read: {} and look at what its reading \
             thread waits on.",
            if let Some(who) = conn.local_holder(pid) {
                let on = match conn
                    .inet
                    .local_peer
                    .as_ref()
                    .and_then(|p| p.holder.as_ref())
                {
                    Some(h) if h.pid != pid => format!(" (hangscope {})", h.pid),
                    _ => String::new(),
                };
                format!("it is {who} on this host{on},")
            } else if wording::is_loopback(&conn.inet.peer.addr) {
                format!(
                    "find it with ss -tnp 'sport = :{port}' (on this host), run hangscope on it,"
                )
            } else {
                format!(
                    "on {} run hangscope on the process that owns port {port},",
                    conn.inet.peer.addr
                )
            }
        );
        out.push(Found {
            finding: Finding {
                severity,
                cause: Cause::PeerNotReading,
                summary,
                subject: conn.subject(writer),
                evidence,
                ruled_out,
                next_step,
                ..Finding::default()
            },
            stuck_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

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
        snap.threads
            .push(thread(301, "sender", "write", vec![], Some(2000)));
        snap.threads[0].syscall.as_mut().unwrap().args = vec![4, 0, 65536];
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0].finding;
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
        snap.threads
            .push(thread(301, "sender", "sendto", vec![], Some(2000)));
        snap.threads[0].syscall.as_mut().unwrap().args = vec![4, 0, 65536];
        let found = find(&Ctx::new(&snap));
        let e = found[0]
            .finding
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
        assert_eq!(found[0].finding.severity, Severity::Warning);
        socket_info(&mut snap, 9).last_data_sent_ms = 20;
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
