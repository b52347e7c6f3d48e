//! Connections over the sampling window, on real processes on loopback: a connection to the
//! echo server moves, a connection to the silent server shows nothing in over the window, its
//! facts are from the window's last look (so the verdict's two durations agree), and the same
//! holds inside a network namespace the test creates.

mod support;

use std::process::Command;
use std::time::Duration;

use hangscope_model::{
    ConnectionWindow, Document, Finding, InetSocket, Socket, SocketDetail, TcpState,
};
use support::netns::Netns;
use support::{HANGSCOPE, Started, scenario, scenario_via, wait_until};

/// `hangscope PID --json` (default 2 s window), parsed into the model.
fn inspect(pid: i32) -> Document {
    let out = Command::new(HANGSCOPE)
        .args([&pid.to_string(), "--json"])
        .output()
        .expect("run hangscope");
    let text = String::from_utf8_lossy(&out.stdout);
    Document::from_json(&text).unwrap_or_else(|e| {
        panic!(
            "hangscope {pid} --json: {e}\nstdout: {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn tcp_of_fd(doc: &Document, fd: i32) -> (&Socket, &InetSocket) {
    let s = doc
        .snapshot
        .socket_of_fd(fd)
        .unwrap_or_else(|| panic!("fd {fd} has no socket: {:#?}", doc.snapshot.sockets));
    match &s.detail {
        SocketDetail::Tcp(i) => (s, i),
        other => panic!("fd {fd} is not TCP: {other:?}"),
    }
}

fn window(i: &InetSocket) -> &ConnectionWindow {
    i.window
        .as_ref()
        .unwrap_or_else(|| panic!("no window on {i:#?}"))
}

/// The request went out and the peer's kernel acknowledged it.
fn acked(doc: &Document, fd: i32) -> bool {
    let (_, i) = tcp_of_fd(doc, fd);
    i.state == TcpState::Established && i.tcp_info.as_ref().and_then(|t| t.bytes_acked) > Some(1)
}

/// Starts a silent server and a meta-client whose one request it never answers; returns both
/// and the client's connection fd once the request is acknowledged.
fn silent_pair(
    server: impl FnOnce(&[&str]) -> Started,
    client: impl FnOnce(&[&str]) -> Started,
) -> (Started, Started, i32) {
    let mut server = server(&[]);
    let port = server.expect("port");
    let peer = format!("127.0.0.1:{port}");
    let mut client = client(&["--peer", &peer, "--timeout-ms", "100000"]);
    let fd: i32 = client.expect("connected").parse().expect("connected FD");
    let pid = client.pid();
    assert!(
        wait_until(Duration::from_secs(20), || acked(&inspect_quick(pid), fd)),
        "the request to the silent server was never acknowledged"
    );
    (server, client, fd)
}

/// One look, no window: to wait for a state cheaply.
fn inspect_quick(pid: i32) -> Document {
    let out = Command::new(HANGSCOPE)
        .args([&pid.to_string(), "--json", "--window", "0"])
        .output()
        .expect("run hangscope");
    Document::from_json(&String::from_utf8_lossy(&out.stdout)).expect("JSON")
}

/// "2.6 s", "516 ms", "1 min 5 s" as wording::duration writes them, in ms.
fn duration_ms(text: &str) -> f64 {
    let w: Vec<&str> = text
        .split_whitespace()
        .map(|w| w.trim_end_matches([';', ',', '.']))
        .collect();
    match w.as_slice() {
        [n, "ms", ..] => n.parse().expect("ms"),
        [n, "s", ..] => n.parse::<f64>().expect("s") * 1000.0,
        [m, "min", s, "s", ..] => {
            m.parse::<f64>().expect("min") * 60_000.0 + s.parse::<f64>().expect("s") * 1000.0
        }
        _ => panic!("not a duration: {text:?}"),
    }
}

/// The duration right after `prefix` in `summary`.
fn duration_after(summary: &str, prefix: &str) -> f64 {
    let at = summary
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in {summary:?}"));
    duration_ms(&summary[at + prefix.len()..])
}

#[test]
fn echo_connection_moves_over_the_window() {
    let mut server = scenario("echo-server", &[]);
    let port = server.expect("port");
    let peer = format!("127.0.0.1:{port}");
    let mut client = scenario("echo-client", &["--peer", &peer, "--conns", "1"]);
    assert_eq!(client.expect("conns"), "1");
    let doc = inspect(client.pid());
    let conns: Vec<(&Socket, &InetSocket)> = doc
        .snapshot
        .sockets
        .iter()
        .filter_map(|s| match &s.detail {
            SocketDetail::Tcp(i) if i.peer.port.to_string() == port => Some((s, i)),
            _ => None,
        })
        .collect();
    assert_eq!(conns.len(), 1, "{:#?}", doc.snapshot.sockets);
    let (_, i) = conns[0];
    let w = window(i);
    assert!(w.moving, "{w:#?}");
    assert!(w.bytes_received > Some(0), "{w:#?}");
    assert!(w.bytes_acked > Some(0), "{w:#?}");
    assert!(w.segs_in > Some(0), "{w:#?}");
    assert_eq!(w.last_data_recv_moved, Some(true), "{w:#?}");
    assert!(!w.closed_during_window);
    assert!(w.looks >= 2, "{w:#?}");
    assert!(w.duration_ms >= 1500, "a 2 s window: {w:#?}");
    // The socket's own fields are the last look's: its counters include the window's bytes.
    let t = i.tcp_info.as_ref().expect("tcp_info");
    assert!(t.bytes_received >= w.bytes_received, "{t:#?}");
    drop(client);
    drop(server);
}

#[test]
fn silent_connection_shows_nothing_in_and_last_look_ages() {
    let (server, client, fd) = silent_pair(
        |a| scenario("silent-server", a),
        |a| scenario("meta-client", a),
    );
    let doc = inspect(client.pid());
    let (_, i) = tcp_of_fd(&doc, fd);
    let w = window(i);
    assert_eq!(w.bytes_received, Some(0), "{w:#?}");
    assert_eq!(w.bytes_acked, Some(0), "{w:#?}");
    assert_eq!(w.retrans, Some(0), "{w:#?}");
    assert_eq!(w.last_data_recv_moved, Some(false), "{w:#?}");
    assert!(!w.moving, "{w:#?}");
    assert!(w.state_change.is_none());
    assert!(w.duration_ms >= 1500, "a 2 s window: {w:#?}");
    // Ages from the last look: the request went out before the window started, so at least
    // the window (less jiffy rounding) has passed since it and since the last data in.
    let t = i.tcp_info.as_ref().expect("tcp_info");
    assert!(
        u64::from(t.last_data_recv_ms) + 50 >= w.duration_ms,
        "lastrcv {} < window {}",
        t.last_data_recv_ms,
        w.duration_ms
    );
    assert!(
        u64::from(t.last_data_sent_ms) + 50 >= w.duration_ms,
        "lastsnd {} < window {}",
        t.last_data_sent_ms,
        w.duration_ms
    );

    // The verdict: the thread's wait and the connection's silence are from the same moment.
    let f: &Finding = doc
        .findings
        .iter()
        .find(|f| f.subject.fd == Some(fd))
        .unwrap_or_else(|| panic!("no finding on fd {fd}: {:#?}", doc.findings));
    let waited = duration_after(&f.summary, "has waited ");
    let silent = duration_after(&f.summary, "nothing came back in ");
    assert!(
        (silent - f64::from(t.last_data_sent_ms)).abs() <= 100.0,
        "the verdict's silence is the last look's lastsnd: {}",
        f.summary
    );
    // exec_start is moved onto CLOCK_MONOTONIC (steal time on a VM), so no allowance for it.
    let tolerance = 500.0;
    assert!(
        (waited - silent).abs() <= tolerance,
        "waited {waited} ms vs nothing back in {silent} ms (tolerance {tolerance} ms): {}",
        f.summary
    );
    let watched = f
        .evidence
        .iter()
        .find(|e| e.label == "watched")
        .unwrap_or_else(|| panic!("no window evidence: {:#?}", f.evidence));
    assert!(
        watched
            .value
            .starts_with("0 bytes in, 0 bytes out, 0 retransmits over the "),
        "{}",
        watched.value
    );
    drop(client);
    drop(server);
}

#[test]
fn zero_window_has_no_connection_window() {
    let (server, client, fd) = silent_pair(
        |a| scenario("silent-server", a),
        |a| scenario("meta-client", a),
    );
    // The request has to be a second old before it counts as unanswered.
    let mut doc = inspect_quick(client.pid());
    let found = |d: &Document| d.findings.iter().any(|f| f.subject.fd == Some(fd));
    assert!(
        wait_until(Duration::from_secs(20), || {
            doc = inspect_quick(client.pid());
            found(&doc)
        }),
        "no finding on the silent connection: {:#?}",
        doc.findings
    );
    let (_, i) = tcp_of_fd(&doc, fd);
    assert!(i.window.is_none(), "{:#?}", i.window);
    assert!(doc.snapshot.window.is_none());
    // The finding stands without it.
    let f = doc
        .findings
        .iter()
        .find(|f| f.subject.fd == Some(fd))
        .expect("a finding on the silent connection");
    assert!(!f.evidence.iter().any(|e| e.label == "watched"));
    drop(client);
    drop(server);
}

/// A network namespace made for one test, deleted on drop.

#[test]
fn window_is_sampled_in_the_targets_namespace() {
    let ns = Netns::create("cw");
    // Declared after `ns`, so the processes die before the namespace is deleted.
    let (server, client, fd) = silent_pair(
        |a| scenario_via(&ns.exec_prefix(), "silent-server", a),
        |a| scenario_via(&ns.exec_prefix(), "meta-client", a),
    );
    let doc = inspect(client.pid());
    assert_eq!(doc.snapshot.process.netns_same_as_tool, Some(false));
    let (s, i) = tcp_of_fd(&doc, fd);
    assert_eq!(s.source, "sock_diag");
    let w = window(i);
    assert!(
        w.looks >= 2,
        "dumped in the namespace at each sampled look: {w:#?}"
    );
    assert!(
        !w.closed_during_window,
        "found in the target's namespace: {w:#?}"
    );
    assert_eq!(w.bytes_received, Some(0), "{w:#?}");
    assert!(!w.moving, "{w:#?}");
    assert!(
        !doc.snapshot
            .gaps
            .iter()
            .any(|g| g.what.contains("window") || g.what.contains("connections")),
        "{:#?}",
        doc.snapshot.gaps
    );
    drop(client);
    drop(server);
    drop(ns);
}
