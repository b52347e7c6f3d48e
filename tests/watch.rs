//! `hangscope watch` on real processes: a hang that starts after the watch is caught, saved
//! once (not once per look) and handed to the hook; the healthy process before it fires
//! nothing, nor does a stop shorter than `--for`; one line per change; a target restarted
//! under the same name is picked up again; Ctrl-C (SIGINT) and SIGTERM stop the watch
//! cleanly. The target is sleep(1) run by a name no other process has. `watch --all` catches
//! a lock wait that starts after it among healthy processes, and fires on none of them.
//! Programs: coreutils (sleep), sh, util-linux flock.

mod support;

use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use hangscope_model::{Cause, Document, Severity};
use support::healthy::Healthy;
use support::procs::*;
use support::*;

/// sleep under a unique name (its comm is the name it is executed by: a symlink's, so no copy
/// is written, which a fork elsewhere in the test binary could hold open: ETXTBSY).
struct Sleeper {
    dir: TempDir,
    name: String,
}

impl Sleeper {
    fn new(tag: &str) -> Sleeper {
        let dir = TempDir::new(tag);
        // comm is at most 15 bytes.
        let name = format!("hw{}{}", tag.len(), std::process::id() % 1_000_000);
        let exe = format!("{}/{name}", dir.path());
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("sleep(1)");
        std::os::unix::fs::symlink(sleep, &exe).expect("link sleep");
        Sleeper { dir, name }
    }

    fn start(&self) -> Proc {
        Proc::quiet(Command::new(format!("{}/{}", self.dir.path(), self.name)).arg("600"))
    }
}

fn watch(target: &str, save_dir: &str, extra: &[&str]) -> (Proc, Receiver<String>) {
    let mut cmd = Command::new(HANGSCOPE);
    cmd.args([
        "watch",
        target,
        "--every",
        "300ms",
        "--for",
        "1s",
        "--save-dir",
        save_dir,
    ]);
    cmd.args(extra);
    let mut p = Proc::spawn(cmd.stdin(Stdio::null()).stdout(Stdio::piped()));
    let out = p.0.stdout.take().expect("watch's stdout");
    (p, lines_of(out))
}

/// Waits (bounded) for a line with `what`; returns it and every line before it.
fn line_with(lines: &Receiver<String>, what: &str, seen: &mut Vec<String>) -> String {
    line_within(lines, what, seen, Duration::from_secs(40))
}

fn line_within(
    lines: &Receiver<String>,
    what: &str,
    seen: &mut Vec<String>,
    limit: Duration,
) -> String {
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) => {
                seen.push(l.clone());
                if l.contains(what) {
                    return l;
                }
            }
            Err(e) => panic!("no line with {what:?} ({e:?}); got {seen:#?}"),
        }
    }
}

fn saved(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().display().to_string())
                .filter(|p| p.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn watch_catches_a_hang_that_starts_after_it_and_saves_one_snapshot() {
    let _host = host::shared();
    let sleeper = Sleeper::new("catch");
    let target = sleeper.start();
    let save = TempDir::new("watch-save");
    let hook_log = format!("{}/hook.log", save.path());
    let hook = format!("echo \"$1\" >> '{hook_log}'");
    let (watcher, lines) = watch(&sleeper.name, save.path(), &["--exec", &hook]);
    let mut seen = Vec::new();
    let line = line_with(&lines, "watching", &mut seen);
    assert!(line.contains(&format!("pid {}", target.pid())), "{line}");
    // Healthy first: several looks past --for, and nothing fires; nor does a stop shorter
    // than --for (1 s).
    std::thread::sleep(Duration::from_millis(1000));
    target.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(200));
    target.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(1500));
    let stopped_at = Instant::now();
    target.signal(libc::SIGSTOP);
    let cause = line_with(&lines, "CAUSE", &mut seen);
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(1),
        "fired only once the cause lasted --for: {cause}"
    );
    let stuck_for: f64 = cause
        .split("stuck ")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("how long it was stuck: {cause}"));
    assert!(stuck_for >= 1.0, "{cause}");
    assert!(
        !seen[..seen.len() - 1].iter().any(|l| l.contains("CAUSE")),
        "nothing fired while it was healthy: {seen:#?}"
    );
    assert!(cause.contains(&format!("pid {}", target.pid())), "{cause}");
    assert!(cause.contains("kill -CONT"), "{cause}");
    // More looks while it stays stopped: still one snapshot, and no line (one per change).
    std::thread::sleep(Duration::from_millis(2000));
    let more: Vec<String> = lines.try_iter().collect();
    assert!(
        more.is_empty(),
        "nothing changed, nothing printed: {more:#?}"
    );
    let files = saved(save.path());
    assert_eq!(files.len(), 1, "one snapshot per incident: {files:?}");
    let doc = Document::from_json(&std::fs::read_to_string(&files[0]).expect("read snapshot"))
        .expect("a document");
    assert!(doc.verdict.cause_found, "{:?}", doc.verdict);
    assert_eq!(doc.snapshot.process.pid, target.pid());
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(
            &hook_log
        )
        .is_ok_and(|l| l.lines().count() == 1)),
        "the hook ran once"
    );
    assert_eq!(
        std::fs::read_to_string(&hook_log).expect("hook log").trim(),
        files[0],
        "the hook got the snapshot's path"
    );
    target.signal(libc::SIGCONT);
    let resolved = line_with(&lines, "RESOLVED", &mut seen);
    assert!(
        resolved.contains(&format!("pid {}", target.pid())),
        "{resolved}"
    );

    // Ctrl-C.
    watcher.signal(libc::SIGINT);
    let mut watcher = watcher;
    let status = wait_exit(&mut watcher);
    line_with(&lines, "stopped", &mut seen);
    assert_eq!(status, Some(0), "a clean stop on SIGINT");
}

fn wait_exit(p: &mut Proc) -> Option<i32> {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Ok(Some(s)) = p.0.try_wait() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_target_restarted_under_watch_is_picked_up_again() {
    let _host = host::shared();
    let sleeper = Sleeper::new("restart");
    let first = sleeper.start();
    let save = TempDir::new("watch-restart");
    let (_watcher, lines) = watch(&sleeper.name, save.path(), &["--exit-on-cause"]);
    let mut seen = Vec::new();
    let line = line_with(&lines, "watching", &mut seen);
    assert!(line.contains(&format!("pid {}", first.pid())), "{line}");
    let old = first.pid();
    drop(first);
    line_with(&lines, "gone", &mut seen);
    let second = sleeper.start();
    let line = line_with(&lines, &format!("pid {}", second.pid()), &mut seen);
    assert!(line.contains("watching"), "{line}");
    second.signal(libc::SIGSTOP);
    let cause = line_with(&lines, "CAUSE", &mut seen);
    assert!(cause.contains(&format!("pid {}", second.pid())), "{cause}");
    assert!(!cause.contains(&format!("pid {old}")), "{cause}");
    let files = saved(save.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let mut watcher = _watcher;
    assert_eq!(wait_exit(&mut watcher), Some(1), "--exit-on-cause exits 1");
}

#[test]
fn a_target_given_by_pid_is_watched_under_its_name_and_sigterm_stops_cleanly() {
    let _host = host::shared();
    let sleeper = Sleeper::new("bypid");
    let target = sleeper.start();
    let save = TempDir::new("watch-pid");
    let (watcher, lines) = watch(&target.pid().to_string(), save.path(), &[]);
    let mut seen = Vec::new();
    let line = line_with(&lines, "watching", &mut seen);
    assert!(
        line.contains(&format!("watching {} (pid {})", sleeper.name, target.pid())),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    watcher.signal(libc::SIGTERM);
    let mut watcher = watcher;
    let status = wait_exit(&mut watcher);
    line_with(&lines, "stopped", &mut seen);
    assert_eq!(status, Some(0), "a clean stop on SIGTERM: {seen:#?}");
    assert!(saved(save.path()).is_empty(), "nothing was stuck");
}

/// The PID of a `CAUSE pid N (...)` line.
fn cause_pid(line: &str) -> Option<i32> {
    line.split("CAUSE pid ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn watch_all_catches_a_lock_wait_that_starts_after_it_and_no_healthy_process_fires() {
    let _host = host::whole();
    // Healthy: sleepers, sleep loops, idle servers, a busy client/server pair, and a lock
    // holder that sleeps while it holds.
    let neighbours = Healthy::start(4, 4, 3);
    let mut healthy = neighbours.pids.clone();
    let dir = TempDir::new("watch-all-lock");
    let lock = format!("{}/lock", dir.path());
    // The lock is the open file's: sleep, exec'd by the same process, holds it, and dies with
    // it on drop.
    let holder = Proc::quiet(Command::new("sh").args([
        "-c",
        "exec 9>\"$1\"; flock 9 && exec sleep 600",
        "sh",
        &lock,
    ]));
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(
            format!("/proc/{}/comm", holder.pid())
        )
        .is_ok_and(|c| c.trim() == "sleep")),
        "the holder took the lock"
    );
    healthy.push(holder.pid());

    let save = TempDir::new("watch-all-save");
    let (watcher, lines) = watch("--all", save.path(), &[]);
    let mut seen = Vec::new();
    line_with(&lines, "watching every process", &mut seen);
    // Several looks past --for (1 s) with everything healthy.
    std::thread::sleep(Duration::from_millis(2500));
    let started_at = Instant::now();
    let waiter = Proc::quiet(Command::new("flock").args([&lock, "true"]));
    // The host's other suspects are read in full first, one after the other (a debug build on
    // a busy host takes tens of seconds for them): a longer bound than the other waits'.
    let cause = line_within(
        &lines,
        &format!("CAUSE pid {} ", waiter.pid()),
        &mut seen,
        Duration::from_secs(150),
    );
    assert!(
        started_at.elapsed() >= Duration::from_secs(1),
        "fired only once the wait lasted --for: {cause}"
    );
    // More looks while it stays stuck: nothing more of it.
    std::thread::sleep(Duration::from_millis(2000));
    seen.extend(lines.try_iter());
    let fired: Vec<i32> = seen.iter().filter_map(|l| cause_pid(l)).collect();
    for pid in &healthy {
        assert!(!fired.contains(pid), "healthy {pid} fired: {seen:#?}");
    }
    assert_eq!(
        fired.iter().filter(|p| **p == waiter.pid()).count(),
        1,
        "one incident: {seen:#?}"
    );
    let of = |pid: i32| -> Vec<String> {
        let prefix = format!("{}/hangscope-{pid}-", save.path());
        saved(save.path())
            .into_iter()
            .filter(|f| f.starts_with(&prefix))
            .collect()
    };
    let files = of(waiter.pid());
    assert_eq!(files.len(), 1, "one snapshot per incident: {seen:#?}");
    for pid in &healthy {
        assert!(of(*pid).is_empty(), "no snapshot of healthy {pid}");
    }
    let doc = Document::from_json(&std::fs::read_to_string(&files[0]).expect("read snapshot"))
        .expect("a document");
    assert_eq!(doc.snapshot.process.pid, waiter.pid());
    assert!(
        doc.findings
            .iter()
            .any(|f| f.cause == Cause::LockWait && f.severity == Severity::Cause),
        "{:?}",
        doc.verdict
    );
    eprintln!("watch --all: {cause}");
    watcher.signal(libc::SIGINT);
    let mut watcher = watcher;
    assert_eq!(wait_exit(&mut watcher), Some(0));
}
