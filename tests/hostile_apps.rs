//! What a server says about its sessions is the server's (and its clients') to choose: a
//! MariaDB user, host, database and statement, a Redis client's name and command. Each is
//! printed in the text report (the MariaDB section), quoted by a finding (the lock wait, the
//! blocked client) and written into the HTML page; none may reach a terminal or a browser raw.
//!
//! The snapshots are built here (no server needed): the values are what a hostile server
//! could answer, and the real diagnosis and renderers run on them.

use hangscope_diagnose::diagnose;
use hangscope_model::Document;
use hangscope_render::html::render_html;
use hangscope_render::{TextOptions, render_text};

/// An OSC title change, a C1 CSI, a line break that would start a line of its own, a bidi
/// override and isolate, and DEL.
const HOSTILE: &str = "\x1b]0;pwned\x07\r\nZZ\u{9b}2J\u{202e}\u{2066}\x7f<blink>";

fn h(s: &str) -> String {
    format!("{s}{HOSTILE}")
}

/// No control character, bidi control or line made by the data in `text`, and the values
/// are there, escaped.
fn assert_clean(what: &str, text: &str) {
    for (n, line) in text.lines().enumerate() {
        for c in line.chars() {
            assert!(
                !(c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
                "{what}: raw {c:?} on line {n}: {line:?}"
            );
        }
        assert!(
            !line.trim_start().starts_with("ZZ"),
            "{what}: line {n}: {line:?}"
        );
    }
    assert!(
        text.contains("\\e]0;pwned\\a\\r\\nZZ\\u{9b}2J\\u{202e}\\u{2066}\\x7f"),
        "{what}: the hostile value is not shown escaped:\n{text}"
    );
}

fn check(doc: &Document, needle: &str) {
    let text = render_text(
        doc,
        &TextOptions {
            verbose: true,
            ..TextOptions::default()
        },
    );
    assert!(text.contains(needle), "text lacks {needle:?}:\n{text}");
    assert_clean("text", &text);
    let html = render_html(doc);
    assert_clean("html", &html);
    // The data's markup is text in the page, never an element.
    assert!(!html.contains("<blink>"), "raw markup in the page");
    assert!(
        html.contains("&lt;blink&gt;"),
        "the markup is not shown escaped"
    );
}

fn document(snapshot: serde_json::Value) -> Document {
    let doc = serde_json::json!({
        "schema_version": hangscope_model::SCHEMA_VERSION,
        "generator": "test",
        "snapshot": snapshot,
    });
    let mut doc = Document::from_json(&doc.to_string()).expect("a document");
    let findings = diagnose(&doc.snapshot);
    doc.set_findings(findings);
    doc
}

#[test]
fn mariadb_sessions_are_escaped_in_text_and_html() {
    let session = |id: u64, tid: i32, trx: &str| {
        serde_json::json!({
            "id": id, "tid": tid, "user": h("app"), "host": h("localhost:40011"),
            "db": h("hs"), "command": h("Query"), "time_ms": 9000, "state": h("updating"),
            "info": h("UPDATE ledger SET v=v+1"), "trx_state": trx, "trx_ms": 9500,
        })
    };
    let mut waiter = session(12, 312, "LOCK WAIT");
    waiter["wait_ms"] = 4000.into();
    waiter["blocked_by"] = serde_json::json!([11]);
    waiter["lock_table"] = h("`hs`.`ledger`").into();
    waiter["lock_mode"] = h("X").into();
    let doc = document(serde_json::json!({
        "process": { "pid": 300, "name": "mariadbd" },
        "app": {
            "kind": "mariadb",
            "server": { "pid": 300, "socket": h("/run/mysqld/mysqld.sock"),
                        "version": h("10.11.6-MariaDB"), "asked_as": "root" },
            "sessions": [waiter, session(11, 311, "RUNNING")],
        },
    }));
    assert!(
        doc.findings.iter().any(|f| f.rule == "mariadb_lock_wait"),
        "{:#?}",
        doc.findings
    );
    check(&doc, "MARIADB");
}

#[test]
fn redis_clients_are_escaped_in_text_and_html() {
    let doc = document(serde_json::json!({
        "process": { "pid": 500, "name": "worker" },
        "sockets": [{ "inode": 77, "fds": [5], "family": "inet", "source": "sock_diag",
            "detail": { "type": "tcp", "state": "ESTAB",
                "local": { "addr": "127.0.0.1", "port": 50000 },
                "peer": { "addr": "127.0.0.1", "port": 6379 } } }],
        "app": {
            "kind": "redis", "server_pid": 600, "address": h("127.0.0.1:6379"),
            "clients": [{ "id": 9, "addr": "127.0.0.1:50000", "name": h("queue-worker"),
                "age_s": 60, "idle_s": 30, "flags": "b", "cmd": h("blpop"), "db": 0 }],
        },
    }));
    assert!(
        doc.findings.iter().any(|f| f.rule == "redis_blocked"),
        "{:#?}",
        doc.findings
    );
    check(&doc, "BLPOP");
}
