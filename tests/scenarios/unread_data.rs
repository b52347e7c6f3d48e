//! (d) Local process not reading: the server sends a greeting, the client's socket holds it in
//! Recv-Q, and no thread of the client waits on the socket.

use std::time::Duration;

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text, top_cause};

/// Recv-Q of the established connection to `peer_port`, from /proc/PID/net/tcp (proc(5)).
fn recv_q(pid: i32, peer_port: u16) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    let suffix = format!(":{peer_port:04X}");
    text.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if !cols.get(2)?.ends_with(&suffix) || cols.get(3)? != &"01" {
            return None;
        }
        u64::from_str_radix(cols.get(4)?.split(':').nth(1)?, 16).ok()
    })
}

#[test]
fn data_nobody_reads() {
    let mut server = scenario("greeter-server", &[]);
    let port: u16 = server.expect("port").parse().expect("port");
    let peer = format!("127.0.0.1:{port}");
    let mut client = scenario("unread-client", &["--peer", &peer]);
    let fd: i32 = client.expect("fd").parse().expect("fd");
    let consumer: i32 = client.expect("consumer").parse().expect("consumer tid");
    let pid = client.pid();
    // Data sits in Recv-Q for longer than data on its way to a reader does.
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            recv_q(pid, port).is_some_and(|q| q > 0)
                && syscall_nr(pid, consumer) == Some(libc::SYS_clock_nanosleep)
        }),
        "no unread data on the connection: {:?}",
        recv_q(pid, port)
    );

    let (code, doc) = inspect(pid, &WINDOW);
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "local_not_reading", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["fd"], fd);
    let conn = top["subject"]["connection"].as_str().expect("connection");
    assert!(conn.ends_with(&format!("-> {peer}")), "{conn}");
    // The same as data: the queue, and the sleeping consumer among the threads to look at.
    assert_eq!(top["rule"], "local_not_reading");
    assert_eq!(top["facts"]["conn"]["fd"], fd);
    assert!(top["facts"]["queued"].as_u64() > Some(0), "{top:#}");
    assert!(top["facts"]["waited_ms"].as_u64() >= Some(1000), "{top:#}");
    let blocked = top["facts"]["blocked"].as_array().expect("blocked threads");
    assert!(blocked.iter().any(|t| t["tid"] == consumer), "{top:#}");
    assert_eq!(top["next"]["kind"], "thread");
    assert_eq!(top["next"]["pid"], pid);
    assert_plain_words(&doc);
    assert_eq!(code, 1, "exit code 1 means a cause was found");
}
