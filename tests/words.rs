//! Small wrong words (issue 17): what the report says must be what is true, for a file named
//! like the kernel's "deleted" mark, a `--log` that is missing or unreadable, and the age of
//! the process beside its waits.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use support::*;

#[test]
fn a_file_named_like_the_deleted_mark_is_not_deleted() {
    let dir = TempDir::new("named-deleted");
    // proc shows this link as ".../x (deleted)", exactly as it shows a removed file "x".
    let path = format!("{}/x (deleted)", dir.path());
    std::fs::write(&path, b"still here\n").unwrap();
    let mut holder = scenario("open-hold", &["--path", &path]);
    let fd: i32 = holder.expect("fd").parse().unwrap();
    let doc = inspect_json(holder.pid(), &["--window", "0"]);
    let f = support::fd(&doc, fd);
    assert_eq!(f["target"], path.as_str(), "{f}");
    assert_ne!(f["deleted"], true, "{f}");

    // The same scenario on a file that is then removed is deleted, its name without the mark.
    let gone = format!("{}/gone", dir.path());
    std::fs::write(&gone, b"soon gone\n").unwrap();
    let mut holder = scenario("open-hold", &["--path", &gone]);
    let fd: i32 = holder.expect("fd").parse().unwrap();
    std::fs::remove_file(&gone).unwrap();
    let doc = inspect_json(holder.pid(), &["--window", "0"]);
    let f = support::fd(&doc, fd);
    assert_eq!(f["target"], gone.as_str(), "{f}");
    assert_eq!(f["deleted"], true, "{f}");
}

fn log_gap(doc: &serde_json::Value, path: &str) -> serde_json::Value {
    doc["snapshot"]["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["what"] == format!("log {path} (--log)"))
        .unwrap_or_else(|| panic!("no gap for {path}: {}", doc["snapshot"]["gaps"]))
        .clone()
}

#[test]
fn a_missing_log_does_not_exist_rather_than_vanished() {
    let dir = TempDir::new("missing-log");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    let missing = format!("{}/no-such.log", dir.path());
    let doc = inspect_json(holder.pid(), &["--window", "0", "--log", &missing]);
    let g = log_gap(&doc, &missing);
    assert_ne!(g["reason"], "vanished", "{g}");
    assert!(
        g["detail"].as_str().unwrap().contains("does not exist"),
        "{g}"
    );
}

/// As uid 65534 against a process of its own, so that the target is fully visible and only
/// the log is not: a root-owned file of mode 0600. What it lacks is read permission on that
/// file, not CAP_SYS_PTRACE over the target.
#[test]
fn an_unreadable_log_names_the_file_permission_not_ptrace() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root {
        eprintln!("not root: cannot make a file this test cannot read");
        return;
    }
    let bin = PublicBinary::new();
    let dir = TempDir::new("private-log");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = format!("{}/app.log", dir.path());
    std::fs::write(&log, b"I1201 10:00:00.000000 1 a.cc:1] secret\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A target of uid 65534 too, killed on drop.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let target = Killed(
        Command::new("sleep")
            .arg("60")
            .uid(65534)
            .gid(65534)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = Command::new(bin.path())
        .args([
            &target.0.id().to_string(),
            "--json",
            "--window",
            "0",
            "--log",
            &log,
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = log_gap(&doc, &log);
    assert_eq!(g["reason"], "permission", "{g}");
    let needs = g["needs"].as_str().unwrap();
    assert!(
        needs.contains(&format!("read permission on {log}")) && !needs.contains("PTRACE"),
        "{needs}"
    );
}

/// The header's age and the waits are measured at the same instant, the last look: a process
/// started just before a 3 s window is at least 3 s old in the report (it was "up 0.5 s"
/// beside "has waited 3.0 s").
#[test]
fn the_age_counts_to_the_last_look_like_the_waits() {
    let dir = TempDir::new("age");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    let doc = inspect_json(holder.pid(), &["--window", "3s", "--deadline", "8s"]);
    let age_ms = doc["snapshot"]["process"]["age_s"].as_f64().unwrap() * 1000.0;
    let window_ms = doc["snapshot"]["window"]["duration_ms"].as_f64().unwrap();
    assert!(window_ms >= 2500.0, "{window_ms}");
    assert!(
        age_ms >= window_ms,
        "age {age_ms} ms, window {window_ms} ms"
    );
}
