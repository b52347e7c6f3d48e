//! Logs, end to end: a real multi-threaded process writes its log, hangscope reads it back and
//! ties each entry to the thread that wrote it; rotation, JSON lines, plain text with garbage,
//! `--log`, and a line injected into the kernel's log.

// Helpers outside #[test] fns: a failed setup step should fail the test loudly.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use hangscope_model::{Document, LogEntry, LogEvent, LogFormat, LogLevel, LogSource, PeerOutcome};

use support::*;

/// Starts the log-writer scenario (under `wrapper`, e.g. `unshare -p -f`, when given) in a
/// temp dir, and waits (bounded) until it is ready.
fn start(wrapper: &[&str], args: &[&str]) -> Started {
    let mut s = scenario_in_dir(wrapper, "log-writer", args);
    s.expect("ready");
    s
}

/// The host TID the scenario announced for its thread `thread`.
fn tid_of(sc: &Started, thread: &str) -> i32 {
    sc.announced(&format!("tid {thread}")).parse().unwrap()
}

fn inspect(pid: i32, extra: &[&str]) -> Document {
    let mut args = vec!["--deadline", "20s"];
    args.extend_from_slice(extra);
    document(pid, &args)
}

fn source<'a>(doc: &'a Document, path: &str) -> &'a LogSource {
    doc.snapshot
        .logs
        .iter()
        .find(|s| s.path == path)
        .unwrap_or_else(|| {
            let paths: Vec<&str> = doc.snapshot.logs.iter().map(|s| s.path.as_str()).collect();
            panic!("no log {path} in {paths:?}")
        })
}

fn entry<'a>(s: &'a LogSource, message_start: &str) -> &'a LogEntry {
    s.entries
        .iter()
        .find(|e| e.message.starts_with(message_start))
        .unwrap_or_else(|| panic!("no entry {message_start:?} in {:#?}", s.entries))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every worker's lines land on its TID and name, and each multi-line warning is one entry.
fn assert_workers(sc: &Started, s: &LogSource, threads: usize) {
    for i in 1..=threads {
        let name = format!("worker-{i}");
        let tid = tid_of(sc, &name);
        let hello = entry(s, &format!("hello from {name}"));
        assert_eq!(hello.tid, Some(tid), "{hello:?}");
        assert_eq!(hello.thread_tid, Some(tid));
        assert_eq!(hello.thread_name.as_deref(), Some(name.as_str()));
        assert_eq!(hello.level, Some(LogLevel::Info));

        let port = 10100 + i;
        let warn = entry(s, &format!("Fail to call 127.0.0.1:{port} st:"));
        assert_eq!(
            warn.message,
            format!(
                "Fail to call 127.0.0.1:{port} st:\nTraceback:\n[ETimedOut]: {name} waited too long"
            )
        );
        assert_eq!(warn.tid, Some(tid));
        assert_eq!(warn.thread_name.as_deref(), Some(name.as_str()));
        assert_eq!(warn.level, Some(LogLevel::Warning));
        assert_eq!(warn.event, Some(LogEvent::Timeout));
        assert_eq!(warn.peers, vec![format!("127.0.0.1:{port}")]);
        let step = s
            .peer_timeline
            .iter()
            .find(|a| a.peer == format!("127.0.0.1:{port}"))
            .unwrap_or_else(|| panic!("no timeline step for {port}: {:?}", s.peer_timeline));
        assert_eq!(step.outcome, PeerOutcome::Timeout);
        assert_eq!(step.tid, Some(tid));
        // Written within the last few minutes, dated with the right year and zone.
        let ms = warn.time_ms.expect("dated");
        assert!(
            (now_ms() - ms).abs() < 10 * 60 * 1000,
            "{ms} vs {}",
            now_ms()
        );
    }
    // Continuation lines never stand alone.
    assert!(
        !s.entries
            .iter()
            .any(|e| e.message.starts_with("Traceback:") || e.message.starts_with("[ETimedOut]")),
        "{:#?}",
        s.entries
    );
}

#[test]
fn glog_entries_land_on_the_threads_that_wrote_them() {
    let sc = start(&[], &["--format", "glog", "--threads", "3"]);
    let doc = inspect(sc.pid(), &[]);
    let path = sc.announced("log");
    let s = source(&doc, path);
    assert_eq!(s.format, LogFormat::Glog);
    assert!(s.reason.contains("appending"), "{}", s.reason);
    assert_eq!(
        s.read_via,
        Some(format!("/proc/{}/fd/{}", sc.pid(), s.fd.unwrap()))
    );
    assert_eq!(s.year_from.as_deref(), Some("file name"));
    // 1 line from main + 2 per worker.
    assert_eq!(s.entries.len(), 7, "{:#?}", s.entries);
    assert!(s.entries.iter().all(|e| !e.malformed));
    let main = entry(s, "main starting");
    assert_eq!(main.thread_tid, Some(sc.pid()));
    assert_workers(&sc, s, 3);
}

#[test]
fn a_young_log_brings_its_rotated_sibling() {
    let sc = start(&[], &["--format", "glog", "--threads", "1", "--rotate"]);
    let doc = inspect(sc.pid(), &[]);
    let open = sc.announced("log");
    let rotated = sc.announced("rotated");
    let s = source(&doc, rotated);
    assert_eq!(s.rotated_of.as_deref(), Some(open));
    assert_eq!(s.fd, None);
    assert_eq!(s.format, LogFormat::Glog);
    assert_eq!(s.entries.len(), 151);
    assert_eq!(s.entries[0].message, "old line 0");
    let old = entry(s, "Fail to dump meta from 127.0.0.1:1 st:");
    assert_eq!(old.event, Some(LogEvent::Timeout));
    assert_eq!(old.thread_tid, Some(sc.pid()));
    assert_eq!(
        s.peer_timeline.last().map(|a| (a.peer.as_str(), a.outcome)),
        Some(("127.0.0.1:1", PeerOutcome::Timeout))
    );
    // The open file is read too, and is the one with the workers' lines.
    assert_workers(&sc, source(&doc, open), 1);
}

#[test]
fn json_lines_and_a_log_given_on_the_command_line() {
    let sc = start(&[], &["--format", "json", "--threads", "2", "--garbage"]);
    let extra = std::path::Path::new(sc.dir()).join("extra.jsonl");
    std::fs::write(
        &extra,
        "{\"time\":\"2023-09-17T05:25:27.038Z\",\"severity\":\"ERROR\",\"message\":\"dial 10.0.130.72:10100\",\"thread\":\"7\"}\n\
         not json at all\n",
    )
    .unwrap();
    let extra_s = extra.to_string_lossy().into_owned();
    let doc = inspect(sc.pid(), &["--log", &extra_s]);
    let s = source(&doc, sc.announced("log"));
    assert_eq!(s.format, LogFormat::JsonLines);
    assert_workers(&sc, s, 2);
    // The garbage lines are kept, as text, and did not break the rest.
    let garbage: Vec<&LogEntry> = s.entries.iter().filter(|e| e.malformed).collect();
    assert_eq!(garbage.len(), 3, "{garbage:#?}");
    assert!(garbage.iter().all(|e| e.message.contains("garbage")));

    let given = source(&doc, &extra_s);
    assert_eq!(given.reason, "given with --log");
    assert_eq!(given.fd, None);
    assert_eq!(given.format, LogFormat::JsonLines);
    assert_eq!(given.entries.len(), 2);
    let e = &given.entries[0];
    assert_eq!(e.level, Some(LogLevel::Error));
    assert_eq!(e.time_ms, Some(1_694_928_327_038));
    assert_eq!(e.tid, Some(7));
    assert_eq!(e.peers, vec!["10.0.130.72:10100"]);
    assert!(given.entries[1].malformed);
}

#[test]
fn plain_text_with_garbage_lines() {
    let sc = start(&[], &["--format", "plain", "--threads", "2", "--garbage"]);
    let doc = inspect(sc.pid(), &[]);
    let s = source(&doc, sc.announced("log"));
    assert_eq!(s.format, LogFormat::Plain);
    assert_workers(&sc, s, 2);
    let parsed = s.entries.iter().filter(|e| !e.malformed).count();
    assert_eq!(parsed, 5);
    // The garbage before the first entry, and each worker's control-byte line.
    let garbage: Vec<&str> = s
        .entries
        .iter()
        .filter(|e| e.malformed)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(garbage.len(), 3, "{garbage:?}");
    assert!(garbage[0].ends_with("garbage before the first entry"));
}

#[test]
fn a_hung_task_line_in_the_kernel_log_is_found() {
    let sc = start(&[], &["--format", "glog", "--threads", "2"]);
    let tid = tid_of(&sc, "worker-2");
    let unique = format!(
        "hangscope-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut kmsg = match std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        Ok(f) => f,
        Err(e) => {
            eprintln!("SKIPPED: cannot write /dev/kmsg ({e}); run as root on a host with it");
            return;
        }
    };
    // One record per write. The second names a task that is not the target's.
    kmsg.write_all(
        format!("<4>{unique} INFO: task worker-2:{tid} blocked for more than 120 seconds.\n")
            .as_bytes(),
    )
    .unwrap();
    kmsg.write_all(
        format!("<4>{unique}-other INFO: task init:1 blocked for more than 120 seconds.\n")
            .as_bytes(),
    )
    .unwrap();
    drop(kmsg);

    let doc = inspect(sc.pid(), &[]);
    let k = source(&doc, "/dev/kmsg");
    assert_eq!(k.format, LogFormat::Kmsg);
    let ours: Vec<&LogEntry> = k
        .entries
        .iter()
        .filter(|e| e.message.contains(&unique))
        .collect();
    assert_eq!(ours.len(), 1, "{:#?}", k.entries);
    let e = ours[0];
    assert!(
        e.message
            .starts_with(&format!("{unique} INFO: task worker-2:{tid} blocked"))
    );
    assert_eq!(e.event, Some(LogEvent::HungTask));
    assert_eq!(e.tid, Some(tid));
    assert_eq!(e.thread_tid, Some(tid));
    assert_eq!(e.thread_name.as_deref(), Some("worker-2"));
    assert_eq!(e.level, Some(LogLevel::Warning));
    // Dated from the kernel's clock: written moments ago.
    let ms = e.time_ms.expect("dated");
    assert!(
        (now_ms() - ms).abs() < 5 * 60 * 1000,
        "{ms} vs {}",
        now_ms()
    );
    // And the model's helpers find it by thread.
    assert!(
        doc.snapshot
            .log_entries_for_tid(tid)
            .iter()
            .any(|(s, e)| s.format == LogFormat::Kmsg && e.event == Some(LogEvent::HungTask))
    );
    assert_eq!(doc.snapshot.kernel_events().len(), k.entries.len());
}

#[test]
fn tids_written_inside_a_pid_namespace_map_to_host_threads() {
    let probe = Command::new("unshare")
        .args(["-p", "-f", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: `unshare -p -f` is not available here (needs root and util-linux)");
        return;
    }
    let sc = start(&["unshare", "-p", "-f"], &["--threads", "2"]);
    // The scenario is unshare's child; its host PID is in unshare's children list.
    let wrapper = sc.pid();
    let host_pid: i32 = std::fs::read_to_string(format!("/proc/{wrapper}/task/{wrapper}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("unshare has the scenario as its child");
    let doc = inspect(host_pid, &[]);
    assert!(
        doc.snapshot.process.nspid.len() >= 2,
        "{:?}",
        doc.snapshot.process.nspid
    );
    let s = doc
        .snapshot
        .logs
        .iter()
        .find(|s| s.format == LogFormat::Glog)
        .expect("the glog file");
    // The file was named inside the namespace, where the scenario is PID 1.
    assert!(s.path.ends_with(".1"), "{}", s.path);
    for i in 1..=2 {
        let name = format!("worker-{i}");
        let ns_tid = tid_of(&sc, &name);
        let e = entry(s, &format!("hello from {name}"));
        assert_eq!(e.tid, Some(ns_tid));
        let host = e.thread_tid.expect("mapped to a host thread");
        assert_ne!(host, ns_tid, "a namespaced TID differs from the host's");
        assert_eq!(e.thread_name.as_deref(), Some(name.as_str()));
        let status =
            std::fs::read_to_string(format!("/proc/{host_pid}/task/{host}/status")).unwrap();
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        assert!(nspid.ends_with(&format!("\t{ns_tid}")), "{nspid}");
    }
}
