//! (c) Peer not reading: the server accepts and never reads; its receive window closes, the
//! client's send buffer fills, and the client's sender thread blocks in write().

use std::time::Duration;

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text, has_evidence, top_cause};

#[test]
fn zero_window_blocks_the_sender() {
    let mut server = scenario("deaf-server", &[]);
    let peer = format!("127.0.0.1:{}", server.expect("port"));
    let mut client = scenario("flood-client", &["--peer", &peer]);
    let fd: i32 = client.expect("fd").parse().expect("fd");
    let sender: i32 = client.expect("sender").parse().expect("sender tid");
    let pid = client.pid();
    // Blocked sending (std's TcpStream writes with sendto), and staying blocked for longer than
    // a send in flight takes.
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            matches!(syscall_nr(pid, sender), Some(n) if n == libc::SYS_sendto || n == libc::SYS_write)
        }),
        "the sender is not blocked sending: {:?}",
        syscall_nr(pid, sender)
    );

    let (code, doc) = inspect(pid, &WINDOW);
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "peer_not_reading", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["tid"], sender);
    assert_eq!(top["subject"]["fd"], fd);
    let conn = top["subject"]["connection"].as_str().expect("connection");
    assert!(conn.ends_with(&format!("-> {peer}")), "{conn}");
    assert!(
        has_evidence(top, "waiting in", "sendto") || has_evidence(top, "waiting in", "write"),
        "{top:#}"
    );
    // The deaf server is on this host: named, with what it left unread.
    assert!(
        has_evidence(top, "other end", &format!("of process {} ", server.pid())),
        "{top:#}"
    );
    assert!(
        top["summary"]
            .as_str()
            .is_some_and(|s| s.contains("which has not read it")),
        "{top:#}"
    );
    // The same as data: the writer, the connection, the deaf server as the other end and next.
    assert_eq!(top["rule"], "peer_not_reading");
    assert_eq!(top["facts"]["writer"]["tid"], sender);
    assert_eq!(top["facts"]["conn"]["fd"], fd);
    assert_eq!(top["facts"]["conn"]["other_end"]["kind"], "held", "{top:#}");
    assert_eq!(
        top["facts"]["conn"]["other_end"]["holder"]["pid"],
        server.pid()
    );
    assert!(
        top["facts"]["conn"]["other_end"]["recv_q"].as_u64() > Some(0),
        "{top:#}"
    );
    assert_eq!(top["next"]["kind"], "process");
    assert_eq!(top["next"]["pid"], server.pid());
    assert_plain_words(&doc);
    assert_eq!(code, 1, "exit code 1 means a cause was found");
}
