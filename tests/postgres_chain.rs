//! PostgreSQL's own edges, on a real server: session A (psql over TCP) updates a row in an open
//! transaction and sends nothing more; session B updates the same row and waits. hangscope on
//! B's backend names A's backend as the lock's holder; on A's backend, that it is idle in
//! transaction and that its client is A's psql process on this host. With
//! `--no-app-introspection` the server is not asked at all. The healthy twins — an idle
//! session, an open transaction that blocks nobody — get no cause.
//!
//! Skipped (with a note) when PostgreSQL is not installed; CI installs the `postgresql`
//! package.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::pg_cluster::Cluster;
use support::*;

/// The findings of a rule.
fn by_rule<'a>(doc: &'a Value, rule: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn verdict(doc: &Value) -> String {
    doc["verdict"]["summary"].as_str().unwrap_or("").to_string()
}

/// How many times hangscope connected, from the server's log (log_connections).
fn hangscope_connections(c: &Cluster) -> usize {
    c.log().matches("application_name=hangscope").count()
}

#[test]
fn a_row_lock_chain_is_followed_from_the_waiter_to_the_holder_to_its_client() {
    let Some(c) = Cluster::start("pg-chain") else {
        return;
    };
    // A is fed by a process of its own (sh, then sleep), so the chain's end is not the test.
    let a = c.session_fed("BEGIN; UPDATE t SET v = v + 1 WHERE id = 1;");
    let feeder = a.feeder().expect("A's feeder");
    let mut b = c.session_tcp();
    let a_state = format!(
        "SELECT state FROM pg_stat_activity WHERE pid = {}",
        a.backend()
    );
    assert!(
        c.wait_for(&a_state, "idle in transaction", Duration::from_secs(20)),
        "A did not go idle in transaction"
    );
    b.send("UPDATE t SET v = v + 1 WHERE id = 1;");
    // B waits for A's transaction, for more than a second: pg_locks' waitstart says so.
    let b_wait = format!(
        "SELECT wait_event_type = 'Lock' AND (SELECT clock_timestamp() - waitstart > '1.2 s' \
         FROM pg_locks WHERE pid = {0} AND NOT granted LIMIT 1) FROM pg_stat_activity \
         WHERE pid = {0}",
        b.backend()
    );
    assert!(
        c.wait_for(&b_wait, "t", Duration::from_secs(20)),
        "B did not wait for the lock"
    );

    // The waiter: the lock, held by A's backend, where to look next.
    let doc = inspect_json(b.backend(), &["--window", "500ms"]);
    let v = verdict(&doc);
    eprintln!("verdict on B's backend {}: {v}", b.backend());
    assert_eq!(doc["verdict"]["rule"], "pg_lock_wait", "{v}");
    assert_eq!(doc["verdict"]["cause_found"], true);
    let f = by_rule(&doc, "pg_lock_wait")[0];
    assert_eq!(f["severity"], "cause");
    assert_eq!(f["facts"]["backend"]["pid"], b.backend());
    assert_eq!(f["facts"]["holder"]["pid"], a.backend());
    assert_eq!(f["facts"]["holder"]["state"], "idle in transaction");
    assert_eq!(f["facts"]["lock"]["relation"], "t");
    assert_eq!(f["next"]["kind"], "process");
    assert_eq!(f["next"]["pid"], a.backend());
    assert!(
        v.contains(&format!("held by backend {}", a.backend())),
        "{v}"
    );
    // The server's own view is in the snapshot, without hangscope's session.
    let app = &doc["snapshot"]["app"];
    assert_eq!(app["kind"], "postgres");
    assert_eq!(app["server"]["postmaster_pid"], c.postmaster());
    assert_eq!(app["server"]["port"], c.port);
    let backends = app["backends"].as_array().expect("backends");
    assert!(
        backends
            .iter()
            .all(|x| x["application_name"] != "hangscope"),
        "{backends:?}"
    );
    // No pipe wait on the postmaster-death pipe stands in for the real wait.
    assert!(
        by_rule(&doc, "pipe_wait").is_empty(),
        "{:#}",
        doc["findings"]
    );

    // The holder: idle in transaction, blocking B, its client A's psql on this host.
    let doc = inspect_json(a.backend(), &["--window", "500ms"]);
    let v = verdict(&doc);
    eprintln!("verdict on A's backend {}: {v}", a.backend());
    assert_eq!(doc["verdict"]["rule"], "pg_idle_in_transaction", "{v}");
    let f = by_rule(&doc, "pg_idle_in_transaction")[0];
    assert_eq!(f["severity"], "cause");
    assert_eq!(f["facts"]["blocks"], serde_json::json!([b.backend()]));
    assert_eq!(f["facts"]["client"]["kind"], "process");
    assert_eq!(f["facts"]["client"]["pid"], a.pid());
    assert_eq!(f["next"]["pid"], a.pid());
    assert!(
        f["next_step"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("pg_terminate_backend({})", a.backend())),
        "{}",
        f["next_step"]
    );

    // The clients: B's psql waits on its backend (the client-side hop, which peer_silent
    // makes), A's psql reads the pipe its feeder never writes again.
    for (who, pid) in [("B's psql", b.pid()), ("A's psql", a.pid())] {
        // The chain reads five processes in full within one deadline; on a loaded 2-core
        // machine the default one ran out at the last hop, and the deadline's own behaviour
        // is tested elsewhere, so this test asks for a longer one.
        let doc = inspect_json(pid, &["--window", "500ms", "--deadline", "20s"]);
        eprintln!("verdict on {who} {pid}: {}", verdict(&doc));
        if pid == b.pid() {
            // The chain walked from B's client: its backend, the backend holding the row,
            // that backend's client, and the process feeding that client, idle in sleep: the
            // end of the chain.
            let hops: Vec<i64> = doc["chain"]["hops"]
                .as_array()
                .map(|h| h.iter().filter_map(|x| x["pid"].as_i64()).collect())
                .unwrap_or_default();
            let want: Vec<i64> = [b.pid(), b.backend(), a.backend(), a.pid(), feeder]
                .iter()
                .map(|&p| i64::from(p))
                .collect();
            assert_eq!(hops, want, "{:#}", doc["chain"]);
            assert_eq!(doc["chain"]["end"]["kind"], "root", "{:#}", doc["chain"]);
            assert_eq!(doc["chain"]["end"]["idle"], true, "{:#}", doc["chain"]);
            assert_eq!(
                doc["verdict"]["root"]["pid"], feeder,
                "{:#}",
                doc["verdict"]
            );
        }
    }

    // The postmaster sees both, the holder first (the root of the wait).
    let doc = inspect_json(c.postmaster(), &["--window", "0"]);
    eprintln!(
        "verdict on the postmaster {}: {}",
        c.postmaster(),
        verdict(&doc)
    );
    assert_eq!(doc["verdict"]["rule"], "pg_idle_in_transaction");
    assert_eq!(by_rule(&doc, "pg_lock_wait").len(), 1);

    // Opted out: no view, a gap that says so, and no connection at all.
    let before = hangscope_connections(&c);
    assert!(
        before >= 3,
        "hangscope's connections not logged: {}",
        c.log()
    );
    let doc = inspect_json(b.backend(), &["--window", "0", "--no-app-introspection"]);
    eprintln!(
        "verdict on B's backend, --no-app-introspection: {}",
        verdict(&doc)
    );
    assert!(
        doc["snapshot"].get("app").is_none(),
        "{:#}",
        doc["snapshot"]["app"]
    );
    let gaps = doc["snapshot"]["gaps"].as_array().expect("gaps");
    assert!(
        gaps.iter()
            .any(|g| g["reason"] == "skipped"
                && g["what"].as_str().unwrap_or("").contains("PostgreSQL")),
        "{gaps:?}"
    );
    assert!(by_rule(&doc, "pg_lock_wait").is_empty());
    // The server logs a connection as it authorizes it: give a late one time to show.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        hangscope_connections(&c),
        before,
        "hangscope connected anyway"
    );
}

#[test]
fn an_idle_session_and_an_open_transaction_blocking_nobody_are_not_causes() {
    let Some(c) = Cluster::start("pg-healthy") else {
        return;
    };
    let mut idle = c.session_tcp();
    idle.send("SELECT 1;");
    let mut open = c.session_tcp();
    open.send("BEGIN; UPDATE t SET v = v + 1 WHERE id = 2;");
    let state = |pid: i32| format!("SELECT state FROM pg_stat_activity WHERE pid = {pid}");
    assert!(c.wait_for(&state(idle.backend()), "idle", Duration::from_secs(20)));
    assert!(c.wait_for(
        &state(open.backend()),
        "idle in transaction",
        Duration::from_secs(20)
    ));
    // Long enough that a wait would count, and that the backend's last answer to its client
    // is seconds old (read as a request nobody answers if its connection is not known as
    // inbound: its port is the postmaster's, an ephemeral one here).
    std::thread::sleep(Duration::from_millis(2000));

    let doc = inspect_json(idle.backend(), &["--window", "500ms"]);
    eprintln!(
        "verdict on an idle backend {}: {}",
        idle.backend(),
        verdict(&doc)
    );
    assert_eq!(
        doc["verdict"]["cause_found"], false,
        "{:#}",
        doc["findings"]
    );
    assert!(
        doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|f| !f["rule"].as_str().unwrap_or("").starts_with("pg_"))
    );
    // The view was read: the healthy answer is not for want of asking.
    assert_eq!(doc["snapshot"]["app"]["kind"], "postgres");

    let doc = inspect_json(open.backend(), &["--window", "500ms"]);
    eprintln!(
        "verdict on an idle-in-transaction backend blocking nobody {}: {}",
        open.backend(),
        verdict(&doc)
    );
    assert_eq!(
        doc["verdict"]["cause_found"], false,
        "{:#}",
        doc["findings"]
    );
    let f = by_rule(&doc, "pg_idle_in_transaction");
    assert_eq!(f.len(), 1, "{:#}", doc["findings"]);
    assert_eq!(f[0]["severity"], "info");
    assert_eq!(f[0]["facts"]["client"]["pid"], open.pid());

    // The postmaster of a healthy server: nothing stuck.
    let doc = inspect_json(c.postmaster(), &["--window", "0"]);
    eprintln!(
        "verdict on a healthy postmaster {}: {}",
        c.postmaster(),
        verdict(&doc)
    );
    assert_eq!(
        doc["verdict"]["cause_found"], false,
        "{:#}",
        doc["findings"]
    );
}

/// A process that looks like a postmaster (an executable named `postgres` with a listening
/// `.s.PGSQL.PORT` socket) but never answers: psql is killed at its time limit, the gap says
/// so, the run stays within its bound, and no psql is left behind.
#[test]
fn a_server_that_never_answers_is_a_gap_within_the_limit() {
    let Some(bin) = ["/usr/lib/postgresql"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .find(|b| b.join("psql").is_file())
    else {
        eprintln!("skipped: PostgreSQL's psql is not installed");
        return;
    };
    let dir = TempDir::new("pg-silent");
    let fake = format!("{}/postgres", dir.path());
    std::fs::copy("/usr/bin/python3", &fake).expect("copy python3 as postgres");
    std::os::unix::fs::symlink(bin.join("psql"), format!("{}/psql", dir.path()))
        .expect("psql beside it");
    let script = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.bind(sys.argv[1] + '/.s.PGSQL.5999')\n\
        s.listen(8)\n\
        print('ready', flush=True)\n\
        held = []\n\
        while True:\n    held.append(s.accept())\n";
    let mut server = Killed(
        std::process::Command::new(&fake)
            .args(["-c", script, dir.path()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the silent server"),
    );
    let server = &mut server.0;
    let mut ready = String::new();
    let out = server.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut ready).expect("ready");
    assert_eq!(ready.trim(), "ready");
    let pid = server.id() as i32;

    let started = std::time::Instant::now();
    let doc = inspect_json(pid, &["--window", "0"]);
    let took = started.elapsed();
    eprintln!("verdict on a silent fake postmaster: {}", verdict(&doc));
    let gaps = doc["snapshot"]["gaps"].as_array().expect("gaps");
    let gap = gaps
        .iter()
        .find(|g| g["what"].as_str().unwrap_or("").contains("PostgreSQL"))
        .unwrap_or_else(|| panic!("no PostgreSQL gap: {gaps:?}"));
    assert!(
        gap["detail"]
            .as_str()
            .unwrap_or("")
            .contains("did not answer within 1.5 s and was killed"),
        "{gap}"
    );
    assert!(doc["snapshot"].get("app").is_none());
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // The psql it started is gone (killed and reaped), not left connected.
    let psql_left = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("psql") && c.contains(dir.path())
            })
    };
    assert!(
        wait_until(Duration::from_secs(2), || !psql_left()),
        "psql left behind"
    );

    // hangscope killed while psql waits: psql goes with it (its parent-death signal).
    let mut run = Killed(
        std::process::Command::new(HANGSCOPE)
            .args([&pid.to_string(), "--window", "0", "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start hangscope"),
    );
    assert!(
        wait_until(Duration::from_secs(5), psql_left),
        "hangscope started no psql"
    );
    // Our own child, by its PID.
    let _ = run.0.kill();
    let _ = run.0.wait();
    // Sooner than its own connect timeout (2 s) would end it.
    assert!(
        wait_until(Duration::from_millis(1000), || !psql_left()),
        "psql outlived hangscope"
    );
}

/// A child of this test, killed by its PID and reaped when dropped, also when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server is asked only as its own OS user, and a refusal is a gap quoting it: a cluster
/// whose pg_hba.conf rejects its unix socket, and hangscope run as uid 65534 with
/// CAP_SYS_PTRACE (it sees a postmaster, but cannot ask as the server's user, so does not ask).
#[test]
fn a_refused_or_unprivileged_ask_is_a_gap_and_no_connection() {
    let Some(c) = Cluster::start_refusing_local("pg-refused") else {
        return;
    };
    let gap_of = |doc: &Value| {
        doc["snapshot"]["gaps"]
            .as_array()
            .expect("gaps")
            .iter()
            .find(|g| g["what"].as_str().unwrap_or("").contains("PostgreSQL"))
            .cloned()
            .unwrap_or_else(|| panic!("no PostgreSQL gap: {:#}", doc["snapshot"]["gaps"]))
    };
    let doc = inspect_json(c.postmaster(), &["--window", "0"]);
    eprintln!(
        "verdict on a postmaster refusing its socket: {}",
        verdict(&doc)
    );
    let gap = gap_of(&doc);
    assert_eq!(gap["reason"], "permission", "{gap}");
    assert!(
        gap["detail"]
            .as_str()
            .unwrap_or("")
            .contains("pg_hba.conf rejects connection"),
        "{gap}"
    );
    assert!(doc["snapshot"].get("app").is_none());

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot run hangscope as another user");
        return;
    }
    let before = c.log().matches("connection received").count();
    let bin = PublicBinary::new();
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+sys_ptrace",
            "--ambient-caps=+sys_ptrace",
        ])
        .arg(bin.path())
        .args([&c.postmaster().to_string(), "--json", "--window", "0"])
        .output()
        .expect("setpriv (util-linux) runs");
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    eprintln!(
        "verdict on a postmaster, hangscope as uid 65534: {}",
        verdict(&doc)
    );
    // With CAP_SYS_PTRACE its executable says PostgreSQL, but psql could only run as uid
    // 65534, not as the server's user: not asked.
    let gap = gap_of(&doc);
    assert_eq!(gap["reason"], "permission", "{gap}");
    assert!(
        gap["detail"].as_str().unwrap_or("").contains("not asked"),
        "{gap}"
    );
    assert!(doc["snapshot"].get("app").is_none());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.log().matches("connection received").count(),
        before,
        "hangscope connected as uid 65534"
    );
}

/// A server whose socket directory is a mount only its own mount namespace has: it is asked
/// through /proc/PM/root, on the postmaster and on a backend.
#[test]
fn a_server_in_another_mount_namespace_is_asked_through_its_root() {
    let Some(c) = Cluster::start_in_private_mount_ns("pg-mntns") else {
        return;
    };
    let socket = format!("{}/.s.PGSQL.{}", c.socket_dir(), c.port);
    assert!(
        !std::path::Path::new(&socket).exists(),
        "{socket} is visible here: the namespace is not private"
    );
    let doc = inspect_json(c.postmaster(), &["--window", "0"]);
    eprintln!(
        "verdict on a postmaster in its own mount namespace: {}",
        verdict(&doc)
    );
    let app = &doc["snapshot"]["app"];
    assert_eq!(app["kind"], "postgres", "{:#}", doc["snapshot"]["gaps"]);
    assert_eq!(app["server"]["socket_dir"], c.socket_dir());
    let mut s = c.session_tcp();
    s.send("SELECT 1;");
    let doc = inspect_json(s.backend(), &["--window", "0"]);
    let app = &doc["snapshot"]["app"];
    assert_eq!(app["server"]["postmaster_pid"], c.postmaster());
    assert!(
        app["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .any(|b| b["pid"] == s.backend()),
        "{app:#}"
    );
}

/// The holder's client over the unix socket: the process at the other end of the backend's
/// unix connection.
#[test]
fn a_holder_over_the_unix_socket_names_its_client_process() {
    let Some(c) = Cluster::start("pg-unix") else {
        return;
    };
    let mut a = c.session_unix();
    let mut b = c.session_tcp();
    a.send("BEGIN; UPDATE t SET v = v + 1 WHERE id = 1;");
    let a_state = format!(
        "SELECT state FROM pg_stat_activity WHERE pid = {}",
        a.backend()
    );
    assert!(c.wait_for(&a_state, "idle in transaction", Duration::from_secs(20)));
    b.send("UPDATE t SET v = v + 1 WHERE id = 1;");
    let b_wait = format!(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = {}",
        b.backend()
    );
    assert!(c.wait_for(&b_wait, "Lock", Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(1100));
    let doc = inspect_json(a.backend(), &["--window", "0"]);
    eprintln!(
        "verdict on A's backend, a unix-socket client: {}",
        verdict(&doc)
    );
    let f = by_rule(&doc, "pg_idle_in_transaction");
    assert_eq!(f.len(), 1, "{:#}", doc["findings"]);
    assert_eq!(f[0]["severity"], "cause");
    assert_eq!(
        f[0]["facts"]["client"]["kind"], "process",
        "{:#}",
        f[0]["facts"]
    );
    assert_eq!(f[0]["facts"]["client"]["pid"], a.pid());
    assert_eq!(f[0]["facts"]["client"]["address"], "local");
    assert_eq!(f[0]["next"]["pid"], a.pid());
}
