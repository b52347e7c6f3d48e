//! Debian's PostgreSQL and psql, over TCP on loopback (tests/support/pg_cluster.rs): a client
//! waiting on a query blocked by a row lock, a client waiting on a long query, and their
//! healthy twin, an idle session. Run on the client and on the backend that serves it.
//!
//! The cluster listens on a port the kernel picked, so in the ephemeral range, as the psql
//! clients' ports are: which end accepted the connection must come from the listener, not
//! from the port numbers.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::pg_cluster::{Backend, Cluster, Session};
use support::*;

/// Long enough for a wait to be stuck (1 s), with the window on top.
const STUCK: Duration = Duration::from_millis(1300);
const WINDOW: [&str; 2] = ["--window", "1s"];

/// A psql -c whose query goes out the millisecond the server's "ready for query" comes, which
/// is what makes the two ages tie; a query that crossed a clock tick (HZ=250: 4 ms) does not,
/// so a few are tried.
const TIE_TRIES: usize = 6;

fn verdict(doc: &Value) -> String {
    doc["verdict"]["summary"].as_str().unwrap_or("").to_string()
}

/// The first sentence of the verdict, as the report records it.
fn first_sentence(doc: &Value) -> String {
    let v = verdict(doc);
    match v.find(". ") {
        Some(i) => v[..=i].to_string(),
        None => v,
    }
}

fn findings_of<'a>(doc: &'a Value, rule: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn ephemeral_range() -> (u16, u16) {
    let t = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut w = t.split_whitespace().map(|x| x.parse().unwrap_or(0));
    (w.next().unwrap_or(32768), w.next().unwrap_or(60999))
}

/// A table with one row, and a session holding that row's lock in an open transaction.
fn row_locked(pg: &Cluster) -> Session {
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0);");
    let mut holder = pg.session_named("holder");
    holder.run("BEGIN; UPDATE t SET v = v + 1 WHERE id = 1;");
    holder
}

fn waits_on_lock(b: &Backend) -> bool {
    b.wait_event_type == "Lock"
}

#[test]
fn a_client_waiting_on_a_row_lock_is_told_the_server_read_its_query() {
    let Some(pg) = Cluster::start_empty("lock") else {
        return;
    };
    let (lo, hi) = ephemeral_range();
    assert!(
        (lo..=hi).contains(&pg.port),
        "the server should listen in the ephemeral range: {}",
        pg.port
    );
    let holder = row_locked(&pg);
    let holder_backend = pg.backend(&holder, |b| b.state == "idle in transaction");
    let mut tied = None;
    for attempt in 1..=TIE_TRIES {
        let waiter = pg.command(
            &format!("waiter{attempt}"),
            "UPDATE t SET v = v + 1 WHERE id = 1;",
        );
        let backend = pg.backend(&waiter, waits_on_lock);
        std::thread::sleep(STUCK);
        let (code, doc) = inspect(waiter.pid(), &WINDOW);
        let top = causes(&doc)
            .first()
            .copied()
            .cloned()
            .unwrap_or_else(|| panic!("no cause for psql on a row lock: {}", verdict(&doc)));
        assert_eq!(code, 1, "a cause is exit 1");
        assert_eq!(top["rule"], "peer_silent", "{}", verdict(&doc));
        assert_eq!(top["subject"]["tid"], waiter.pid());
        // The other end is named: the backend on this host, which read the whole query.
        assert_eq!(top["next"]["pid"], backend.pid, "{top:#}");
        let end = &top["facts"]["conn"]["other_end"];
        assert_eq!(end["holder"]["pid"], backend.pid, "{end:#}");
        assert_eq!(end["recv_q"], 0, "{end:#}");
        assert!(
            verdict(&doc).contains(&format!("process {} (postgres)", backend.pid)),
            "{}",
            verdict(&doc)
        );
        let by = top["facts"]["last_word"]["by"]
            .as_str()
            .unwrap_or("")
            .to_string();
        eprintln!(
            "psql on a row lock (attempt {attempt}, decided by {by}): {}",
            first_sentence(&doc)
        );

        // The backend: the request it read and has not answered, not a client's request
        // of its own to psql (both ports are in the ephemeral range).
        let (_, bdoc) = inspect(backend.pid, &WINDOW);
        eprintln!("its backend: {}", first_sentence(&bdoc));
        assert!(
            findings_of(&bdoc, "peer_silent").is_empty(),
            "the backend was taken for a client: {}",
            verdict(&bdoc)
        );
        let owed = findings_of(&bdoc, "unanswered");
        let owed = owed.first().unwrap_or_else(|| {
            panic!(
                "the backend's unanswered query is not named: {}",
                verdict(&bdoc)
            )
        });
        assert_eq!(
            owed["facts"]["requests"][0]["conn"]["other_end"]["holder"]["pid"],
            waiter.pid(),
            "{owed:#}"
        );
        if by == "bare_ack" {
            let e = top["evidence"]
                .as_array()
                .and_then(|ev| ev.iter().find(|e| e["label"] == "last word"))
                .unwrap_or_else(|| panic!("no evidence of how the tie was told: {top:#}"));
            assert!(
                e["value"]
                    .as_str()
                    .is_some_and(|v| v.contains("an ACK with no data")),
                "{e:#}"
            );
            tied = Some(attempt);
            break;
        }
        assert_eq!(by, "ages", "{top:#}");
    }
    assert!(
        tied.is_some(),
        "in {TIE_TRIES} tries, no query went out in the millisecond of \"ready for query\""
    );
    drop(holder_backend);
    drop(holder);
}

#[test]
fn an_idle_session_and_its_backend_have_no_cause() {
    let Some(pg) = Cluster::start_empty("idle") else {
        return;
    };
    let mut idle = pg.session_named("idle");
    // The last answer goes out strictly after the query came, so the backend's own ages say
    // it spoke last: a connection it had opened would be "a request with no reply".
    idle.run("SELECT pg_sleep(0.1);");
    let backend = pg.backend(&idle, |b| b.state == "idle");
    std::thread::sleep(STUCK);

    let (code, doc) = inspect(idle.pid(), &WINDOW);
    eprintln!("idle psql: {}", first_sentence(&doc));
    assert_eq!(doc["verdict"]["cause_found"], false, "{}", verdict(&doc));
    assert_eq!(code, 0);

    let (_, bdoc) = inspect(backend.pid, &WINDOW);
    eprintln!("its idle backend: {}", first_sentence(&bdoc));
    assert!(
        findings_of(&bdoc, "peer_silent").is_empty(),
        "an idle backend was taken for a client waiting on psql: {}",
        verdict(&bdoc)
    );
    assert!(
        findings_of(&bdoc, "unanswered").is_empty(),
        "{}",
        verdict(&bdoc)
    );
    let sock = bdoc["snapshot"]["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .find(|s| s["detail"]["type"] == "tcp" && s["detail"]["local"]["port"] == pg.port)
        .unwrap_or_else(|| panic!("the backend's connection"));
    assert_eq!(
        sock["detail"]["accepted"], true,
        "the postmaster's listener makes it accepted"
    );
}

/// A query the server works on for 30 s: from psql, the same as a lock wait (the backend read
/// it and has not answered), and named the same way, a cause: psql waits because the server
/// has not replied, and the backend is where to look; whether its work is legitimate is for the
/// operator to judge there (its backend is in a timed wait, pg_stat_activity says PgSleep).
#[test]
fn a_client_waiting_on_a_long_query_points_at_its_backend() {
    let Some(pg) = Cluster::start_empty("sleep") else {
        return;
    };
    let mut s = pg.session_named("sleeper");
    let start = Instant::now();
    s.send("SELECT pg_sleep(30);");
    let backend = pg.backend(&s, |b| b.state == "active" && b.wait_event == "PgSleep");
    std::thread::sleep(STUCK);
    let (code, doc) = inspect(s.pid(), &WINDOW);
    eprintln!("psql on pg_sleep(30): {}", first_sentence(&doc));
    assert!(
        start.elapsed() < Duration::from_secs(25),
        "the query ended before the look"
    );
    let top = causes(&doc).first().copied().cloned().expect("a cause");
    assert_eq!(code, 1);
    assert_eq!(top["rule"], "peer_silent");
    assert_eq!(top["next"]["pid"], backend.pid, "{top:#}");

    let (_, bdoc) = inspect(backend.pid, &WINDOW);
    eprintln!("its backend: {}", first_sentence(&bdoc));
    assert!(
        findings_of(&bdoc, "peer_silent").is_empty(),
        "{}",
        verdict(&bdoc)
    );
}
