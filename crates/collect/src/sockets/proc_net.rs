//! The fallback when NETLINK_SOCK_DIAG is unavailable: /proc/PID/net/{tcp,tcp6,udp,udp6,unix},
//! which show the target's network namespace; see proc_net(5) (`/proc/net/tcp`, `/proc/net/unix`).
//!
//! Parsed with procfs-core. These tables carry state, addresses, queues and uid, but no TCP_INFO,
//! no timers and no UNIX peers, which is why they are only the fallback.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::net::SocketAddr;

use hangscope_model::{Endpoint, InetSocket, TcpState, UnixSocket};
use procfs_core::net::{TcpNetEntries, UdpNetEntries, UnixNetEntries};
use procfs_core::{ExplicitSystemInfo, FromBufRead, FromBufReadSI};

use super::inet_diag::InetEntry;
use super::unix_diag::{UnixEntry, sock_type_name};
use crate::ProcRoot;
use crate::error::ReadError;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

fn system_info() -> ExplicitSystemInfo {
    ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    }
}

fn endpoint(a: std::net::SocketAddr) -> Endpoint {
    Endpoint {
        addr: a.ip().to_string(),
        port: a.port(),
        service: None,
    }
}

fn family_of(a: &std::net::SocketAddr) -> u8 {
    if a.is_ipv6() { 10 } else { 2 }
}

/// /proc/net/tcp and /proc/net/udp have the same columns, which procfs-core reads into two
/// types (`TcpNetEntry`, `UdpNetEntry`) with the same fields and no trait in common: one body
/// serves both tables.
macro_rules! parse_inet_table {
    ($table:ty, $protocol:expr, $text:expr) => {
        <$table>::from_buf_read(Cursor::new($text), &system_info())
            .map_err(|e| ReadError::malformed(e.to_string()))
            .map(|entries| {
                entries
                    .0
                    .into_iter()
                    .map(|e| InetEntry {
                        inode: e.inode,
                        family: family_of(&e.local_address),
                        protocol: $protocol,
                        socket: InetSocket {
                            state: TcpState::from_kernel(e.state.to_u8()),
                            local: endpoint(e.local_address),
                            peer: endpoint(e.remote_address),
                            recv_q: e.rx_queue,
                            send_q: e.tx_queue,
                            uid: Some(e.uid),
                            ..InetSocket::default()
                        },
                        local_addr: e.local_address,
                        peer_addr: e.remote_address,
                        undecoded: Vec::new(),
                    })
                    .collect()
            })
    };
}

/// Parses /proc/net/tcp or tcp6 text.
pub fn parse_tcp(text: &str) -> Result<Vec<InetEntry>, ReadError> {
    parse_inet_table!(TcpNetEntries, IPPROTO_TCP, text)
}

/// Parses /proc/net/udp or udp6 text.
pub fn parse_udp(text: &str) -> Result<Vec<InetEntry>, ReadError> {
    parse_inet_table!(UdpNetEntries, IPPROTO_UDP, text)
}

/// Parses /proc/net/unix text. Its state column is SS_* (socket layer), not the TCP-style
/// sk_state of unix_diag: SS_UNCONNECTED reads as UNCONN (or LISTEN with the listening flag),
/// SS_CONNECTED as ESTAB.
pub fn parse_unix(text: &str) -> Result<Vec<UnixEntry>, ReadError> {
    let entries = UnixNetEntries::from_buf_read(Cursor::new(text))
        .map_err(|e| ReadError::malformed(e.to_string()))?;
    Ok(entries
        .0
        .into_iter()
        .map(|e| UnixEntry {
            inode: e.inode,
            socket: UnixSocket {
                sock_type: sock_type_name(e.socket_type as u8),
                // The socket's SS_* state, which ss names with the TCP ones.
                state: match e.state.to_u8() {
                    2 => TcpState::SynSent,
                    3 => TcpState::Established,
                    4 => TcpState::Closing,
                    _ => TcpState::Unconnected,
                },
                path: e.path.map(|p| {
                    hangscope_model::Text::from_bytes(std::os::unix::ffi::OsStringExt::into_vec(
                        p.into_os_string(),
                    ))
                }),
                ..UnixSocket::default()
            },
        })
        .collect())
}

/// Reads the tables of `pid` that netlink could not give: `inet` and/or `unix`.
pub fn read(
    root: &ProcRoot,
    pid: i32,
    inet: bool,
    unix: bool,
    errors: &mut Vec<ReadError>,
) -> (HashMap<u64, InetEntry>, HashMap<u64, UnixEntry>) {
    let mut inet_out = HashMap::new();
    let mut unix_out = HashMap::new();
    if inet {
        for (file, tcp) in [
            ("tcp", true),
            ("tcp6", true),
            ("udp", false),
            ("udp6", false),
        ] {
            let rel = format!("net/{file}");
            let path = format!("/proc/{pid}/{rel}");
            let parsed = root
                .read_pid(pid, &rel)
                .map_err(|e| ReadError::io_at(&path, &e))
                .and_then(|t| {
                    if tcp { parse_tcp(&t) } else { parse_udp(&t) }
                        .map_err(|e| ReadError::new(e.kind, format!("{path}: {e}")).at(&path))
                });
            match parsed {
                Ok(v) => inet_out.extend(v.into_iter().map(|e| (e.inode, e))),
                Err(e) => errors.push(e),
            }
        }
    }
    if unix {
        let path = format!("/proc/{pid}/net/unix");
        match root
            .read_pid(pid, "net/unix")
            .map_err(|e| ReadError::io_at(&path, &e))
            .and_then(|t| {
                parse_unix(&t).map_err(|e| ReadError::new(e.kind, format!("{path}: {e}")).at(&path))
            }) {
            Ok(v) => unix_out.extend(v.into_iter().map(|e| (e.inode, e))),
            Err(e) => errors.push(e),
        }
    }
    (inet_out, unix_out)
}

/// The TCP listening addresses among `entries` (IPv4-mapped ones as IPv4), as the dumps'
/// `Dumps::listeners` has them.
pub fn listeners(entries: &HashMap<u64, InetEntry>) -> HashSet<SocketAddr> {
    entries
        .values()
        .filter(|e| e.protocol == IPPROTO_TCP && e.socket.state == TcpState::Listen)
        .map(|e| SocketAddr::new(e.local_addr.ip().to_canonical(), e.local_addr.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded in a fresh network namespace: a listener on 127.0.0.1:2181, a client connected
    /// to it that sent 5 bytes, a UDP socket on [::1]:5353, a socketpair and an abstract
    /// listener.
    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../tests/fixtures/proc_net/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).expect("fixture readable")
    }

    #[test]
    fn tcp_table() {
        let v = parse_tcp(&fixture("tcp-linux-6.18")).expect("parses");
        assert_eq!(v.len(), 3);
        let listen = v.iter().find(|e| e.inode == 111726).expect("listener");
        assert_eq!(listen.socket.state.as_str(), "LISTEN");
        assert_eq!(listen.socket.local.to_string(), "127.0.0.1:2181");
        let server = v.iter().find(|e| e.inode == 110731).expect("accepted");
        assert_eq!(server.socket.state.as_str(), "ESTAB");
        assert_eq!(server.socket.recv_q, 5);
        assert_eq!(server.socket.peer.port, 0xEE04);
        assert!(server.socket.tcp_info.is_none());
    }

    #[test]
    fn the_tables_listeners() {
        let v = parse_tcp(&fixture("tcp-linux-6.18")).expect("parses");
        let all: HashMap<u64, InetEntry> = v.into_iter().map(|e| (e.inode, e)).collect();
        let l = listeners(&all);
        assert_eq!(
            l,
            HashSet::from(["127.0.0.1:2181".parse().expect("address")]),
            "the listener, not the connections"
        );
    }

    #[test]
    fn udp6_table() {
        let v = parse_udp(&fixture("udp6-linux-6.18")).expect("parses");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].family, 10);
        assert_eq!(v[0].socket.state.as_str(), "UNCONN");
        assert_eq!(v[0].socket.local.to_string(), "[::1]:5353");
    }

    #[test]
    fn unix_table() {
        let v = parse_unix(&fixture("unix-linux-6.18")).expect("parses");
        assert_eq!(v.len(), 3);
        let pair = v
            .iter()
            .find(|e| e.inode == 110733)
            .expect("socketpair end");
        assert_eq!(pair.socket.state.as_str(), "ESTAB");
        assert_eq!(pair.socket.sock_type, "STREAM");
        let abs = v.iter().find(|e| e.inode == 110735).expect("listener");
        assert_eq!(abs.socket.path.as_deref(), Some("@hs-abstract"));
    }
}
