//! The words of a chain across hosts: who waits on which host, what the process at the other
//! end did with the request, and what holds it up there, each hop said from its own facts.

use hangscope_model::Hop;

use super::{chain::idle, words_of};
use crate::facts::across::{Across, HopSeen, Served};
use crate::wording::bytes;

/// What the verdict says of a chain across hosts.
pub(crate) struct Said {
    pub summary: String,
    /// The step of the last hop that has one, with the host it is to be taken on; `None` when
    /// no hop after the first has a step.
    pub next_step: Option<String>,
}

pub(crate) fn verdict(a: &Across<'_>) -> Said {
    let mut sentences: Vec<String> = Vec::new();
    for (n, c) in a.crossings.iter().enumerate() {
        let end_of = a.crossings.get(n + 1).map_or(a.hops.len(), |c| c.base);
        // Who waits for that host: this host's hops, for the first crossing; after that, the
        // last hop on the host crossed to before.
        let waiting: Vec<usize> = match n {
            0 => (0..c.base).collect(),
            _ => c.base.checked_sub(1).into_iter().collect(),
        };
        let mut parts: Vec<String> = Vec::new();
        for (k, &i) in waiting.iter().enumerate() {
            let Some(seen) = a.hops.get(i) else { break };
            let here = match (&a.from_addr, n == 0 && i == 0) {
                (Some(addr), true) => format!(" on {addr}"),
                _ => String::new(),
            };
            let who = who(seen, k == 0);
            if k + 1 < waiting.len() {
                let next = name(a.hops.get(i + 1).map(|h| h.hop));
                parts.push(format!("{who}{here} waits on {next}"));
            } else {
                let how = seen
                    .hop
                    .cause
                    .map(|c| format!(" ({})", c.label()))
                    .unwrap_or_default();
                parts.push(format!(
                    "{who}{here} waits for {}:{}{how}",
                    c.host.addr, c.host.port
                ));
            }
        }
        let Some(first) = a.hops.get(c.base) else {
            break;
        };
        parts.push(format!(
            "process {} ({}) there {}",
            first.hop.pid,
            first.hop.name.escaped_cut(40),
            served(&c.served)
        ));
        sentences.push(format!("{}.", parts.join(" → ")));
        // What holds it up there: each hop's own finding, and the processes on that host it
        // leads through.
        let mut before: Option<&Hop> = None;
        for seen in a.hops.get(c.base..end_of).unwrap_or_default() {
            let own = own(seen);
            sentences.push(match before {
                None => own,
                Some(b) => format!(
                    "{} waits on {} there: {own}",
                    name(Some(b)),
                    name(Some(seen.hop))
                ),
            });
            before = Some(seen.hop);
        }
    }
    if let Some(h) = a.not_followed
        && let Some(f) = &h.failure
    {
        sentences.push(format!(
            "{}:{} was not followed: {}.",
            h.addr, h.port, f.reason
        ));
    }
    Said {
        summary: sentences.join(" "),
        next_step: next_step(a),
    }
}

/// The step of the last hop after the first that has one, on its host.
fn next_step(a: &Across<'_>) -> Option<String> {
    a.hops.iter().skip(1).rev().find_map(|seen| {
        let step = words_of(seen.facts.as_ref()?).next_step;
        if step.is_empty() {
            return None;
        }
        Some(match &seen.hop.reached_at {
            Some(at) => format!("On {at}: {step}"),
            None => step,
        })
    })
}

/// What a hop's process is held by, in its finding's words; what its threads do when it has
/// no finding.
fn own(seen: &HopSeen<'_>) -> String {
    match (&seen.facts, seen.snap) {
        (Some(f), _) => words_of(f).summary,
        (None, Some(snap)) if seen.hop.rule.is_empty() => idle(snap, seen.hop.tid),
        // A finding whose facts were not found again: its cause, which the hop carries.
        (None, _) => match seen.hop.cause {
            Some(c) => format!("{} is held: {}.", name(Some(seen.hop)), c.label()),
            None => format!("{} has no finding of its own.", name(Some(seen.hop))),
        },
    }
}

fn name(hop: Option<&Hop>) -> String {
    match hop {
        Some(h) => format!("{} {}", h.name.escaped_cut(40), h.pid),
        None => "?".into(),
    }
}

/// "Thread 31576 (dump_meta) of meta-client 31570" (capitalized at the start of a sentence), or
/// the process alone.
fn who(seen: &HopSeen<'_>, start: bool) -> String {
    let process = name(Some(seen.hop));
    let thread = seen
        .hop
        .tid
        .and_then(|t| seen.snap?.thread(t).map(|th| (t, th.name.clone())));
    let word = if start { "Thread" } else { "thread" };
    match thread {
        Some((tid, tname)) => format!("{word} {tid} ({}) of {process}", tname.escaped_cut(40)),
        None => process,
    }
}

/// What the process at the far end did with the connection.
fn served(s: &Served) -> String {
    match s {
        Served::Unknown => "holds the other end".into(),
        Served::Listener { local } => format!(
            "holds the listener on {local} (no socket there has this connection's addresses: NAT \
             or a proxy is in between, so this is the likely process, not a certain one)"
        ),
        Served::Connection {
            fd,
            recv_q,
            waiter,
            threads_known,
        } => {
            let read = match recv_q {
                Some(0) => "read the request".to_string(),
                Some(q) => format!(
                    "has not read the request ({} wait in its queue)",
                    bytes(u64::from(*q))
                ),
                None => "holds the connection".to_string(),
            };
            let fd_part = match waiter {
                Some((tid, call)) => format!("thread {tid} waits on it (fd {fd}) in {call}"),
                None if *threads_known => format!("no thread waits on its fd {fd} any more"),
                None => format!("on fd {fd}"),
            };
            format!("{read}, and {fd_part}")
        }
    }
}
