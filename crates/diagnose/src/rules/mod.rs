//! The rules, one file each, named after what they find. Each takes the snapshot's context and
//! returns findings; `run` calls them in two passes: first the rules that find causes, then the
//! context rules that read those causes (other connections to the same host, a loop waiting
//! for the stuck thread).

use crate::facts::Facts;
use crate::{Candidate, Ctx, Found};

mod busy;
pub(crate) mod connection_dead;
mod exited;
pub(crate) mod local_not_reading;
mod lock_wait;
mod mutex_deadlock;
mod mutex_holder_blocked;
pub(crate) mod name_resolution;
pub(crate) mod peer_not_reading;
pub(crate) mod peer_silent;
pub(crate) mod peer_unreachable;
mod pipe_wait;
pub(crate) mod same_host;
pub(crate) mod unanswered;
mod uninterruptible;
pub(crate) mod unix_peer_wait;
mod waiting_loop;

/// A rule that still words its findings itself, with its stable id.
type WordedRule = (&'static str, fn(&Ctx<'_>) -> Vec<Found>);

const WORDED: &[WordedRule] = &[
    ("lock_wait", lock_wait::find),
    ("mutex_deadlock", mutex_deadlock::find),
    ("mutex_holder_blocked", mutex_holder_blocked::find),
    ("pipe_wait", pipe_wait::find),
    ("busy", busy::find),
    ("exited", exited::find),
    ("uninterruptible", uninterruptible::find),
];

pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = peer_silent::find(ctx)
        .into_iter()
        .map(|f| Candidate::Facts(Facts::PeerSilent(Box::new(f))))
        .collect();
    network(ctx, &mut found);
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

/// The rules about connections and sockets.
fn network(ctx: &Ctx<'_>, found: &mut Vec<Candidate>) {
    fn add<F>(found: &mut Vec<Candidate>, facts: Vec<F>, variant: fn(Box<F>) -> Facts) {
        found.extend(
            facts
                .into_iter()
                .map(|f| Candidate::Facts(variant(Box::new(f)))),
        );
    }
    add(found, peer_unreachable::find(ctx), Facts::PeerUnreachable);
    add(found, peer_not_reading::find(ctx), Facts::PeerNotReading);
    add(found, local_not_reading::find(ctx), Facts::LocalNotReading);
    add(found, connection_dead::find(ctx), Facts::ConnectionDead);
    add(found, name_resolution::find(ctx), Facts::NameResolution);
    add(found, unix_peer_wait::find(ctx), Facts::UnixPeerWait);
    add(found, unanswered::find(ctx), Facts::Unanswered);
}

/// The sentence rules add when thread states were not read.
pub(crate) const NO_THREADS: &str =
    "Thread states were not read, so whether a thread waits on it is not known.";
