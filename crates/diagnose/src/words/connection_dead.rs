//! The words of a dead or half-closed connection (`rules/connection_dead.rs`).

use hangscope_model::Evidence;

use super::{
    fd_text, host_alive_ruled_out, how, no_threads_note, push_host_alive, thread, timer_text,
    waiting_in, window_evidence,
};
use crate::facts::connection_dead::{ConnectionDead, Dead};
use crate::wording::{bytes, duration, plural};
use crate::words::Words;

pub(crate) fn words(f: &ConnectionDead) -> Words {
    let peer = f.conn.peer_addr();
    let addr = &f.conn.peer.addr;
    let fd = fd_text(&f.conn);
    let mut evidence: Vec<Evidence> = f.waiter.iter().map(waiting_in).collect();
    let (mut summary, next_step) = match &f.shape {
        Dead::KeepaliveUnanswered {
            probes,
            tcp_info_probes,
            last_ack_ms,
        } => {
            let what = format!(
                "{} got no answer and nothing came from the peer for {}; {addr} is down or the \
                 path to it is cut, and the kernel drops the connection only after the last \
                 probe fails.",
                plural(u64::from(*probes), "keepalive probe", "keepalive probes"),
                duration(*last_ack_ms),
            );
            let summary = match &f.waiter {
                Some(w) => format!(
                    "{} waits in {} on a dead connection to {peer}: {what}",
                    thread(w),
                    how(w)
                ),
                None => format!(
                    "The connection to {peer} on {fd} is dead: {what}{}",
                    no_threads_note(f.threads_known)
                ),
            };
            evidence.push(Evidence::new(
                "keepalive",
                format!(
                    "{} unanswered, last ACK {} ago",
                    plural(u64::from(*probes), "probe", "probes"),
                    duration(*last_ack_ms)
                ),
                format!(
                    "ss: {} probes:{tcp_info_probes} lastack:{last_ack_ms}",
                    timer_text(&f.conn).unwrap_or_default(),
                ),
            ));
            let next_step = format!(
                "Check whether {addr} is up and reachable (ping {addr}); the program should time \
                 out its wait instead of relying on keepalive."
            );
            (summary, next_step)
        }
        Dead::PeerClosed {
            since_ms,
            unread,
            recv_q,
        } => {
            let unread_text = if *unread > 0 {
                format!(" with {} still unread", bytes(u64::from(*unread)))
            } else {
                String::new()
            };
            let said = match &f.waiter {
                Some(w) => (
                    format!(
                        "{} waits in {} on {fd}, but {peer} closed that connection{unread_text} \
                         (CLOSE-WAIT): the program missed the end of the stream and waits for \
                         data that cannot come.",
                        thread(w),
                        how(w)
                    ),
                    format!(
                        "Fix the program so it handles end-of-file on {fd} (a read returning 0) \
                         and closes the socket; with edge-triggered epoll, read until EAGAIN."
                    ),
                ),
                None => (
                    format!(
                        "{peer} closed its connection on {fd}{unread_text} and the program has \
                         not closed its end (CLOSE-WAIT); no thread waits on it."
                    ),
                    format!(
                        "Find the code that owns {fd}: it stopped using the connection without \
                         closing it, or the thread that would close it is stuck."
                    ),
                ),
            };
            evidence.push(Evidence::new(
                "state",
                match since_ms {
                    Some(ms) => format!(
                        "CLOSE-WAIT, Recv-Q {recv_q}, last packet from the peer {} ago",
                        duration(*ms)
                    ),
                    None => format!("CLOSE-WAIT, Recv-Q {recv_q}"),
                },
                "ss: CLOSE-WAIT",
            ));
            said
        }
    };
    evidence.extend(window_evidence(&f.conn));
    push_host_alive(&mut summary, f.host_alive.as_ref());
    Words {
        summary,
        evidence,
        ruled_out: f.host_alive.iter().map(host_alive_ruled_out).collect(),
        next_step,
    }
}
