//! Diagnosis: rules over a snapshot, no live access, so every rule is tested on built or
//! recorded snapshots. Each rule lives in `rules/`, one file named after what it finds.
//!
//! Waiting is not stuck. A thread in accept(), an epoll_wait over idle connections, a worker on
//! an empty queue are normal; a rule names a cause only for a wait that something should have
//! ended: a request acknowledged with nothing back, data the peer never acknowledges, a window
//! that stays closed, data that arrived and nobody reads.

use std::collections::{HashMap, HashSet};

use hangscope_model::{AppView, Finding, Snapshot, SocketDetail};

pub mod chain;
mod connection;
mod facts;
pub mod hosts;
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
    /// The TCP and UDP sockets by inode, made the first time a rule looks one up.
    inet_by_inode: std::cell::OnceCell<HashMap<u64, &'a hangscope_model::InetSocket>>,
}

impl<'a> Ctx<'a> {
    pub fn new(snap: &'a Snapshot) -> Self {
        let mut listen_ports: HashSet<u16> = snap
            .sockets
            .iter()
            .filter_map(|s| match &s.detail {
                SocketDetail::Tcp(i) if i.state == hangscope_model::TcpState::Listen => {
                    Some(i.local.port)
                }
                _ => None,
            })
            .collect();
        // A PostgreSQL backend does not hold the listening socket (its postmaster does), yet
        // its connection on the server's port is one a client opened to it.
        if let Some(AppView::Postgres(v)) = &snap.app
            && v.server.port != 0
        {
            listen_ports.insert(v.server.port);
        }
        Ctx {
            snap,
            waiters: waiters::Waiters::new(snap),
            listen_ports,
            conns: connection::Conn::build(snap),
            inet_by_inode: std::cell::OnceCell::new(),
        }
    }

    /// The process's own TCP or UDP socket of inode `inode`.
    pub fn inet_by_inode(&self, inode: u64) -> Option<&'a hangscope_model::InetSocket> {
        let index = self
            .inet_by_inode
            .get_or_init(|| self.conns.iter().map(|c| (c.sock.inode, c.inet)).collect());
        index.get(&inode).copied()
    }
}

/// Every rule's facts over a snapshot, unranked and without words: what a sentence about a
/// chain's hops is made from.
pub(crate) fn facts_of(snap: &Snapshot) -> Vec<facts::Facts> {
    rules::run(&Ctx::new(snap))
}

/// Runs every rule and ranks the findings: causes first, then warnings, then context; within a
/// severity, the longest stuck first, then the one with the most evidence.
pub fn diagnose(snap: &Snapshot) -> Vec<Finding> {
    let ctx = Ctx::new(snap);
    let mut found: Vec<Finding> = rules::run(&ctx)
        .into_iter()
        .map(|f| words::finding_of(&f))
        .collect();
    found.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.stuck_ms.cmp(&a.stuck_ms))
            .then(b.evidence.len().cmp(&a.evidence.len()))
    });
    // After ranking, so a thread's stack does not weigh in it: where its code was.
    for f in &mut found {
        if let Some(e) = f
            .subject
            .tid
            .and_then(|tid| snap.threads.iter().find(|t| t.tid == tid))
            .and_then(words::stack::code_path)
        {
            f.evidence.push(e);
        }
    }
    found
}
