//! Never change the target and never hang on its files: a target holding a lease on its log
//! keeps it; a target that is a fanotify permission listener on its log, and never answers,
//! does not hold the run; and a report read slowly is written in full.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use support::*;

/// A `tests/support/log_target.py` process, killed and reaped on drop.
struct Target(Child);

impl Target {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_target(log: &str, mode: &str, marker: &str) -> Target {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/log_target.py");
    let mut child = Command::new("python3")
        .args([script, log, mode, marker])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let out = child.stdout.take().unwrap();
    let target = Target(child);
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(ANNOUNCE_WITHIN).unwrap_or_default();
    assert_eq!(line.trim(), "ready", "log_target.py {mode} did not start");
    target
}

/// The target's lease on its log, as /proc/locks shows it: "ACTIVE WRITE", "BREAKING READ"...
fn lease_of(pid: i32) -> Option<String> {
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks.lines().find_map(|l| {
        let t: Vec<&str> = l.split_whitespace().collect();
        (t.get(1) == Some(&"LEASE") && t.get(4) == Some(&pid.to_string().as_str()))
            .then(|| format!("{} {}", t[2], t[3]))
    })
}

fn gaps(doc: &serde_json::Value) -> &Vec<serde_json::Value> {
    doc["snapshot"]["gaps"].as_array().unwrap()
}

fn gap_on<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    gaps(doc)
        .iter()
        .find(|g| g["what"].as_str().unwrap_or("").contains(path))
}

/// The exit code the document's diagnosis calls for.
fn code_of(doc: &serde_json::Value) -> i32 {
    i32::from(!causes(doc).is_empty())
}

#[test]
fn a_lease_on_the_log_is_left_unbroken() {
    let dir = TempDir::new("lease");
    let log = format!("{}/lease.log", dir.path());
    let marker = format!("{}/got-sigio", dir.path());
    let target = start_target(&log, "lease", &marker);
    let pid = target.pid();
    assert_eq!(lease_of(pid).as_deref(), Some("ACTIVE WRITE"));

    // Found as the fd it writes to, and given with --log.
    for extra in [vec![], vec!["--log", log.as_str()]] {
        let mut args = vec!["--window", "0", "--deadline", "5s"];
        args.extend(extra);
        let (code, doc) = inspect(pid, &args);
        assert_eq!(code, code_of(&doc));
        assert_eq!(doc["snapshot"]["process"]["pid"], pid, "the report prints");
        let gap = gap_on(&doc, &log).unwrap_or_else(|| panic!("no gap names the log: {doc}"));
        assert_eq!(gap["reason"], "unsafe", "{gap}");
        let detail = gap["detail"].as_str().unwrap();
        assert!(
            detail.contains("lease") && detail.contains("ACTIVE WRITE"),
            "the gap names the lease: {gap}"
        );
    }
    // A signal is delivered at once; give the handler time to run anyway.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !std::path::Path::new(&marker).exists(),
        "the target got SIGIO: its lease was broken"
    );
    assert_eq!(lease_of(pid).as_deref(), Some("ACTIVE WRITE"));
}

/// Processes other than `except` that have `path` open.
fn holders_of(path: &str, except: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == except {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|f| std::fs::read_link(f.path()).is_ok_and(|l| l.to_str() == Some(path)))
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_fanotify_listener_that_never_answers_does_not_hold_the_run() {
    let dir = TempDir::new("fanotify");
    let log = format!("{}/guarded.log", dir.path());
    let target = start_target(&log, "fanotify", "-");
    let pid = target.pid();
    let started = Instant::now();
    let out = hangscope(&[
        &pid.to_string(),
        "--json",
        "--window",
        "0",
        "--deadline",
        "3s",
    ]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("hangscope took {took:?} on a log guarded by FAN_OPEN_PERM");
    assert!(
        took < Duration::from_millis(4500),
        "{took:?} for a 3 s deadline: {stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {:?} {stderr}", out.status));
    assert_eq!(out.status.code(), Some(code_of(&doc)), "{stderr}");
    let gap = gap_on(&doc, &log).unwrap_or_else(|| panic!("no gap names the log: {doc}"));
    let detail = gap["detail"].as_str().unwrap();
    assert!(
        detail.contains("blocked") && detail.contains("fanotify"),
        "the gap says why: {gap}"
    );

    // The target's death ends its permission events; the reader hangscope left behind goes.
    drop(target);
    assert!(
        wait_until(Duration::from_secs(10), || holders_of(&log, pid).is_empty()),
        "still open by {:?}",
        holders_of(&log, pid)
    );
}

#[test]
fn a_fanotify_listener_on_the_log_directory_does_not_hold_the_run() {
    // A young log: its directory is listed for the rotated one before it.
    let dir = TempDir::new("fanotify-dir");
    let log = format!("{}/app.log", dir.path());
    let target = start_target(&log, "fanotify-dir", "-");
    let pid = target.pid();
    let started = Instant::now();
    let (code, doc) = inspect(pid, &["--window", "0", "--deadline", "3s"]);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(4500), "{took:?}");
    assert_eq!(code, code_of(&doc));
    let source = doc["snapshot"]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == log.as_str())
        .unwrap_or_else(|| panic!("the log itself is read: {doc}"));
    assert_eq!(source["entries"].as_array().unwrap().len(), 5, "{source}");
    let gap = gap_on(&doc, &format!("{} (rotated logs)", dir.path()))
        .unwrap_or_else(|| panic!("no gap names the directory: {doc}"));
    assert!(
        gap["detail"].as_str().unwrap().contains("fanotify"),
        "{gap}"
    );
    drop(target);
    assert!(
        wait_until(Duration::from_secs(10), || holders_of(dir.path(), pid)
            .is_empty()),
        "still open by {:?}",
        holders_of(dir.path(), pid)
    );
}

#[test]
fn a_report_read_slowly_is_written_in_full() {
    let mut target = scenario_in_dir(&[], "log-writer", &["--threads", "8"]);
    target.expect("ready");
    let pid = target.pid().to_string();
    let args = [pid.as_str(), "-v", "--window", "0", "--deadline", "1s"];
    let quick = hangscope(&args);

    // A pipe of one page that nobody reads until the watchdog (deadline + 3 s) is long past.
    let (rd, wr): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    // SAFETY: fcntl on a pipe fd we own.
    let rc = unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(rc >= 4096, "F_SETPIPE_SZ");
    let mut hs = Command::new(HANGSCOPE)
        .args(args)
        .stdout(Stdio::from(wr))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(5500));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::fs::File::from(rd).read_to_end(&mut text);
        let _ = tx.send(text);
    });
    let Ok(slow) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = hs.kill();
        let _ = hs.wait();
        panic!("the report never ended");
    };
    let status = hs.wait().unwrap();
    let mut stderr = String::new();
    let _ = hs.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(!stderr.contains("giving up"), "{stderr}");
    assert_eq!(status.code(), quick.status.code(), "{stderr}");
    assert!(matches!(status.code(), Some(0 | 1)), "{stderr}");
    assert!(
        slow.len() > rc as usize,
        "the report ({} bytes) must outgrow the pipe ({rc}) for the test to mean anything",
        slow.len()
    );
    // Whole: it ends with a whole line, and has every section the quick run has. NOT READ is
    // left out: what a run of one second misses depends on the machine's load (a busy CI host
    // missed a part in the quick run and not in the slow one), not on how its output is read.
    assert_eq!(slow.last(), Some(&b'\n'));
    let sections = |text: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(text)
            .lines()
            .filter(|l| l.len() > 2 && !l.starts_with(' ') && l == &l.to_uppercase())
            .filter(|l| *l != "NOT READ")
            .map(str::to_string)
            .collect()
    };
    assert_eq!(sections(&slow), sections(&quick.stdout));
}
