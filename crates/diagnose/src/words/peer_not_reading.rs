//! The words of a peer that does not read (`rules/peer_not_reading.rs`).

use hangscope_model::Evidence;

use super::{
    fd_text, holder, host_alive_ruled_out, how, other_end_evidence, other_end_sentence,
    other_threads_evidence, push_host_alive, thread, waiting_in, window_evidence, with_timer,
};
use crate::facts::OtherEnd;
use crate::facts::peer_not_reading::PeerNotReading;
use crate::wording::{self, bytes, duration};
use crate::words::NO_THREADS;
use crate::words::Words;

pub(crate) fn words(f: &PeerNotReading) -> Words {
    let peer = f.conn.peer_addr();
    let send_q = u64::from(f.send_q);
    let window = if f.zero_window {
        "the peer's receive window is closed (0 bytes)"
    } else {
        "the send buffer is full"
    };
    let alive = if f.acked_since_closed {
        format!(
            "its kernel answers (last ACK {} ago), so the process at {peer} has stopped \
             reading its socket.",
            duration(f.last_ack_ms)
        )
    } else {
        format!("the process at {peer} has stopped reading its socket, or its host is gone.")
    };
    let mut summary = match &f.writer {
        Some(w) => format!(
            "{} has been blocked {} in {}, writing to {peer}: {window} and {} wait in Send-Q; \
             {alive}",
            thread(w),
            duration(f.stuck_ms),
            how(w),
            bytes(send_q)
        ),
        None => format!(
            "{} to {peer} on {} could not be sent for {}: {window}; {alive}{}",
            bytes(send_q),
            fd_text(&f.conn),
            duration(f.stuck_ms),
            if f.threads_known {
                " No thread is blocked writing it, so the program buffers or drops the data."
                    .to_string()
            } else {
                format!(" {NO_THREADS}")
            }
        ),
    };
    if let Some(s) = f
        .conn
        .other_end
        .as_ref()
        .and_then(|e| other_end_sentence(e, f.conn.peer.port))
    {
        summary.push(' ');
        summary.push_str(&s);
    }
    push_host_alive(&mut summary, f.host_alive.as_ref());

    let mut evidence: Vec<Evidence> = f.writer.iter().map(waiting_in).collect();
    let src = format!(
        "ss: Send-Q {} snd_wnd:{} probes:{} lastsnd:{} lastack:{}",
        f.send_q,
        f.snd_wnd
            .map(|w| w.to_string())
            .unwrap_or_else(|| "?".into()),
        f.probes,
        f.closed_ms,
        f.last_ack_ms
    );
    evidence.push(Evidence::new(
        "window",
        format!(
            "{window}, {} queued, nothing sent for {}",
            bytes(send_q),
            duration(f.closed_ms)
        ),
        with_timer(&f.conn, src),
    ));
    evidence.extend(window_evidence(&f.conn));
    // skmem's t (wmem_alloc) counts only what is handed to the device, often 0 while the
    // queue is full; the queue is Send-Q, the limit tb (SO_SNDBUF).
    if let Some(b) = &f.send_buffer {
        evidence.push(Evidence::new(
            "send buffer",
            format!(
                "{} queued of a {} buffer",
                bytes(send_q),
                bytes(u64::from(b.sndbuf))
            ),
            format!(
                "ss: Send-Q {send_q} skmem:(t{},tb{})",
                b.wmem_alloc, b.sndbuf
            ),
        ));
    }
    evidence.extend(other_end_evidence(&f.conn));
    evidence.extend(other_threads_evidence(&f.conn));

    let mut ruled_out = Vec::new();
    if f.acked_since_closed {
        ruled_out.push(format!(
            "network loss and host down: the peer's kernel answers window probes (last ACK {} \
             ago)",
            duration(f.last_ack_ms)
        ));
    }
    ruled_out.extend(f.host_alive.as_ref().map(host_alive_ruled_out));

    let port = f.conn.peer.port;
    let host = &f.conn.peer.addr;
    // The process holding the other end itself; one not accepted yet is found by its port.
    let held = match &f.conn.other_end {
        Some(OtherEnd::Held { holder, .. } | OtherEnd::Listener { holder, .. }) => Some(holder),
        _ => None,
    };
    let next_step = format!(
        "Find why the process at {peer} does not read: {} and look at what its reading thread \
         waits on.",
        if let Some(h) = held {
            let on = if h.this_process {
                String::new()
            } else {
                format!(" (hangscope {})", h.pid)
            };
            format!("it is {} on this host{on},", holder(h))
        } else if wording::is_loopback(host) {
            format!("find it with ss -tnp 'sport = :{port}' (on this host), run hangscope on it,")
        } else {
            format!("on {host} run hangscope on the process that owns port {port},")
        }
    );
    Words {
        summary,
        evidence,
        ruled_out,
        next_step,
    }
}
