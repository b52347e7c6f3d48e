//! `--redact`: the document with what identifies a company's machines replaced by tokens, so a
//! snapshot or a page can be shared outside it. Addresses, host names, file paths and log text
//! become `addr-1`, `host-1`, `/path-1`, `log-1`: the same value is the same token everywhere
//! in the document (a connection's peer and the log line that names it stay matched), and the
//! findings' sentences have the values they quote replaced too.
//!
//! Kept: loopback and unspecified addresses (they name no machine), the kernel's own paths
//! (/proc, /sys, /dev), process and thread names, numbers and states: what a reader needs to
//! follow the diagnosis.

use std::collections::HashMap;

use hangscope_model::Document;
use serde_json::Value;

/// Keys whose string is an address.
const ADDRESS_KEYS: &[&str] = &["addr", "client_addr", "peer_addr", "remote_addr"];
/// Keys whose string is a host name.
const HOST_KEYS: &[&str] = &["hostname", "host"];
/// Keys whose string is text a log line carried.
const LOG_KEYS: &[&str] = &["message", "time_text"];
/// Keys whose string is a peer written as "address:port" (logs' peers, peer attempts).
const PEER_KEYS: &[&str] = &["peer", "peers", "connection"];
/// Sentences hangscope wrote, which quote the values above.
const SENTENCE_KEYS: &[&str] = &[
    "summary",
    "next_step",
    "value",
    "ruled_out",
    "detail",
    "source",
    "reason",
    "notes",
    "query",
];

pub fn redact(doc: &Document) -> Result<Document, String> {
    let mut v = serde_json::to_value(doc).map_err(|e| e.to_string())?;
    let mut tokens = Tokens::default();
    // Structured values first, so sentences can be rewritten with every value known.
    collect(&mut v, "", &mut tokens);
    let mut subs: Vec<(String, String)> = tokens.map.into_iter().collect();
    // Longest first: "10.0.0.10" before "10.0.0.1".
    subs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    rewrite(&mut v, "", &subs);
    serde_json::from_value(v).map_err(|e| e.to_string())
}

#[derive(Default)]
struct Tokens {
    map: HashMap<String, String>,
    counts: HashMap<&'static str, usize>,
}

impl Tokens {
    fn token(&mut self, kind: &'static str, value: &str) -> String {
        if let Some(t) = self.map.get(value) {
            return t.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let t = if kind == "path" {
            format!("/path-{n}")
        } else {
            format!("{kind}-{n}")
        };
        self.map.insert(value.to_string(), t.clone());
        t
    }
}

fn kept_address(a: &str) -> bool {
    a.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
        || a.is_empty()
}

/// A path worth hiding: absolute, and not one of the kernel's own.
fn private_path(s: &str) -> bool {
    s.starts_with('/')
        && !["/proc/", "/sys/", "/dev/"]
            .iter()
            .any(|p| s.starts_with(p))
        && s != "/"
}

/// "10.0.0.1:80", "[fd00::1]:80" → the address part.
fn address_of_peer(s: &str) -> Option<&str> {
    let (addr, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    addr.parse::<std::net::IpAddr>().ok().map(|_| addr)
}

/// Replaces structured values by their tokens, remembering each.
fn collect(v: &mut Value, key: &str, t: &mut Tokens) {
    match v {
        Value::String(s) => {
            if ADDRESS_KEYS.contains(&key) && !kept_address(s) {
                *s = t.token("addr", s);
            } else if HOST_KEYS.contains(&key) && !s.is_empty() {
                *s = t.token("host", s);
            } else if LOG_KEYS.contains(&key) && !s.is_empty() {
                *s = t.token("log", s);
            } else if PEER_KEYS.contains(&key) {
                if let Some(a) = address_of_peer(s).filter(|a| !kept_address(a)) {
                    let token = t.token("addr", a);
                    *s = s.replace(a, &token);
                }
            } else if private_path(s) && !SENTENCE_KEYS.contains(&key) {
                *s = t.token("path", s);
            }
        }
        // Text that was not UTF-8: its bytes go with it.
        Value::Object(o) if o.contains_key("hex") && (LOG_KEYS.contains(&key) || is_path(o)) => {
            let lossy = o
                .get("lossy")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let kind = if LOG_KEYS.contains(&key) {
                "log"
            } else {
                "path"
            };
            *v = Value::String(t.token(kind, &lossy));
        }
        Value::Object(o) => o.iter_mut().for_each(|(k, x)| collect(x, k, t)),
        Value::Array(a) => a.iter_mut().for_each(|x| collect(x, key, t)),
        _ => {}
    }
}

fn is_path(o: &serde_json::Map<String, Value>) -> bool {
    o.get("lossy")
        .and_then(Value::as_str)
        .is_some_and(private_path)
}

/// Rewrites every string with the values it quotes replaced: whole strings anywhere, and
/// within hangscope's sentences and the command line.
fn rewrite(v: &mut Value, key: &str, subs: &[(String, String)]) {
    match v {
        Value::String(s) => {
            if let Some((_, t)) = subs.iter().find(|(from, _)| from == s) {
                *s = t.clone();
            } else if SENTENCE_KEYS.contains(&key) || key == "cmdline" || key == "label" {
                for (from, to) in subs {
                    if s.contains(from.as_str()) {
                        *s = s.replace(from.as_str(), to);
                    }
                }
            }
        }
        Value::Object(o) => o.iter_mut().for_each(|(k, x)| rewrite(x, k, subs)),
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, key, subs)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_and_reach_the_sentences() {
        let v = serde_json::json!({
            "schema_version": hangscope_model::SCHEMA_VERSION,
            "snapshot": {
                "host": { "hostname": "db7.corp.example" },
                "process": { "pid": 9, "name": "metad", "cmdline": ["metad", "--conf", "/etc/zbs/m.conf"] },
                "fds": [{ "fd": 3, "kind": "regular", "target": "/srv/zbs/data" },
                        { "fd": 4, "kind": "regular", "target": "/proc/9/status" }],
                "sockets": [{ "inode": 8, "fds": [5], "family": "inet", "source": "sock_diag",
                    "detail": { "type": "tcp", "state": "ESTAB",
                        "local": { "addr": "127.0.0.1", "port": 1 },
                        "peer": { "addr": "10.0.130.72", "port": 10100 } } }],
                "logs": [{ "path": "/var/log/zbs/metad.log", "entries": [
                    { "time_text": "0917 05:25:17", "message": "secret order 42 to 10.0.130.72:10100",
                      "peers": ["10.0.130.72:10100"] }] }]
            },
            "findings": [{ "severity": "cause", "cause": "peer_silent",
                "summary": "Thread 7 waits for 10.0.130.72:10100, reading /srv/zbs/data.",
                "next_step": "Look at 10.0.130.72.", "subject": { "connection": "10.0.130.72:10100" } }]
        });
        let doc = Document::from_json(&v.to_string()).unwrap();
        let r = redact(&doc).unwrap();
        let text = serde_json::to_string(&r).unwrap();
        for secret in [
            "db7",
            "10.0.130.72",
            "/srv/zbs",
            "/var/log",
            "secret order",
            "/etc/zbs",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(r.snapshot.host.hostname, "host-1");
        assert_eq!(r.snapshot.fds[0].target.to_string(), "/path-1");
        assert_eq!(r.snapshot.fds[1].target.to_string(), "/proc/9/status");
        assert_eq!(
            r.findings[0].summary,
            "Thread 7 waits for addr-1:10100, reading /path-1."
        );
        assert_eq!(r.findings[0].next_step, "Look at addr-1.");
        assert!(
            text.contains(r#""addr":"127.0.0.1""#),
            "loopback kept: {text}"
        );
        assert_eq!(r.snapshot.logs[0].entries[0].peers, vec!["addr-1:10100"]);
        // The same input gives the same tokens.
        assert_eq!(serde_json::to_string(&redact(&doc).unwrap()).unwrap(), text);
    }
}
