//! (g) A connection the peer closed (its FIN came: CLOSE-WAIT on this side) that this process
//! neither reads to its end nor closes, with no thread waiting on it: a socket left half-closed,
//! a warning. While the peer still holds its end, the same idle connection gets nothing.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text};

/// The TCP state (proc(5)'s hex code, e.g. "01" established, "08" close-wait) of the socket at
/// `fd` of `pid`, from /proc/PID/net/tcp: found by its inode, as the netns may hold other
/// connections to the same port (another test's, left in TIME-WAIT).
fn tcp_state(pid: i32, fd: i32) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let inode = link
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .to_string();
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    text.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.get(9) == Some(&inode.as_str())).then(|| cols.get(3).map(|s| s.to_string()))?
    })
}

fn by_rule<'a>(doc: &'a serde_json::Value, rule: &str) -> Vec<&'a serde_json::Value> {
    doc["findings"]
        .as_array()
        .map(|fs| fs.iter().filter(|f| f["rule"] == rule).collect())
        .unwrap_or_default()
}

#[test]
fn a_connection_the_peer_closed_that_nobody_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    let port = listener.local_addr().expect("local address").port();
    let peer = format!("127.0.0.1:{port}");
    let mut client = scenario("unread-client", &["--peer", &peer]);
    let fd: i32 = client.expect("fd").parse().expect("fd");
    let consumer: i32 = client.expect("consumer").parse().expect("consumer tid");
    let pid = client.pid();
    let (served, _) = listener.accept().expect("accept the client");

    // The healthy twin: the peer holds its end; an idle connection is no finding.
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            tcp_state(pid, fd).as_deref() == Some("01")
                && syscall_nr(pid, consumer) == Some(libc::SYS_clock_nanosleep)
        }),
        "the client's connection is not established and idle: {:?}",
        tcp_state(pid, fd)
    );
    let (code, doc) = inspect(pid, &WINDOW);
    assert!(
        by_rule(&doc, "connection_dead").is_empty(),
        "{}",
        findings_text(&doc)
    );
    assert_eq!(
        doc["verdict"]["cause_found"],
        false,
        "{}",
        findings_text(&doc)
    );
    assert_eq!(code, 0);

    // The peer closes; the client keeps its end open and reads nothing.
    drop(served);
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            tcp_state(pid, fd).as_deref() == Some("08")
        }),
        "the client's end is not in CLOSE-WAIT: {:?}",
        tcp_state(pid, fd)
    );
    let (_, doc) = inspect(pid, &WINDOW);
    let found = by_rule(&doc, "connection_dead");
    let f = found
        .first()
        .unwrap_or_else(|| panic!("{}", findings_text(&doc)));
    assert_eq!(f["cause"], "peer_closed", "{f:#}");
    // No thread waits on it: a socket left open, not a thread stuck on it.
    assert_eq!(f["severity"], "warning", "{f:#}");
    assert!(f["facts"]["waiter"].is_null(), "{f:#}");
    assert_eq!(f["facts"]["shape"], "peer_closed", "{f:#}");
    assert_eq!(f["facts"]["conn"]["fd"], fd, "{f:#}");
    // Nothing unread: ss shows Recv-Q 1 for the FIN, which is no byte of data.
    assert_eq!(f["facts"]["unread"], 0, "{f:#}");
    assert_eq!(f["facts"]["recv_q"], 1, "{f:#}");
    assert!(
        !f["summary"].as_str().unwrap_or("").contains("unread"),
        "{f:#}"
    );
    assert!(f["facts"]["since_ms"].as_u64() >= Some(1000), "{f:#}");
    assert_eq!(f["subject"]["fd"], fd);
    assert_plain_words(&doc);
}
