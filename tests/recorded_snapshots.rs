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
use hangscope_model::{Document, Finding, Severity};

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
        if update {
            doc.set_findings(findings);
            let json = serde_json::to_string(&doc).expect("serialize");
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
