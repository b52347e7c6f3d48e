//! Diagnosis of recorded snapshot documents (tests/fixtures/snapshots/), read back the way
//! `hangscope replay` reads them.

use hangscope_diagnose::diagnose;
use hangscope_model::{Cause, Document, Severity};

fn load(name: &str) -> Document {
    let path = format!(
        "{}/../../tests/fixtures/snapshots/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Document::from_json(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn seed_incident_top_finding() {
    let doc = load("seed-zbs-metad-peer-silent");
    let findings = diagnose(&doc.snapshot);
    let top = &findings[0];
    assert_eq!(
        (top.severity, top.cause),
        (Severity::Cause, Cause::PeerSilent)
    );
    assert_eq!(top.subject.tid, Some(31576));
    assert_eq!(top.subject.fd, Some(29));
    assert_eq!(
        top.subject.connection.as_deref(),
        Some("TCP 10.0.130.71:42428 -> 10.0.130.72:10100")
    );
    assert!(
        top.summary.contains("waited 7.9 s in poll()"),
        "{}",
        top.summary
    );
    assert!(
        top.next_step.contains(":10100 on 10.0.130.72"),
        "{}",
        top.next_step
    );
    // Exactly one cause; the rest is context: what rules out the host, then the main loop.
    let causes: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == Severity::Cause)
        .collect();
    assert_eq!(causes.len(), 1, "{findings:#?}");
    let rest: Vec<Cause> = findings[1..].iter().map(|f| f.cause).collect();
    assert_eq!(rest, vec![Cause::SameHostAlive, Cause::WaitingLoop]);
}

#[test]
fn idle_server_has_no_finding() {
    let doc = load("idle-server");
    let findings = diagnose(&doc.snapshot);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn busy_server_has_no_cause() {
    let doc = load("busy-echo-server");
    let findings = diagnose(&doc.snapshot);
    assert!(
        findings.iter().all(|f| f.severity != Severity::Cause),
        "{findings:#?}"
    );
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn seed_without_threads_is_judged_on_sockets_alone() {
    let mut doc = load("seed-zbs-metad-peer-silent");
    doc.snapshot.threads.clear();
    let findings = diagnose(&doc.snapshot);
    assert!(findings.iter().all(|f| f.severity != Severity::Cause));
    let top = &findings[0];
    assert_eq!(top.cause, Cause::PeerSilent);
    assert_eq!(top.subject.fd, Some(29));
}
