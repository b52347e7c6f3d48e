//! A target with few sockets is read without dumping its network namespace: its sockets by
//! exact lookups through duplicates of its fds (pidfd_getfd, Linux 5.6+). The fallback for
//! older kernels, forced with HANGSCOPE_NO_PIDFD_GETFD=1, dumps the namespace; both must give
//! the same sockets. Which way ran is checked with strace (skipped when it is absent).
//! Programs: strace.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// The sockets of a document with what changes from one moment to the next taken out (ages,
/// timers, tcp_info counters, the peer's threads).
fn stable_sockets(doc: &Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| {
                    !(k.ends_with("_ms")
                        || matches!(k.as_str(), "tcp_info" | "timer" | "threads" | "window"))
                });
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut s = doc["snapshot"]["sockets"].clone();
    strip(&mut s);
    s
}

fn run(pid: i32, force_dump: bool, strace_to: Option<&str>) -> Value {
    let mut cmd = match strace_to {
        Some(out) => {
            let mut c = Command::new("strace");
            c.args(["-f", "-qq", "-e", "trace=pidfd_getfd", "-o", out, HANGSCOPE]);
            c
        }
        None => Command::new(HANGSCOPE),
    };
    cmd.args([&pid.to_string(), "--json", "--window", "0", "--no-chain"]);
    if force_dump {
        cmd.env("HANGSCOPE_NO_PIDFD_GETFD", "1");
    }
    let out = cmd.output().expect("run hangscope");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

/// Same sockets either way; with strace, the exact way duplicated each socket fd (and the
/// fds of a peer on this host whose connections it reads) and the forced dump none.
fn assert_same_either_way(pid: i32, socket_fds: usize) {
    let exact = run(pid, false, None);
    let dumped = run(pid, true, None);
    let (a, b) = (stable_sockets(&exact), stable_sockets(&dumped));
    assert_eq!(
        a.as_array().map(Vec::len),
        Some(socket_fds),
        "every socket found: {a:#}"
    );
    assert_eq!(a, b, "the exact lookups and the dump agree");
    for s in a.as_array().into_iter().flatten() {
        assert_eq!(s["source"], "sock_diag", "{s:#}");
    }
    if !strace_works() {
        eprintln!("strace is not usable here: which way ran is not checked");
        return;
    }
    let dir = TempDir::new("host-cost");
    let count = |force: bool| {
        let file = format!("{}/trace-{force}", dir.path());
        run(pid, force, Some(&file));
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("pidfd_getfd(") && !l.contains("= -1"))
            .count()
    };
    // The target's socket fds, and those of a peer on this host whose connections are read.
    let duplicated = count(false);
    assert!(
        duplicated >= socket_fds,
        "one duplicate per socket fd: {duplicated}"
    );
    assert_eq!(count(true), 0, "the forced fallback duplicates nothing");
}

#[test]
fn tcp_sockets_by_exact_lookup_match_the_dump() {
    let mut deaf = scenario("deaf-server", &[]);
    let peer = format!("127.0.0.1:{}", deaf.expect("port"));
    let mut flood = scenario("flood-client", &["--peer", &peer]);
    let sender: i32 = flood.expect("sender").parse().expect("sender tid");
    // Until both ends' buffers are full: before that, queues still grow between two runs.
    assert!(
        wait_steady(Duration::from_secs(20), Duration::from_millis(1500), || {
            syscall_nr(flood.pid(), sender) == Some(libc::SYS_sendto)
        }),
        "the sender blocks"
    );
    // The client: one connection, whose other end (on this host) is looked up too.
    assert_same_either_way(flood.pid(), 1);
    // The server: a listener and the connection it accepted.
    assert_same_either_way(deaf.pid(), 2);
    let doc = run(deaf.pid(), false, None);
    let accepted = doc["snapshot"]["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .find(|s| s["detail"]["state"] == "ESTAB")
        .expect("the accepted connection");
    assert_eq!(accepted["detail"]["accepted"], true, "{accepted:#}");
}

#[test]
fn unix_sockets_by_exact_lookup_match_the_dump() {
    let dir = TempDir::new("host-cost-unix");
    let path = format!("{}/svc.sock", dir.path());
    let mut server = scenario("unix-server", &["--socket", &path]);
    server.expect("socket");
    let mut client = scenario("unix-client", &["--socket", &path]);
    let line = client.expect("rpc");
    let tid: i32 = line
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .expect("rpc tid");
    assert!(
        wait_until(Duration::from_secs(20), || syscall_nr(client.pid(), tid)
            == Some(libc::SYS_recvfrom)),
        "the client waits for the reply"
    );
    assert_same_either_way(client.pid(), 1);
    let doc = run(client.pid(), false, None);
    let s = &doc["snapshot"]["sockets"][0]["detail"];
    assert_eq!(s["peer"]["pid"], server.pid(), "the peer's holder: {s:#}");
    assert_eq!(s["peer"]["path"], path.as_str(), "the peer's name: {s:#}");
}
