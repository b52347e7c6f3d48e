//! Data that the path drops: a request retransmitted through backed-off timeouts while the
//! client polls for the answer in a sleep loop, no thread blocked on the socket
//! (tests/support/retry_peer.py), across a veth pair into a network namespace the test makes
//! and removes; the path is cut by setting the far end's link down. Its healthy twin is the
//! same loop with the link up; the other twin is a server whose client went away, whose
//! unacknowledged answer is not what the server waits for.

mod support;

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::Value;
use support::netns::Netns;
use support::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/retry_peer.py");

/// retry_peer.py, killed and reaped on drop.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Peer {
    fn start(prefix: &[&str], args: &[&str]) -> Peer {
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg("python3");
                c
            }
            None => Command::new("python3"),
        };
        let mut child = cmd
            .arg(SCRIPT)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start retry_peer.py");
        let out = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let lines = support::lines_of(out);
        Peer {
            child,
            stdin,
            lines,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits (bounded) for a line starting with `word`; the rest of it.
    fn expect(&self, word: &str) -> String {
        loop {
            match self.lines.recv_timeout(ANNOUNCE_WITHIN) {
                Ok(l) if l == word || l.starts_with(&format!("{word} ")) => {
                    return l[word.len()..].trim().to_string();
                }
                Ok(_) => {}
                Err(e) => panic!("retry_peer.py did not say {word:?}: {e}"),
            }
        }
    }

    fn go(&mut self) {
        writeln!(self.stdin, "go").expect("write to retry_peer.py");
        self.stdin.flush().expect("flush");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_python() -> bool {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: no python3");
    }
    ok
}

/// The findings of `rule`.
fn findings_of<'a>(doc: &'a Value, rule: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

/// The connection's tcp_info backoff, as hangscope read it.
fn backoff_of(pid: i32) -> u64 {
    let doc = inspect_json(pid, &["--window", "0"]);
    doc["snapshot"]["sockets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["detail"]["state"] == "ESTAB")
        .filter_map(|s| s["detail"]["tcp_info"]["backoff"].as_u64())
        .max()
        .unwrap_or(0)
}

fn cut(ns: &Netns) {
    ns.exec_ip(&["link", "set", &ns.inner_if, "down"])
        .expect("set the namespace's link down");
}

/// Enough backed-off retransmissions for the rule (3: 1.4 s at the 200 ms minimum RTO), and a
/// few seconds for a loaded machine.
fn wait_backed_off(pid: i32) {
    assert!(
        wait_until(Duration::from_secs(20), || backoff_of(pid) >= 3),
        "the request was not retransmitted 3 times"
    );
}

#[test]
fn a_request_the_path_drops_is_a_cause_though_no_thread_blocks_on_it() {
    if !have_python() {
        return;
    }
    let ns = Netns::create("rt");
    // Declared after `ns`: the processes die before the namespace is deleted.
    let server = Peer::start(&ns.exec_prefix(), &["echo", &ns.inner_addr]);
    let port = server.expect("port");
    let mut client = Peer::start(&[], &["client", &ns.inner_addr, &port]);
    client.expect("ready");
    cut(&ns);
    client.go();
    client.expect("sent");
    wait_backed_off(client.pid());

    let (code, doc) = inspect(client.pid(), &["--window", "1s"]);
    eprintln!(
        "retry loop, path cut: {}",
        doc["verdict"]["summary"].as_str().unwrap_or("")
    );
    let top = causes(&doc)
        .first()
        .copied()
        .cloned()
        .unwrap_or_else(|| panic!("not a cause: {:#}", doc["findings"]));
    assert_eq!(code, 1, "a cause is exit 1");
    assert_eq!(top["rule"], "peer_unreachable", "{top:#}");
    assert_eq!(top["facts"]["shape"], "unacked", "{top:#}");
    assert_eq!(top["facts"]["opened_here"], true, "{top:#}");
    assert!(
        top["facts"].get("waiter").is_none(),
        "no thread blocks on it: {top:#}"
    );
    assert!(
        top["facts"]["backoff"].as_u64().is_some_and(|b| b >= 3),
        "{top:#}"
    );
    assert!(
        top["summary"]
            .as_str()
            .is_some_and(|s| s.contains("No thread is blocked on it; this process opened it")),
        "{top:#}"
    );
    drop(client);
    drop(server);
    drop(ns);
}

#[test]
fn the_same_loop_answered_has_no_cause() {
    if !have_python() {
        return;
    }
    let ns = Netns::create("ru");
    let server = Peer::start(&ns.exec_prefix(), &["echo", &ns.inner_addr]);
    let port = server.expect("port");
    let mut client = Peer::start(&[], &["client", &ns.inner_addr, &port]);
    client.expect("ready");
    client.go();
    client.expect("answer");
    let (code, doc) = inspect(client.pid(), &["--window", "1s"]);
    eprintln!(
        "retry loop, answered: {}",
        doc["verdict"]["summary"].as_str().unwrap_or("")
    );
    assert_eq!(
        doc["verdict"]["cause_found"], false,
        "{:#}",
        doc["findings"]
    );
    assert_eq!(code, 0);
    assert!(findings_of(&doc, "peer_unreachable").is_empty());
    drop(client);
    drop(server);
    drop(ns);
}

#[test]
fn an_answer_to_a_client_gone_away_is_only_a_warning() {
    if !have_python() {
        return;
    }
    let ns = Netns::create("rv");
    // The server on this side, the client in the namespace, then the client's link cut.
    let mut server = Peer::start(&[], &["server", &ns.outer_addr]);
    let port = server.expect("port");
    let client = Peer::start(&ns.exec_prefix(), &["client", &ns.outer_addr, &port]);
    server.expect("request");
    cut(&ns);
    server.go();
    server.expect("sent");
    wait_backed_off(server.pid());

    let (code, doc) = inspect(server.pid(), &["--window", "1s"]);
    eprintln!(
        "server, client gone: {}",
        doc["verdict"]["summary"].as_str().unwrap_or("")
    );
    let f = findings_of(&doc, "peer_unreachable");
    let f = f.first().unwrap_or_else(|| panic!("{:#}", doc["findings"]));
    assert_eq!(f["severity"], "warning", "{f:#}");
    assert_eq!(f["facts"]["opened_here"], false, "{f:#}");
    assert_eq!(doc["verdict"]["cause_found"], false);
    assert_eq!(code, 0);
    drop(client);
    drop(server);
    drop(ns);
}
