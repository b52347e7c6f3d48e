//! The process at this host's end of a connection another host names (`hangscope peer`): the
//! socket found by its address pair reversed, in every network namespace of the host (a
//! server in a container has its own), then its holder among every process's fds.
//!
//! Namespaces are known by the processes in them (`/proc/PID/ns/net`, one process per
//! namespace); each is searched with the kernel's exact lookup (inet_diag_find_one_icsk), not a
//! dump, so a host with thousands of connections costs one round trip per namespace. When NAT or
//! a proxy rewrote the pair, no socket has it: the listener on the port is the next best answer,
//! and is said to be only that.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hangscope_model::FoundBy;
use netlink_packet_sock_diag::IPPROTO_TCP;

use super::inet_diag;
use super::netns;
use super::sock_diag::SockDiag;
use crate::error::ReadError;
use crate::holders::{self, Kind};
use crate::{Deadline, ProcRoot};

/// The socket and the process that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub fd: i32,
    pub socket_inode: u64,
    pub netns_inode: u64,
    pub found_by: FoundBy,
    /// Network namespaces searched.
    pub namespaces: usize,
    /// Processes holding the socket.
    pub holders: usize,
}

/// Why no process was found at this host's end of the connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NoOwner {
    #[error(
        "no socket of {local} connected to {remote}, and no listener on port {port}, in the \
         {namespaces} network namespace{s} searched{failed}",
        port = local.port(),
        s = if *namespaces == 1 { "" } else { "s" },
        failed = failed_words(failures, *cut_by_deadline)
    )]
    NoSocket {
        local: SocketAddr,
        remote: SocketAddr,
        namespaces: usize,
        /// The namespaces that could not be searched, by inode, and why.
        failures: Vec<(u64, ReadError)>,
        cut_by_deadline: bool,
    },
    #[error(
        "socket {inode} ({what} of {local}) is held by no process visible here{cut}",
        what = match found_by {
            FoundBy::Connection => "the connection",
            FoundBy::Listener => "the listener",
        },
        cut = if *cut_by_deadline { ": the deadline came during the search" } else { "" }
    )]
    Unheld {
        inode: u64,
        local: SocketAddr,
        found_by: FoundBy,
        cut_by_deadline: bool,
    },
}

fn failed_words(failures: &[(u64, ReadError)], cut_by_deadline: bool) -> String {
    let mut all: Vec<String> = failures
        .iter()
        .map(|(ns, e)| format!("netns {ns}: {e}"))
        .collect();
    if cut_by_deadline {
        all.push("the deadline came before every namespace was searched".into());
    }
    if all.is_empty() {
        String::new()
    } else {
        format!(" ({})", all.join("; "))
    }
}

/// One network namespace, and a process in it whose `ns/net` enters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Namespace {
    inode: u64,
    pid: i32,
}

/// The host's network namespaces, by the processes in them, the tool's own first.
fn namespaces(root: &ProcRoot, deadline: &Deadline) -> Vec<Namespace> {
    let own = crate::process::own_netns_inode().ok();
    let mut seen: HashMap<u64, i32> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(root.path()) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        if deadline.passed() {
            break;
        }
        if let Ok(inode) = crate::process::netns_inode(root, pid) {
            seen.entry(inode).or_insert(pid);
        }
    }
    let mut out: Vec<Namespace> = seen
        .into_iter()
        .map(|(inode, pid)| Namespace { inode, pid })
        .collect();
    out.sort_by_key(|n| (Some(n.inode) != own, n.pid));
    out
}

/// What one namespace has for the pair: the connection's socket, else a listener on its port.
#[derive(Debug, Default)]
struct Hit {
    connection: Option<u64>,
    listener: Option<u64>,
}

fn search(local: SocketAddr, remote: SocketAddr, timeout: Duration) -> Result<Hit, ReadError> {
    let mut nl = SockDiag::open(timeout).map_err(|e| ReadError::io("sock_diag", &e))?;
    let mut hit = Hit::default();
    let inode_in = |nl: &mut SockDiag, l: SocketAddr, r: SocketAddr, listen: bool| {
        let m = nl.lookup(&inet_diag::lookup_request(l, r)).ok()??;
        let e = inet_diag::parse(IPPROTO_TCP, &m).ok()?;
        // A socket in TIME-WAIT or not yet accepted has no inode: no process holds it.
        let wanted = if listen {
            e.socket.state == hangscope_model::TcpState::Listen
        } else {
            e.socket.state != hangscope_model::TcpState::Listen
        };
        (wanted && e.inode != 0).then_some(e.inode)
    };
    hit.connection = inode_in(&mut nl, local, remote, false);
    if hit.connection.is_none() {
        let any = SocketAddr::new(
            match local.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            },
            0,
        );
        // The kernel's listener lookup for that address and port: bound to it or to any.
        hit.listener = inode_in(&mut nl, local, any, true).or_else(|| {
            // NAT may have rewritten the address too: a listener on the port, bound to any.
            let anywhere = SocketAddr::new(any.ip(), local.port());
            inode_in(&mut nl, anywhere, any, true)
        });
    }
    Ok(hit)
}

/// Finds the socket whose local end is `local` and remote end `remote` in every network
/// namespace of the host, and the process holding it; else the listener on `local`'s port.
pub fn find(
    root: &ProcRoot,
    local: SocketAddr,
    remote: SocketAddr,
    deadline: &Deadline,
) -> Result<Owner, NoOwner> {
    let own = crate::process::own_netns_inode().ok();
    let all = namespaces(root, deadline);
    let mut listener: Option<(u64, u64)> = None;
    let mut failures = Vec::new();
    let mut cut_by_deadline = false;
    let mut found = None;
    for ns in &all {
        if deadline.passed() {
            cut_by_deadline = true;
            break;
        }
        let file = if Some(ns.inode) == own {
            None
        } else {
            let path = root.pid(ns.pid).join("ns/net");
            match std::fs::File::open(&path) {
                Ok(f) => Some(f),
                Err(e) => {
                    failures.push((ns.inode, ReadError::io_at(path.display(), &e)));
                    continue;
                }
            }
        };
        let timeout = deadline
            .remaining()
            .clamp(Duration::from_millis(1), Duration::from_secs(2));
        match netns::run_in(file, deadline, move || search(local, remote, timeout)) {
            Ok(Ok(hit)) => {
                if let Some(inode) = hit.connection {
                    found = Some((inode, ns.inode, FoundBy::Connection));
                    break;
                }
                if listener.is_none() {
                    listener = hit.listener.map(|l| (l, ns.inode));
                }
            }
            Ok(Err(e)) | Err(e) => failures.push((ns.inode, e)),
        }
    }
    let (inode, netns_inode, found_by) = match (found, listener) {
        (Some(f), _) => f,
        (None, Some((l, ns))) => (l, ns, FoundBy::Listener),
        (None, None) => {
            return Err(NoOwner::NoSocket {
                local,
                remote,
                namespaces: all.len(),
                failures,
                cut_by_deadline,
            });
        }
    };
    let scan = holders::scan(root, Kind::Socket, &HashSet::from([inode]), 0, deadline);
    let held = scan.holders.get(&inode).cloned().unwrap_or_default();
    let Some(first) = held.first() else {
        return Err(NoOwner::Unheld {
            inode,
            local,
            found_by,
            cut_by_deadline: scan.cut_by_deadline,
        });
    };
    let pids: HashSet<i32> = held.iter().map(|h| h.pid).collect();
    Ok(Owner {
        pid: first.pid,
        fd: first.fd,
        socket_inode: inode,
        netns_inode,
        found_by,
        namespaces: all.len(),
        holders: pids.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_owner_says_which_namespaces_failed_and_why() {
        let local: SocketAddr = "10.0.0.2:5432".parse().unwrap();
        let remote: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let e = NoOwner::NoSocket {
            local,
            remote,
            namespaces: 2,
            failures: vec![(
                4026531992,
                ReadError::io_at(
                    "/proc/9/ns/net",
                    &std::io::Error::from_raw_os_error(libc::EACCES),
                ),
            )],
            cut_by_deadline: true,
        };
        let words = e.to_string();
        assert!(
            words.starts_with(
                "no socket of 10.0.0.2:5432 connected to 10.0.0.1:40000, and no listener on \
                 port 5432, in the 2 network namespaces searched (netns 4026531992: \
                 /proc/9/ns/net: "
            ),
            "{words}"
        );
        assert!(
            words.ends_with("; the deadline came before every namespace was searched)"),
            "{words}"
        );
        let NoOwner::NoSocket { failures, .. } = &e else {
            unreachable!()
        };
        assert_eq!(
            failures[0].1.kind,
            crate::ReadErrorKind::Errno(libc::EACCES)
        );
    }
    use std::io::{Read, Write};

    #[test]
    fn finds_the_holder_of_a_loopback_connection_by_its_reversed_pair() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server_addr = listener.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(server_addr).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        served.read_exact(&mut b).unwrap();
        let client_addr = client.local_addr().unwrap();
        let deadline = Deadline::after(Duration::from_secs(10));
        let owner = find(&ProcRoot::default(), server_addr, client_addr, &deadline).unwrap();
        assert_eq!(owner.pid, std::process::id() as i32);
        assert_eq!(owner.found_by, FoundBy::Connection);
        assert_eq!(owner.fd, std::os::fd::AsRawFd::as_raw_fd(&served));
        assert!(owner.namespaces >= 1);

        // A pair no socket has: the listener on the port, said to be only that.
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let owner = find(&ProcRoot::default(), server_addr, gone, &deadline).unwrap();
        assert_eq!(owner.found_by, FoundBy::Listener);
        assert_eq!(owner.fd, std::os::fd::AsRawFd::as_raw_fd(&listener));
    }
}
