//! Which connections a server accepted, and the names of their ports.

use std::collections::HashSet;

use hangscope_model::{PortRange, Socket, SocketDetail, TcpState};

use super::services::Services;
use crate::ProcRoot;

/// Sets `accepted` on each TCP connection: whether a socket of the namespace listens on its
/// local port, on its address or on any. The listener decides it, not the port numbers: a
/// server may listen in the ephemeral range, and its workers (a forked PostgreSQL backend)
/// hold no listener of their own.
pub(super) fn mark_accepted(sockets: &mut [Socket], listeners: &HashSet<std::net::SocketAddr>) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    for s in sockets.iter_mut() {
        let SocketDetail::Tcp(i) = &mut s.detail else {
            continue;
        };
        if i.state == TcpState::Listen || i.peer.port == 0 {
            continue;
        }
        let Ok(ip) = i.local.addr.parse::<IpAddr>() else {
            continue;
        };
        let port = i.local.port;
        let on = |ip: IpAddr| listeners.contains(&SocketAddr::new(ip, port));
        i.accepted = Some(
            on(ip.to_canonical())
                || on(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                || on(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        );
    }
}

/// /proc/sys/net/ipv4/ip_local_port_range: ports handed out to clients, not named.
pub(super) fn ephemeral_ports(root: &ProcRoot) -> Option<PortRange> {
    root.read("sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut w = t.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some(PortRange {
                first: w.next()??,
                last: w.next()??,
            })
        })
}

/// Names well-known ports from /etc/services: the peer's port always, the local port when it is
/// not a client's ephemeral one.
pub(super) fn name_ports(sockets: &mut [Socket], services: &Services, eph: PortRange) {
    for s in sockets.iter_mut() {
        let (inet, proto) = match &mut s.detail {
            SocketDetail::Tcp(i) => (i, "tcp"),
            SocketDetail::Udp(i) => (i, "udp"),
            _ => continue,
        };
        if inet.peer.port != 0 {
            inet.peer.service = services.name(inet.peer.port, proto).map(String::from);
        }
        let serving =
            inet.state == TcpState::Listen || inet.peer.port == 0 || inet.accepted == Some(true);
        // The port range is a guess, for when the listeners are not known.
        let ephemeral = eph.contains(inet.local.port);
        if inet.local.port != 0 && (serving || (inet.accepted.is_none() && !ephemeral)) {
            inet.local.service = services.name(inet.local.port, proto).map(String::from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::SOURCE_SOCK_DIAG;
    use super::*;
    use hangscope_model::SocketFamily;

    fn tcp_conn(local: &str, peer: &str) -> Socket {
        let ep = |s: &str| {
            let a: std::net::SocketAddr = s.parse().expect("address");
            hangscope_model::Endpoint {
                addr: a.ip().to_string(),
                port: a.port(),
                service: None,
            }
        };
        Socket {
            inode: 1,
            fds: vec![3],
            family: SocketFamily::Inet,
            detail: SocketDetail::Tcp(hangscope_model::InetSocket {
                state: "ESTAB".into(),
                local: ep(local),
                peer: ep(peer),
                ..Default::default()
            }),
            source: SOURCE_SOCK_DIAG.into(),
            not_found_reason: None,
            fds_changed: vec![],
        }
    }

    fn accepted(s: &Socket) -> Option<bool> {
        match &s.detail {
            SocketDetail::Tcp(i) => i.accepted,
            _ => None,
        }
    }

    #[test]
    fn a_connection_on_a_listened_port_was_accepted_whatever_the_port() {
        // A server listening in the ephemeral range (PostgreSQL on 45432) with a client on
        // 38108, a dual-stack listener on [::]:8080, and a client on a low port to 45432.
        let listeners: HashSet<std::net::SocketAddr> = ["127.0.0.1:45432", "[::]:8080"]
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect();
        let mut sockets = vec![
            tcp_conn("127.0.0.1:45432", "127.0.0.1:38108"),
            tcp_conn("127.0.0.1:38108", "127.0.0.1:45432"),
            tcp_conn("10.0.0.1:8080", "10.0.0.2:51000"),
            tcp_conn("10.0.0.1:1022", "10.0.0.9:45432"),
            // The same port on another address is another listener's, if any.
            tcp_conn("10.0.0.1:45432", "10.0.0.2:51000"),
        ];
        mark_accepted(&mut sockets, &listeners);
        let got: Vec<Option<bool>> = sockets.iter().map(accepted).collect();
        assert_eq!(
            got,
            [
                Some(true),
                Some(false),
                Some(true),
                Some(false),
                Some(false)
            ]
        );
        // The port is named as a server's once it is known to be one.
        let services = Services::parse("pgx 45432/tcp\n");
        name_ports(&mut sockets, &services, PortRange::LINUX_DEFAULT);
        let SocketDetail::Tcp(i) = &sockets[0].detail else {
            panic!("tcp")
        };
        assert_eq!(i.local.service.as_deref(), Some("pgx"));
    }

    #[test]
    fn ports_named_unless_ephemeral_client_side() {
        let services = Services::parse("eforward 2181/tcp\nhttp-alt 8080/tcp\nx 40000/tcp\n");
        let mut sockets = vec![Socket {
            inode: 1,
            fds: vec![3],
            family: SocketFamily::Inet,
            detail: SocketDetail::Tcp(hangscope_model::InetSocket {
                state: "ESTAB".into(),
                local: hangscope_model::Endpoint {
                    addr: "10.0.0.1".into(),
                    port: 40000,
                    service: None,
                },
                peer: hangscope_model::Endpoint {
                    addr: "10.0.0.2".into(),
                    port: 2181,
                    service: None,
                },
                ..Default::default()
            }),
            source: SOURCE_SOCK_DIAG.into(),
            not_found_reason: None,
            fds_changed: vec![],
        }];
        name_ports(&mut sockets, &services, PortRange::LINUX_DEFAULT);
        let SocketDetail::Tcp(i) = &sockets[0].detail else {
            panic!("tcp")
        };
        assert_eq!(i.peer.service.as_deref(), Some("eforward"));
        assert_eq!(i.local.service, None, "ephemeral client port not named");
    }
}
