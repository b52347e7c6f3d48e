//! Ties log entries to the snapshot: written TIDs to the process's threads, named peers to its
//! connections, and peer mentions into a timeline. Pure: runs on any snapshot.

use hangscope_model::{LogFormat, LogSource, Socket, SocketDetail};

use super::peers;
use super::task_status::Tasks;

/// Timeline steps kept (the newest): the story of the last minutes, not the whole tail.
const MAX_STEPS: usize = 200;

/// The peer of an inet socket as a log would write it; IPv4-mapped IPv6 peers
/// ("::ffff:10.0.0.1") also as plain IPv4.
fn socket_peers(s: &Socket) -> Vec<String> {
    let (SocketDetail::Tcp(i) | SocketDetail::Udp(i)) = &s.detail else {
        return Vec::new();
    };
    let mut out = vec![i.peer.to_string()];
    if let Some(v4) = i.peer.addr.strip_prefix("::ffff:")
        && v4.contains('.')
    {
        out.push(format!("{v4}:{}", i.peer.port));
    }
    out
}

pub fn link(source: &mut LogSource, tasks: &Tasks, sockets: &[Socket]) {
    let kernel = source.format == LogFormat::Kmsg;
    // Peer text → sockets, built only when an entry names a peer: a process with 10,000
    // connections and a log that names none should not pay for formatting them all.
    let mut by_peer: std::collections::HashMap<String, Vec<usize>> = Default::default();
    if source.entries.iter().any(|e| !e.peers.is_empty()) {
        for (i, s) in sockets.iter().enumerate() {
            for p in socket_peers(s) {
                by_peer.entry(p).or_default().push(i);
            }
        }
    }
    for e in &mut source.entries {
        if let Some(tid) = e.tid {
            // The kernel writes host TIDs; a process writes its own namespace's.
            let found = if kernel {
                tasks.by_host.get(&tid).map(|n| (tid, n.clone()))
            } else {
                tasks.by_written.get(&tid).cloned()
            };
            if let Some((host, name)) = found {
                e.thread_tid = Some(host);
                e.thread_name = Some(name);
            }
        }
        // In the sockets' order (by fd), each once.
        let mut at: Vec<usize> = e
            .peers
            .iter()
            .filter_map(|p| by_peer.get(p))
            .flatten()
            .copied()
            .collect();
        at.sort_unstable();
        at.dedup();
        e.socket_inodes = at.iter().map(|&i| sockets[i].inode).collect();
    }
    if !kernel {
        let mut steps = peers::timeline(&source.entries);
        steps.drain(..steps.len().saturating_sub(MAX_STEPS));
        source.peer_timeline = steps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{Endpoint, InetSocket, LogEntry, SocketFamily};

    fn tcp(inode: u64, addr: &str, port: u16) -> Socket {
        Socket {
            inode,
            fds: vec![29],
            family: SocketFamily::Inet,
            detail: SocketDetail::Tcp(InetSocket {
                state: "ESTAB".into(),
                peer: Endpoint {
                    addr: addr.into(),
                    port,
                    service: None,
                },
                ..InetSocket::default()
            }),
            source: "sock_diag".into(),
            not_found_reason: None,
            fds_changed: vec![],
        }
    }

    #[test]
    fn entries_meet_threads_and_connections() {
        let mut tasks = Tasks::default();
        tasks.by_written.insert(61, (31576, "dump_meta".into()));
        tasks.by_host.insert(31576, "dump_meta".into());
        let mut src = LogSource {
            format: LogFormat::Glog,
            entries: vec![
                LogEntry {
                    tid: Some(61),
                    message: "Fail to dump meta from 10.0.130.72:10100 [ETimedOut]".into(),
                    peers: vec!["10.0.130.72:10100".into()],
                    ..LogEntry::default()
                },
                LogEntry {
                    tid: Some(99),
                    message: "to [::1]:80".into(),
                    peers: vec!["[::1]:80".into()],
                    ..LogEntry::default()
                },
            ],
            ..LogSource::default()
        };
        let sockets = [
            tcp(748905598, "10.0.130.72", 10100),
            tcp(748905564, "10.0.130.72", 2181),
            tcp(5, "::1", 80),
            tcp(6, "::ffff:10.0.130.72", 10100),
        ];
        link(&mut src, &tasks, &sockets);
        let e = &src.entries[0];
        assert_eq!(e.thread_tid, Some(31576));
        assert_eq!(e.thread_name.as_deref(), Some("dump_meta"));
        assert_eq!(e.socket_inodes, vec![748905598, 6]);
        assert_eq!(src.entries[1].thread_tid, None);
        assert_eq!(src.entries[1].socket_inodes, vec![5]);
        assert_eq!(src.peer_timeline.len(), 2);
    }
}
