//! Wait chains: the target's finding points at another process (the other end of its
//! connection, the holder of its lock, its tracer); that process is read and diagnosed in turn,
//! and so on until a process whose wait leads nowhere else on this host — the root.
//!
//! The walk only follows what a finding proves (its `next` names a process), so each hop has
//! its evidence; it reads each process once, stops at a cycle, after [`MAX_HOPS`], or when
//! the caller has no time left. Reading a process is the caller's (`look`): live collection,
//! or the snapshots a saved document carries, so replay walks the same chain.

use hangscope_model::{
    Chain, ChainEnd, Finding, GapReason, Hop, Next, NextKind, Severity, Snapshot, Verdict,
};

/// Processes followed after the target, at most.
pub const MAX_HOPS: usize = 8;

/// What reading a process gave.
pub enum Look {
    Read(Box<Snapshot>),
    /// It could not be read: gone, or not visible; the reason in words.
    NotSeen(String),
    /// No time left before the run's deadline.
    Deadline,
}

/// Walks from the target (already diagnosed) to the root. Returns the chain and the snapshots
/// read on the way, in the chain's order.
pub fn walk(
    target: &Snapshot,
    findings: &[Finding],
    look: &mut dyn FnMut(i32) -> Look,
) -> (Chain, Vec<Snapshot>) {
    walk_with(target, findings, look, &crate::diagnose)
}

fn walk_with(
    target: &Snapshot,
    findings: &[Finding],
    look: &mut dyn FnMut(i32) -> Look,
    diagnose: &dyn Fn(&Snapshot) -> Vec<Finding>,
) -> (Chain, Vec<Snapshot>) {
    let mut hops = vec![hop(target, findings, None)];
    let mut others = Vec::new();
    let end = loop {
        let Some(last) = hops.last() else {
            break ChainEnd::Here;
        };
        let here = last.pid;
        let Some(next) = last.next.clone() else {
            break end_at(&hops);
        };
        let pid = match (next.kind, next.pid) {
            (NextKind::Process | NextKind::Thread, Some(pid)) if pid != here && pid > 0 => pid,
            (NextKind::HostPort, _) => match next.host {
                Some(host) if !is_this_host(&host) => {
                    let snap = others.last().unwrap_or(target);
                    let from = next
                        .port
                        .and_then(|port| local_end(snap, last, &host, port));
                    break ChainEnd::OtherHost {
                        host,
                        port: next.port,
                        from,
                    };
                }
                _ => break end_at(&hops),
            },
            _ => break end_at(&hops),
        };
        if let Some(back_to) = hops.iter().position(|h| h.pid == pid) {
            break ChainEnd::Cycle { back_to };
        }
        if hops.len() > MAX_HOPS {
            break ChainEnd::HopLimit { limit: MAX_HOPS };
        }
        match look(pid) {
            Look::Read(snap) => {
                let found = diagnose(&snap);
                if Verdict::of(&found).not_seen {
                    break ChainEnd::NotSeen {
                        pid,
                        reason: "its fds or system calls could not be read".into(),
                    };
                }
                let h = hop(&snap, &found, next.tid);
                // Cut short by the deadline, a process with no finding is not known to be
                // idle: what it waits on may be what was not read.
                let cut = snap.gaps.iter().any(|g| g.reason == GapReason::Deadline);
                if h.rule.is_empty() && cut {
                    break ChainEnd::Deadline { pid };
                }
                hops.push(h);
                others.push(*snap);
            }
            Look::NotSeen(reason) => break ChainEnd::NotSeen { pid, reason },
            Look::Deadline => break ChainEnd::Deadline { pid },
        }
    };
    // A process not stuck itself, whose wait leads only to others not stuck either (a shell
    // waiting for its busy-free child), has no chain to tell.
    let stuck = |h: &Hop| h.severity.is_some_and(|s| s >= Severity::Warning);
    if !hops.iter().any(stuck) && !matches!(end, ChainEnd::Cycle { .. }) {
        hops.truncate(1);
        others.clear();
        return (
            Chain {
                hops,
                end: ChainEnd::Here,
            },
            others,
        );
    }
    (Chain { hops, end }, others)
}

/// Whether a finding's next step is another process on this host.
fn points_away(next: Option<&Next>, own: i32) -> bool {
    next.is_some_and(|n| {
        matches!(n.kind, NextKind::Process | NextKind::Thread)
            && n.pid.is_some_and(|p| p != own && p > 0)
    })
}

/// The end of a chain whose last hop points at no other process.
fn end_at(hops: &[Hop]) -> ChainEnd {
    match hops {
        [] | [_] => ChainEnd::Here,
        [.., last] => ChainEnd::Root {
            why: last.cause,
            idle: last.rule.is_empty(),
        },
    }
}

/// This host's end of the TCP connection `hop` waits on to `host:port`, "addr:port": the one
/// its finding names, else the only one established to that peer.
fn local_end(snap: &Snapshot, hop: &Hop, host: &str, port: u16) -> Option<String> {
    use hangscope_model::SocketDetail;
    let named = hop
        .facts
        .get("conn")
        .and_then(|c| c.get("socket_inode"))
        .and_then(serde_json::Value::as_u64);
    let to_peer = |s: &&hangscope_model::Socket| match &s.detail {
        SocketDetail::Tcp(t) => {
            t.state == hangscope_model::TcpState::Established
                && t.peer.addr == host
                && t.peer.port == port
        }
        _ => false,
    };
    let chosen = match named.and_then(|i| snap.socket(i)).filter(to_peer) {
        Some(s) => s,
        None => {
            let mut all = snap.sockets.iter().filter(to_peer);
            let first = all.next()?;
            if all.next().is_some() {
                return None;
            }
            first
        }
    };
    match &chosen.detail {
        SocketDetail::Tcp(t) => Some(t.local.to_string()),
        _ => None,
    }
}

/// Loopback addresses are this host; anything else is another until #14 says otherwise.
fn is_this_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .map(|a| a.is_loopback() || a.is_unspecified())
        .unwrap_or(false)
}

/// One process as a hop: the finding about the thread the previous hop waits on, else the
/// process's verdict; with neither, what its threads do.
fn hop(snap: &Snapshot, findings: &[Finding], tid: Option<i32>) -> Hop {
    let p = &snap.process;
    let mut h = Hop {
        pid: p.pid,
        tid,
        name: p.name.clone(),
        host: snap.host.hostname.clone(),
        ..Hop::default()
    };
    let on_thread = tid.and_then(|t| {
        findings
            .iter()
            .find(|f| f.severity >= Severity::Warning && f.subject.tid == Some(t))
    });
    let verdict = Verdict::of(findings);
    // With nothing wrong of its own, a process may still wait on another (a holder waiting
    // for its child): that context finding is the edge.
    let edge = || {
        findings
            .iter()
            .find(|f| f.severity == Severity::Info && points_away(f.next.as_ref(), p.pid))
    };
    let chosen = on_thread
        .or_else(|| verdict.finding.and_then(|i| findings.get(i)))
        .or_else(edge);
    match chosen {
        Some(f) => {
            h.tid = f.subject.tid.or(tid);
            h.rule = f.rule.clone();
            h.cause = Some(f.cause);
            h.severity = Some(f.severity);
            h.summary = f.summary.clone();
            h.next_step = f.next_step.clone();
            h.facts = f.facts.clone();
            h.next = f.next.clone();
            h.stuck_ms = f.stuck_ms;
        }
        None => h.summary = crate::words::chain::idle(snap, tid),
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{Cause, Process, Subject, SyscallState, Thread};

    fn process(pid: i32, name: &str) -> Snapshot {
        Snapshot {
            process: Process {
                pid,
                name: name.into(),
                state: "S".into(),
                ..Process::default()
            },
            threads: vec![Thread {
                tid: pid,
                name: name.into(),
                state: "S".into(),
                syscall: Some(SyscallState {
                    name: "read".into(),
                    summary: "read(0, 0x7ffd0000, 4096)".into(),
                    ..SyscallState::default()
                }),
                ..Thread::default()
            }],
            ..Snapshot::default()
        }
    }

    fn waits_on(pid: i32, tid: i32, cause: Cause) -> Finding {
        Finding {
            rule: "pipe_wait".into(),
            severity: Severity::Cause,
            cause,
            summary: format!("waits on {pid}"),
            subject: Subject {
                tid: Some(tid),
                ..Subject::default()
            },
            next: Some(Next::process(pid)),
            ..Finding::default()
        }
    }

    #[test]
    fn a_one_hop_wait_is_not_a_chain() {
        let snap = process(10, "a");
        let (chain, others) = walk(&snap, &[], &mut |_| Look::Deadline);
        assert_eq!(chain.end, ChainEnd::Here);
        assert_eq!((chain.hops.len(), others.len()), (1, 0));
    }

    #[test]
    fn an_idle_holder_is_the_root() {
        // The target's finding points at 20, which the walk reads; 20 has nothing of its own,
        // so it is the idle root and says what its thread does.
        let snap = process(10, "client");
        let findings = [waits_on(20, 10, Cause::PipeWait)];
        let mut looked = Vec::new();
        let (chain, others) = walk(&snap, &findings, &mut |pid| {
            looked.push(pid);
            Look::Read(Box::new(process(pid, "holder")))
        });
        assert_eq!(looked, [20]);
        assert_eq!(
            chain.end,
            ChainEnd::Root {
                why: None,
                idle: true
            }
        );
        assert_eq!(others.len(), 1);
        let root = chain.root().expect("a root");
        assert_eq!(root.pid, 20);
        assert!(root.summary.contains("read(0, "), "{}", root.summary);
    }

    #[test]
    fn a_cycle_ends_the_walk_where_it_closes() {
        // 10 → 20 → 30 → 20: each process is read once, and the walk stops at the hop the
        // cycle closes on.
        let snap = process(10, "a");
        let findings = [waits_on(20, 10, Cause::LockWait)];
        let mut looked = Vec::new();
        let next_of = |pid: i32| if pid == 20 { 30 } else { 20 };
        let (chain, others) = walk_with(
            &snap,
            &findings,
            &mut |pid| {
                looked.push(pid);
                Look::Read(Box::new(process(pid, "p")))
            },
            &|s: &Snapshot| {
                vec![waits_on(
                    next_of(s.process.pid),
                    s.process.pid,
                    Cause::LockWait,
                )]
            },
        );
        assert_eq!(looked, [20, 30]);
        assert_eq!(others.len(), 2);
        assert_eq!(chain.end, ChainEnd::Cycle { back_to: 1 });
        assert_eq!(chain.root().map(|h| h.pid), Some(30));
    }

    #[test]
    fn the_walk_stops_at_its_bound() {
        let snap = process(10, "a");
        let findings = [waits_on(11, 10, Cause::PipeWait)];
        let mut looked = 0;
        let (chain, _) = walk_with(
            &snap,
            &findings,
            &mut |pid| {
                looked += 1;
                Look::Read(Box::new(process(pid, "p")))
            },
            &|s: &Snapshot| vec![waits_on(s.process.pid + 1, s.process.pid, Cause::PipeWait)],
        );
        assert_eq!(looked, MAX_HOPS);
        assert_eq!(chain.end, ChainEnd::HopLimit { limit: MAX_HOPS });
    }

    #[test]
    fn a_process_that_cannot_be_read_ends_the_chain_with_the_reason() {
        let snap = process(10, "a");
        let findings = [waits_on(20, 10, Cause::PipeWait)];
        let (chain, _) = walk(&snap, &findings, &mut |_| Look::NotSeen("exited".into()));
        assert_eq!(
            chain.end,
            ChainEnd::NotSeen {
                pid: 20,
                reason: "exited".into()
            }
        );
        assert!(chain.root().is_none());
    }

    #[test]
    fn a_remote_peer_ends_the_chain_on_another_host() {
        let snap = process(10, "a");
        let mut f = waits_on(20, 10, Cause::PeerSilent);
        f.next = Some(Next::host_port("10.0.130.72", 10100));
        let (chain, _) = walk(&snap, &[f], &mut |_| Look::Deadline);
        assert_eq!(
            chain.end,
            ChainEnd::OtherHost {
                host: "10.0.130.72".into(),
                port: Some(10100),
                from: None,
            }
        );
        // A loopback address is this host: nothing to follow by address.
        let mut f = waits_on(20, 10, Cause::PeerSilent);
        f.next = Some(Next::host_port("127.0.0.1", 5432));
        let (chain, _) = walk(&snap, &[f], &mut |_| Look::Deadline);
        assert_eq!(chain.end, ChainEnd::Here);
    }
}
