//! A target with few sockets, read without dumping its network namespace: each socket fd is
//! duplicated with pidfd_getfd(2) (Linux 5.6+) in a short-lived child ([`probe`]: a number
//! the target reused may now be a file on a hung mount, whose close could block), its family,
//! protocol and address pair read with getsockopt/getsockname/getpeername, the duplicate closed;
//! then the kernel's exact lookups fetch what the dump would have returned for that socket
//! (inet_diag by address pair, with TCP_INFO, congestion control and skmeminfo; unix_diag by
//! inode, and the peer's by its inode). Netlink and packet sockets are still dumped (a
//! namespace has few), and only when the target holds one.
//!
//! The duplicate holds a reference to the target's open file for the few microseconds of the
//! reads: nothing is sent on the socket, no option set, no lock taken; the target's own fd is
//! untouched. Whenever the answer might differ from the dump's — pidfd_getfd missing (< 5.6) or
//! refused, an fd replaced in between, a lookup that finds nothing or another socket (a bound
//! socket that is not listening, a SO_REUSEPORT group) — the caller dumps instead, so both
//! ways give the same answer. `HANGSCOPE_NO_PIDFD_GETFD=1` forces the dump, as on 5.4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};

use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};

use super::dumped::Dumps;
use super::inet_diag;
use super::probe;
use super::sock_diag::SockDiag;
use super::unix_diag;
use crate::error::ReadError;

/// Why a target's sockets are dumped instead of looked up one by one: never a gap, as the
/// dump gives the same answer; the reason is for a test or a debugger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpInstead {
    #[error("{FORCE_DUMP_ENV} is set")]
    Forced,
    #[error("{0} socket fds")]
    TooMany(usize),
    #[error("fd {0} is no longer a socket")]
    NotSocket(i32),
    #[error("fd {0} is now another socket")]
    OtherSocket(i32),
    #[error("fd {0}: no local address")]
    NoLocalAddress(i32),
    #[error("a socket not bound yet")]
    NotBound,
    #[error("no socket at {0}")]
    NotFound(SocketAddr),
    #[error("the lookup of {0} found another socket")]
    FoundAnother(SocketAddr),
    #[error("a unix socket not found by its inode {0}")]
    UnixNotFound(u64),
    #[error("the inode {0} is beyond unix_diag's 32 bits")]
    InodeTooWide(u64),
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Most socket fds a target may hold for its sockets to be looked up one by one: each costs
/// two or three netlink round trips, a dump of a busy namespace a few hundred.
pub const MAX_SOCKETS: usize = 64;

/// The environment variable that forces the dump, as on a kernel without pidfd_getfd.
pub const FORCE_DUMP_ENV: &str = "HANGSCOPE_NO_PIDFD_GETFD";

/// What one socket fd of the target is, read through its duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inet {
        protocol: u8,
        family: u8,
        local: SocketAddr,
        peer: Option<SocketAddr>,
    },
    Unix,
    /// Netlink or packet: found by their (small) dumps.
    Dumped,
    /// No dump has it (raw, SCTP, vsock, ...): not found either way.
    Other,
}

/// What the caller needs besides the sockets: whether the netlink and packet dumps must run.
#[derive(Debug, Default)]
pub struct Exact {
    pub need_small_dumps: bool,
}

/// Reads the sockets of `fds` ((fd, inode) of the target `pid`) into `d` by exact lookups.
/// `Err` means: dump instead (the reason is for a test or a debugger, not for the report).
pub fn read(
    nl: &mut SockDiag,
    pid: i32,
    fds: &[(i32, u64)],
    d: &mut Dumps,
) -> Result<Exact, DumpInstead> {
    if std::env::var_os(FORCE_DUMP_ENV).is_some() {
        return Err(DumpInstead::Forced);
    }
    if fds.len() > MAX_SOCKETS {
        return Err(DumpInstead::TooMany(fds.len()));
    }
    let pidfd = pidfd_open(pid)?;
    let kinds = kinds_of(&pidfd, fds)?;
    let mut out = Exact::default();
    let mut unix_peers = Vec::new();
    for (inode, kind) in kinds {
        if d.contains(inode) {
            continue; // two fds of one socket
        }
        match kind {
            Kind::Inet {
                protocol,
                family,
                local,
                peer,
            } => {
                let e = look_up_own(nl, protocol, family, local, peer, inode)?;
                if protocol == IPPROTO_TCP
                    && e.socket.state != hangscope_model::TcpState::Listen
                    && e.peer_addr.port() != 0
                {
                    note_listener(nl, d, local);
                }
                d.inet.insert(inode, e);
            }
            Kind::Unix => {
                let e = look_up_unix(nl, inode)?.ok_or(DumpInstead::UnixNotFound(inode))?;
                if e.socket.peer_inode != 0 {
                    unix_peers.push(e.socket.peer_inode);
                }
                d.unix.insert(inode, e);
            }
            Kind::Dumped => out.need_small_dumps = true,
            Kind::Other => {}
        }
    }
    // The peers' names: the dump's map held every socket of the namespace.
    for peer in unix_peers {
        if d.unix.contains_key(&peer) {
            continue;
        }
        // Gone, or in another namespace, where the dump would not have had it either.
        if let Some(e) = look_up_unix(nl, peer)? {
            d.unix.insert(peer, e);
        }
    }
    d.inet_ok = true;
    d.unix_ok = true;
    Ok(out)
}

/// The TCP sockets `holders` (pid, its (fd, inode) pairs) hold, by exact lookups: what the
/// TCP dumps filtered to their inodes return. `Err`: dump instead.
pub fn tcp_sockets(
    holders: &[(i32, Vec<(i32, u64)>)],
    timeout: std::time::Duration,
) -> Result<Vec<inet_diag::InetEntry>, DumpInstead> {
    if std::env::var_os(FORCE_DUMP_ENV).is_some() {
        return Err(DumpInstead::Forced);
    }
    let count = holders.iter().map(|(_, f)| f.len()).sum::<usize>();
    if count > MAX_SOCKETS {
        return Err(DumpInstead::TooMany(count));
    }
    let mut nl = SockDiag::open(timeout).map_err(|e| ReadError::io("sock_diag", &e))?;
    let mut out: Vec<inet_diag::InetEntry> = Vec::new();
    for (pid, fds) in holders {
        let pidfd = pidfd_open(*pid)?;
        for (inode, kind) in kinds_of(&pidfd, fds)? {
            if out.iter().any(|e| e.inode == inode) {
                continue;
            }
            if let Kind::Inet {
                protocol: IPPROTO_TCP,
                family,
                local,
                peer,
            } = kind
            {
                out.push(look_up_own(
                    &mut nl,
                    IPPROTO_TCP,
                    family,
                    local,
                    peer,
                    inode,
                )?);
            }
        }
    }
    Ok(out)
}

/// One of the target's TCP or UDP sockets as a snapshot has it: enough to look it up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Own {
    family: u8,
    protocol: u8,
    local: SocketAddr,
    peer: Option<SocketAddr>,
    inode: u64,
}

impl Own {
    pub fn of(
        family: u8,
        protocol: u8,
        s: &hangscope_model::InetSocket,
        inode: u64,
    ) -> Option<Own> {
        let addr = |e: &hangscope_model::Endpoint| {
            e.addr
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, e.port))
        };
        let peer = addr(&s.peer)?;
        Some(Own {
            family,
            protocol,
            local: addr(&s.local)?,
            peer: (peer.port() != 0).then_some(peer),
            inode,
        })
    }
}

/// The sockets `own` by their exact lookups, for the looks of the window; `Err` when one is
/// not found as it was (closed, changed): the look dumps instead.
pub fn look_up_all(
    own: &[Own],
    timeout: std::time::Duration,
) -> Result<Vec<inet_diag::InetEntry>, DumpInstead> {
    if std::env::var_os(FORCE_DUMP_ENV).is_some() {
        return Err(DumpInstead::Forced);
    }
    let mut nl = SockDiag::open(timeout).map_err(|e| ReadError::io("sock_diag", &e))?;
    own.iter()
        .map(|o| look_up_own(&mut nl, o.protocol, o.family, o.local, o.peer, o.inode))
        .collect()
}

fn pidfd_open(pid: i32) -> Result<OwnedFd, ReadError> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(ReadError::io(
            "pidfd_open",
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the fd was just returned to this process and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What each of `fds` ((fd, inode) of the process `pidfd` refers to) is, read through its
/// duplicate in a child process ([`probe`]); `Err` when one is no longer the socket the fd
/// listing saw: the caller dumps instead.
fn kinds_of(pidfd: &OwnedFd, fds: &[(i32, u64)]) -> Result<Vec<(u64, Kind)>, DumpInstead> {
    let numbers: Vec<i32> = fds.iter().map(|&(fd, _)| fd).collect();
    let found = probe::read(pidfd, &numbers)?;
    fds.iter()
        .zip(found)
        .map(|(&(fd, inode), f)| kind(fd, inode, f).map(|k| (inode, k)))
        .collect()
}

/// The decision on one probed fd: a socket with the inode listed is read; anything else
/// (another socket, or no socket at all: the fd was closed and its number reused) means the
/// dump decides.
fn kind(fd: i32, inode: u64, found: probe::Found) -> Result<Kind, DumpInstead> {
    let probe::Found::Socket {
        inode: now,
        domain,
        protocol,
        local,
        peer,
    } = found
    else {
        return Err(DumpInstead::NotSocket(fd));
    };
    if now != inode {
        return Err(DumpInstead::OtherSocket(fd));
    }
    Ok(match domain {
        libc::AF_INET | libc::AF_INET6 => {
            let protocol = match protocol {
                libc::IPPROTO_TCP => IPPROTO_TCP,
                libc::IPPROTO_UDP => IPPROTO_UDP,
                _ => return Ok(Kind::Other),
            };
            Kind::Inet {
                protocol,
                family: if domain == libc::AF_INET6 {
                    AF_INET6
                } else {
                    AF_INET
                },
                local: local.ok_or(DumpInstead::NoLocalAddress(fd))?,
                peer,
            }
        }
        libc::AF_UNIX => Kind::Unix,
        libc::AF_NETLINK | libc::AF_PACKET => Kind::Dumped,
        _ => Kind::Other,
    })
}

fn unspecified(like: SocketAddr) -> SocketAddr {
    match like {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// The target's own socket, by the lookup that names it: TCP by its pair (a listener by its
/// address alone); UDP as the socket a datagram from its peer (or from anywhere) to its
/// address is delivered to. Must be the socket with `inode`, or the dump decides.
fn look_up_own(
    nl: &mut SockDiag,
    protocol: u8,
    family: u8,
    local: SocketAddr,
    peer: Option<SocketAddr>,
    inode: u64,
) -> Result<inet_diag::InetEntry, DumpInstead> {
    if local.port() == 0 {
        // Not bound: in no table a dump walks, so the dump says it better (not found).
        return Err(DumpInstead::NotBound);
    }
    let remote = peer.unwrap_or_else(|| unspecified(local));
    let req = match protocol {
        IPPROTO_TCP => inet_diag::own_lookup_request(family, protocol, local, remote),
        _ => inet_diag::own_lookup_request(family, protocol, remote, local),
    };
    let m = nl
        .lookup(&req)
        .map_err(|e| ReadError::io(format_args!("lookup of {local}"), &e))?
        .ok_or(DumpInstead::NotFound(local))?;
    let e = inet_diag::parse(protocol, &m)?;
    if e.inode != inode {
        return Err(DumpInstead::FoundAnother(local));
    }
    Ok(e)
}

/// Whether a socket listens where this connection's local end is: the accepted side of a
/// connection (see `ports::mark_accepted`). The lookup with no remote end finds the listener.
fn note_listener(nl: &mut SockDiag, d: &mut Dumps, local: SocketAddr) {
    let req = inet_diag::lookup_request(local, unspecified(local));
    if let Ok(Some(m)) = nl.lookup(&req)
        && let Some(l) = inet_diag::listener_of(&m)
    {
        d.listeners.insert(l);
    }
}

fn look_up_unix(
    nl: &mut SockDiag,
    inode: u64,
) -> Result<Option<unix_diag::UnixEntry>, DumpInstead> {
    let Ok(ino) = u32::try_from(inode) else {
        return Err(DumpInstead::InodeTooWide(inode));
    };
    match nl.lookup(&unix_diag::lookup_request(ino)) {
        Ok(Some(m)) => Ok(Some(unix_diag::parse(&m)?)),
        Ok(None) => Ok(None),
        Err(e) => Err(ReadError::io(format_args!("unix lookup of {inode}"), &e).into()),
    }
}

/// The (fd, inode) pairs of the socket fds, for [`read`].
pub fn pairs(fds: &[hangscope_model::Fd]) -> Vec<(i32, u64)> {
    fds.iter()
        .filter_map(|f| f.socket_inode.map(|i| (f.fd, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fd_that_is_no_longer_the_socket_listed_sends_the_look_to_the_dump() {
        let local: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        let socket = |inode| probe::Found::Socket {
            inode,
            domain: libc::AF_INET,
            protocol: libc::IPPROTO_TCP,
            local: Some(local),
            peer: None,
        };
        // Closed and its number reused for a file (perhaps on a hung mount): never read here.
        assert_eq!(
            kind(7, 100, probe::Found::NotSocket),
            Err(DumpInstead::NotSocket(7))
        );
        assert_eq!(
            kind(7, 100, socket(101)),
            Err(DumpInstead::OtherSocket(7)),
            "another socket"
        );
        assert_eq!(
            kind(7, 100, socket(100)),
            Ok(Kind::Inet {
                protocol: IPPROTO_TCP,
                family: AF_INET,
                local,
                peer: None
            })
        );
    }
}
