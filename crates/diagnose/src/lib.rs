//! Diagnosis: rules over a snapshot, no live access, so every rule is tested on built or
//! recorded snapshots. Each rule lives in `rules/`, one file named after what it finds.
//!
//! Waiting is not stuck. A thread in accept(), an epoll_wait over idle connections, a worker on
//! an empty queue are normal; a rule names a cause only for a wait that something should have
//! ended: a request acknowledged with nothing back, data the peer never acknowledges, a window
//! that stays closed, data that arrived and nobody reads.

use std::collections::HashSet;

use hangscope_model::{Cause, Finding, Severity, Snapshot, SocketDetail, Subject};

mod connection;
mod facts;
mod log_quotes;
mod rules;
mod waiters;
mod wording;
mod words;

#[cfg(test)]
mod testkit;

/// A wait shorter than this is a request in flight, not a hang.
pub(crate) const STUCK_MS: u64 = 1000;

/// What every rule reads: the snapshot and indexes built once over it.
pub(crate) struct Ctx<'a> {
    pub snap: &'a Snapshot,
    pub waiters: waiters::Waiters<'a>,
    /// Ports the process listens on (TCP LISTEN sockets), to tell accepted connections apart.
    pub listen_ports: HashSet<u16>,
    /// Every TCP and UDP socket, once: most rules walk them, and a target may hold 10,000.
    pub conns: Vec<connection::Conn<'a>>,
}

impl<'a> Ctx<'a> {
    pub fn new(snap: &'a Snapshot) -> Self {
        let listen_ports = snap
            .sockets
            .iter()
            .filter_map(|s| match &s.detail {
                SocketDetail::Tcp(i) if i.state == "LISTEN" => Some(i.local.port),
                _ => None,
            })
            .collect();
        Ctx {
            snap,
            waiters: waiters::Waiters::new(snap),
            listen_ports,
            conns: connection::Conn::build(snap),
        }
    }
}

/// A finding of a rule that still words it with its detection, with how long its subject has
/// been stuck, for ranking. Rules move from this to facts (`facts::RuleFacts`) one by one.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub finding: Finding,
    pub stuck_ms: u64,
}

/// What a rule found, before the context rules had their say and before it is worded.
#[derive(Debug, Clone)]
pub(crate) enum Candidate {
    Facts(facts::Facts),
    Worded {
        rule: &'static str,
        found: Box<Found>,
    },
}

impl Candidate {
    pub fn severity(&self) -> Severity {
        match self {
            Candidate::Facts(f) => f.severity(),
            Candidate::Worded { found, .. } => found.finding.severity,
        }
    }

    pub fn cause(&self) -> Cause {
        match self {
            Candidate::Facts(f) => f.cause(),
            Candidate::Worded { found, .. } => found.finding.cause,
        }
    }

    pub fn subject(&self) -> Subject {
        match self {
            Candidate::Facts(f) => f.subject(),
            Candidate::Worded { found, .. } => found.finding.subject.clone(),
        }
    }

    pub fn stuck_ms(&self) -> u64 {
        match self {
            Candidate::Facts(f) => f.stuck_ms(),
            Candidate::Worded { found, .. } => found.stuck_ms,
        }
    }

    fn into_finding(self) -> Finding {
        match self {
            Candidate::Facts(f) => f.finding(),
            Candidate::Worded { rule, found } => Finding {
                rule: rule.to_string(),
                stuck_ms: Some(found.stuck_ms),
                ..found.finding
            },
        }
    }
}

/// Runs every rule and ranks the findings: causes first, then warnings, then context; within a
/// severity, the longest stuck first, then the one with the most evidence.
pub fn diagnose(snap: &Snapshot) -> Vec<Finding> {
    let ctx = Ctx::new(snap);
    let mut found: Vec<Finding> = rules::run(&ctx)
        .into_iter()
        .map(Candidate::into_finding)
        .collect();
    found.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.stuck_ms.cmp(&a.stuck_ms))
            .then(b.evidence.len().cmp(&a.evidence.len()))
    });
    found
}
