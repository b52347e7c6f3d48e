//! (g) A local service on a unix socket that does not answer: the client's waiting thread is
//! explained by the other end, which the finding names by process and fd, as where to look next.
//! Read and not answered is a warning (an idle client waits the same way); not read at all, or
//! a writer blocked on a full socket, is a cause.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text, has_evidence, top_cause};

/// A server on a socket in its own directory and a client connected to it; the client's "rpc"
/// thread is blocked in `syscall` (std reads and writes sockets with recvfrom and sendto) for
/// longer than a wait in passing. Returns the inspection,
/// the server's pid, and the rpc thread's tid and fd.
fn client_of_unix_server(
    server_args: &[&str],
    client_args: &[&str],
    syscall: i64,
) -> (Value, i32, i32, i32, String) {
    let dir = TempDir::new("unix-peer");
    let path = format!("{}/svc.sock", dir.path());
    let mut server = scenario(
        "unix-server",
        &[&["--socket", &path][..], server_args].concat(),
    );
    server.expect("socket");
    let mut client = scenario(
        "unix-client",
        &[&["--socket", &path][..], client_args].concat(),
    );
    let line = client.expect("rpc");
    let words: Vec<&str> = line.split_whitespace().collect();
    let (tid, fd): (i32, i32) = match words.as_slice() {
        [tid, "fd", fd] => (tid.parse().expect("tid"), fd.parse().expect("fd")),
        _ => panic!("unexpected announcement {line:?}"),
    };
    let pid = client.pid();
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            syscall_nr(pid, tid) == Some(syscall)
        }),
        "the rpc thread never blocked in syscall {syscall}"
    );
    let (_, doc) = inspect(pid, &WINDOW);
    (doc, server.pid(), tid, fd, path)
}

fn finding_on(doc: &Value, tid: i32) -> &Value {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["subject"]["tid"] == tid)
        .unwrap_or_else(|| panic!("no finding on thread {tid}:\n{}", findings_text(doc)))
}

fn assert_names_the_server(f: &Value, server: i32, fd: i32, path: &str) {
    assert_eq!(f["subject"]["fd"], fd, "{f}");
    assert!(
        has_evidence(f, "other end", &format!("process {server} ")),
        "the other end is the server: {f}"
    );
    assert!(
        f["summary"].as_str().is_some_and(|s| s.contains(path)),
        "{f}"
    );
    assert!(
        f["next_step"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("hangscope {server}"))),
        "{f}"
    );
}

#[test]
fn a_local_service_that_read_the_request_and_never_answers() {
    let (doc, server, tid, fd, path) = client_of_unix_server(&[], &[], libc::SYS_recvfrom);
    let f = finding_on(&doc, tid);
    assert_eq!(f["cause"], "peer_silent", "{f}");
    assert_eq!(f["severity"], "warning", "{f}");
    assert_names_the_server(f, server, fd, &path);
    assert!(has_evidence(f, "socket", "everything it sent read"), "{f}");
    // The server's one thread waits in accept(), not on the connection.
    assert!(has_evidence(f, "its threads", "none of its"), "{f}");
    assert!(
        f["summary"]
            .as_str()
            .is_some_and(|s| s.contains("None of its") && s.contains("accept")),
        "{f}"
    );
    assert_plain_words(&doc);
}

#[test]
fn both_ends_wait_to_read() {
    let (doc, server, tid, fd, path) =
        client_of_unix_server(&["--reads-more"], &[], libc::SYS_recvfrom);
    let f = finding_on(&doc, tid);
    assert_eq!(f["cause"], "peer_silent", "{f}");
    assert_eq!(
        f["severity"], "cause",
        "both waiting is stuck for good: {f}"
    );
    assert_names_the_server(f, server, fd, &path);
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("(session) waits to read fd"), "{summary}");
    assert!(
        summary.contains("both ends wait for the other"),
        "{summary}"
    );
    // The same as data: the server's reading thread is what makes it a cause.
    assert_eq!(f["rule"], "unix_peer_wait");
    assert_eq!(f["facts"]["blocked"], "reply");
    assert_eq!(f["facts"]["waiter"]["tid"], tid);
    assert_eq!(f["facts"]["other_end"]["kind"], "held");
    assert_eq!(f["facts"]["other_end"]["holder"]["pid"], server);
    assert!(
        f["facts"]["other_end"]["threads"]["reads_too"].is_array(),
        "{f}"
    );
    assert_eq!(f["next"]["kind"], "process");
    assert_eq!(f["next"]["pid"], server);
    assert!(has_evidence(f, "its threads", "(session) in "), "{f}");
    assert_plain_words(&doc);
}

#[test]
fn a_local_service_that_never_reads_the_request() {
    let (doc, server, tid, fd, path) =
        client_of_unix_server(&["--no-read"], &[], libc::SYS_recvfrom);
    let f = top_cause(&doc);
    assert_eq!(f["cause"], "peer_not_reading", "{f}");
    assert_eq!(f["subject"]["tid"], tid);
    assert_names_the_server(f, server, fd, &path);
    assert_plain_words(&doc);
}

#[test]
fn a_writer_blocked_on_a_local_service_that_never_reads() {
    let (doc, server, tid, fd, path) =
        client_of_unix_server(&["--no-read"], &["--flood"], libc::SYS_sendto);
    let f = top_cause(&doc);
    assert_eq!(f["cause"], "peer_not_reading", "{f}");
    assert_eq!(f["subject"]["tid"], tid);
    assert!(
        f["summary"]
            .as_str()
            .is_some_and(|s| s.contains("buffer is full")),
        "{f}"
    );
    assert_names_the_server(f, server, fd, &path);
    assert_plain_words(&doc);
}
