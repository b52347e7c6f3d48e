//! The rules, one file each, named after what they find. Each takes the snapshot's context and
//! returns findings; `run` calls them in two passes: first the rules that find causes, then the
//! context rules that read those causes (other connections to the same host, a loop waiting
//! for the stuck thread).

use crate::facts::Facts;
use crate::{Candidate, Ctx, Found};

mod busy;
mod connection_dead;
mod exited;
mod local_not_reading;
mod lock_wait;
mod mutex_deadlock;
mod mutex_holder_blocked;
mod name_resolution;
mod peer_not_reading;
pub(crate) mod peer_silent;
mod peer_unreachable;
mod pipe_wait;
pub(crate) mod same_host;
pub(crate) mod stopped;
mod unanswered;
mod uninterruptible;
mod unix_peer_wait;
mod waiting_loop;

/// A rule that still words its findings itself, with its stable id.
type WordedRule = (&'static str, fn(&Ctx<'_>) -> Vec<Found>);

const WORDED: &[WordedRule] = &[
    ("peer_unreachable", peer_unreachable::find),
    ("peer_not_reading", peer_not_reading::find),
    ("local_not_reading", local_not_reading::find),
    ("connection_dead", connection_dead::find),
    ("name_resolution", name_resolution::find),
    ("lock_wait", lock_wait::find),
    ("mutex_deadlock", mutex_deadlock::find),
    ("mutex_holder_blocked", mutex_holder_blocked::find),
    ("pipe_wait", pipe_wait::find),
    ("unix_peer_wait", unix_peer_wait::find),
    ("busy", busy::find),
    ("exited", exited::find),
    ("uninterruptible", uninterruptible::find),
    ("unanswered", unanswered::find),
];

pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = peer_silent::find(ctx)
        .into_iter()
        .map(|f| Candidate::Facts(Facts::PeerSilent(Box::new(f))))
        .collect();
    found.extend(
        stopped::find(ctx)
            .into_iter()
            .map(|f| Candidate::Facts(Facts::Stopped(f))),
    );
    for (rule, find) in WORDED {
        found.extend(find(ctx).into_iter().map(|found| Candidate::Worded {
            rule,
            found: Box::new(found),
        }));
    }
    same_host::corroborate(ctx, &mut found);
    let loops = waiting_loop::find(ctx, &found);
    found.extend(loops.into_iter().map(|found| Candidate::Worded {
        rule: "waiting_loop",
        found: Box::new(found),
    }));
    found
}

/// The sentence rules add when thread states were not read.
pub(crate) const NO_THREADS: &str =
    "Thread states were not read, so whether a thread waits on it is not known.";

/// The end of a summary that names no waiting thread: " " and [`NO_THREADS`] when thread states
/// were not read, nothing when they were.
pub(crate) fn no_threads_note(ctx: &Ctx<'_>) -> String {
    if ctx.waiters.known {
        String::new()
    } else {
        format!(" {NO_THREADS}")
    }
}
