//! The other end of each TCP connection to this host: the socket there, its queues, and (for
//! one not accepted yet) the listener that should accept it — read in the target's network
//! namespace, on the dump thread, once the dumps are in. Who holds it is found afterwards,
//! with the UNIX peers' holders (`resolve_peers`).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use hangscope_model::{LocalPeer, PeerEnd, TcpState};
use netlink_packet_sock_diag::{IPPROTO_TCP, IPPROTO_UDP};

use super::Dumps;
use super::inet_diag::{self, InetEntry};
use super::sock_diag::SockDiag;
use crate::Deadline;

/// Most exact lookups of a connection's other end in one run: each is a netlink round trip.
pub(super) const MAX_LOOKUPS: usize = 256;

/// The address as it is on the wire: an IPv4-mapped IPv6 address as IPv4, since a dual-stack
/// client's other end may be an IPv4 socket.
fn wire(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// For each of the target's TCP connections whose peer is on this host — loopback, or an
/// address one of the target's sockets is bound to (a connection to a local address gets that
/// address as its source, so its own end names it) — the socket at the other end: from the
/// dump when the target holds both ends, else by an exact lookup of the reversed pair. Its
/// holder is found later, with the UNIX peers' (`resolve_peers`).
pub(super) fn find(nl: &mut SockDiag, d: &mut Dumps, deadline: &Deadline) {
    // One pass for the host's addresses and every TCP end of the target by its address pair;
    // then, once every address is known, the ends connected to this host are matched.
    let tcp = d
        .inet
        .values()
        .filter(|e| e.protocol == IPPROTO_TCP)
        .count();
    let mut host: HashSet<IpAddr> = HashSet::new();
    let mut last_ip = None;
    let mut ends: Vec<OwnEnd> = Vec::with_capacity(tcp);
    let mut own: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::with_capacity(tcp);
    for e in d.inet.values() {
        let local_ip = e.local_addr.ip().to_canonical();
        // Most sockets share one or two addresses: hash only a new one.
        if last_ip != Some(local_ip) && !local_ip.is_unspecified() {
            host.insert(local_ip);
            last_ip = Some(local_ip);
        }
        if e.protocol != IPPROTO_TCP {
            continue;
        }
        let (local, peer) = (wire(e.local_addr), wire(e.peer_addr));
        own.insert((local, peer), ends.len());
        ends.push(OwnEnd {
            local,
            peer,
            inode: e.inode,
            unconnected: matches!(
                e.socket.state,
                TcpState::Listen | TcpState::TimeWait | TcpState::Unconnected
            ),
        });
    }
    let mut lookups = 0usize;
    let mut found: Vec<(u64, LocalPeer)> = Vec::new();
    for end in &ends {
        let (local, peer) = (end.local, end.peer);
        if peer.port() == 0
            || end.unconnected
            || !(peer.ip().is_loopback() || host.contains(&peer.ip()))
        {
            continue;
        }
        let other = match own.get(&(peer, local)) {
            // Both ends are the target's: no lookup needed, and its tcp_info is that socket's
            // own entry's (written once, not twice: 10,000 connections of a server to itself
            // made half of a 26 MB document).
            Some(&i) => ends
                .get(i)
                .and_then(|o| d.inet.get(&o.inode))
                .map(|e| local_peer_of(e, false)),
            None if lookups >= MAX_LOOKUPS || deadline.passed() => {
                d.peers_not_looked_up += 1;
                continue;
            }
            None => {
                lookups += 1;
                let mut other = look_up(nl, d, peer, local);
                // Not accepted yet: no process holds it, so name the socket listening on the
                // port instead — the one lookup with no remote end finds.
                if let Some(o) = other
                    .as_mut()
                    .filter(|o| LocalPeer::waits_to_be_accepted(o.inode, o.state))
                {
                    let anywhere = SocketAddr::new(
                        match peer.ip() {
                            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                        },
                        0,
                    );
                    let listener = look_up(nl, d, peer, anywhere)
                        .filter(|l| l.state == TcpState::Listen)
                        .map(Box::new);
                    o.end = Some(PeerEnd::NotAccepted { listener });
                }
                other
            }
        };
        if let Some(o) = other {
            found.push((end.inode, o));
        }
    }
    // A connected UDP socket to this host (a query to a local resolver): the socket its
    // datagrams are delivered to, which the kernel's own lookup names.
    let udp: Vec<(u64, SocketAddr, SocketAddr)> = d
        .inet
        .values()
        .filter(|e| e.protocol == IPPROTO_UDP && e.peer_addr.port() != 0)
        .map(|e| (e.inode, wire(e.local_addr), wire(e.peer_addr)))
        .filter(|(_, _, peer)| peer.ip().is_loopback() || host.contains(&peer.ip()))
        .collect();
    for (inode, local, peer) in udp {
        if lookups >= MAX_LOOKUPS || deadline.passed() {
            d.peers_not_looked_up += 1;
            continue;
        }
        lookups += 1;
        if let Some(o) = look_up_proto(nl, d, IPPROTO_UDP, local, peer).filter(|o| o.inode != inode)
        {
            found.push((inode, o));
        }
    }
    for (inode, o) in found {
        if let Some(e) = d.inet.get_mut(&inode) {
            e.socket.local_peer = Some(Box::new(o));
        }
    }
}

/// One TCP end of the target, as `find` matches it.
struct OwnEnd {
    local: SocketAddr,
    peer: SocketAddr,
    inode: u64,
    /// Listening, closing or closed: no other end to find.
    unconnected: bool,
}

/// The TCP socket whose local end is `local` and remote end `remote`, by an exact lookup;
/// failures are counted in `d`, not fatal.
fn look_up(
    nl: &mut SockDiag,
    d: &mut Dumps,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<LocalPeer> {
    look_up_proto(nl, d, IPPROTO_TCP, local, remote)
}

fn look_up_proto(
    nl: &mut SockDiag,
    d: &mut Dumps,
    protocol: u8,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<LocalPeer> {
    match nl.lookup(&inet_diag::lookup_request_for(protocol, local, remote)) {
        Ok(Some(m)) => match inet_diag::parse(protocol, &m) {
            Ok(o) => Some(local_peer_of(&o, true)),
            Err(why) => {
                d.malformed
                    .push(format!("protocol {protocol} lookup of {local}: {why}"));
                None
            }
        },
        // Closed meanwhile, or in another namespace after all.
        Ok(None) => None,
        Err(e) => {
            let f = &mut d.peer_lookup_failures;
            f.0 += 1;
            f.1.get_or_insert_with(|| e.to_string());
            None
        }
    }
}

/// `with_info`: its tcp_info, for an end that is not one of the target's own sockets.
fn local_peer_of(e: &InetEntry, with_info: bool) -> LocalPeer {
    LocalPeer {
        inode: e.inode,
        state: e.socket.state,
        recv_q: e.socket.recv_q,
        send_q: e.socket.send_q,
        end: None,
        tcp_info: if with_info {
            e.socket.tcp_info.clone()
        } else {
            None
        },
    }
}
