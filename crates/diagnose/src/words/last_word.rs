//! The words of who spoke last on a connection (`connection::last_word`), shared by the rules
//! that ask it: a line of evidence when this end's own ages did not tell.

use hangscope_model::Evidence;

use crate::connection::{LastWord, Speaker, TurnBy};
use crate::wording::duration;

/// Why the last data is this end's or the peer's, when the two ages tie; `None` when they
/// differ or one way carried nothing, which the rules' own lines already say.
pub(crate) fn evidence(w: &LastWord) -> Option<Evidence> {
    let ages = |w: &LastWord| {
        format!(
            "lastsnd:{} lastrcv:{} lastack:{}",
            w.sent_ms, w.recv_ms, w.ack_ms
        )
    };
    let after = duration(u64::from(w.ack_after_ms.unwrap_or(0)));
    let (value, source) = match (w.by, w.other_end) {
        (TurnBy::Ages | TurnBy::OneWay, false) => return None,
        (TurnBy::BareAck, false) => (
            format!(
                "data went out and came in the same millisecond; an ACK with no data came {after} \
                 later: the peer had read what was sent and had nothing to send with it"
            ),
            format!("ss: {}", ages(w)),
        ),
        (TurnBy::BareAck, true) => (
            format!(
                "data went out and came in the same millisecond; at the other end, on this host, \
                 an ACK with no data came {after} after its last data: this end had read it \
                 and had nothing to send with it"
            ),
            format!("ss at the other end: {}", ages(w)),
        ),
        (TurnBy::Ages | TurnBy::OneWay, true) => (
            format!(
                "data went out and came in the same millisecond here; the other end, on this \
                 host, last {}",
                match w.speaker {
                    Speaker::Us => format!(
                        "received {} ago, after it last sent ({} ago)",
                        duration(u64::from(w.recv_ms)),
                        duration(u64::from(w.sent_ms))
                    ),
                    Speaker::Peer => format!(
                        "sent {} ago, after it last received ({} ago)",
                        duration(u64::from(w.sent_ms)),
                        duration(u64::from(w.recv_ms))
                    ),
                }
            ),
            format!("ss at the other end: {}", ages(w)),
        ),
    };
    Some(Evidence::new("last word", value, source))
}
