//! `hangscope demo` reproduces the seed incident, names its cause, and leaves nothing behind:
//! no process, no listening port, no log file.

use std::time::Duration;

use crate::support::*;
use crate::{findings_text, top_cause};

#[test]
fn demo_explains_the_seed_and_cleans_up() {
    let out = hangscope(&["demo", "--json", "--window", "1s"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "demo --json did not print JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "peer_silent", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["thread_name"], "dump_meta");
    assert!(
        doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["cause"] == "same_host_alive"),
        "{}",
        findings_text(&doc)
    );
    // The staged processes carry their roles' names, not the tool's.
    assert_eq!(doc["snapshot"]["process"]["name"], "meta-client");
    assert_eq!(doc["snapshot"]["process"]["cmdline"][0], "meta-client");
    let verdict = doc["verdict"]["summary"].as_str().expect("verdict");
    assert!(
        verdict.contains("process") && verdict.contains("(meta-replica-b)"),
        "{verdict}"
    );
    assert!(!verdict.contains("(hangscope)"), "{verdict}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the demo exits 0 when it explained what it staged"
    );

    // The client is gone (reaped, not a zombie).
    let pid = doc["snapshot"]["process"]["pid"].as_i64().expect("pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the demo's client {pid} is still there"
    );
    // The silent replica it waited on no longer listens.
    let conn = top["subject"]["connection"].as_str().expect("connection");
    let peer = conn.rsplit(" -> ").next().expect("peer");
    let refused = std::net::TcpStream::connect_timeout(
        &peer.parse().expect("peer address"),
        Duration::from_secs(2),
    )
    .is_err();
    assert!(refused, "the demo's server at {peer} still accepts");
    // Its log file, which the report read, is removed.
    let log = doc["snapshot"]["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|src| src["path"].as_str())
        .find(|p| p.contains("hangscope-demo-"))
        .expect("the report read the demo's log");
    assert!(!std::path::Path::new(log).exists(), "{log} left behind");
}
