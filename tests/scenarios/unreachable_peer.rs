//! (b) Unreachable peer: a silent server in a network namespace the test creates; the client in
//! the root namespace connects, the link inside the namespace goes down, then the client sends
//! its request. The data is never acknowledged; TCP retransmits and backs off.

use std::time::Duration;

use crate::support::netns::Netns;
use crate::support::*;
use crate::{WINDOW, assert_plain_words, findings_text, has_evidence, top_cause};

/// From /proc/PID/net/tcp (proc(5)): (tx_queue, retransmits) of the connection to `peer`
/// ("0A0000C2:1F90", address in host byte order as the kernel prints it).
fn unacked_and_retransmits(pid: i32, peer_hex: &str) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    text.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.get(2)? != &peer_hex || cols.get(3)? != &"01" {
            return None;
        }
        let tx = u64::from_str_radix(cols.get(4)?.split(':').next()?, 16).ok()?;
        let retrans = u64::from_str_radix(cols.get(6)?, 16).ok()?;
        Some((tx, retrans))
    })
}

fn proc_net_hex(addr: &str, port: u16) -> String {
    let ip: std::net::Ipv4Addr = addr.parse().expect("IPv4 address");
    format!("{:08X}:{port:04X}", u32::from_le_bytes(ip.octets()))
}

#[test]
fn unreachable_peer_retransmits() {
    let ns = Netns::create("b");
    let listen = format!("{}:0", ns.inner_addr);
    let mut server = scenario_via(&ns.exec_prefix(), "silent-server", &["--listen", &listen]);
    let port: u16 = server.expect("port").parse().expect("port");
    let peer = format!("{}:{port}", ns.inner_addr);
    let mut client = scenario(
        "meta-client",
        &[
            "--peer",
            &peer,
            "--delay-send-ms",
            "1500",
            "--timeout-ms",
            "20000",
        ],
    );
    let worker: i32 = client.expect("worker").parse().expect("worker tid");
    let fd: i32 = client.expect("connected").parse().expect("fd");
    let pid = client.pid();

    // Cut the peer off while the client still holds its request back.
    ns.exec_ip(&["link", "set", &ns.inner_if, "down"])
        .expect("set the link down");

    // The request goes out, is never acknowledged, and is retransmitted.
    let hex = proc_net_hex(&ns.inner_addr, port);
    assert!(
        wait_until(Duration::from_secs(20), || {
            in_poll(pid, worker)
                && unacked_and_retransmits(pid, &hex).is_some_and(|(tx, r)| tx > 0 && r >= 1)
        }),
        "no retransmits on the connection to {peer}: {:?}",
        unacked_and_retransmits(pid, &hex)
    );

    let (code, doc) = inspect(pid, &WINDOW);
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "peer_unreachable", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["tid"], worker);
    assert_eq!(top["subject"]["fd"], fd);
    let conn = top["subject"]["connection"].as_str().expect("connection");
    assert!(conn.ends_with(&format!("-> {peer}")), "{conn}");
    assert!(has_evidence(top, "waiting in", "poll"), "{top:#}");
    // The same as data: unacknowledged data on the connection, and the peer's host as next.
    assert_eq!(top["rule"], "peer_unreachable");
    assert_eq!(top["facts"]["shape"], "unacked");
    assert_eq!(top["facts"]["waiter"]["tid"], worker);
    assert_eq!(top["facts"]["conn"]["fd"], fd);
    assert!(top["facts"]["unacked"].as_u64() > Some(0), "{top:#}");
    assert!(top["facts"]["retries"].as_u64() >= Some(1), "{top:#}");
    assert_eq!(top["next"]["kind"], "host_port");
    assert_eq!(top["next"]["host"], ns.inner_addr.as_str());
    assert_eq!(top["next"]["port"], port);
    assert_plain_words(&doc);
    assert_eq!(code, 1, "exit code 1 means a cause was found");
    // Locals drop in reverse order: the processes are killed before the namespace goes.
}
