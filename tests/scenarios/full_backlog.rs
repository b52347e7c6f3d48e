//! (h) A server on this host that does not accept(). With room in its accept queue, a client
//! connects, sends its request and waits for a reply that cannot come; with the queue full, the
//! kernel drops new SYNs and a client's connect() waits, which from the client alone looks like
//! an unreachable peer. Either way the listener, found by a lookup, says why.

use std::time::Duration;

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text, has_evidence, top_cause};

#[test]
fn a_connect_to_a_server_that_does_not_accept() {
    let mut server = scenario("backlog-server", &["--backlog", "0"]);
    let port = server.expect("port");
    let listen_fd = server.expect("listen_fd");
    let peer = format!("127.0.0.1:{port}");
    let mut client = scenario("connect-client", &["--peer", &peer]);
    let tid: i32 = client.expect("connector").parse().expect("tid");
    let pid = client.pid();
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            syscall_nr(pid, tid) == Some(libc::SYS_connect)
        }),
        "the connector never blocked in connect"
    );
    let (code, doc) = inspect(pid, &WINDOW);
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "peer_unreachable", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["tid"], tid);
    let summary = top["summary"].as_str().expect("summary");
    assert!(summary.contains("full accept queue"), "{summary}");
    assert!(
        summary.contains(&format!("fd {listen_fd} of process {}", server.pid())),
        "{summary}"
    );
    assert!(
        has_evidence(top, "other end", "the socket listening there"),
        "{top:#}"
    );
    assert!(
        top["next_step"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("hangscope {}", server.pid()))),
        "{top:#}"
    );
    // The same as data: the listener that does not accept is the other end and where to look.
    assert_eq!(top["rule"], "peer_unreachable");
    assert_eq!(top["facts"]["shape"], "syn_sent");
    assert_eq!(top["facts"]["accept_queue_full"], true, "{top:#}");
    let end = &top["facts"]["conn"]["other_end"];
    assert_eq!(end["kind"], "listener", "{top:#}");
    assert_eq!(end["holder"]["pid"], server.pid());
    assert_eq!(end["holder"]["fd"].to_string(), listen_fd);
    assert_eq!(top["next"]["kind"], "process");
    assert_eq!(top["next"]["pid"], server.pid());
    assert_plain_words(&doc);
    assert_eq!(code, 1);
}

#[test]
fn a_request_to_a_server_that_does_not_accept() {
    let mut server = scenario("backlog-server", &["--backlog", "16"]);
    let port = server.expect("port");
    let listen_fd = server.expect("listen_fd");
    let peer = format!("127.0.0.1:{port}");
    let mut client = scenario("meta-client", &["--peer", &peer, "--timeout-ms", "60000"]);
    let worker: i32 = client.expect("worker").parse().expect("worker tid");
    let pid = client.pid();
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || in_poll(pid, worker)),
        "the worker never waited in poll"
    );
    let (_, doc) = inspect(pid, &WINDOW);
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "peer_silent", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["tid"], worker);
    let summary = top["summary"].as_str().expect("summary");
    assert!(
        summary.contains(&format!(
            "has not even accepted the connection: it waits in the accept queue of the socket \
             listening there, fd {listen_fd} of process {}",
            server.pid()
        )),
        "{summary}"
    );
    assert!(
        top["next_step"].as_str().is_some_and(|s| s
            .contains(&format!("hangscope {}", server.pid()))
            && s.contains("accept()")),
        "{top:#}"
    );
    assert_plain_words(&doc);
}
