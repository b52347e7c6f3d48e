//! The words of an unreachable peer (`rules/peer_unreachable.rs`).

use hangscope_model::Evidence;

use super::{
    accept_step, fd_text, holder, host_alive_ruled_out, how, log_quote, no_threads_note,
    other_end_evidence, other_threads_evidence, push_host_alive, thread, waiting_in, with_timer,
};
use crate::facts::OtherEnd;
use crate::facts::peer_unreachable::{PeerUnreachable, Unreachable};
use crate::wording::{bytes, duration, plural};
use crate::words::Words;

pub(crate) fn words(f: &PeerUnreachable) -> Words {
    let (mut summary, facts) = match &f.shape {
        Unreachable::SynSent {
            rto_ms, backoff, ..
        } => syn_sent(f, *rto_ms, *backoff),
        Unreachable::Unacked {
            send_q,
            unacked,
            retransmits,
            total_retrans,
            backoff,
            rto_ms,
            last_ack_ms,
        } => {
            let sent = u64::from(*send_q).max(u64::from(*unacked));
            let amount = bytes(sent);
            let what = format!(
                "{amount} sent there {} not acknowledged: no ACK for {}, {}, retransmit timeout \
                 backed off to {}. The peer's kernel does not answer: {} is down, or the path \
                 to it drops packets.",
                if hangscope_model::units::bytes_words_plural(sent) {
                    "are"
                } else {
                    "is"
                },
                duration(*last_ack_ms),
                plural(u64::from(f.retries), "retransmit", "retransmits"),
                duration(*rto_ms),
                f.conn.peer.addr
            );
            let peer = f.conn.peer_addr();
            let summary = match &f.waiter {
                Some(w) => format!(
                    "{} has waited {} in {} on {peer}; {what}",
                    thread(w),
                    duration(f.stuck_ms),
                    how(w)
                ),
                None => format!(
                    "Data to {peer} on {} is not getting through: {what}{}{}",
                    fd_text(&f.conn),
                    no_threads_note(f.threads_known),
                    match (f.threads_known, f.opened_here) {
                        (false, _) => "",
                        (true, true) if !f.backed_off() => "",
                        (true, true) => {
                            " No thread is blocked on it; this process opened it, so what \
                             needs the answer (a retry loop, a thread waiting for its result) \
                             waits for it."
                        }
                        (true, false) => {
                            " No thread waits on it: a client that went away leaves its reply \
                             unacknowledged like this."
                        }
                    }
                ),
            };
            let src = format!(
                "ss: Send-Q {send_q} unacked:{unacked} retrans:{retransmits}/{total_retrans} \
                 backoff:{backoff} rto:{rto_ms} lastack:{last_ack_ms}"
            );
            let facts = vec![Evidence::new(
                "unacknowledged",
                format!(
                    "{} in Send-Q, {} in flight, last ACK {} ago",
                    bytes(u64::from(*send_q)),
                    plural(u64::from(*unacked), "segment", "segments"),
                    duration(*last_ack_ms)
                ),
                with_timer(&f.conn, src),
            )];
            (summary, facts)
        }
    };
    let mut evidence: Vec<Evidence> = f.waiter.iter().map(waiting_in).collect();
    evidence.extend(facts);
    evidence.extend(f.log.iter().map(log_quote));
    push_host_alive(&mut summary, f.host_alive.as_ref());
    let next_step = match f.full_listener() {
        Some(h) => accept_step(h),
        None => {
            let host = &f.conn.peer.addr;
            let port = f.conn.peer.port;
            format!(
                "Check that {host} is up and reachable from here on port {port}: ping {host}; \
                 nc -vz {host} {port}; look for a firewall or route change dropping the packets."
            )
        }
    };
    Words {
        summary,
        evidence,
        ruled_out: f.host_alive.iter().map(host_alive_ruled_out).collect(),
        next_step,
    }
}

/// The summary and the connection's evidence of a connect() that gets no answer.
fn syn_sent(
    f: &PeerUnreachable,
    rto_ms: Option<u64>,
    backoff: Option<u8>,
) -> (String, Vec<Evidence>) {
    let peer = f.conn.peer_addr();
    let attempts = plural(
        u64::from(f.retries) + 1,
        "connection attempt (SYN)",
        "connection attempts (SYN)",
    );
    let what = match (&f.conn.other_end, f.full_listener()) {
        (
            Some(OtherEnd::Listener {
                accept_queue,
                backlog,
                ..
            }),
            Some(h),
        ) => format!(
            "{attempts} got no answer because the server on :{} is on this host and its \
             listening socket ({}) has a full accept queue ({accept_queue} waiting, backlog \
             {backlog}): it does not accept() connections, so the kernel drops the SYNs.",
            f.conn.peer.port,
            holder(h)
        ),
        _ => format!(
            "{attempts} got no answer; {} is down or unreachable, or a firewall drops the \
             packets.",
            f.conn.peer.addr
        ),
    };
    let summary = match &f.waiter {
        Some(w) => format!(
            "{} has waited at least {} in {} for a connection to {peer}: {what}",
            thread(w),
            duration(f.stuck_ms),
            how(w)
        ),
        None => format!(
            "The connection to {peer} on {} has been opening for at least {}: {what}{}",
            fd_text(&f.conn),
            duration(f.stuck_ms),
            no_threads_note(f.threads_known)
        ),
    };
    let mut facts = vec![Evidence::new(
        "state",
        format!(
            "SYN-SENT, {} so far",
            plural(u64::from(f.retries), "retry", "retries")
        ),
        with_timer(&f.conn, "ss: SYN-SENT".to_string()),
    )];
    if let (Some(rto), Some(b)) = (rto_ms, backoff) {
        facts.push(Evidence::new(
            "retransmit timeout",
            duration(rto),
            format!("ss: rto:{rto} backoff:{b}"),
        ));
    }
    facts.extend(other_end_evidence(&f.conn));
    facts.extend(other_threads_evidence(&f.conn));
    (summary, facts)
}
