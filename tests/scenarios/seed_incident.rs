//! (a) The seed incident: a client's worker thread sends a request to a service that accepts
//! and never answers, waits in poll(), times out, fails over to a second silent replica and
//! waits again; a heartbeat thread talks to a healthy service on the same host; the main thread
//! sleeps in a 100 ms loop.

use std::time::{Duration, Instant};

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text, has_evidence, top_cause};

/// The first call's wait, on A: longer than the suite needs a wait to be (1 s).
const TIMEOUT_MS: &str = "5000";
/// The second call's, on B: it must still be waiting when hangscope's last look is taken, and
/// hangscope's start, its 1 s window and its collection took more than the 5 s of A's wait on
/// a loaded host; so it lasts for as long as the scenario may (the test ends it).
const LAST_TIMEOUT_MS: &str = "120000";

#[test]
fn silent_peer_after_failover() {
    let mut a = scenario("silent-server", &[]);
    let peer_a = format!("127.0.0.1:{}", a.expect("port"));
    let mut b = scenario("silent-server", &[]);
    let port_b = b.expect("port");
    let peer_b = format!("127.0.0.1:{port_b}");
    let mut side = scenario("echo-server", &[]);
    let port_side = side.expect("port");
    let side_addr = format!("127.0.0.1:{port_side}");
    let dir = TempDir::new("seed");
    let log = format!("{}/meta-client.log", dir.path());
    let mut client = scenario(
        "meta-client",
        &[
            "--peer",
            &peer_a,
            "--peer",
            &peer_b,
            "--timeout-ms",
            TIMEOUT_MS,
            "--last-timeout-ms",
            LAST_TIMEOUT_MS,
            "--log",
            &log,
            "--side",
            &side_addr,
        ],
    );
    let worker: i32 = client.expect("worker").parse().expect("worker tid");
    let pid = client.pid();

    // The first call times out on A and the client fails over to B.
    let failover = format!("old meta: {peer_a} new meta: {peer_b}");
    assert!(
        wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&failover))
        }),
        "the client did not fail over from A to B"
    );
    let since_failover = Instant::now();
    // The worker waits in poll() for B's reply, long enough to be stuck (more than 1 s).
    assert!(
        wait_until(Duration::from_secs(10), || {
            in_poll(pid, worker) && since_failover.elapsed() >= STUCK
        }),
        "the worker is not waiting in poll"
    );

    let (code, doc) = inspect(pid, &WINDOW);
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "peer_silent", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["tid"], worker);
    assert_eq!(top["subject"]["thread_name"], "dump_meta");
    let conn = top["subject"]["connection"].as_str().expect("connection");
    assert!(conn.ends_with(&format!("-> {peer_b}")), "{conn}");
    // The fd is the socket to B, as the process's own fd table says.
    let fd = top["subject"]["fd"].as_i64().expect("fd") as i32;
    let inode = top["subject"]["socket_inode"]
        .as_u64()
        .expect("socket inode");
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("fd link");
    assert_eq!(link.to_string_lossy(), format!("socket:[{inode}]"));
    assert!(has_evidence(top, "waiting in", "poll"), "{top:#}");

    // The timeout on A is quoted from the log, and the summary tells the failover story.
    assert!(
        has_evidence(top, "log", &peer_a),
        "no log line about {peer_a}: {top:#}"
    );
    let summary = top["summary"].as_str().expect("summary");
    assert!(summary.contains(&peer_b), "{summary}");
    // B is on this host: the finding names the process holding its end, which read the request.
    assert!(
        has_evidence(top, "other end", &format!("of process {} ", b.pid())),
        "{top:#}"
    );
    assert!(
        summary.contains("which has read everything sent"),
        "{summary}"
    );
    // Its threads were looked at: none waits on that connection (B's main thread is in accept).
    assert!(has_evidence(top, "its threads", "none of its"), "{top:#}");
    assert!(
        top["next_step"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("hangscope {}", b.pid()))),
        "{top:#}"
    );
    assert!(
        summary.contains(&peer_a),
        "the earlier failure on A: {summary}"
    );

    // The heartbeat connection to the same host answers: host and network are ruled out.
    let ruled_out = top["ruled_out"].to_string();
    assert!(
        ruled_out.contains(&format!(":{port_side}")),
        "the healthy side connection is not ruled out evidence: {ruled_out}"
    );
    let findings = doc["findings"].as_array().expect("findings");
    let same_host = findings
        .iter()
        .find(|f| f["cause"] == "same_host_alive")
        .unwrap_or_else(|| panic!("no same-host finding:\n{}", findings_text(&doc)));
    assert_eq!(same_host["severity"], "info");
    assert!(
        same_host["subject"]["connection"]
            .as_str()
            .is_some_and(|c| c.ends_with(&format!("-> {side_addr}"))),
        "{same_host:#}"
    );

    // The main thread's 100 ms sleep loop is context, never a cause.
    for f in findings.iter().filter(|f| f["subject"]["tid"] == pid) {
        assert_ne!(f["severity"], "cause", "main thread as a cause: {f:#}");
    }
    assert_eq!(
        crate::support::causes(&doc).len(),
        1,
        "{}",
        findings_text(&doc)
    );
    assert_plain_words(&doc);
    assert_eq!(code, 1, "exit code 1 means a cause was found");

    // The same as data: which thread, which peer, how long, and where to look next.
    let (verdict, findings) = crate::pinned(&doc);
    let top = &findings[0];
    assert_eq!(top.rule, "peer_silent");
    assert!(verdict.cause_found);
    assert_eq!(verdict.rule, "peer_silent");
    assert_eq!(verdict.finding, Some(0));
    assert_eq!(verdict.summary, top.summary);
    // The wait goes on into the replica on this host, which read the request and never
    // answered: the root, whose next step is the verdict's.
    let root = verdict.root.as_ref().expect("the chain's root");
    assert_eq!((root.pid, root.hops), (b.pid(), 1), "{root:?}");
    assert_eq!(
        doc["chain"]["hops"][1]["rule"], "unanswered",
        "{:#}",
        doc["chain"]
    );
    assert_eq!(
        verdict.next_step,
        doc["chain"]["hops"][1]["next_step"]
            .as_str()
            .unwrap_or_default()
    );
    assert!(top.stuck_ms >= 1000, "{top:?}");
    assert_eq!(top.facts["waiter"]["tid"], worker);
    assert_eq!(top.facts["waiter"]["syscall"], "poll");
    assert_eq!(top.facts["conn"]["fd"], fd);
    assert_eq!(top.facts["conn"]["socket_inode"], inode);
    assert_eq!(top.facts["conn"]["peer"]["port"].to_string(), port_b);
    assert_eq!(top.facts["conn"]["other_end"]["kind"], "held");
    assert_eq!(top.facts["conn"]["other_end"]["holder"]["pid"], b.pid());
    assert!(top.facts["silent_ms"].as_u64().is_some_and(|ms| ms >= 1000));
    assert_eq!(
        top.facts["host_alive"]["conns"][0]["peer"]["port"].to_string(),
        port_side
    );
    assert_eq!(
        top.facts["earlier_failure"]["peer"].as_str(),
        Some(peer_a.as_str())
    );
    let next = top.next.as_ref().expect("next");
    assert_eq!(next.kind, "process");
    assert_eq!(next.pid, Some(b.pid()));
    assert_eq!(
        next.command.as_deref(),
        Some(format!("hangscope {}", b.pid()).as_str())
    );
    let same = findings
        .iter()
        .find(|f| f.rule == "same_host")
        .expect("same_host");
    assert_eq!(same.stuck_ms, 0);
}
