//! /proc/locks only when something needs it (`locks_need`): a small target's one look that
//! holds and waits for no lock is read without it, and the answers that need it are the same
//! as when it is read from the start (HANGSCOPE_NO_FDINFO_LOCKS=1, the behaviour before), for
//! a lock wait, a lock holder and a lease on the log. Programs: coreutils sleep, util-linux
//! flock, strace, python3 (tests/support/log_target.py).

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::procs::Proc;
use support::*;

const FORCE: &str = "HANGSCOPE_NO_FDINFO_LOCKS";

/// One `--window 0` look at `pid` without user-space stacks, /proc/locks read from the start
/// when `forced`; with the files it opened (strace's trace) when `trace` names where to write
/// them.
fn look(pid: i32, forced: bool, trace: Option<&str>) -> Value {
    let mut cmd = match trace {
        Some(out) => {
            let mut c = Command::new("strace");
            c.args(["-f", "-qq", "-e", "trace=openat,open", "-o", out, HANGSCOPE]);
            c
        }
        None => Command::new(HANGSCOPE),
    };
    // The user-space stacks read /proc/locks for the leases of the modules they open. Under
    // `strace -f` on a loaded host a run took the whole default 5 s deadline, and the log read
    // got what was left (434 ms) and was abandoned: the deadline is not what is compared here.
    cmd.args([
        &pid.to_string(),
        "--json",
        "--window",
        "0",
        "--no-chain",
        "--stacks",
        "off",
        "--deadline",
        "60s",
    ]);
    if forced {
        cmd.env(FORCE, "1");
    }
    let out = cmd.output().expect("run hangscope");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

fn opened_proc_locks(trace: &str) -> bool {
    std::fs::read_to_string(trace)
        .unwrap()
        .lines()
        .any(|l| l.contains("\"/proc/locks\""))
}

fn log_source<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["snapshot"]["logs"]
        .as_array()
        .and_then(|logs| logs.iter().find(|l| l["path"] == path))
        .unwrap_or_else(|| panic!("no log {path}: {}", doc["snapshot"]["logs"]))
}

#[test]
fn a_target_that_holds_and_waits_for_no_lock_is_read_without_proc_locks() {
    if !strace_works() {
        eprintln!("skipped: strace is not installed or cannot trace here");
        return;
    }
    let dir = TempDir::new("lazy-locks");
    let log = format!("{}/app.log", dir.path());
    std::fs::write(&log, "2024-01-02 03:04:05 ERROR upstream timed out\n").unwrap();
    let out = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let sleeper = Proc::spawn(
        Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .stdout(out),
    );
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_link(format!("/proc/{}/fd/1", sleeper.pid()))
            .is_ok_and(|l| l.to_string_lossy() == log)
    }));
    let (lazy_trace, forced_trace) = (
        format!("{}/lazy.trace", dir.path()),
        format!("{}/forced.trace", dir.path()),
    );
    let lazy = look(sleeper.pid(), false, Some(&lazy_trace));
    let forced = look(sleeper.pid(), true, Some(&forced_trace));
    assert!(
        !opened_proc_locks(&lazy_trace),
        "nothing needed /proc/locks, yet it was read"
    );
    assert!(opened_proc_locks(&forced_trace), "forced, it is read");
    // The same answer: no lock, and the log read (its lease checked through fdinfo).
    assert_eq!(lazy["snapshot"]["locks"], forced["snapshot"]["locks"]);
    let (a, b) = (log_source(&lazy, &log), log_source(&forced, &log));
    assert_eq!(a, b);
    assert!(
        a["entries"].to_string().contains("upstream timed out"),
        "{a}"
    );
}

/// The facts of the lock_wait finding of `doc` but how long it has waited and the lock's
/// ordinal in /proc/locks, or panics. The ordinal is the lock's place in that read of a table
/// the whole host shares, so two runs number it apart whenever another process took or let go
/// of a lock in between: checked against the same run's `snapshot.locks` instead.
fn lock_wait(doc: &Value) -> Value {
    let mut facts = doc["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["rule"] == "lock_wait"))
        .unwrap_or_else(|| panic!("no lock_wait finding: {}", doc["findings"]))["facts"]
        .clone();
    let id = facts["lock_id"].clone();
    let listed = doc["snapshot"]["locks"].as_array().is_some_and(|l| {
        l.iter()
            .any(|l| l["id"] == id && l["waiting"] == true && l["pid"] == facts["pid"])
    });
    assert!(
        listed,
        "lock_id {id} is not the request's in this run's table: {}",
        doc["snapshot"]["locks"]
    );
    if let Some(f) = facts.as_object_mut() {
        f.remove("blocked_ms");
        f.remove("lock_id");
    }
    facts
}

#[test]
fn a_lock_wait_and_its_holder_read_the_same_with_the_table_read_from_the_start() {
    let dir = TempDir::new("lazy-locks-flock");
    let lock = format!("{}/lock", dir.path());
    let holder = Proc::quiet(Command::new("flock").args([&lock, "sleep", "600"]));
    let sleep_pid = || {
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.pid()))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i32>().ok())
    };
    assert!(wait_until(Duration::from_secs(10), || sleep_pid().is_some()));
    // flock's child holds the lock's fd too: it must die with the test.
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the child of a process this test started.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _child = KillOnDrop(sleep_pid().unwrap());
    let waiter = Proc::quiet(Command::new("flock").args([&lock, "true"]));
    assert!(
        wait_until(Duration::from_secs(10), || syscall_nr(
            waiter.pid(),
            waiter.pid()
        ) == Some(libc::SYS_flock)),
        "the second flock waits for the lock"
    );
    // The waiter: its request and who holds the lock.
    let lazy = look(waiter.pid(), false, None);
    let forced = look(waiter.pid(), true, None);
    assert_eq!(lock_wait(&lazy), lock_wait(&forced));
    assert_eq!(
        lock_wait(&lazy)["holder"]["pid"],
        holder.pid(),
        "{}",
        lock_wait(&lazy)
    );
    // The holder (its fdinfo lists the lock): the waiter's request behind it.
    let lazy = look(holder.pid(), false, None);
    let forced = look(holder.pid(), true, None);
    // Each request carries the id of the lock it waits behind, the holder's in the same read
    // (compared there); the ids themselves differ between reads (see `lock_wait`).
    let requests = |doc: &Value| -> Vec<Value> {
        let locks = doc["snapshot"]["locks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        locks
            .iter()
            .filter(|l| l["waiting"] == true)
            .map(|l| {
                let behind = locks.iter().any(|h| {
                    h["waiting"] != true && h["id"] == l["id"] && h["pid"] == holder.pid()
                });
                assert!(behind, "{l} waits behind no lock of the holder: {locks:?}");
                let mut l = l.clone();
                if let Some(o) = l.as_object_mut() {
                    o.remove("id");
                }
                l
            })
            .collect()
    };
    assert_eq!(requests(&lazy), requests(&forced));
    assert!(
        requests(&lazy).iter().any(|l| l["pid"] == waiter.pid()),
        "the waiter's request is listed: {}",
        lazy["snapshot"]["locks"]
    );
}

#[test]
fn a_lease_on_the_log_is_seen_through_fdinfo_as_through_proc_locks() {
    let dir = TempDir::new("lazy-locks-lease");
    let log = format!("{}/lease.log", dir.path());
    let marker = format!("{}/got-sigio", dir.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/log_target.py");
    let mut target = Proc::spawn(
        Command::new("python3")
            .args([script, &log, "lease", &marker])
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    let _ = BufReader::new(target.0.stdout.take().unwrap()).read_line(&mut line);
    assert_eq!(line.trim(), "ready");
    let gap = |doc: &Value| -> Value {
        doc["snapshot"]["gaps"]
            .as_array()
            .and_then(|g| {
                g.iter()
                    .find(|g| g["what"].as_str().unwrap_or("").contains(&log))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no gap names the log: {}", doc["snapshot"]["gaps"]))
    };
    let lazy = gap(&look(target.pid(), false, None));
    let forced = gap(&look(target.pid(), true, None));
    assert_eq!(lazy, forced);
    assert_eq!(lazy["reason"], "unsafe");
    assert!(
        lazy["detail"].as_str().unwrap().contains("ACTIVE WRITE"),
        "{lazy}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !std::path::Path::new(&marker).exists(),
        "the target got SIGIO: its lease was broken"
    );
}
