//! Sockets as hangscope reports them, on real processes: a client stuck on a silent loopback
//! server, a listener, a UDP socket, a UNIX socketpair whose other end a child holds, a socket
//! never bound, and the same client inside a network namespace the test creates.

mod support;

use std::time::{Duration, Instant};

use hangscope_model::{
    Document, InetSocket, PeerEnd, Socket, SocketDetail, SocketFamily, TcpState,
};

use support::netns::Netns;
use support::*;

/// The number the scenario announced for `key`.
fn value(s: &Started, key: &str) -> i64 {
    s.announced(key)
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

fn socket_of_fd(doc: &Document, fd: i64) -> &Socket {
    doc.snapshot
        .socket_of_fd(fd as i32)
        .unwrap_or_else(|| panic!("fd {fd} has no socket: {:#?}", doc.snapshot.sockets))
}

fn tcp(s: &Socket) -> &InetSocket {
    match &s.detail {
        SocketDetail::Tcp(i) => i,
        other => panic!("not TCP: {other:?}"),
    }
}

/// Inspects `pid` until `ok` holds for the socket of `fd`, at most ~20 tries: the ACK of the
/// request is normally there at once on loopback, but the machine may be loaded.
fn inspect_until(pid: i32, fd: i64, ok: impl Fn(&Socket) -> bool) -> Document {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let doc = document(pid, &[]);
        if ok(socket_of_fd(&doc, fd)) || Instant::now() > deadline {
            return doc;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn acked_request(s: &Socket) -> bool {
    let i = tcp(s);
    i.state == TcpState::Established
        && i.tcp_info
            .as_ref()
            .and_then(|t| t.bytes_acked)
            .is_some_and(|b| b > 1)
}

#[test]
fn client_on_silent_server_and_one_of_each_kind() {
    let mut server = scenario("silent-server", &[]);
    server.expect("port");
    let port = value(&server, "port");
    let peer = format!("127.0.0.1:{port}");
    let mut holder = scenario("socket-holder", &["--peer", &peer]);
    holder.expect("ready");
    let pid = holder.pid();

    let doc = inspect_until(pid, value(&holder, "client_fd"), acked_request);
    let snap = &doc.snapshot;

    // Every socket fd of the target appears in snap.sockets.
    for f in snap.fds.iter().filter(|f| f.socket_inode.is_some()) {
        assert!(
            snap.sockets.iter().any(|s| s.fds.contains(&f.fd)),
            "fd {} missing from sockets",
            f.fd
        );
    }

    // The client: connected to the silent server, request acked, no answer.
    let client = socket_of_fd(&doc, value(&holder, "client_fd"));
    assert_eq!(client.source, "sock_diag");
    assert_eq!(client.family, SocketFamily::Inet);
    let c = tcp(client);
    assert_eq!(c.state, TcpState::Established);
    assert_eq!(i64::from(c.peer.port), port);
    assert_eq!(c.peer.addr, "127.0.0.1");
    assert_eq!(i64::from(c.local.port), value(&holder, "client_port"));
    let info = c.tcp_info.as_ref().expect("TCP_INFO");
    let request_len = "CALL demo.meta.MetaService.ListDb\n".len() as u64;
    assert_eq!(
        info.bytes_acked,
        Some(request_len + 1),
        "request + SYN acked"
    );
    assert!(matches!(info.bytes_received, None | Some(0)), "{info:?}");
    assert_eq!(info.unacked, 0);

    // The other end of a connection to this host: the server process, which read the request.
    let other = c.local_peer.as_ref().expect("the silent server's end");
    let by = other.holder().expect("its holder");
    assert_eq!(by.pid, server.pid(), "{other:?}");
    assert_eq!(
        (other.state, other.recv_q),
        (TcpState::Established, 0),
        "{other:?}"
    );

    // The listener.
    let l = tcp(socket_of_fd(&doc, value(&holder, "listen_fd")));
    assert_eq!(l.state, TcpState::Listen);
    assert_eq!(i64::from(l.local.port), value(&holder, "listen_port"));

    // A connection whose both ends the target holds: the other end is its own fd, no lookup.
    let paired = tcp(socket_of_fd(&doc, value(&holder, "paired_fd")));
    let other = paired.local_peer.as_ref().expect("the accepted end");
    let by = other.holder().expect("its holder");
    assert_eq!(
        (by.pid, i64::from(by.fd)),
        (pid, value(&holder, "accepted_fd"))
    );
    // Its tcp_info is written once, in that end's own entry, not copied into the peer (a
    // server holding 10,000 connections to itself wrote each twice).
    assert!(other.tcp_info.is_none(), "{other:?}");
    let accepted = tcp(socket_of_fd(&doc, value(&holder, "accepted_fd")));
    assert!(accepted.tcp_info.is_some(), "{accepted:?}");
    // An end another process holds keeps its own tcp_info.
    let server_end = c.local_peer.as_ref().expect("the silent server's end");
    assert!(server_end.tcp_info.is_some(), "{server_end:?}");
    // One the listener never accepted: its other end exists, held by no process yet.
    let queued = tcp(socket_of_fd(&doc, value(&holder, "queued_fd")));
    let other = queued
        .local_peer
        .as_ref()
        .expect("the end in the accept queue");
    assert_eq!((other.inode, other.holder()), (0, None), "{other:?}");
    assert!(
        matches!(other.end, Some(PeerEnd::NotAccepted { .. })),
        "{other:?}"
    );
    // ... and the socket listening on the port, which should accept it, is named instead.
    let listener = other.listener().expect("the listener");
    assert_eq!(listener.state, TcpState::Listen);
    let by = listener.holder().expect("its holder");
    assert_eq!(
        (by.pid, i64::from(by.fd)),
        (pid, value(&holder, "listen_fd"))
    );
    assert_eq!(
        listener.recv_q, 1,
        "one connection waits in its accept queue"
    );

    // The UDP socket.
    let udp = socket_of_fd(&doc, value(&holder, "udp_fd"));
    match &udp.detail {
        SocketDetail::Udp(u) => {
            assert_eq!(u.state, TcpState::Unconnected);
            assert_eq!(i64::from(u.local.port), value(&holder, "udp_port"));
        }
        other => panic!("not UDP: {other:?}"),
    }

    // The socketpair: the other end is held by the child, at the fd it inherited.
    let unix = socket_of_fd(&doc, value(&holder, "unix_fd"));
    match &unix.detail {
        SocketDetail::Unix(u) => {
            assert_eq!(u.sock_type, "STREAM");
            assert_eq!(u.state, TcpState::Established);
            assert_ne!(u.peer_inode, 0);
            let p = u.peer.as_ref().expect("peer resolved");
            assert_eq!(i64::from(p.pid), value(&holder, "child_pid"));
            assert_eq!(i64::from(p.fd), value(&holder, "child_fd"));
        }
        other => panic!("not UNIX: {other:?}"),
    }

    // Never bound: in no table, listed anyway with a reason.
    let unbound = snap
        .sockets
        .iter()
        .find(|s| s.fds.contains(&(value(&holder, "unbound_fd") as i32)))
        .expect("unbound socket listed");
    assert_eq!(unbound.detail, SocketDetail::Unknown);
    assert_eq!(unbound.source, "none");
    assert!(
        unbound
            .not_found_reason
            .as_deref()
            .is_some_and(|r| r.contains("not yet bound")),
        "{unbound:?}"
    );

    // The text report: grouped by peer, ss's words.
    let text = hangscope(&[&pid.to_string(), "-v"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("SOCKETS"), "{text}");
    assert!(text.contains("  to 127.0.0.1"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("bytes_acked:"), "{text}");
    drop(holder);
    drop(server);
}

/// A network namespace made for one test, deleted on drop.

#[test]
fn connection_in_another_network_namespace_is_found() {
    let ns = Netns::create("sk");
    // Declared after `ns`, so the processes die before the namespace is deleted.
    let mut server = scenario_via(&ns.exec_prefix(), "silent-server", &[]);
    server.expect("port");
    let port = value(&server, "port");
    let peer = format!("127.0.0.1:{port}");
    let mut holder = scenario_via(&ns.exec_prefix(), "socket-holder", &["--peer", &peer]);
    holder.expect("ready");

    // `ip netns exec` execs the command, so the child's PID is the scenario's.
    let doc = inspect_until(holder.pid(), value(&holder, "client_fd"), acked_request);
    assert_eq!(doc.snapshot.process.netns_same_as_tool, Some(false));
    // Named as `ip netns` names it, beside its inode.
    assert_eq!(
        doc.snapshot.process.netns_name.as_deref(),
        Some(ns.name.as_str())
    );
    let client = socket_of_fd(&doc, value(&holder, "client_fd"));
    assert_eq!(client.source, "sock_diag");
    let c = tcp(client);
    assert_eq!(c.state, TcpState::Established);
    assert_eq!(i64::from(c.peer.port), port);
    assert!(
        c.tcp_info
            .as_ref()
            .and_then(|t| t.bytes_acked)
            .is_some_and(|b| b > 1)
    );
    // The other end is looked up in that namespace too.
    let other = c
        .local_peer
        .as_ref()
        .expect("the server's end, in the namespace");
    assert_eq!(other.holder().map(|h| h.pid), Some(server.pid()));
    // The namespace's own listener is there too, not the root namespace's sockets.
    let l = tcp(socket_of_fd(&doc, value(&holder, "listen_fd")));
    assert_eq!(l.state, TcpState::Listen);
    drop(holder);
    drop(server);
    drop(ns);
}

/// The other end is found over IPv6 loopback, and from an IPv4 client to a dual-stack server
/// (an IPv6 socket bound to [::] whose connections carry IPv4-mapped addresses).
#[test]
fn the_other_end_is_found_over_ipv6_and_dual_stack() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    for (listen, connect_to) in [("[::1]:0", "[::1]"), ("[::]:0", "127.0.0.1")] {
        let mut server = scenario("silent-server", &["--listen", listen]);
        server.expect("port");
        let port = value(&server, "port");
        let mut holder = scenario(
            "socket-holder",
            &["--peer", &format!("{connect_to}:{port}")],
        );
        holder.expect("ready");
        let doc = inspect_until(holder.pid(), value(&holder, "client_fd"), acked_request);
        let c = tcp(socket_of_fd(&doc, value(&holder, "client_fd")));
        let other = c
            .local_peer
            .as_ref()
            .unwrap_or_else(|| panic!("{listen}: {c:?}"));
        assert_eq!(
            other.holder().map(|h| h.pid),
            Some(server.pid()),
            "{listen}: {other:?}"
        );
    }
}
