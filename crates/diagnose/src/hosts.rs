//! Chains across hosts: a chain that ends at a peer on another host goes on with the document
//! that host's hangscope returned (`hangscope peer`, run over ssh), into one chain and one
//! verdict.
//!
//! A host's document is input from another machine, so it is never taken at its word: its
//! snapshot is diagnosed again here, and its chain walked again from the snapshots it carries,
//! exactly as `replay` does with a saved file; the words are this hangscope's.

use hangscope_model::{Chain, ChainEnd, Document, FoundBy, Hop, Snapshot, SocketDetail};

use crate::chain::{Look, walk};

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
    let summary = across(doc, &crossings);
    let chain = doc.chain.as_ref();
    if let Some(root) = chain
        .and_then(Chain::root)
        .filter(|r| r.reached_at.is_some())
    {
        let at = root.reached_at.clone().unwrap_or_default();
        if !doc.verdict.next_step.is_empty() {
            doc.verdict.next_step = format!("On {at}: {}", doc.verdict.next_step);
        }
    }
    doc.verdict.summary = summary;
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

/// The chain across hosts in one sentence: who waits on which host, what the process at the
/// other end did with the request, and what holds it up there.
fn across(doc: &Document, crossings: &[(usize, usize)]) -> String {
    let Some(chain) = doc.chain.as_ref() else {
        return doc.verdict.summary.clone();
    };
    let mut parts: Vec<String> = Vec::new();
    let mut start = 0;
    for (n, &(base, host)) in crossings.iter().enumerate() {
        let Some(h) = doc.hosts.get(host) else { break };
        // The hops on the host before this crossing, the last of which waits on the peer.
        for i in start..base {
            let Some(hop) = chain.hops.get(i) else { break };
            let here = where_is(doc, crossings, n == 0 && i == 0);
            if i + 1 < base {
                parts.push(format!(
                    "{}{here} waits on {}",
                    who(doc, crossings, i, hop),
                    name(chain.hops.get(i + 1))
                ));
            } else {
                let how = hop
                    .cause
                    .map(|c| format!(" ({})", c.label()))
                    .unwrap_or_default();
                parts.push(format!(
                    "{}{here} waits for {}:{}{how}",
                    who(doc, crossings, i, hop),
                    h.addr,
                    h.port
                ));
            }
        }
        let Some(remote) = h.document.as_deref() else {
            break;
        };
        let Some(first) = chain.hops.get(base) else {
            break;
        };
        let end_of = crossings.get(n + 1).map_or(chain.hops.len(), |c| c.0);
        let mut said = format!(
            "process {} ({}) there {}",
            first.pid,
            first.name.escaped_cut(40),
            served(remote)
        );
        // Its own wait, and the processes on that host it leads through.
        let own: Vec<&Hop> = chain.hops[base..end_of].iter().collect();
        if let Some(first) = own.first() {
            said.push_str(&format!("; {}", lower_first(&first.summary)));
        }
        for hop in own.iter().skip(1) {
            said.push_str(&format!(
                " → {}: {}",
                name(Some(hop)),
                lower_first(&hop.summary)
            ));
        }
        parts.push(said);
        start = end_of;
    }
    let mut s = upper_first(&parts.join(" → "));
    let last_failed = match &chain.end {
        ChainEnd::OtherHost { host, port, .. } => doc
            .hosts
            .iter()
            .find(|h| &h.addr == host && Some(h.port) == *port && h.failure.is_some()),
        _ => None,
    };
    if let Some(f) = last_failed.and_then(|h| h.failure.as_ref().map(|f| (h, f))) {
        s.push_str(&format!(
            " → {}:{} was not followed: {}",
            f.0.addr, f.0.port, f.1.reason
        ));
    }
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn name(hop: Option<&Hop>) -> String {
    match hop {
        Some(h) => format!("{} {}", h.name.escaped_cut(40), h.pid),
        None => "?".into(),
    }
}

/// "thread 31576 (dump_meta) of meta-client 31570", or the process alone.
fn who(doc: &Document, crossings: &[(usize, usize)], i: usize, hop: &Hop) -> String {
    let process = name(Some(hop));
    let thread = hop.tid.and_then(|t| {
        let snap = snapshot_of(doc, crossings, i)?;
        snap.thread(t).map(|th| (t, th.name.clone()))
    });
    match thread {
        Some((tid, tname)) => format!("thread {tid} ({}) of {process}", tname.escaped_cut(40)),
        None => process,
    }
}

/// " on 198.18.0.1": this host's address on the connection, for the first hop; " there" is said
/// of the others.
fn where_is(doc: &Document, crossings: &[(usize, usize)], first: bool) -> String {
    if !first {
        return String::new();
    }
    let from = crossings
        .first()
        .and_then(|(_, h)| doc.hosts.get(*h))
        .map(|h| h.from.as_str())
        .unwrap_or_default();
    match from.rsplit_once(':') {
        Some((addr, _)) if !addr.is_empty() => {
            format!(" on {}", addr.trim_start_matches('[').trim_end_matches(']'))
        }
        _ => String::new(),
    }
}

/// What the process at the far end did with the connection, from its own host's view.
fn served(remote: &Document) -> String {
    let Some(s) = remote.served.as_ref() else {
        return "holds the other end".into();
    };
    if s.found_by == FoundBy::Listener {
        return format!(
            "holds the listener on {} (no socket there has this connection's addresses: NAT \
             or a proxy is in between, so this is the likely process, not a certain one)",
            s.local
        );
    }
    let snap = &remote.snapshot;
    let tcp = snap
        .socket(s.socket_inode)
        .and_then(|sock| match &sock.detail {
            SocketDetail::Tcp(t) => Some(t),
            _ => None,
        });
    let read = match tcp {
        Some(t) if t.recv_q == 0 => "read the request".to_string(),
        Some(t) => format!(
            "has not read the request ({} bytes wait in its queue)",
            t.recv_q
        ),
        None => "holds the connection".to_string(),
    };
    let waiters = crate::waiters::Waiters::new(snap);
    let on_fd = waiters.on_any(&[s.fd]);
    let fd_part = match on_fd.first() {
        Some(w) => format!(
            "thread {} waits on it (fd {}) in {}",
            w.thread.tid,
            s.fd,
            w.syscall()
        ),
        None if waiters.known => format!("no thread waits on its fd {} any more", s.fd),
        None => format!("on fd {}", s.fd),
    };
    format!("{read}, and {fd_part}")
}

/// "Thread 4720 ..." → "thread 4720 ...": a summary continued inside a sentence.
fn lower_first(s: &str) -> String {
    let s = s.trim_end_matches('.');
    for w in ["Thread ", "The ", "No ", "Process ", "None "] {
        if let Some(rest) = s.strip_prefix(w) {
            return format!("{}{rest}", w.to_lowercase());
        }
    }
    s.to_string()
}

/// A sentence that starts with "thread" starts with a capital; one that starts with a
/// process's name keeps it as it is.
fn upper_first(s: &str) -> String {
    match s.strip_prefix("thread ") {
        Some(rest) => format!("Thread {rest}"),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{
        Cause, Finding, HopFailure, HopFailureKind, HostHop, Next, Process, Served, Severity,
        Subject,
    };

    fn snapshot(pid: i32, name: &str) -> Snapshot {
        Snapshot {
            process: Process {
                pid,
                name: name.into(),
                ..Process::default()
            },
            ..Snapshot::default()
        }
    }

    fn finding(summary: &str, cause: Cause, next: Option<Next>) -> Finding {
        Finding {
            rule: "r".into(),
            severity: Severity::Cause,
            cause,
            summary: summary.into(),
            next_step: format!("step of {summary}"),
            subject: Subject::default(),
            next,
            ..Finding::default()
        }
    }

    fn hop_of(doc: &Document) -> Hop {
        let f = &doc.findings[0];
        Hop {
            pid: doc.snapshot.process.pid,
            name: doc.snapshot.process.name.clone(),
            rule: f.rule.clone(),
            cause: Some(f.cause),
            severity: Some(f.severity),
            summary: f.summary.clone(),
            next_step: f.next_step.clone(),
            next: f.next.clone(),
            ..Hop::default()
        }
    }

    /// The client on this host, its chain ending at 198.18.0.2:10100, and that host's
    /// document: meta 4, whose handler waits on a lock.
    fn docs() -> (Document, Document) {
        let mut local = Document::new(
            "t",
            snapshot(10, "client"),
            vec![finding(
                "Thread 10 waits for a reply",
                Cause::PeerSilent,
                Some(Next::host_port("198.18.0.2", 10100)),
            )],
        );
        let end = ChainEnd::OtherHost {
            host: "198.18.0.2".into(),
            port: Some(10100),
            from: Some("198.18.0.1:4000".into()),
        };
        let hops = vec![hop_of(&local)];
        local.set_chain(Chain { hops, end }, Vec::new());
        let mut remote = Document::new(
            "t",
            snapshot(4, "meta"),
            vec![finding("Thread 7 waits on a mutex", Cause::LockWait, None)],
        );
        let hops = vec![hop_of(&remote)];
        remote.set_chain(
            Chain {
                hops,
                end: ChainEnd::Here,
            },
            Vec::new(),
        );
        remote.served = Some(Served {
            local: "198.18.0.2:10100".into(),
            remote: "198.18.0.1:4000".into(),
            socket_inode: 99,
            fd: 5,
            ..Served::default()
        });
        (local, remote)
    }

    fn host(document: Option<Document>, failure: Option<HopFailure>) -> HostHop {
        HostHop {
            addr: "198.18.0.2".into(),
            port: 10100,
            from: "198.18.0.1:4000".into(),
            document: document.map(Box::new),
            failure,
            ..HostHop::default()
        }
    }

    #[test]
    fn the_chain_goes_on_with_the_other_hosts_hops() {
        let (mut doc, remote) = docs();
        doc.hosts.push(host(Some(remote), None));
        join(&mut doc);
        let chain = doc.chain.clone().expect("chain");
        let hops: Vec<_> = chain
            .hops
            .iter()
            .map(|h| (h.pid, h.reached_at.as_deref()))
            .collect();
        assert_eq!(hops, [(10, None), (4, Some("198.18.0.2"))]);
        assert_eq!(
            chain.end,
            ChainEnd::Root {
                why: Some(Cause::LockWait),
                idle: false
            }
        );
        let root = doc.verdict.root.clone().expect("root");
        assert_eq!((root.pid, root.host.as_deref()), (4, Some("198.18.0.2")));
        let v = &doc.verdict.summary;
        assert!(
            v.starts_with("client 10 on 198.18.0.1 waits for 198.18.0.2:10100 (peer silent) → "),
            "{v}"
        );
        assert!(v.contains("process 4 (meta) there"), "{v}");
        assert!(v.contains("; thread 7 waits on a mutex"), "{v}");
        assert_eq!(
            doc.verdict.next_step,
            "On 198.18.0.2: step of Thread 7 waits on a mutex"
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
        other.from = "198.18.0.1:4001".into();
        doc.hosts.push(other);
        join(&mut doc);
        assert_eq!(doc.chain.as_ref().map(|c| c.hops.len()), Some(1));
    }

    #[test]
    fn a_chain_crosses_two_hosts_in_order() {
        let (mut doc, mut b) = docs();
        // B's process waits on a third host, C, which the run followed next.
        if let Some(chain) = b.chain.as_mut() {
            chain.end = ChainEnd::OtherHost {
                host: "198.18.0.6".into(),
                port: Some(2181),
                from: Some("198.18.0.2:5000".into()),
            };
        }
        let mut c = Document::new(
            "t",
            snapshot(8, "zk"),
            vec![finding("Thread 9 waits in D", Cause::Stopped, None)],
        );
        let hops = vec![hop_of(&c)];
        c.set_chain(
            Chain {
                hops,
                end: ChainEnd::Here,
            },
            Vec::new(),
        );
        doc.hosts.push(host(Some(b), None));
        let mut third = host(Some(c), None);
        third.addr = "198.18.0.6".into();
        third.port = 2181;
        third.from = "198.18.0.2:5000".into();
        doc.hosts.push(third);
        join(&mut doc);
        let chain = doc.chain.clone().expect("chain");
        let hops: Vec<_> = chain
            .hops
            .iter()
            .map(|h| (h.pid, h.reached_at.as_deref()))
            .collect();
        assert_eq!(
            hops,
            [(10, None), (4, Some("198.18.0.2")), (8, Some("198.18.0.6"))]
        );
        let root = doc.verdict.root.clone().expect("root");
        assert_eq!((root.pid, root.host.as_deref()), (8, Some("198.18.0.6")));
        assert!(
            doc.verdict.summary.contains("→ process 8 (zk) there"),
            "{}",
            doc.verdict.summary
        );
    }
}
