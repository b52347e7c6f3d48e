//! MariaDB row-lock chains on a real server (mariadbd 10.11 in a temp data directory): a
//! client's UPDATE waits for a row another session updated and left idle in its transaction.
//! hangscope on the server names the blocking connection and its client process; from the
//! waiting client the chain goes through the server to the holder's client and on to what
//! that client waits for. The healthy twin commits: no cause.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::mariadb::Server;
use support::*;

fn by_rule<'a>(doc: &'a Value, rule: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .map(|fs| fs.iter().filter(|f| f["rule"] == rule).collect())
        .unwrap_or_default()
}

fn verdict(doc: &Value) -> String {
    doc["verdict"]["summary"].as_str().unwrap_or("").to_string()
}

const LOCK_WAITS: &str = "SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS";

#[test]
fn a_row_lock_chain_names_the_idle_holder_and_its_client_process() {
    let Some(db) = Server::start("mariadb-chain") else {
        return;
    };
    let holder = db.session(
        "BEGIN; UPDATE ledger SET v = v + 1 WHERE id = 1; SELECT CONCAT('held ', CONNECTION_ID());",
    );
    let held = holder.line(Duration::from_secs(20));
    let holder_id: u64 = held
        .strip_prefix("held ")
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("not a connection id: {held:?}"));
    let waiter = db.command("UPDATE ledger SET v = v + 1 WHERE id = 1");
    if !db.wait_for(LOCK_WAITS, "1", Duration::from_secs(20)) {
        // Say what the waiter and the server were doing, for the next look. (It once failed
        // here in one run of three: the poll read INNODB_LOCK_WAITS more often than InnoDB
        // refreshes it; see `Server::wait_for`.)
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", waiter.pid()));
        let sessions =
            db.sql("SELECT ID, COMMAND, TIME, STATE, INFO FROM information_schema.PROCESSLIST");
        let waits = db.sql(LOCK_WAITS);
        let trx = db.sql(
            "SELECT trx_id, trx_state, trx_mysql_thread_id FROM information_schema.INNODB_TRX",
        );
        panic!(
            "the UPDATE did not wait for the row lock; the waiting client's stat: {stat:?}; \
             the server's sessions:\n{sessions}lock waits: {waits:?}; transactions:\n{trx}"
        );
    }
    std::thread::sleep(Duration::from_millis(1300));

    // The server: the waiting connection, the idle holder and its client on this host.
    let doc = inspect_json(db.pid(), &["--window", "500ms"]);
    let v = verdict(&doc);
    eprintln!("verdict on mariadbd {}: {v}", db.pid());
    assert_eq!(doc["verdict"]["rule"], "mariadb_lock_wait", "{v}");
    assert_eq!(doc["verdict"]["cause_found"], true);
    let f = by_rule(&doc, "mariadb_lock_wait")[0];
    assert_eq!(f["cause"], "idle_in_transaction");
    assert_eq!(f["facts"]["holder"]["id"], holder_id);
    assert_eq!(f["facts"]["holder"]["idle_in_transaction"], true);
    assert_eq!(f["facts"]["table"], "`hs`.`ledger`");
    assert_eq!(f["facts"]["client"]["kind"], "process");
    assert_eq!(f["facts"]["client"]["pid"], holder.client.pid());
    assert_eq!(f["next"]["pid"], holder.client.pid());
    assert!(
        v.contains(&format!("held by connection {holder_id}")),
        "{v}"
    );
    assert!(
        v.contains(&format!(
            "its client is process {} (mariadb)",
            holder.client.pid()
        )),
        "{v}"
    );
    assert!(
        f["next_step"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("KILL {holder_id}")),
        "{}",
        f["next_step"]
    );
    // The waiting connection's TID is a thread of the server.
    let tid = f["facts"]["waiter"]["tid"]
        .as_i64()
        .expect("the waiter's TID");
    assert!(
        std::path::Path::new(&format!("/proc/{}/task/{tid}", db.pid())).exists(),
        "TID {tid} is not a thread of mariadbd"
    );
    let app = &doc["snapshot"]["app"];
    assert_eq!(app["kind"], "mariadb", "{app:#}");
    assert_eq!(app["server"]["pid"], db.pid());

    // From the waiting client: its server, the holder's client, and that client's stdin
    // writer, idle (sleep): the end of the chain.
    let doc = inspect_json(waiter.pid(), &["--window", "500ms"]);
    eprintln!(
        "verdict on the waiting mariadb {}: {}",
        waiter.pid(),
        verdict(&doc)
    );
    let hops: Vec<i64> = doc["chain"]["hops"]
        .as_array()
        .map(|h| h.iter().filter_map(|x| x["pid"].as_i64()).collect())
        .unwrap_or_default();
    let want: Vec<i64> = [
        waiter.pid(),
        db.pid(),
        holder.client.pid(),
        holder.feeder.pid(),
    ]
    .iter()
    .map(|&p| i64::from(p))
    .collect();
    assert_eq!(hops, want, "{:#}", doc["chain"]);
    assert_eq!(doc["chain"]["end"]["kind"], "root", "{:#}", doc["chain"]);
    assert_eq!(doc["chain"]["end"]["idle"], true, "{:#}", doc["chain"]);
    assert_eq!(doc["chain"]["hops"][1]["rule"], "mariadb_lock_wait");

    // Opted out: no view, a gap that says so.
    let doc = inspect_json(db.pid(), &["--window", "0", "--no-app-introspection"]);
    assert!(
        doc["snapshot"].get("app").is_none(),
        "{:#}",
        doc["snapshot"]["app"]
    );
    let gaps = doc["snapshot"]["gaps"].as_array().expect("gaps");
    assert!(
        gaps.iter()
            .any(|g| g["reason"] == "skipped"
                && g["what"].as_str().unwrap_or("").contains("MariaDB")),
        "{gaps:?}"
    );
    assert!(by_rule(&doc, "mariadb_lock_wait").is_empty());
}

/// The twin: the holder commits, the UPDATE goes through; the server has nothing to say, and
/// an open transaction blocking nobody is not a cause either.
#[test]
fn a_committed_holder_leaves_no_cause() {
    let Some(db) = Server::start("mariadb-healthy") else {
        return;
    };
    let holder = db.session(
        "BEGIN; UPDATE ledger SET v = v + 1 WHERE id = 1; COMMIT; \
         BEGIN; UPDATE ledger SET v = v + 1 WHERE id = 2; SELECT 'done';",
    );
    assert_eq!(holder.line(Duration::from_secs(20)), "done");
    let mut waiter = db.command("UPDATE ledger SET v = v + 1 WHERE id = 1");
    let finished = wait_until(Duration::from_secs(20), || {
        matches!(waiter.0.try_wait(), Ok(Some(_)))
    });
    assert!(finished, "the UPDATE did not go through");
    std::thread::sleep(Duration::from_millis(1300));
    let doc = inspect_json(db.pid(), &["--window", "500ms"]);
    eprintln!(
        "verdict on mariadbd {} (committed): {}",
        db.pid(),
        verdict(&doc)
    );
    assert_eq!(
        doc["verdict"]["cause_found"], false,
        "{:#}",
        doc["findings"]
    );
    assert!(by_rule(&doc, "mariadb_lock_wait").is_empty());
    assert_eq!(doc["snapshot"]["app"]["kind"], "mariadb");
}
