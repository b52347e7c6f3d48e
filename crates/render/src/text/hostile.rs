//! Every string of a real snapshot made hostile: whatever field a renderer prints, nothing
//! raw may reach the terminal.

use super::*;

const HOSTILE: &str = "\x1b]0;pwned\x07\r\nZZ\u{9b}2J\u{202e}\x7f";

/// Appends `HOSTILE` to every string that is data, not a tag the types are told apart by.
fn poison(v: &mut serde_json::Value, key: &str) {
    const TAGS: &[&str] = &[
        "schema_version",
        "kind",
        "type",
        "severity",
        "cause",
        "reason",
        "format",
        "level",
        "class",
        "access",
        "link_access",
        "outcome",
        "event",
        "family",
    ];
    match v {
        // A log message's own lines are shown as its continuation lines, by design.
        serde_json::Value::String(s) if key == "message" => {
            s.push_str(&HOSTILE.replace("\r\n", " "));
        }
        serde_json::Value::String(s) if !TAGS.contains(&key) => s.push_str(HOSTILE),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| poison(x, key)),
        serde_json::Value::Object(o) => o.iter_mut().for_each(|(k, x)| poison(x, k)),
        _ => {}
    }
}

fn assert_clean(text: &str) {
    for (n, line) in text.lines().enumerate() {
        for c in line.chars() {
            assert!(
                !(c.is_control() || matches!(c, '\u{202a}'..='\u{202e}')),
                "raw {c:?} on line {n}: {line:?}"
            );
        }
        // The newline after the BEL was escaped: no line starts with what followed it.
        assert!(!line.trim_start().starts_with("ZZ"), "line {n}: {line:?}");
    }
}

/// What the fixtures lack: a pipe with a writer, a unix peer, a local TCP peer, a lock, a
/// waiting thread with a stack, gaps and findings with every part.
fn the_rest(v: &mut serde_json::Value) {
    let extra = serde_json::json!({
        "threads": [{
            "tid": 90, "name": "w", "state": "S", "wchan": "pipe_read",
            "stack": ["pipe_read+0x1/0x2"], "stack_unavailable": null, "focus": true,
            "syscall": { "nr": 0, "name": "read", "summary": "read(40, \"x\", 1)",
                "decode_error": "partial", "timeout_ms": -1,
                "waits_on": [{ "kind": "fd", "fd": 40, "events": ["POLLIN"] },
                             { "kind": "fd", "fd": 41 }, { "kind": "fd", "fd": 42 }] }
        }, {
            "tid": 91, "name": "m", "state": "S",
            "syscall": { "nr": 202, "name": "futex", "waits_on": [{ "kind": "futex",
                "addr": 1, "owner_tid": 90, "waiters": 2 }] }
        }, {
            "tid": 92, "name": "l", "state": "S",
            "syscall": { "nr": 73, "name": "flock", "waits_on": [{ "kind": "lock",
                "fd": 43, "op": "LOCK_EX" }] }
        }],
        "fds": [
            { "fd": 40, "kind": "pipe", "target": "pipe:[7]", "pipe_inode": 7,
              "pipe_peers": [{ "pid": 5, "name": "writer", "fd": 1, "access": "write" }] },
            { "fd": 41, "kind": "socket", "target": "socket:[8]", "socket_inode": 8 },
            { "fd": 42, "kind": "socket", "target": "socket:[9]", "socket_inode": 9 },
            { "fd": 43, "kind": "regular", "target": "/l", "stat_skipped": "on fuse" },
            { "fd": 44, "kind": "anon_inode", "target": "anon_inode:[x]" }
        ],
        "sockets": [
            { "inode": 8, "fds": [41], "family": "unix", "source": "sock_diag",
              "detail": { "type": "unix", "sock_type": "STREAM", "state": "ESTAB",
                "path": "/s", "peer_inode": 10, "peer_unresolved": "gone",
                "peer": { "pid": 6, "name": "peer", "fd": 3, "path": "/p" } } },
            { "inode": 9, "fds": [42], "family": "inet", "source": "sock_diag",
              "detail": { "type": "tcp", "state": "ESTAB",
                "local": { "addr": "127.0.0.1", "port": 1, "service": "svc" },
                "peer": { "addr": "127.0.0.1", "port": 2 }, "congestion": "cubic",
                "tcp_info": { "len": 200 },
                "local_peer": { "inode": 11, "state": "ESTAB", "recv_q": 3,
                  "holder": { "pid": 7, "name": "srv", "fd": 4 } } } },
            { "inode": 12, "fds": [45], "family": "other", "source": "none",
              "detail": { "type": "unknown" }, "not_found_reason": "raced" }
        ],
        "locks": [{ "id": 1, "class": "flock", "access": "write", "mode": "ADVISORY",
                    "dev": "0:1", "inode": 2, "start": 0, "waiting": true, "fd": 43,
                    "pid": 1, "holder_pid": 3, "path": "/l" }],
        "gaps": [{ "what": "/proc/1/x", "reason": "other", "detail": "d", "needs": "n" }]
    });
    let snap = &mut v["snapshot"];
    // A PostgreSQL server's view: statements, states, names, all the server's (and its
    // clients') choice. The target is the postmaster, so every client backend is listed.
    let pid = snap["process"]["pid"].clone();
    snap["app"] = serde_json::json!({
        "kind": "postgres",
        "server": { "postmaster_pid": pid, "port": 5432, "socket_dir": "/run/pg",
                    "version": "15" },
        "backends": [{ "pid": 7, "backend_type": "client backend", "state": "active",
            "wait_event_type": "Lock", "wait_event": "tuple", "query": "UPDATE x",
            "client_addr": "10.0.0.1", "client_port": 5, "usename": "u", "datname": "d",
            "application_name": "a", "blocked_by": [8],
            "lock_wait": { "locktype": "tuple", "mode": "m", "relation": "r" } },
          { "pid": 8, "backend_type": "client backend", "state": "idle in transaction",
            "query": "SELECT 1" }]
    });
    for key in ["threads", "fds", "sockets", "locks", "gaps"] {
        if let (Some(to), Some(from)) = (snap[key].as_array_mut(), extra[key].as_array()) {
            to.extend(from.iter().cloned());
        }
    }
    let finding = serde_json::json!({
        "severity": "cause", "cause": "pipe_wait", "summary": "s", "next_step": "n",
        "subject": { "tid": 90, "thread_name": "w", "fd": 40, "connection": "c" },
        "evidence": [{ "label": "l", "value": "v", "source": "src" }],
        "ruled_out": ["r"]
    });
    let mut second = finding.clone();
    second["severity"] = "warning".into();
    v["findings"] = serde_json::json!([finding, second]);
}

#[test]
fn no_field_reaches_the_terminal_raw() {
    for fixture in [
        include_str!("../../../../tests/fixtures/snapshots/seed-zbs-metad-peer-silent.json"),
        include_str!("../../../../tests/fixtures/snapshots/busy-echo-server.json"),
        include_str!("../../../../tests/fixtures/snapshots/idle-server.json"),
    ] {
        let mut v: serde_json::Value = serde_json::from_str(fixture).unwrap();
        the_rest(&mut v);
        poison(&mut v, "");
        let doc = Document::from_json(&v.to_string()).unwrap();
        assert!(doc.snapshot.process.name.ends_with(HOSTILE));
        for verbose in [false, true] {
            let opts = TextOptions {
                color: true,
                verbose,
                ..TextOptions::default()
            };
            let text = render_text(&doc, &opts);
            // Colour codes are hangscope's own; they are all this may contain of ESC.
            let text = text
                .replace("\x1b[0m", "")
                .replace("\x1b[1;31m", "")
                .replace("\x1b[1m", "")
                .replace("\x1b[2m", "")
                .replace("\x1b[33m", "");
            assert_clean(&text);
            assert!(text.contains("\\e]0;pwned\\a\\r\\nZZ\\u{9b}2J\\u{202e}\\x7f"));
            assert!(text.contains("POSTGRESQL"), "{text}");
        }
    }
}
