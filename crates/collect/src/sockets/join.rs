//! Each socket fd joined to its dumped socket, the fds no dump returned read again, and the
//! /proc/net fallback.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use hangscope_model::{Fd, Gap, GapReason, PortRange, Process, Socket, SocketDetail, SocketFamily};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP};

use super::dumps::Dumps;
use super::inet_diag::InetEntry;
use super::peers::resolve_peers;
use super::pending::{PendingDumps, ns_label};
use super::ports::{mark_accepted, name_ports};
use super::services::Services;
use super::{RECV_TIMEOUT, SOURCE_NONE, SOURCE_PROC_NET, SOURCE_SOCK_DIAG};
use super::{netns, proc_net, sock_diag_reason, window};
use crate::error::ReadError;
use crate::{Options, ProcRoot};

/// Reads the socket fds of `pid` again, right after the dumps: fd → current socket inode
/// (`None` when closed or no longer a socket). readlinkat on the open fd directory, as the
/// listing does, so the second look is as quick as the first.
/// A failed read (other than ENOENT: the fd is closed) is an error, which says nothing of
/// whether the fd changed: it is not taken for "closed between the listing and the dump".
fn reread(root: &ProcRoot, pid: i32, fds: &[(i32, u64)]) -> HashMap<i32, Reread> {
    let dir = match nix::dir::Dir::open(
        &root.pid(pid).join("fd"),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(dir) => dir,
        // The process is gone: so are its fds.
        Err(nix::errno::Errno::ENOENT) => {
            return fds.iter().map(|&(fd, _)| (fd, Ok(None))).collect();
        }
        Err(e) => {
            let path = format!("/proc/{pid}/fd");
            let why = ReadError::new(
                crate::ReadErrorKind::Errno(e as i32),
                format!("{path}: {}", e.desc()),
            )
            .at(path);
            return fds.iter().map(|&(fd, _)| (fd, Err(why.clone()))).collect();
        }
    };
    fds.iter()
        .map(|&(fd, _)| {
            let now = match nix::fcntl::readlinkat(&dir, fd.to_string().as_str()) {
                Ok(t) => Ok(t
                    .to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())),
                Err(nix::errno::Errno::ENOENT) => Ok(None),
                Err(e) => Err(
                    ReadError::new(crate::ReadErrorKind::Errno(e as i32), e.to_string())
                        .at(format!("/proc/{pid}/fd/{fd}")),
                ),
            };
            (fd, now)
        })
        .collect()
}

/// An fd read again: the socket inode it refers to now (`None`: closed, or no longer a
/// socket), or why it could not be read.
type Reread = Result<Option<u64>, ReadError>;

/// The fds of a socket that refer to something else when read again; one that could not be
/// read again is not among them.
fn changed_fds(fds: &[i32], inode: u64, reread: &HashMap<i32, Reread>) -> Vec<i32> {
    fds.iter()
        .copied()
        .filter(|fd| {
            reread
                .get(fd)
                .is_some_and(|now| matches!(now, Ok(n) if *n != Some(inode)))
        })
        .collect()
}

/// Joins every socket fd in `fds` to its socket, with the dumps `pending` started; see the
/// module header.
pub fn read(
    root: &ProcRoot,
    pid: i32,
    fds: &[Fd],
    process: &Process,
    opts: &Options,
    pending: PendingDumps,
    gaps: &mut Vec<Gap>,
) -> Vec<Socket> {
    let socket_fds: Vec<(i32, u64)> = fds
        .iter()
        .filter_map(|f| f.socket_inode.map(|i| (f.fd, i)))
        .collect();
    if socket_fds.is_empty() {
        // The dump thread sees the empty set and stops on its own.
        return Vec::new();
    }
    let ns_label = ns_label(pid, process);
    let ephemeral = pending.ephemeral_ports();
    let (mut dumps, ns_problem) = pending.finish(&opts.deadline, gaps);
    crate::stage::enter("the sockets joined to their fds");

    // Only fds whose socket no dump returned can have changed in a way that matters: a socket
    // that was dumped existed with that inode, so its fd pointed at it when listed. Reading
    // just those keeps a 10,000-socket target from paying for a second readlink of every fd.
    let unmatched: Vec<(i32, u64)> = socket_fds
        .iter()
        .copied()
        .filter(|(_, ino)| !dumps.contains(*ino))
        .collect();
    let reread = reread(root, pid, &unmatched);

    for (what, e) in &dumps.failures {
        gaps.push(Gap::new(
            format!("sock_diag {what} in {ns_label}"),
            sock_diag_reason(e),
            e.to_string(),
        ));
    }
    for what in &dumps.interrupted {
        gaps.push(Gap::new(
            format!("sock_diag {what} dump"),
            GapReason::Other,
            "the kernel flagged the dump as interrupted by concurrent changes: a socket may be missing",
        ));
    }
    if !dumps.malformed.is_empty() {
        gaps.push(Gap::new(
            format!("{} sock_diag messages", dumps.malformed.len()),
            GapReason::Malformed,
            dumps.malformed.join("; "),
        ));
    }

    // 2. The fallback, only for what netlink could not give.
    let need_inet = !dumps.inet_ok;
    let need_unix = !dumps.unix_ok;
    // The namespace's TCP listeners, when every table that has them was read.
    let mut listeners = dumps.inet_ok.then(|| std::mem::take(&mut dumps.listeners));
    let (fb_inet, fb_unix) = if need_inet || need_unix {
        let mut errors = Vec::new();
        let r = proc_net::read(root, pid, need_inet, need_unix, &mut errors);
        if need_inet && errors.is_empty() {
            listeners = Some(proc_net::listeners(&r.0));
        }
        let tables = match (need_inet, need_unix) {
            (true, true) => "tcp, tcp6, udp, udp6, unix",
            (true, false) => "tcp, tcp6, udp, udp6",
            _ => "unix",
        };
        gaps.push(Gap::new(
            format!("sock_diag for {pid}"),
            GapReason::Unsupported,
            format!(
                "NETLINK_SOCK_DIAG unavailable; read /proc/{pid}/net/{{{tables}}} instead: no TCP_INFO, timers or UNIX peers{}",
                if errors.is_empty() {
                    String::new()
                } else {
                    let words: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    format!(" ({})", words.join("; "))
                }
            ),
        ));
        r
    } else {
        (HashMap::new(), HashMap::new())
    };

    // 3. Join, one Socket per inode, ordered by its lowest fd.
    let mut by_inode: BTreeMap<u64, Vec<i32>> = BTreeMap::new();
    for &(fd, ino) in &socket_fds {
        by_inode.entry(ino).or_default().push(fd);
    }
    // Moved out rather than cloned: on a 10,000-connection target the copies were a quarter
    // of the tool's peak memory.
    let mut inet = std::mem::take(&mut dumps.inet);
    let mut sockets: Vec<Socket> = by_inode
        .into_iter()
        .map(|(inode, fds)| {
            let fds_changed = changed_fds(&fds, inode, &reread);
            let mut s = Socket {
                inode,
                fds,
                family: SocketFamily::Other,
                detail: SocketDetail::Unknown,
                source: SOURCE_SOCK_DIAG.into(),
                not_found_reason: None,
                fds_changed,
            };
            if let Some(e) = inet.remove(&inode) {
                set_inet(&mut s, e);
            } else if let Some(e) = dumps.unix.get(&inode) {
                s.family = SocketFamily::Unix;
                s.detail = SocketDetail::Unix(e.socket.clone());
            } else if let Some(n) = dumps.netlink.get(&inode) {
                s.family = SocketFamily::Netlink;
                s.detail = SocketDetail::Netlink(n.clone());
            } else if let Some(p) = dumps.packet.get(&inode) {
                s.family = SocketFamily::Packet;
                s.detail = SocketDetail::Packet(p.clone());
            } else if let Some(e) = fb_inet.get(&inode) {
                set_inet(&mut s, e.clone());
                s.source = SOURCE_PROC_NET.into();
            } else if let Some(e) = fb_unix.get(&inode) {
                s.family = SocketFamily::Unix;
                s.detail = SocketDetail::Unix(e.socket.clone());
                s.source = SOURCE_PROC_NET.into();
            } else {
                s.source = SOURCE_NONE.into();
                s.not_found_reason = Some(not_found_reason(
                    &s,
                    &reread,
                    &dumps,
                    ns_problem.as_deref(),
                    &ns_label,
                ));
            }
            s
        })
        .collect();
    sockets.sort_by_key(|s| s.fds.first().copied().unwrap_or(i32::MAX));

    // 4. The slower joins.
    if let Some(listeners) = &listeners {
        mark_accepted(&mut sockets, listeners);
    }
    crate::stage::enter("the holders of peer sockets");
    resolve_peers(root, process, &mut sockets, &socket_fds, &dumps, opts, gaps);
    name_ports(
        &mut sockets,
        &Services::load(),
        ephemeral.unwrap_or(PortRange::LINUX_DEFAULT),
    );
    sockets
}

/// The TCP sockets among `inodes`, dumped with their tcp_info in the network namespace of
/// `process` (the target's): for the sockets of the process at the other end of a connection,
/// which shares it. `holders` (pid, its (fd, inode) pairs) are the processes holding them:
/// when they hold few, they are read by exact lookups instead of the dump (`exact`).
pub(crate) fn tcp_of(
    root: &ProcRoot,
    process: &Process,
    inodes: HashSet<u64>,
    holders: Vec<(i32, Vec<(i32, u64)>)>,
    opts: &Options,
) -> Result<Vec<Socket>, ReadError> {
    let ns = if process.netns_same_as_tool == Some(true) {
        None
    } else {
        let path = root.pid(process.pid).join("ns/net");
        Some(std::fs::File::open(&path).map_err(|e| ReadError::io_at(path.display(), &e))?)
    };
    let timeout = opts
        .deadline
        .remaining()
        .clamp(Duration::from_millis(1), RECV_TIMEOUT);
    let kinds = [(AF_INET, IPPROTO_TCP), (AF_INET6, IPPROTO_TCP)];
    let entries = netns::run_in(ns, &opts.deadline, move || match super::exact::tcp_sockets(
        &holders, timeout,
    ) {
        Ok(entries) => Ok(entries),
        Err(_) => window::dump_entries(&kinds, &inodes, timeout),
    })??;
    Ok(entries
        .into_iter()
        .map(|e| {
            let mut s = Socket {
                inode: e.inode,
                fds: Vec::new(),
                family: SocketFamily::Other,
                detail: SocketDetail::Unknown,
                source: SOURCE_SOCK_DIAG.into(),
                not_found_reason: None,
                fds_changed: Vec::new(),
            };
            set_inet(&mut s, e);
            s
        })
        .collect())
}

fn set_inet(s: &mut Socket, e: InetEntry) {
    s.family = if e.family == AF_INET6 {
        SocketFamily::Inet6
    } else {
        SocketFamily::Inet
    };
    s.detail = if e.protocol == IPPROTO_TCP {
        SocketDetail::Tcp(e.socket)
    } else {
        SocketDetail::Udp(e.socket)
    };
}

fn not_found_reason(
    s: &Socket,
    reread: &HashMap<i32, Reread>,
    dumps: &Dumps,
    ns_problem: Option<&str>,
    ns_label: &str,
) -> String {
    if !s.fds_changed.is_empty() && s.fds_changed.len() == s.fds.len() {
        let now: Vec<String> = s
            .fds
            .iter()
            .map(|fd| match reread.get(fd) {
                Some(Ok(Some(ino))) => format!("fd {fd} is now socket:[{ino}]"),
                _ => format!("fd {fd} is closed or no longer a socket"),
            })
            .collect();
        return format!(
            "closed between the fd listing and the socket dump ({})",
            now.join(", ")
        );
    }
    let unread: Vec<String> = s
        .fds
        .iter()
        .filter_map(|fd| match reread.get(fd) {
            Some(Err(why)) => Some(format!("fd {fd}: {why}")),
            _ => None,
        })
        .collect();
    let why = not_dumped_reason(dumps, ns_problem, ns_label);
    if unread.is_empty() {
        why
    } else {
        format!(
            "{why}; whether it changed since the fd listing is not known: it could not be \
             read again ({})",
            unread.join(", ")
        )
    }
}

fn not_dumped_reason(dumps: &Dumps, ns_problem: Option<&str>, ns_label: &str) -> String {
    if let Some(p) = ns_problem {
        return format!("not dumped: {p}");
    }
    if !(dumps.inet_ok && dumps.unix_ok) {
        return "not in the /proc/net tables read instead of sock_diag: not yet bound or \
                connected, in another network namespace, or of another protocol"
            .into();
    }
    format!(
        "in no sock_diag dump (tcp, udp, unix, netlink, packet) of {ns_label}: a TCP or UDP socket \
         not yet bound or connected, a socket created in another network namespace, or another \
         protocol (raw, SCTP, vsock, ...)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(fds: Vec<i32>, changed: Vec<i32>) -> Socket {
        Socket {
            inode: 500,
            fds,
            family: SocketFamily::Other,
            detail: SocketDetail::Unknown,
            source: SOURCE_NONE.into(),
            not_found_reason: None,
            fds_changed: changed,
        }
    }

    fn all_ok() -> Dumps {
        Dumps {
            inet_ok: true,
            unix_ok: true,
            netlink_ok: true,
            packet_ok: true,
            ..Dumps::default()
        }
    }

    #[test]
    fn replaced_fd_is_reported_as_closed_between_reads() {
        let s = unknown(vec![7], vec![7]);
        let reread = HashMap::from([(7, Ok(Some(501)))]);
        let why = not_found_reason(&s, &reread, &all_ok(), None, "netns 1");
        assert!(why.starts_with("closed between"), "{why}");
        assert!(why.contains("fd 7 is now socket:[501]"), "{why}");
    }

    #[test]
    fn netns_problem_and_plain_absence() {
        let s = unknown(vec![7], vec![]);
        let reread = HashMap::from([(7, Ok(Some(500)))]);
        let why = not_found_reason(
            &s,
            &reread,
            &all_ok(),
            Some("netns 9 could not be entered"),
            "netns 9",
        );
        assert_eq!(why, "not dumped: netns 9 could not be entered");
        let why = not_found_reason(&s, &reread, &all_ok(), None, "netns 9");
        assert!(why.contains("not yet bound or connected"), "{why}");
        assert!(why.contains("netns 9"), "{why}");
    }

    #[test]
    fn an_fd_that_could_not_be_read_again_is_not_taken_for_closed() {
        let reread: HashMap<i32, Reread> = HashMap::from([
            (
                7,
                Err(ReadError::new(
                    crate::ReadErrorKind::Errno(libc::EACCES),
                    "EACCES: Permission denied",
                )),
            ),
            (8, Ok(None)),
            (9, Ok(Some(500))),
        ]);
        assert_eq!(changed_fds(&[7, 8, 9], 500, &reread), [8]);
        let s = unknown(vec![7], changed_fds(&[7], 500, &reread));
        let why = not_found_reason(&s, &reread, &all_ok(), None, "netns 9");
        assert!(!why.starts_with("closed between"), "{why}");
        assert!(
            why.ends_with("it could not be read again (fd 7: EACCES: Permission denied)"),
            "{why}"
        );
    }
}
