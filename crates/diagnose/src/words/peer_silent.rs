//! The words of a silent peer (`rules/peer_silent.rs`).

use hangscope_model::Evidence;

use super::{
    earlier_failure, holder, host_alive_ruled_out, host_alive_sentence, how, log_quote,
    other_end_evidence, other_end_sentence, other_end_step, other_threads_evidence, thread,
    waiting_in, window_evidence, with_timer,
};
use crate::facts::peer_silent::PeerSilent;
use crate::facts::{Holder, OtherEnd, Upstream};
use crate::wording::{bytes, duration, micros, plural};
use crate::words::NO_THREADS;
use crate::words::Words;

pub(crate) fn words(f: &PeerSilent) -> Words {
    let peer = f.conn.peer_addr();
    let port = f.conn.peer.port;
    let request = match f.request_bytes {
        Some(n) => format!("the {n}-byte request"),
        None => "the request".into(),
    };
    let retransmits = plural(u64::from(f.total_retrans), "retransmit", "retransmits");
    let idle = f.other_end_idle();
    let alive = if idle || f.upstream.is_some() {
        // Its process idles in its loop with the request read, or waits on its own upstream:
        // not "the service is not answering".
        format!(" and nothing came back in {}.", duration(f.silent_ms))
    } else if f.acked_since_request {
        format!(
            ", and {} (last ACK {} ago), so host and network are alive; the service on \
             :{port} is not answering.",
            if f.keepalive {
                "keepalives are answered"
            } else {
                "it still ACKs"
            },
            duration(f.last_ack_ms)
        )
    } else {
        // The socket is read at the same look as the thread, so the two numbers agree.
        format!(
            " and nothing came back in {}; the service on :{port} is not answering.",
            duration(f.silent_ms)
        )
    };
    let mut summary = match &f.waiter {
        Some(w) => format!(
            "{} has waited {} in {} for a reply from {peer}{}: {request} was acknowledged by \
             the peer's kernel{alive}",
            thread(w),
            duration(f.stuck_ms),
            how(w),
            if idle { "" } else { " that is not coming" },
        ),
        None => format!(
            "A request to {peer} on {} got no reply for {}: {request} was acknowledged by the \
             peer's kernel{alive} {NO_THREADS}",
            match f.conn.fd {
                Some(fd) => format!("fd {fd}"),
                None => "a socket".into(),
            },
            duration(f.stuck_ms)
        ),
    };
    let mut sentences = Vec::new();
    match (&f.upstream, &f.conn.other_end) {
        (Some(u), Some(OtherEnd::Held { holder: h, .. })) => {
            sentences.push(upstream_sentence(h, u, f.silent_ms))
        }
        _ => sentences.extend(
            f.conn
                .other_end
                .as_ref()
                .and_then(|e| other_end_sentence(e, port)),
        ),
    }
    // The stuck connection's own ACKs may have said it already.
    if !f.acked_since_request {
        sentences.extend(f.host_alive.as_ref().and_then(host_alive_sentence));
    }
    sentences.extend(f.earlier_failure.as_ref().map(earlier_failure));
    for s in sentences {
        summary.push(' ');
        summary.push_str(&s);
    }

    let mut evidence: Vec<Evidence> = f.waiter.iter().map(waiting_in).collect();
    evidence.push(Evidence::new(
        "request",
        format!(
            "{} sent {} ago, all acknowledged, {retransmits}",
            match f.request_bytes {
                Some(n) => bytes(n),
                None => "a request".into(),
            },
            duration(f.silent_ms),
        ),
        format!(
            "ss: bytes_acked:{} lastsnd:{} unacked:{} retrans:{}/{}",
            f.bytes_acked, f.silent_ms, f.unacked, f.retransmits, f.total_retrans
        ),
    ));
    evidence.push(Evidence::new(
        "reply",
        if f.bytes_received == 0 {
            "0 bytes back".to_string()
        } else {
            format!(
                "nothing since the request (last data {} ago)",
                duration(f.last_recv_ms)
            )
        },
        format!(
            "ss: bytes_received:{} lastrcv:{} Recv-Q 0",
            f.bytes_received, f.last_recv_ms
        ),
    ));
    evidence.extend(super::last_word::evidence(&f.last_word));
    // Over the window, the same silence measured rather than inferred from ages.
    evidence.extend(window_evidence(&f.conn));
    let mut kernel = format!(
        "last ACK {} ago, rtt {}",
        duration(f.last_ack_ms),
        micros(f.rtt_us)
    );
    if f.keepalive {
        kernel.push_str(", keepalive timer running");
    }
    evidence.push(Evidence::new(
        "peer's kernel",
        kernel,
        with_timer(&f.conn, format!("ss: lastack:{}", f.last_ack_ms)),
    ));
    evidence.extend(other_end_evidence(&f.conn));
    evidence.extend(other_threads_evidence(&f.conn));
    if let (Some(u), Some(h)) = (
        &f.upstream,
        f.conn.other_end.as_ref().and_then(OtherEnd::holder),
    ) {
        evidence.push(upstream_evidence(h, u));
    }
    evidence.extend(f.log.iter().map(log_quote));

    let mut ruled_out = vec![format!(
        "network loss: the request was acknowledged, {retransmits}"
    )];
    if f.acked_since_request {
        ruled_out.push(format!(
            "host down: its kernel ACKed {} ago",
            duration(f.last_ack_ms)
        ));
    }
    ruled_out.extend(f.host_alive.as_ref().map(host_alive_ruled_out));
    Words {
        summary,
        evidence,
        ruled_out,
        next_step: match (
            &f.upstream,
            f.conn.other_end.as_ref().and_then(OtherEnd::holder),
        ) {
            (Some(u), Some(h)) => upstream_step(h, u),
            _ if idle => idle_step(&f.conn),
            _ => other_end_step(&f.conn),
        },
    }
}

/// "The other end is fd 5 of process 3347 (nginx) on this host, which forwarded the request
/// and waits itself on 127.0.0.1:18081: ..."
fn upstream_sentence(h: &Holder, u: &Upstream, our_silent_ms: u64) -> String {
    let after = our_silent_ms.saturating_sub(u.silent_ms);
    let answered = if u.unacked > 0 {
        format!(
            "{} of it not even acknowledged",
            bytes(u64::from(u.unacked))
        )
    } else {
        format!("nothing has come back in {}", duration(u.silent_ms))
    };
    format!(
        "The other end is {} on this host, which passed the request on and waits itself on the \
         upstream {}{}: its {}-byte request went there {} after ours came in, and {answered}.",
        holder(h),
        u.peer,
        u.fd.map(|fd| format!(" (its fd {fd})")).unwrap_or_default(),
        u.request_bytes,
        duration(after),
    )
}

fn upstream_evidence(h: &Holder, u: &Upstream) -> Evidence {
    Evidence::new(
        "its upstream",
        format!(
            "{} -> {}: {} sent {} ago, nothing back",
            u.local,
            u.peer,
            bytes(u.request_bytes),
            duration(u.silent_ms)
        ),
        format!(
            "sock_diag of process {}'s sockets{}: lastsnd:{} lastrcv:{} unacked:{}",
            h.pid,
            u.fd.map(|fd| format!(" (fd {fd})")).unwrap_or_default(),
            u.silent_ms,
            u.last_recv_ms,
            u.unacked
        ),
    )
}

fn upstream_step(h: &Holder, u: &Upstream) -> String {
    let port = u.peer.port;
    if crate::wording::is_loopback(&u.peer.addr) {
        format!(
            "Look at the upstream on this host that owns port {port}, which process {} ({}) \
             waits on (ss -tnp 'sport = :{port}'), e.g. run hangscope on it.",
            h.pid, h.name
        )
    } else {
        format!(
            "Look at the upstream {} that process {} ({}) waits on (e.g. run hangscope there on \
             the process listening on {port}).",
            u.peer, h.pid, h.name
        )
    }
}

/// With the other end idle in its loop: whether the request is held on purpose is the
/// application's to say.
fn idle_step(c: &crate::facts::ConnFacts) -> String {
    match c.other_end.as_ref().and_then(OtherEnd::holder) {
        Some(h) => format!(
            "If this request should have been answered by now, ask process {} ({}) what it holds \
             it for (a blocking command, a long poll, a subscription); its threads show no \
             stuck wait.",
            h.pid, h.name
        ),
        None => other_end_step(c),
    }
}
