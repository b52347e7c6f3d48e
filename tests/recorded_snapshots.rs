//! Snapshots recorded from the real processes of this suite (tests/fixtures/snapshots/recorded/,
//! written by `HANGSCOPE_RECORD=DIR cargo test --release --tests`, see tests/support), read back
//! as `hangscope replay` reads them and diagnosed again.
//!
//! Two checks on each: the top finding is the one the table below expects of its state (a
//! healthy twin gets no cause), and the findings' words are those recorded with it, so a change
//! to how rules are written cannot change what a report says without this test saying so. When
//! the words change on purpose, `UPDATE_RECORDED=1 cargo test --test recorded_snapshots`
//! rewrites the recorded findings (the snapshots stay as recorded).

use std::path::PathBuf;

use hangscope_diagnose::diagnose;
use hangscope_model::{
    AppView, Cause, Document, Finding, Next, Severity, Snapshot, SocketDetail, TcpState,
};
use serde_json::Value;

/// Each recorded state, and the rule and severity of its top finding that is not context
/// (`None`: no cause and no warning).
const EXPECTED: &[(&str, Option<(&str, Severity)>)] = &[
    ("a_hung_task_line_in_the_kernel_log_is_found", None),
    (
        "a_process_that_exits_during_the_window_is_no_panic",
        Some(("exited", Severity::Cause)),
    ),
    (
        "a_thread_id_puts_that_thread_first_with_its_wait_on_one_line",
        None,
    ),
    (
        "a_stopped_server_is_the_cause_and_its_client_says_so",
        Some(("stopped", Severity::Cause)),
    ),
    (
        "a_thread_stuck_in_the_kernel_on_a_hung_mount_is_the_cause",
        Some(("uninterruptible", Severity::Cause)),
    ),
    ("a_young_log_brings_its_rotated_sibling", None),
    // child_wait is context (info): the holder's wait on its child, no cause.
    (
        "a_lock_holder_waiting_on_its_child_leads_to_the_child",
        None,
    ),
    (
        "a_lookup_on_a_silent_local_resolver_leads_to_the_resolver",
        Some(("name_resolution", Severity::Cause)),
    ),
    (
        "a_row_lock_chain_names_the_idle_holder_and_its_client_process",
        Some(("mariadb_lock_wait", Severity::Cause)),
    ),
    (
        "a_python_threading_deadlock_says_cpython_and_what_would_see_it",
        Some(("managed_runtime", Severity::Cause)),
    ),
    (
        "a_waiter_for_a_robust_shared_mutex_leads_to_the_holder_process",
        Some(("shared_mutex_wait", Severity::Cause)),
    ),
    // redis_blocked is context (info): a BLPOP waits by design.
    (
        "an_idle_redis_and_a_client_blocked_in_blpop_get_no_cause",
        None,
    ),
    (
        "a_zombie_is_reported_as_exited_with_its_parent",
        Some(("exited", Severity::Cause)),
    ),
    ("busy_server-busy_echo_server_gets_no_cause", None),
    ("client_on_silent_server_and_one_of_each_kind", None),
    ("connection_in_another_network_namespace_is_found", None),
    (
        "demo-demo_explains_the_seed_and_cleans_up",
        Some(("peer_silent", Severity::Cause)),
    ),
    (
        "every_wait_is_decoded_joined_and_classified",
        Some(("peer_silent", Severity::Cause)),
    ),
    (
        "full_backlog-a_connect_to_a_server_that_does_not_accept",
        Some(("peer_unreachable", Severity::Cause)),
    ),
    (
        "full_backlog-a_request_to_a_server_that_does_not_accept",
        Some(("peer_silent", Severity::Cause)),
    ),
    ("glog_entries_land_on_the_threads_that_wrote_them", None),
    ("idle_server-idle_server_gets_no_cause", None),
    (
        "idle_server-silent_server_with_nobody_connected_gets_no_cause",
        None,
    ),
    ("json_lines_and_a_log_given_on_the_command_line", None),
    // The peer holds its end (the healthy twin), then closes it.
    (
        "peer_closed-a_connection_the_peer_closed_that_nobody_closes",
        None,
    ),
    (
        "peer_closed-a_connection_the_peer_closed_that_nobody_closes-2",
        Some(("connection_dead", Severity::Warning)),
    ),
    (
        "mutex_deadlock-a_pool_behind_a_lock_whose_owner_is_blocked",
        Some(("mutex_holder_blocked", Severity::Cause)),
    ),
    (
        "mutex_deadlock-two_threads_in_a_lock_cycle",
        Some(("mutex_deadlock", Severity::Cause)),
    ),
    (
        "pipe_wait-a_thread_reading_a_pipe_names_the_writer",
        Some(("pipe_wait", Severity::Warning)),
    ),
    ("plain_text_with_garbage_lines", None),
    ("reports_every_kind_of_fd_with_its_details", None),
    ("save_and_replay_give_the_same_report-2", None),
    ("save_and_replay_give_the_same_report", None),
    ("postgres-a_fake_server_that_never_answers", None),
    ("postgres-healthy-an_idle_backend", None),
    ("postgres-healthy-open_transaction_blocking_nobody", None),
    ("postgres-healthy-the_postmaster", None),
    ("postgres-lock_chain-no_app_introspection", None),
    (
        "postgres-lock_chain-the_idle_holder",
        Some(("pg_idle_in_transaction", Severity::Cause)),
    ),
    (
        "postgres-lock_chain-the_postmaster",
        Some(("pg_idle_in_transaction", Severity::Cause)),
    ),
    (
        "postgres-lock_chain-the_waiting_backend",
        Some(("pg_lock_wait", Severity::Cause)),
    ),
    (
        "seed_incident-silent_peer_after_failover",
        Some(("peer_silent", Severity::Cause)),
    ),
    (
        "sqlite_lock-a_writer_retrying_behind_an_open_transaction_names_the_holder_and_the_file-2",
        Some(("pipe_wait", Severity::Warning)),
    ),
    (
        "sqlite_lock-a_writer_retrying_behind_an_open_transaction_names_the_holder_and_the_file",
        Some(("lock_retry", Severity::Cause)),
    ),
    (
        "sqlite_lock-a_writer_waiting_for_a_reader_to_finish_names_the_reader-2",
        Some(("pipe_wait", Severity::Warning)),
    ),
    (
        "sqlite_lock-a_writer_waiting_for_a_reader_to_finish_names_the_reader",
        Some(("lock_retry", Severity::Cause)),
    ),
    (
        "sqlite_lock-the_writer_alone_finishes_and_an_idle_shell_beside_a_lock_is_not_a_cause-2",
        Some(("pipe_wait", Severity::Warning)),
    ),
    (
        "sqlite_lock-the_writer_alone_finishes_and_an_idle_shell_beside_a_lock_is_not_a_cause",
        Some(("pipe_wait", Severity::Warning)),
    ),
    ("the_other_end_is_found_over_ipv6_and_dual_stack-2", None),
    ("the_other_end_is_found_over_ipv6_and_dual_stack", None),
    (
        "tids_written_inside_a_pid_namespace_map_to_host_threads",
        None,
    ),
    (
        "two_processes_waiting_on_each_others_flock_are_a_cycle",
        Some(("lock_wait", Severity::Cause)),
    ),
    (
        "unanswered-a_server_that_read_a_request_and_never_answered-2",
        Some(("unanswered", Severity::Warning)),
    ),
    (
        "unanswered-a_server_that_read_a_request_and_never_answered",
        Some(("unanswered", Severity::Warning)),
    ),
    (
        "unix_peer-a_local_service_that_never_reads_the_request",
        Some(("unix_peer_wait", Severity::Cause)),
    ),
    (
        "unix_peer-a_local_service_that_read_the_request_and_never_answers",
        Some(("unix_peer_wait", Severity::Warning)),
    ),
    (
        "unix_peer-a_writer_blocked_on_a_local_service_that_never_reads",
        Some(("unix_peer_wait", Severity::Cause)),
    ),
    (
        "unix_peer-both_ends_wait_to_read",
        Some(("unix_peer_wait", Severity::Cause)),
    ),
    (
        "unreachable_peer-unreachable_peer_retransmits",
        Some(("peer_unreachable", Severity::Cause)),
    ),
    (
        "unread_data-data_nobody_reads",
        Some(("local_not_reading", Severity::Cause)),
    ),
    (
        "what_the_deadline_cuts_is_reported_and_the_rest_printed",
        None,
    ),
    (
        "without_privileges_it_reports_what_it_could_see",
        Some(("not_visible", Severity::Warning)),
    ),
    (
        "zero_window-zero_window_blocks_the_sender",
        Some(("peer_not_reading", Severity::Cause)),
    ),
];

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/snapshots/recorded"
    ))
}

/// What a reader of the report sees of a finding: its words, not the facts behind them.
fn words(f: &Finding) -> String {
    let mut out = format!(
        "{:?} {:?} [{}] {:?}\n  {}\n",
        f.severity, f.cause, f.rule, f.subject, f.summary
    );
    for e in &f.evidence {
        out.push_str(&format!("  {}: {} ({})\n", e.label, e.value, e.source));
    }
    for r in &f.ruled_out {
        out.push_str(&format!("  ruled out: {r}\n"));
    }
    out.push_str(&format!("  next: {}\n", f.next_step));
    out
}

#[test]
fn every_recorded_state_is_diagnosed_as_expected_and_worded_as_recorded() {
    let update = std::env::var_os("UPDATE_RECORDED").is_some();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("recorded snapshots")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".json")?.to_string())
        })
        .collect();
    files.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    for f in &files {
        assert!(
            listed.contains(&f.as_str()),
            "{f}.json has no expectation in EXPECTED"
        );
    }
    let mut failures = Vec::new();
    for (name, expected) in EXPECTED {
        let path = dir().join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let mut doc = Document::from_json(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let findings = diagnose(&doc.snapshot);
        let top = findings
            .iter()
            .find(|f| f.severity != Severity::Info)
            .map(|f| (f.rule.as_str(), f.severity));
        if top != *expected {
            failures.push(format!(
                "{name}: top finding {top:?}, expected {expected:?}"
            ));
        }
        if !expected.is_some_and(|(_, s)| s == Severity::Cause) {
            assert!(
                findings.iter().all(|f| f.severity != Severity::Cause),
                "{name}: a cause where none is expected"
            );
        }
        let now: Vec<String> = findings.iter().map(words).collect();
        let then: Vec<String> = doc.findings.iter().map(words).collect();
        if update && now != then {
            // Only the findings and the verdict: the snapshot stays as it was recorded, not as
            // this version's reader upgrades it.
            doc.set_findings(findings);
            let fresh = serde_json::to_value(&doc).expect("serialize");
            let mut raw: Value = serde_json::from_str(&text).expect("recorded JSON");
            raw["findings"] = fresh["findings"].clone();
            raw["verdict"] = fresh["verdict"].clone();
            let json = serde_json::to_string(&raw).expect("serialize");
            std::fs::write(&path, json + "\n").expect("rewrite the recorded findings");
        } else if now != then {
            failures.push(format!(
                "{name}: the words changed\n--- recorded\n{}\n+++ now\n{}",
                then.join(""),
                now.join("")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every rule's id: each must be found in at least one recorded state.
const RULES: &[&str] = &[
    "busy",
    "child_wait",
    "connection_dead",
    "exited",
    "local_not_reading",
    "lock_retry",
    "lock_wait",
    "managed_runtime",
    "mariadb_lock_wait",
    "mutex_deadlock",
    "mutex_holder_blocked",
    "name_resolution",
    "not_visible",
    "peer_not_reading",
    "peer_silent",
    "peer_unreachable",
    "pg_idle_in_transaction",
    "pg_lock_wait",
    "pipe_wait",
    "redis_blocked",
    "same_host",
    "shared_mutex_wait",
    "stopped",
    "unanswered",
    "uninterruptible",
    "unix_peer_wait",
    "waiting_loop",
];

/// A recorded state's snapshot and its findings now.
fn replay(name: &str) -> (Snapshot, Vec<Finding>) {
    let path = dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let doc = Document::from_json(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let found = diagnose(&doc.snapshot);
    (doc.snapshot, found)
}

fn by_rule<'a>(found: &'a [Finding], rule: &str) -> &'a Finding {
    found
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("no {rule} finding"))
}

#[test]
fn every_rule_is_found_in_a_recorded_state() {
    let mut seen: Vec<String> = Vec::new();
    for (name, _) in EXPECTED {
        seen.extend(replay(name).1.into_iter().map(|f| f.rule));
    }
    let missing: Vec<&&str> = RULES
        .iter()
        .filter(|r| !seen.iter().any(|s| s == **r))
        .collect();
    assert!(missing.is_empty(), "no recorded state has {missing:?}");
}

/// The rules no recorded state had before, with the facts that make each what it is, read
/// against the snapshot they were found in.
#[test]
fn the_last_recorded_rules_have_their_facts() {
    // busy: the zoo's spinner, runnable with its CPU time growing and no voluntary switch.
    let (snap, found) = replay("every_wait_is_decoded_joined_and_classified");
    let f = by_rule(&found, "busy");
    assert_eq!((f.severity, f.cause), (Severity::Warning, Cause::Busy));
    let tid = f.facts["thread"]["tid"].as_i64().expect("tid") as i32;
    let a = snap
        .thread(tid)
        .and_then(|t| t.activity.as_ref())
        .expect("the busy thread's activity");
    assert!(a.busy, "{a:?}");
    assert_eq!(f.facts["thread"]["name"], "spinner");
    assert_eq!(f.facts["cpu_ms"], a.cpu_ms);
    assert_eq!(f.facts["voluntary_switches"], 0);
    assert_eq!(f.subject.tid, Some(tid));
    assert_eq!(
        f.next,
        Some(Next::thread(snap.process.pid, tid).with_command(format!("perf top -t {tid}")))
    );

    // connection_dead: the client's end in CLOSE-WAIT, nothing unread (Recv-Q 1 is the FIN),
    // no thread on it; the twin before the close has no such finding.
    let (_, twin) = replay("peer_closed-a_connection_the_peer_closed_that_nobody_closes");
    assert!(twin.iter().all(|f| f.rule != "connection_dead"), "{twin:?}");
    let (snap, found) = replay("peer_closed-a_connection_the_peer_closed_that_nobody_closes-2");
    let f = by_rule(&found, "connection_dead");
    assert_eq!(
        (f.severity, f.cause),
        (Severity::Warning, Cause::PeerClosed)
    );
    assert_eq!(f.facts["shape"], "peer_closed");
    let inode = f.facts["conn"]["socket_inode"].as_u64().expect("inode");
    let sock = snap.socket(inode).expect("the finding's socket");
    let SocketDetail::Tcp(t) = &sock.detail else {
        panic!("not TCP: {sock:?}")
    };
    assert_eq!(t.state, TcpState::CloseWait);
    assert_eq!(f.facts["recv_q"], t.recv_q);
    assert_eq!((t.recv_q, &f.facts["unread"]), (1, &Value::from(0)));
    assert!(f.facts["since_ms"].as_u64() >= Some(1000), "{}", f.facts);
    assert!(f.facts["waiter"].is_null());
    assert_eq!(f.facts["conn"]["fd"], Value::from(sock.fds[0]));

    // mariadb_lock_wait: the server's own view, the waiting UPDATE blocked by the session idle
    // in its transaction, whose client is a process on this host.
    let (snap, found) = replay("a_row_lock_chain_names_the_idle_holder_and_its_client_process");
    let f = by_rule(&found, "mariadb_lock_wait");
    assert_eq!(
        (f.severity, f.cause),
        (Severity::Cause, Cause::IdleInTransaction)
    );
    let Some(AppView::Mariadb(v)) = &snap.app else {
        panic!("no MariaDB view")
    };
    let waiter = v
        .sessions
        .iter()
        .find(|s| f.facts["waiter"]["id"] == s.id)
        .expect("the waiter's session");
    assert!(
        waiter
            .blocked_by
            .iter()
            .any(|h| f.facts["holder"]["id"] == *h)
    );
    assert_eq!(f.facts["holder"]["idle_in_transaction"], true);
    assert_eq!(f.facts["table"], "`hs`.`ledger`");
    assert_eq!(f.facts["client"]["kind"], "process");
    let client = f.facts["client"]["pid"].as_i64().expect("client pid") as i32;
    assert_eq!(f.next.as_ref().and_then(|n| n.pid), Some(client));

    // not_visible: run as another user, the fd table and the threads' calls refused, with
    // what would allow them.
    let (snap, found) = replay("without_privileges_it_reports_what_it_could_see");
    let f = by_rule(&found, "not_visible");
    assert_eq!(
        (f.severity, f.cause),
        (Severity::Warning, Cause::NotVisible)
    );
    assert_eq!(f.facts["pid"], snap.process.pid);
    let parts: Vec<&Value> = f.facts["unseen"]
        .as_array()
        .expect("unseen")
        .iter()
        .map(|u| &u["part"])
        .collect();
    assert_eq!(parts, ["fd_table", "syscalls"]);
    assert_eq!(
        f.facts["unseen"][0]["what"],
        format!("/proc/{}/fd", snap.process.pid)
    );
    assert!(
        f.facts["unseen"][0]["needs"]
            .as_str()
            .is_some_and(|n| n.contains("CAP_DAC_READ_SEARCH")),
        "{}",
        f.facts
    );
}
