//! The other end of each socket the target does not hold itself, found among every process's
//! fds.

use std::collections::{HashMap, HashSet};

use hangscope_model::{
    Gap, GapReason, PeerEnd, PeerHolder, Process, Socket, SocketDetail, UnixPeer,
};

use super::dumps::Dumps;
use super::local_peers;
use crate::holders;
use crate::{Options, ProcRoot};

/// The other ends the target does not hold itself — UNIX peers, and TCP connections' local
/// peers — resolved to the process and fd that hold them, with one /proc/*/fd scan for both.
pub(super) fn resolve_peers(
    root: &ProcRoot,
    process: &Process,
    sockets: &mut [Socket],
    socket_fds: &[(i32, u64)],
    dumps: &Dumps,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) {
    let pid = process.pid;
    let own: HashMap<u64, i32> = socket_fds.iter().map(|&(fd, ino)| (ino, fd)).collect();
    // Peers the target holds itself (a socketpair kept whole) need no system-wide scan.
    let peers: HashSet<u64> = sockets
        .iter()
        .flat_map(|s| match &s.detail {
            SocketDetail::Unix(u) => [Some(u.peer_inode), None],
            SocketDetail::Tcp(i) | SocketDetail::Udp(i) => match i.local_peer.as_deref() {
                Some(p) => [Some(p.inode), p.listener().map(|l| l.inode)],
                None => [None, None],
            },
            _ => [None, None],
        })
        .flatten()
        .filter(|p| *p != 0 && !own.contains_key(p))
        .collect();
    let scan = holders::scan(root, holders::Kind::Socket, &peers, pid, &opts.deadline);
    if scan.cut_by_deadline {
        gaps.push(Gap::new(
            "holders of peer sockets",
            GapReason::Deadline,
            format!(
                "the /proc/*/fd scan stopped after {} processes",
                scan.processes
            ),
        ));
    }
    if dumps.peers_not_looked_up > 0 {
        gaps.push(Gap::new(
            format!(
                "the other end of {} connections to this host",
                dumps.peers_not_looked_up
            ),
            if opts.deadline.passed() {
                GapReason::Deadline
            } else {
                GapReason::Skipped
            },
            format!(
                "at most {} are looked up, before the deadline",
                local_peers::MAX_LOOKUPS
            ),
        ));
    }
    if let (n @ 1.., Some(first)) = &dumps.peer_lookup_failures {
        gaps.push(Gap::new(
            format!("the other end of {n} connections to this host"),
            GapReason::Other,
            format!("the sock_diag lookup failed: {first}"),
        ));
    }
    // Another process holding the peer is the interesting answer; the target itself (both
    // ends kept) only when nobody else does.
    let holder_of = |inode: u64| {
        scan.holders
            .get(&inode)
            .and_then(|h| h.iter().find(|h| h.pid != pid).copied())
            .or_else(|| own.get(&inode).map(|&fd| holders::Holder { pid, fd }))
    };
    let not_found = |inode: u64| {
        if scan.cut_by_deadline {
            format!("socket:[{inode}] not found before the deadline cut the /proc/*/fd scan")
        } else {
            format!(
                "socket:[{inode}] is held by no process visible here ({} processes scanned, {} \
                 unreadable): another PID namespace, closed, or only in flight",
                scan.processes, scan.unreadable
            )
        }
    };
    let mut names = holders::Names::default();
    let mut holder_named = |inode: u64| {
        holder_of(inode).map(|h| PeerHolder {
            pid: h.pid,
            name: if h.pid == pid {
                process.name.clone()
            } else {
                names.of(root, h.pid)
            },
            fd: h.fd,
            threads: None,
            opened: Vec::new(),
        })
    };
    for s in sockets.iter_mut() {
        match &mut s.detail {
            SocketDetail::Unix(u) if u.peer_inode != 0 => {
                let peer_path = dumps
                    .unix
                    .get(&u.peer_inode)
                    .and_then(|e| e.socket.path.clone());
                match holder_named(u.peer_inode) {
                    Some(h) => {
                        u.peer = Some(Box::new(UnixPeer {
                            pid: h.pid,
                            name: h.name,
                            fd: h.fd,
                            path: peer_path,
                            threads: None,
                        }));
                    }
                    None => {
                        let mut why = not_found(u.peer_inode);
                        if let Some(p) = peer_path {
                            why.push_str(&format!("; the peer is bound to {p}"));
                        }
                        u.peer_unresolved = Some(why);
                    }
                }
            }
            SocketDetail::Tcp(i) | SocketDetail::Udp(i) => {
                let Some(p) = i.local_peer.as_deref_mut() else {
                    continue;
                };
                // Not accepted yet: the socket to name is the listener that should accept it.
                let end = match &mut p.end {
                    Some(PeerEnd::NotAccepted { listener }) => listener.as_deref_mut(),
                    _ if p.inode == 0 => {
                        // Closed by its process (an orphan in FIN-WAIT, TIME-WAIT...).
                        p.end = Some(PeerEnd::Unheld {
                            reason: format!("held by no process ({})", p.state),
                        });
                        None
                    }
                    _ => Some(p),
                };
                if let Some(end) = end {
                    end.end = Some(match holder_named(end.inode) {
                        Some(holder) => PeerEnd::Held { holder },
                        None => PeerEnd::Unheld {
                            reason: not_found(end.inode),
                        },
                    });
                }
            }
            _ => {}
        }
    }
}
