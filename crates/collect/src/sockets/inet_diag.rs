//! inet_diag: TCP and UDP sockets over NETLINK_SOCK_DIAG (struct inet_diag_req_v2 and
//! inet_diag_msg, include/uapi/linux/inet_diag.h); see sock_diag(7).
//!
//! Requests and the fixed message header go through netlink-packet-sock-diag. The attributes
//! are walked here one by one, taking INET_DIAG_INFO as raw bytes for `tcp_info::decode` and
//! reading skmeminfo by length, so one attribute of an unexpected size (an older or newer
//! kernel) costs that attribute, never the socket. Timer and retransmit count come from the raw
//! header because the crate drops the probe count of a keepalive timer, which ss prints.

use crate::error::ReadError;
use netlink_packet_core::{Emitable, NLA_TYPE_MASK, NlasIterator, Parseable};
use netlink_packet_sock_diag::constants::{
    INET_DIAG_CONG, INET_DIAG_INFO, INET_DIAG_SKMEMINFO, IPPROTO_TCP,
};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags,
};

use std::net::{IpAddr, SocketAddr};

use hangscope_model::{Endpoint, InetSocket, SocketTimer, TcpState, TimerKind};

use super::tcp_info;

/// sizeof(struct inet_diag_msg).
const MSG_LEN: usize = 72;

/// One socket of the dump.
#[derive(Debug, Clone)]
pub struct InetEntry {
    pub inode: u64,
    /// AF_INET or AF_INET6.
    pub family: u8,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub protocol: u8,
    pub socket: InetSocket,
    /// The two ends as addresses, to match a connection with its other end.
    pub local_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    /// Attributes that could not be decoded, e.g. "INET_DIAG_INFO of 40 bytes".
    pub undecoded: Vec<String>,
}

/// The body of a dump request for every socket of `family` (AF_INET/AF_INET6) and `protocol`
/// in every state, asking for TCP_INFO, congestion control and skmeminfo.
pub fn request(family: u8, protocol: u8) -> Vec<u8> {
    let mut ext = ExtensionFlags::SKMEMINFO;
    if protocol == IPPROTO_TCP {
        ext |= ExtensionFlags::INFO | ExtensionFlags::CONG;
    }
    let socket_id = if family == netlink_packet_sock_diag::AF_INET6 {
        SocketId::new_v6()
    } else {
        SocketId::new_v4()
    };
    let req = InetRequest {
        family,
        protocol,
        extensions: ext,
        // Every state, including NEW_SYN_RECV and the ones the crate has no name for.
        states: StateFlags::from_bits_retain(u32::MAX),
        socket_id,
    };
    let mut buf = vec![0u8; req.buffer_len()];
    req.emit(&mut buf);
    buf
}

/// The body of a request for the one TCP socket whose local end is `local` and remote end
/// `remote`: not a dump, the kernel's exact lookup (inet_diag_find_one_icsk), which finds an
/// established socket by its address pair. The cookie is all ones, "any socket" (the kernel's
/// INET_DIAG_NOCOOKIE).
pub fn lookup_request(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    lookup_request_for(IPPROTO_TCP, local, remote)
}

/// The body of an exact lookup for `protocol`. For UDP the kernel (udp_dump_one) finds the
/// socket a datagram from `local` to `remote` would be delivered to: for a client's connected
/// socket, pass its own end as `local` and its peer as `remote` to get the server's socket.
pub fn lookup_request_for(protocol: u8, local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let family = if local.is_ipv4() && remote.is_ipv4() {
        netlink_packet_sock_diag::AF_INET
    } else {
        netlink_packet_sock_diag::AF_INET6
    };
    let as_family = |ip: IpAddr| match (family, ip) {
        (netlink_packet_sock_diag::AF_INET6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        _ => ip,
    };
    let req = InetRequest {
        family,
        protocol,
        // TCP_INFO too: the other end's counters and ages say what it read and sent.
        extensions: if protocol == IPPROTO_TCP {
            ExtensionFlags::SKMEMINFO | ExtensionFlags::INFO
        } else {
            ExtensionFlags::SKMEMINFO
        },
        states: StateFlags::from_bits_retain(u32::MAX),
        socket_id: SocketId {
            source_port: local.port(),
            destination_port: remote.port(),
            source_address: as_family(local.ip()),
            destination_address: as_family(remote.ip()),
            interface_id: 0,
            cookie: [0xff; 8],
        },
    };
    let mut buf = vec![0u8; req.buffer_len()];
    req.emit(&mut buf);
    buf
}

/// An exact lookup of one of the target's own sockets, asking for what the dump asks for
/// ([`request`]), in the socket's own `family` (a dual-stack socket is AF_INET6 with
/// IPv4-mapped addresses).
pub fn own_lookup_request(
    family: u8,
    protocol: u8,
    local: SocketAddr,
    remote: SocketAddr,
) -> Vec<u8> {
    let as_family = |a: SocketAddr| match (family, a.ip()) {
        (netlink_packet_sock_diag::AF_INET6, IpAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port())
        }
        _ => a,
    };
    let (local, remote) = (as_family(local), as_family(remote));
    let mut req = InetRequest {
        family,
        protocol,
        extensions: ExtensionFlags::SKMEMINFO,
        states: StateFlags::from_bits_retain(u32::MAX),
        socket_id: SocketId {
            source_port: local.port(),
            destination_port: remote.port(),
            source_address: local.ip(),
            destination_address: remote.ip(),
            interface_id: 0,
            cookie: [0xff; 8],
        },
    };
    if protocol == IPPROTO_TCP {
        req.extensions |= ExtensionFlags::INFO | ExtensionFlags::CONG;
    }
    let mut buf = vec![0u8; req.buffer_len()];
    req.emit(&mut buf);
    buf
}

/// Parses one reply body (struct inet_diag_msg and its attributes).
pub fn parse(protocol: u8, msg: &[u8]) -> Result<InetEntry, ReadError> {
    if msg.len() < MSG_LEN {
        return Err(ReadError::malformed(format!(
            "inet_diag_msg of {} bytes",
            msg.len()
        )));
    }
    let h = InetResponseHeader::parse(&msg[..MSG_LEN])
        .map_err(|e| ReadError::malformed(e.to_string()))?;
    let timer_code = msg[2];
    let retrans = msg[3];
    let expires = u32::from_ne_bytes([msg[52], msg[53], msg[54], msg[55]]);
    let timer = match timer_code {
        0 => None,
        code => Some(SocketTimer {
            kind: match code {
                1 => TimerKind::On,
                2 => TimerKind::Keepalive,
                3 => TimerKind::TimeWait,
                4 => TimerKind::Persist,
                _ => TimerKind::Unknown,
            },
            expires_ms: expires,
            retrans,
        }),
    };
    let local_addr = SocketAddr::new(h.socket_id.source_address, h.socket_id.source_port);
    let peer_addr = SocketAddr::new(
        h.socket_id.destination_address,
        h.socket_id.destination_port,
    );
    let mut socket = InetSocket {
        state: TcpState::from_kernel(h.state),
        local: Endpoint {
            addr: h.socket_id.source_address.to_string(),
            port: h.socket_id.source_port,
            service: None,
        },
        peer: Endpoint {
            addr: h.socket_id.destination_address.to_string(),
            port: h.socket_id.destination_port,
            service: None,
        },
        recv_q: h.recv_queue,
        send_q: h.send_queue,
        timer,
        uid: Some(h.uid),
        ..InetSocket::default()
    };
    let mut undecoded = Vec::new();
    for nla in NlasIterator::new(&msg[MSG_LEN..]) {
        let Ok(nla) = nla else {
            undecoded.push("a truncated attribute".into());
            break;
        };
        let value = nla.value();
        match nla.kind() & NLA_TYPE_MASK {
            INET_DIAG_INFO if protocol == IPPROTO_TCP => match tcp_info::decode(value) {
                Some(info) => socket.tcp_info = Some(Box::new(info)),
                None => undecoded.push(format!("INET_DIAG_INFO of {} bytes", value.len())),
            },
            INET_DIAG_CONG => {
                let name = value.split(|&b| b == 0).next().unwrap_or_default();
                socket.congestion = Some(String::from_utf8_lossy(name).into_owned());
            }
            INET_DIAG_SKMEMINFO => {
                // u32 array indexed by SK_MEMINFO_* (include/uapi/linux/sock_diag.h).
                let word = |i: usize| {
                    value
                        .get(i * 4..i * 4 + 4)
                        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                };
                socket.rmem_alloc = word(0);
                socket.rcvbuf = word(1);
                socket.wmem_alloc = word(2);
                socket.sndbuf = word(3);
            }
            _ => {}
        }
    }
    Ok(InetEntry {
        inode: u64::from(h.inode),
        family: h.family,
        protocol,
        socket,
        local_addr,
        peer_addr,
        undecoded,
    })
}

/// Offset of idiag_inode in struct inet_diag_msg.
const INODE_AT: usize = 68;

/// idiag_inode of a struct inet_diag_msg, read before (and instead of) parsing the rest.
pub fn inode_of(msg: &[u8]) -> Option<u64> {
    let b = msg.get(INODE_AT..INODE_AT + 4)?;
    Some(u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])))
}

/// TCP_LISTEN in include/net/tcp_states.h.
const LISTEN: u8 = 10;

/// The address a TCP socket listens on, read from the fixed header alone (idiag_state,
/// idiag_sport and idiag_src, network byte order), for every socket of a dump: the listeners
/// that tell an accepted connection from one the target opened are seldom the target's own.
/// `None` for a socket in any other state.
pub fn listener_of(msg: &[u8]) -> Option<SocketAddr> {
    if *msg.get(1)? != LISTEN {
        return None;
    }
    let port = u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]);
    let src = msg.get(8..24)?;
    let ip = match *msg.first()? {
        netlink_packet_sock_diag::AF_INET => IpAddr::from([src[0], src[1], src[2], src[3]]),
        netlink_packet_sock_diag::AF_INET6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(src);
            IpAddr::from(a)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip.to_canonical(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::TimerKind;

    use crate::sockets::netlink_fixture as fixture;

    /// The recorded message with its INET_DIAG_INFO attribute cut to `len` bytes, as a kernel
    /// with a shorter struct tcp_info sends it (the other attributes unchanged).
    fn with_tcp_info_len(msg: &[u8], len: usize) -> Vec<u8> {
        let mut out = msg[..MSG_LEN].to_vec();
        let mut off = MSG_LEN;
        while off + 4 <= msg.len() {
            let alen = usize::from(u16::from_ne_bytes([msg[off], msg[off + 1]]));
            let kind = u16::from_ne_bytes([msg[off + 2], msg[off + 3]]);
            let value = &msg[off + 4..off + alen];
            let value = if kind == INET_DIAG_INFO {
                &value[..len]
            } else {
                value
            };
            out.extend_from_slice(&((value.len() + 4) as u16).to_ne_bytes());
            out.extend_from_slice(&kind.to_ne_bytes());
            out.extend_from_slice(value);
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
            off += (alen + 3) & !3;
        }
        out
    }

    #[test]
    fn recorded_linux_6_18_message() {
        let msg = fixture("inet_diag_msg-tcp-linux-6.18.hex");
        let e = parse(IPPROTO_TCP, &msg).expect("parses");
        assert_eq!(e.family, netlink_packet_sock_diag::AF_INET);
        assert_eq!(e.inode, 177283);
        let s = &e.socket;
        assert_eq!(s.state.as_str(), "ESTAB");
        assert_eq!(s.local.to_string(), "127.0.0.1:55290");
        assert_eq!(s.peer.to_string(), "127.0.0.1:33841");
        assert_eq!((s.recv_q, s.send_q), (0, 0));
        assert!(s.timer.is_none());
        assert_eq!(s.congestion.as_deref(), Some("bbr"));
        assert_eq!(s.rcvbuf, Some(131072));
        let t = s.tcp_info.as_ref().expect("tcp_info");
        assert_eq!(t.len, 280);
        assert_eq!(t.bytes_acked, Some(6));
        assert!(e.undecoded.is_empty());
    }

    #[test]
    fn a_listener_is_read_from_the_header_alone() {
        let mut msg = fixture("inet_diag_msg-tcp-linux-6.18.hex");
        assert_eq!(listener_of(&msg), None, "an established socket");
        msg[1] = LISTEN;
        assert_eq!(
            listener_of(&msg),
            Some("127.0.0.1:55290".parse().expect("address"))
        );
        // An IPv6 listener on [::ffff:127.0.0.1] is the same address as IPv4 sees it.
        msg[0] = netlink_packet_sock_diag::AF_INET6;
        msg[8..24].copy_from_slice(&std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets());
        assert_eq!(
            listener_of(&msg),
            Some("127.0.0.1:55290".parse().expect("address"))
        );
        assert_eq!(listener_of(&msg[..20]), None, "cut short");
    }

    #[test]
    fn linux_4_18_sized_tcp_info_keeps_the_socket() {
        let msg = with_tcp_info_len(&fixture("inet_diag_msg-tcp-linux-6.18.hex"), 200);
        let e = parse(IPPROTO_TCP, &msg).expect("parses");
        assert_eq!(e.socket.state.as_str(), "ESTAB");
        assert_eq!(
            e.socket.congestion.as_deref(),
            Some("bbr"),
            "later attributes kept"
        );
        let t = e.socket.tcp_info.as_ref().expect("tcp_info");
        assert_eq!(t.len, 200);
        assert_eq!(t.bytes_acked, Some(6));
        assert_eq!(t.bytes_sent, None);
    }

    #[test]
    fn garbage_tcp_info_costs_only_itself() {
        let msg = with_tcp_info_len(&fixture("inet_diag_msg-tcp-linux-6.18.hex"), 40);
        let e = parse(IPPROTO_TCP, &msg).expect("parses");
        assert!(e.socket.tcp_info.is_none());
        assert_eq!(e.undecoded, vec!["INET_DIAG_INFO of 40 bytes".to_string()]);
        assert_eq!(e.socket.congestion.as_deref(), Some("bbr"));
    }

    /// struct inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid:
    /// sport and dport (network order), src[4], dst[4] (u32 each), if, cookie[2].
    #[test]
    fn lookup_request_names_one_socket_by_its_pair() {
        let req = lookup_request(
            "127.0.0.1:8080".parse().expect("addr"),
            "127.0.0.2:40000".parse().expect("addr"),
        );
        assert_eq!(req.len(), 56);
        assert_eq!(
            (req[0], req[1]),
            (netlink_packet_sock_diag::AF_INET, IPPROTO_TCP)
        );
        assert_eq!(&req[8..12], &[0x1f, 0x90, 0x9c, 0x40]);
        assert_eq!(&req[12..16], &[127, 0, 0, 1]);
        assert_eq!(&req[28..32], &[127, 0, 0, 2]);
        assert_eq!(&req[44..48], &[0; 4], "any interface");
        assert_eq!(&req[48..56], &[0xff; 8], "any cookie");

        let req = lookup_request(
            "[::1]:8080".parse().expect("addr"),
            "127.0.0.1:40000".parse().expect("addr"),
        );
        assert_eq!(req[0], netlink_packet_sock_diag::AF_INET6);
        assert_eq!(
            &req[28..44],
            &"::ffff:127.0.0.1"
                .parse::<std::net::Ipv6Addr>()
                .expect("v6")
                .octets()
        );
    }

    #[test]
    fn timer_bytes() {
        let mut msg = fixture("inet_diag_msg-tcp-linux-6.18.hex");
        msg[2] = 2; // keepalive
        msg[3] = 1;
        msg[52..56].copy_from_slice(&325u32.to_ne_bytes());
        let t = parse(IPPROTO_TCP, &msg)
            .expect("parses")
            .socket
            .timer
            .expect("timer");
        assert_eq!(
            (t.kind, t.expires_ms, t.retrans),
            (TimerKind::Keepalive, 325, 1)
        );
    }
}
