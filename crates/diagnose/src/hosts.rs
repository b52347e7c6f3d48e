//! Chains across hosts: a chain that ends at a peer on another host goes on with the document
//! that host's hangscope returned (`hangscope peer`, run over ssh), into one chain and one
//! verdict.
//!
//! A host's document is input from another machine, so it is never taken at its word: its
//! snapshot is diagnosed again here, and its chain walked again from the snapshots it carries,
//! exactly as `replay` does with a saved file; the words are this hangscope's.

use hangscope_model::{Chain, ChainEnd, Document, FoundBy, Hop, Snapshot, SocketDetail};

use crate::chain::{Look, walk};
use crate::facts::Facts;
use crate::facts::across::{Across, Crossing, HopSeen, Served};

/// Diagnoses a document again from its snapshots: the findings, the chain from the processes'
/// snapshots it carries (none is read live), each host's document the same way, and the chain
/// joined across them.
pub fn rediagnose(doc: &mut Document) {
    doc.set_findings(crate::diagnose(&doc.snapshot));
    if doc.chain.is_some() {
        let mut others: Vec<Option<Snapshot>> = std::mem::take(&mut doc.others)
            .into_iter()
            .map(Some)
            .collect();
        let (chain, others) = walk(&doc.snapshot, &doc.findings, &mut |pid| {
            let saved = others
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|s| s.process.pid == pid));
            match saved.and_then(Option::take) {
                Some(s) => Look::Read(Box::new(s)),
                None => Look::NotSeen("not in the saved file".into()),
            }
        });
        doc.set_chain(chain, others);
    }
    for h in &mut doc.hosts {
        if let Some(d) = h.document.as_deref_mut() {
            // A host's document names no further hosts of its own: they are all this one's.
            d.hosts.clear();
            rediagnose(d);
        }
    }
    join(doc);
}

/// The host a chain that ends on another host is to be followed to next, with this host's
/// end of the connection: `None` when it ends elsewhere.
pub fn next_host(doc: &Document) -> Option<(String, u16, Option<String>)> {
    match &doc.chain.as_ref()?.end {
        ChainEnd::OtherHost {
            host,
            port: Some(port),
            from,
        } => Some((host.clone(), *port, from.clone())),
        _ => None,
    }
}

/// Joins the document's chain, as walked on this host, with the chains of the hosts it was
/// followed to (`hosts`, in order): each host's hops are appended, marked with the address the
/// host was reached at, and the verdict is told across them.
pub fn join(doc: &mut Document) {
    let Some(chain) = doc.chain.take() else {
        return;
    };
    // Joined already: the chain as walked on this host is what is joined, once.
    if chain.hops.iter().any(|h| h.reached_at.is_some()) {
        doc.chain = Some(chain);
        return;
    }
    let mut hops = chain.hops;
    let mut end = chain.end;
    let mut crossings: Vec<(usize, usize)> = Vec::new();
    while let ChainEnd::OtherHost {
        host,
        port: Some(port),
        from,
    } = &end
    {
        let from = from.clone().unwrap_or_default();
        let Some(i) = doc.hosts.iter().position(|h| {
            &h.addr == host && h.port == *port && h.from == from && h.document.is_some()
        }) else {
            break;
        };
        // Each host once: a chain that comes back to a host it crossed stops there.
        if crossings.iter().any(|(_, j)| *j == i) {
            break;
        }
        let Some(remote) = doc.hosts[i].document.as_deref() else {
            break;
        };
        let Some(rchain) = remote.chain.as_ref().filter(|c| !c.hops.is_empty()) else {
            break;
        };
        let base = hops.len();
        crossings.push((base, i));
        let addr = host.clone();
        hops.extend(rchain.hops.iter().cloned().map(|mut h| {
            h.reached_at = Some(addr.clone());
            h
        }));
        end = match rchain.end.clone() {
            ChainEnd::Here => match rchain.hops.first() {
                Some(first) => ChainEnd::Root {
                    why: first.cause,
                    idle: first.rule.is_empty(),
                },
                None => ChainEnd::Here,
            },
            ChainEnd::Cycle { back_to } => ChainEnd::Cycle {
                back_to: back_to + base,
            },
            other => other,
        };
    }
    let joined = Chain { hops, end };
    let others = std::mem::take(&mut doc.others);
    doc.set_chain(joined, others);
    if crossings.is_empty() {
        return;
    }
    let said = crate::words::across::verdict(&across(doc, &crossings));
    doc.verdict.summary = said.summary;
    if let Some(step) = said.next_step {
        doc.verdict.next_step = step;
    }
}

/// The snapshot a hop of the joined chain was read from.
fn snapshot_of<'a>(
    doc: &'a Document,
    crossings: &[(usize, usize)],
    i: usize,
) -> Option<&'a Snapshot> {
    match crossings.iter().rev().find(|(base, _)| *base <= i) {
        None => match i {
            0 => Some(&doc.snapshot),
            _ => doc.others.get(i - 1),
        },
        Some((base, host)) => {
            let remote = doc.hosts.get(*host)?.document.as_deref()?;
            match i - base {
                0 => Some(&remote.snapshot),
                k => remote.others.get(k - 1),
            }
        }
    }
}

/// The joined chain's facts, as its verdict is told: each hop with its finding's facts found
/// again from the snapshot it was read from, and what the process at the far end of each
/// crossing did with the connection.
fn across<'a>(doc: &'a Document, crossings: &[(usize, usize)]) -> Across<'a> {
    let hops = doc
        .chain
        .iter()
        .flat_map(|c| c.hops.iter().enumerate())
        .map(|(i, hop)| {
            let snap = snapshot_of(doc, crossings, i);
            HopSeen {
                hop,
                snap,
                facts: snap.and_then(|s| facts_of_hop(s, hop)),
            }
        })
        .collect();
    let crossings: Vec<Crossing<'a>> = crossings
        .iter()
        .filter_map(|&(base, i)| {
            let host = doc.hosts.get(i)?;
            Some(Crossing {
                base,
                host,
                served: served(host.document.as_deref()?),
            })
        })
        .collect();
    let from_addr = crossings
        .first()
        .and_then(|c| c.host.from.parse::<std::net::SocketAddr>().ok())
        .map(|a| a.ip().to_string());
    let not_followed = match doc.chain.as_ref().map(|c| &c.end) {
        Some(ChainEnd::OtherHost { host, port, .. }) => doc
            .hosts
            .iter()
            .find(|h| &h.addr == host && Some(h.port) == *port && h.failure.is_some()),
        _ => None,
    };
    Across {
        hops,
        crossings,
        from_addr,
        not_followed,
    }
}

/// The facts of a hop's finding, found again by the rules over the snapshot it was read from:
/// those the hop carries, else the same rule's about the hop's thread.
fn facts_of_hop(snap: &Snapshot, hop: &Hop) -> Option<Facts> {
    if hop.rule.is_empty() {
        return None;
    }
    let mut same_rule: Vec<Facts> = crate::facts_of(snap)
        .into_iter()
        .filter(|f| f.rule() == hop.rule)
        .collect();
    let exact = same_rule
        .iter()
        .position(|f| f.to_json() == hop.facts)
        .or_else(|| same_rule.iter().position(|f| f.subject().tid == hop.tid))?;
    Some(same_rule.swap_remove(exact))
}

/// What the process at the far end did with the connection, from its own host's view.
fn served(remote: &Document) -> Served {
    let Some(s) = remote.served.as_ref() else {
        return Served::Unknown;
    };
    if s.found_by == FoundBy::Listener {
        return Served::Listener {
            local: s.local.clone(),
        };
    }
    let snap = &remote.snapshot;
    let recv_q = snap
        .socket(s.socket_inode)
        .and_then(|sock| match &sock.detail {
            SocketDetail::Tcp(t) => Some(t.recv_q),
            _ => None,
        });
    let waiters = crate::waiters::Waiters::new(snap);
    let waiter = waiters
        .on_any(&[s.fd])
        .first()
        .map(|w| (w.thread.tid, w.syscall().to_string()));
    Served::Connection {
        fd: s.fd,
        recv_q,
        waiter,
        threads_known: waiters.known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{base, seed, sleeper};
    use hangscope_model::{HopFailure, HopFailureKind, HostHop, Served};

    /// A document as a host's hangscope makes it: the snapshot diagnosed, its chain walked
    /// reading no other process.
    fn diagnosed(snap: Snapshot) -> Document {
        let findings = crate::diagnose(&snap);
        let mut doc = Document::new("t", snap, findings);
        let (chain, others) = walk(&doc.snapshot, &doc.findings, &mut |_| {
            Look::NotSeen("not read".into())
        });
        doc.set_chain(chain, others);
        doc
    }

    /// A process stopped by a signal: a root with a finding of its own.
    fn stopped(pid: i32, name: &str) -> Snapshot {
        let mut snap = base(pid, name);
        snap.process.state = "T".into();
        let mut t = sleeper(pid, name, 100);
        t.state = "T".into();
        t.last_ran_ms_ago = Some(12_345.6);
        snap.threads = vec![t];
        snap
    }

    /// The seed's client on this host, its chain ending at 10.0.130.72:10100, and that host's
    /// document: meta 4, stopped, holding the connection as fd 5.
    fn docs() -> (Document, Document) {
        let local = diagnosed(seed());
        let mut remote = diagnosed(stopped(4, "meta"));
        remote.served = Some(Served {
            local: "10.0.130.72:10100".into(),
            remote: "10.0.130.71:42428".into(),
            socket_inode: 99,
            fd: 5,
            ..Served::default()
        });
        (local, remote)
    }

    fn host(document: Option<Document>, failure: Option<HopFailure>) -> HostHop {
        HostHop {
            addr: "10.0.130.72".into(),
            port: 10100,
            from: "10.0.130.71:42428".into(),
            document: document.map(Box::new),
            failure,
            ..HostHop::default()
        }
    }

    #[test]
    fn the_chain_goes_on_with_the_other_hosts_hops() {
        let (mut doc, remote) = docs();
        let there = remote.findings[0].clone();
        assert_eq!(there.rule, "stopped");
        doc.hosts.push(host(Some(remote), None));
        join(&mut doc);
        let chain = doc.chain.clone().expect("chain");
        let hops: Vec<_> = chain
            .hops
            .iter()
            .map(|h| (h.pid, h.reached_at.as_deref()))
            .collect();
        assert_eq!(hops, [(31516, None), (4, Some("10.0.130.72"))]);
        assert_eq!(
            chain.end,
            ChainEnd::Root {
                why: Some(hangscope_model::Cause::Stopped),
                idle: false
            }
        );
        let root = doc.verdict.root.clone().expect("root");
        assert_eq!((root.pid, root.host.as_deref()), (4, Some("10.0.130.72")));
        // Who waits where, what the far end did with the request (its snapshot has no such
        // socket and no thread on the fd), then what holds it there, in its finding's words
        // from its facts, as a sentence of its own.
        assert_eq!(
            doc.verdict.summary,
            format!(
                "Thread 31576 (dump_meta) of zbs-metad 31516 on 10.0.130.71 waits for \
                 10.0.130.72:10100 (peer silent) → process 4 (meta) there holds the connection, \
                 and no thread waits on its fd 5 any more. {}",
                there.summary
            )
        );
        assert_eq!(
            doc.verdict.next_step,
            format!("On 10.0.130.72: {}", there.next_step)
        );
        // Joined once: a second join changes nothing.
        let before = doc.clone();
        join(&mut doc);
        assert_eq!(doc, before);
    }

    #[test]
    fn a_host_not_followed_leaves_the_local_verdict() {
        let (mut doc, _) = docs();
        let before = doc.verdict.clone();
        doc.hosts.push(host(
            None,
            Some(HopFailure {
                kind: HopFailureKind::Auth,
                reason: "ssh was refused".into(),
            }),
        ));
        join(&mut doc);
        assert_eq!(doc.verdict, before);
        assert!(matches!(
            doc.chain.as_ref().map(|c| &c.end),
            Some(ChainEnd::OtherHost { .. })
        ));
        // A host's document for another connection is not this chain's.
        let (mut doc, remote) = docs();
        let mut other = host(Some(remote), None);
        other.from = "10.0.130.71:4001".into();
        doc.hosts.push(other);
        join(&mut doc);
        assert_eq!(doc.chain.as_ref().map(|c| c.hops.len()), Some(1));
    }

    #[test]
    fn a_chain_crosses_two_hosts_in_order() {
        let (mut doc, mut b) = docs();
        // B's process waits on a third host, C, which the run followed next; a fourth that
        // C's waits on could not be followed.
        if let Some(chain) = b.chain.as_mut() {
            chain.end = ChainEnd::OtherHost {
                host: "10.0.130.76".into(),
                port: Some(2181),
                from: Some("10.0.130.72:5000".into()),
            };
        }
        let mut c = diagnosed(stopped(8, "zk"));
        let there = c.findings[0].clone();
        if let Some(chain) = c.chain.as_mut() {
            chain.end = ChainEnd::OtherHost {
                host: "10.0.130.80".into(),
                port: Some(7000),
                from: Some("10.0.130.76:6000".into()),
            };
        }
        doc.hosts.push(host(Some(b), None));
        let mut third = host(Some(c), None);
        third.addr = "10.0.130.76".into();
        third.port = 2181;
        third.from = "10.0.130.72:5000".into();
        doc.hosts.push(third);
        let mut fourth = host(
            None,
            Some(HopFailure {
                kind: HopFailureKind::Timeout,
                reason: "no answer before the deadline".into(),
            }),
        );
        fourth.addr = "10.0.130.80".into();
        fourth.port = 7000;
        fourth.from = "10.0.130.76:6000".into();
        doc.hosts.push(fourth);
        join(&mut doc);
        let chain = doc.chain.clone().expect("chain");
        let hops: Vec<_> = chain
            .hops
            .iter()
            .map(|h| (h.pid, h.reached_at.as_deref()))
            .collect();
        assert_eq!(
            hops,
            [
                (31516, None),
                (4, Some("10.0.130.72")),
                (8, Some("10.0.130.76"))
            ]
        );
        let v = &doc.verdict.summary;
        // The second crossing names who waits for that host (its document does not say which
        // socket it served), and the host that was not followed.
        assert!(
            v.contains(&format!(
                "meta 4 waits for 10.0.130.76:2181 (stopped) → process 8 (zk) there holds the other \
                 end. {} 10.0.130.80:7000 was not followed: no answer \
                 before the deadline.",
                there.summary
            )),
            "{v}"
        );
        assert_eq!(
            doc.verdict.next_step,
            format!("On 10.0.130.76: {}", there.next_step)
        );
    }
}
