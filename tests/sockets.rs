//! Sockets as hangscope reports them, on real processes: a client stuck on a silent loopback
//! server, a listener, a UDP socket, a UNIX socketpair whose other end a child holds, a socket
//! never bound, and the same client inside a network namespace the test creates.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use hangscope_model::{Document, InetSocket, Socket, SocketDetail, SocketFamily};

const EXE: &str = env!("CARGO_BIN_EXE_hangscope");

/// A started process, killed and reaped on drop (also when an assertion fails).
struct Proc {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Proc { child, out }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads `key value` announcements until `last` (a key) has been read. Bounded: every
    /// scenario exits after --max-seconds, which ends the stream.
    fn announcements(&mut self, last: &str) -> Vec<(String, String)> {
        let mut got = Vec::new();
        let mut line = String::new();
        for _ in 0..100 {
            line.clear();
            match self.out.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let (k, v) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
            got.push((k.to_string(), v.to_string()));
            if k == last {
                return got;
            }
        }
        panic!("scenario ended before announcing {last:?}: {got:?}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value(a: &[(String, String)], key: &str) -> i64 {
    a.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {a:?}"))
}

fn scenario(name: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(EXE);
    c.args(["__scenario", name, "--max-seconds", "90"])
        .args(extra);
    c
}

fn inspect(pid: i32) -> Document {
    let out = Command::new(EXE)
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
        let doc = inspect(pid);
        if ok(socket_of_fd(&doc, fd)) || Instant::now() > deadline {
            return doc;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn acked_request(s: &Socket) -> bool {
    let i = tcp(s);
    i.state == "ESTAB"
        && i.tcp_info
            .as_ref()
            .and_then(|t| t.bytes_acked)
            .is_some_and(|b| b > 1)
}

#[test]
fn client_on_silent_server_and_one_of_each_kind() {
    let mut server = Proc::spawn(&mut scenario("silent-server", &[]));
    let port = value(&server.announcements("port"), "port");
    let peer = format!("127.0.0.1:{port}");
    let mut holder = Proc::spawn(&mut scenario("socket-holder", &["--peer", &peer]));
    let a = holder.announcements("ready");
    let pid = holder.pid();

    let doc = inspect_until(pid, value(&a, "client_fd"), acked_request);
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
    let client = socket_of_fd(&doc, value(&a, "client_fd"));
    assert_eq!(client.source, "sock_diag");
    assert_eq!(client.family, SocketFamily::Inet);
    let c = tcp(client);
    assert_eq!(c.state, "ESTAB");
    assert_eq!(i64::from(c.peer.port), port);
    assert_eq!(c.peer.addr, "127.0.0.1");
    assert_eq!(i64::from(c.local.port), value(&a, "client_port"));
    let info = c.tcp_info.as_ref().expect("TCP_INFO");
    let request_len = "CALL demo.meta.MetaService.ListDb\n".len() as u64;
    assert_eq!(
        info.bytes_acked,
        Some(request_len + 1),
        "request + SYN acked"
    );
    assert!(matches!(info.bytes_received, None | Some(0)), "{info:?}");
    assert_eq!(info.unacked, 0);

    // The listener.
    let l = tcp(socket_of_fd(&doc, value(&a, "listen_fd")));
    assert_eq!(l.state, "LISTEN");
    assert_eq!(i64::from(l.local.port), value(&a, "listen_port"));

    // The UDP socket.
    let udp = socket_of_fd(&doc, value(&a, "udp_fd"));
    match &udp.detail {
        SocketDetail::Udp(u) => {
            assert_eq!(u.state, "UNCONN");
            assert_eq!(i64::from(u.local.port), value(&a, "udp_port"));
        }
        other => panic!("not UDP: {other:?}"),
    }

    // The socketpair: the other end is held by the child, at the fd it inherited.
    let unix = socket_of_fd(&doc, value(&a, "unix_fd"));
    match &unix.detail {
        SocketDetail::Unix(u) => {
            assert_eq!(u.sock_type, "STREAM");
            assert_eq!(u.state, "ESTAB");
            assert_ne!(u.peer_inode, 0);
            let p = u.peer.as_ref().expect("peer resolved");
            assert_eq!(i64::from(p.pid), value(&a, "child_pid"));
            assert_eq!(i64::from(p.fd), value(&a, "child_fd"));
        }
        other => panic!("not UNIX: {other:?}"),
    }

    // Never bound: in no table, listed anyway with a reason.
    let unbound = snap
        .sockets
        .iter()
        .find(|s| s.fds.contains(&(value(&a, "unbound_fd") as i32)))
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
    let text = Command::new(EXE)
        .args([&pid.to_string(), "-v"])
        .output()
        .expect("run hangscope");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("SOCKETS"), "{text}");
    assert!(text.contains("  to 127.0.0.1"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("bytes_acked:"), "{text}");
    drop(holder);
    drop(server);
}

/// A network namespace made for one test, deleted on drop.
struct Netns(String);

impl Netns {
    fn create() -> Option<Netns> {
        let name = format!("hs-test-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let ns = Netns(name);
        let up = Command::new("ip")
            .args(["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(up, "cannot bring lo up in {}", ns.0);
        Some(ns)
    }

    fn exec(&self, scenario_name: &str, extra: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, EXE, "__scenario", scenario_name])
            .args(["--max-seconds", "90"])
            .args(extra);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn connection_in_another_network_namespace_is_found() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: creating a network namespace needs root");
        return;
    }
    let Some(ns) = Netns::create() else {
        eprintln!("skipped: `ip netns add` is not available here");
        return;
    };
    // Declared after `ns`, so the processes die before the namespace is deleted.
    let mut server = Proc::spawn(&mut ns.exec("silent-server", &[]));
    let port = value(&server.announcements("port"), "port");
    let peer = format!("127.0.0.1:{port}");
    let mut holder = Proc::spawn(&mut ns.exec("socket-holder", &["--peer", &peer]));
    let a = holder.announcements("ready");

    // `ip netns exec` execs the command, so the child's PID is the scenario's.
    let doc = inspect_until(holder.pid(), value(&a, "client_fd"), acked_request);
    assert_eq!(doc.snapshot.process.netns_same_as_tool, Some(false));
    let client = socket_of_fd(&doc, value(&a, "client_fd"));
    assert_eq!(client.source, "sock_diag");
    let c = tcp(client);
    assert_eq!(c.state, "ESTAB");
    assert_eq!(i64::from(c.peer.port), port);
    assert!(
        c.tcp_info
            .as_ref()
            .and_then(|t| t.bytes_acked)
            .is_some_and(|b| b > 1)
    );
    // The namespace's own listener is there too, not the root namespace's sockets.
    let l = tcp(socket_of_fd(&doc, value(&a, "listen_fd")));
    assert_eq!(l.state, "LISTEN");
    drop(holder);
    drop(server);
    drop(ns);
}
