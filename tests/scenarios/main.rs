//! End-to-end scenarios: each module starts real processes (`hangscope __scenario ...`) in a
//! known state, waits for that state by polling /proc, runs the real binary on the stuck process
//! (`hangscope PID --json --window 1s`) and asserts the top finding's cause, thread, fd and
//! peer, and the exit code (1: a cause was found, 0: none).
//!
//! Assertions are about the class of the state, never this suite's ports or timings.

#[path = "../support/mod.rs"]
mod support;

mod busy_server;
mod demo;
mod full_backlog;
mod idle_server;
mod mutex_deadlock;
mod peer_closed;
mod pipe_wait;
mod seed_incident;
mod unanswered;
mod unix_peer;
mod unreachable_peer;
mod unread_data;
mod zero_window;

use serde_json::Value;

/// The sampling window every scenario uses: long enough to see loops, short for the suite.
const WINDOW: [&str; 2] = ["--window", "1s"];

/// How long a scenario's state must last before hangscope is run: longer than the rules'
/// threshold for "stuck" (1 s), so a state that lasts is not mistaken for one in passing.
const STUCK: std::time::Duration = std::time::Duration::from_millis(1200);

/// Names only the code uses; a user never reads them.
const INTERNAL_NAMES: &[&str] = &[
    "peer_silent",
    "peer_unreachable",
    "peer_not_reading",
    "local_not_reading",
    "connection_dead",
    "same_host_alive",
    "waiting_loop",
    "WaitObject",
    "Some(",
    "None)",
    "SocketDetail",
];

/// The findings, printed compactly for a failing assertion's message.
fn findings_text(doc: &Value) -> String {
    doc["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| serde_json::to_string_pretty(f).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_else(|| "no findings array".into())
}

/// The first-ranked finding; it must be a cause.
fn top_cause(doc: &Value) -> &Value {
    let top = &doc["findings"][0];
    assert_eq!(
        top["severity"],
        "cause",
        "the top finding is not a cause:\n{}",
        findings_text(doc)
    );
    top
}

/// Whether any evidence line of `f` has `label` and a value containing `needle`.
fn has_evidence(f: &Value, label: &str, needle: &str) -> bool {
    f["evidence"].as_array().is_some_and(|ev| {
        ev.iter()
            .any(|e| e["label"] == label && e["value"].as_str().is_some_and(|v| v.contains(needle)))
    })
}

/// A finding as the JSON contract pins it: a field added or renamed fails here, as ripgrep pins
/// its JSON messages. (hangscope's own reader stays tolerant of added fields.)
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the fields are the contract; tests read some of them
struct PinnedFinding {
    rule: String,
    severity: String,
    cause: String,
    summary: String,
    subject: PinnedSubject,
    evidence: Vec<PinnedEvidence>,
    ruled_out: Vec<String>,
    next_step: String,
    stuck_ms: u64,
    #[serde(default)]
    facts: Value,
    #[serde(default)]
    next: Option<PinnedNext>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PinnedSubject {
    tid: Option<i32>,
    thread_name: Option<String>,
    fd: Option<i32>,
    socket_inode: Option<u64>,
    connection: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PinnedEvidence {
    label: String,
    value: String,
    source: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PinnedNext {
    kind: String,
    pid: Option<i32>,
    tid: Option<i32>,
    host: Option<String>,
    port: Option<u16>,
    path: Option<String>,
    command: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PinnedVerdict {
    cause_found: bool,
    summary: String,
    next_step: String,
    rule: String,
    finding: Option<usize>,
    root: Option<PinnedRoot>,
}

/// The root of the wait chain, as the verdict names it (since 1.5).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PinnedRoot {
    pid: i32,
    name: String,
    summary: String,
    hops: usize,
    #[serde(default)]
    cycle: bool,
}

/// The document's findings and verdict, read strictly; every finding names its rule.
fn pinned(doc: &Value) -> (PinnedVerdict, Vec<PinnedFinding>) {
    let findings: Vec<PinnedFinding> =
        serde_json::from_value(doc["findings"].clone()).expect("findings as the contract says");
    for f in &findings {
        assert!(!f.rule.is_empty(), "a finding without its rule: {f:?}");
    }
    let verdict: PinnedVerdict =
        serde_json::from_value(doc["verdict"].clone()).expect("verdict as the contract says");
    (verdict, findings)
}

/// The words a user reads carry no internal names.
fn assert_plain_words(doc: &Value) {
    for f in doc["findings"].as_array().expect("findings array") {
        let mut texts = vec![&f["summary"], &f["next_step"]];
        texts.extend(f["ruled_out"].as_array().into_iter().flatten());
        for ev in f["evidence"].as_array().into_iter().flatten() {
            texts.push(&ev["label"]);
            texts.push(&ev["value"]);
        }
        for t in texts.iter().filter_map(|t| t.as_str()) {
            for name in INTERNAL_NAMES {
                assert!(!t.contains(name), "{name:?} in the user's words: {t:?}");
            }
        }
    }
}
