//! `--stacks=stop` (crates/collect/src/stacks/stop.rs): a thread busy on a CPU gets its stack
//! from a brief ptrace stop, measured; threads blocked in a syscall are still unwound from a
//! copy and never stopped; the default never traces anything; and hangscope killed while it
//! holds a thread stopped (SIGTERM, SIGKILL) leaves the target running, untraced.

mod support;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::{HANGSCOPE, TempDir, hangscope, inspect_json, lines_of, wait_until};

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stacks/spin.c");

/// The C program; `None` (and a note) without a C compiler.
fn build(dir: &TempDir) -> Option<String> {
    let out = format!("{}/spin", dir.path());
    let built = Command::new("cc")
        .args(["-O0", "-g", "-pthread", SOURCE, "-o", &out])
        .status();
    match built {
        Ok(s) if s.success() => Some(out),
        other => {
            eprintln!("skipped: no C compiler (cc: {other:?}); Debian package gcc");
            None
        }
    }
}

/// The spinning program, killed on drop; its "tick N" lines as they come.
struct Target {
    child: Child,
    lines: Receiver<String>,
}

impl Target {
    fn start(path: &str, spinners: usize) -> Target {
        let mut child = Command::new(path)
            .arg(spinners.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the C program");
        let lines = lines_of(child.stdout.take().expect("stdout"));
        let t = Target { child, lines };
        let first = t.lines.recv_timeout(Duration::from_secs(10));
        assert_eq!(first.as_deref(), Ok("ready"));
        let pid = t.pid();
        // The poller in poll, every spinner on a CPU or runnable.
        let settled = wait_until(Duration::from_secs(10), || {
            let states = states(pid);
            states.len() == spinners + 2
                && states.iter().filter(|s| s.state == 'R').count() >= spinners
                && states.iter().any(|s| s.syscall.starts_with("7 "))
        });
        assert!(settled, "the threads did not settle: {:?}", states(pid));
        t
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The ticker's latest count: the least of the spinners' counters.
    fn latest_tick(&self, within: Duration) -> Option<u64> {
        let until = Instant::now() + within;
        let mut last = None;
        while let Ok(l) = self
            .lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            if let Some(n) = l.strip_prefix("tick ").and_then(|n| n.parse().ok()) {
                last = Some(n);
                if Instant::now() >= until {
                    break;
                }
            }
        }
        last
    }

    /// Every spinner moved: the least counter grows, within a bounded time.
    fn assert_progress(&self, what: &str) {
        let a = self.latest_tick(Duration::from_millis(100));
        let b = self.latest_tick(Duration::from_millis(300));
        assert!(
            a.is_some() && b > a,
            "{what}: the target's spinners did not all move (ticks {a:?} then {b:?}); \
             threads {:?}",
            states(self.pid())
        );
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct TaskState {
    tid: i32,
    state: char,
    tracer: i32,
    syscall: String,
}

fn states(pid: i32) -> Vec<TaskState> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let tid = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .unwrap_or("")
                    .to_string()
            };
            Some(TaskState {
                tid,
                state: field("State:").chars().next().unwrap_or('?'),
                tracer: field("TracerPid:").parse().unwrap_or(-1),
                syscall: std::fs::read_to_string(e.path().join("syscall")).unwrap_or_default(),
            })
        })
        .collect()
}

/// Samples every thread until told to stop (bounded to 60 s): the tids ever seen stopped or
/// traced, and how many samples were taken.
fn watch_stops(pid: i32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(BTreeSet<i32>, usize)> {
    std::thread::spawn(move || {
        let mut seen = BTreeSet::new();
        let mut samples = 0;
        let until = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            for s in states(pid) {
                if matches!(s.state, 't' | 'T') || s.tracer != 0 {
                    seen.insert(s.tid);
                }
            }
            samples += 1;
            std::thread::sleep(Duration::from_micros(100));
        }
        (seen, samples)
    })
}

fn assert_untouched(pid: i32, what: &str) {
    // The kernel wakes a tracee its exiting tracer leaves: give it a moment, bounded.
    let clean = wait_until(Duration::from_secs(2), || {
        states(pid)
            .iter()
            .all(|s| !matches!(s.state, 't' | 'T') && s.tracer == 0)
    });
    assert!(
        clean,
        "{what}: a thread is left stopped or traced: {:?}",
        states(pid)
    );
}

fn thread(doc: &serde_json::Value, tid: i32) -> &serde_json::Value {
    doc["snapshot"]["threads"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["tid"] == tid)
        .unwrap_or_else(|| panic!("no thread {tid} in the snapshot"))
}

fn functions(t: &serde_json::Value) -> Vec<&str> {
    t["user_stack"]["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["function"].as_str())
        .collect()
}

#[test]
fn stop_mode_unwinds_a_spinning_thread_and_leaves_blocked_ones_alone() {
    let dir = TempDir::new("stacks-stop");
    let Some(path) = build(&dir) else {
        return;
    };
    let target = Target::start(&path, 1);
    let pid = target.pid();
    let spinner = states(pid)
        .into_iter()
        .find(|s| s.tid != pid && s.state == 'R')
        .expect("the spinner")
        .tid;
    let poller = states(pid)
        .into_iter()
        .find(|s| s.syscall.starts_with("7 "))
        .expect("the poller")
        .tid;

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_stops(pid, stop.clone());
    let doc = inspect_json(pid, &["--window", "0", "--stacks", "stop"]);
    stop.store(true, Ordering::Relaxed);
    let (stopped, samples) = watcher.join().expect("watcher");
    assert!(samples > 0, "the states were never sampled");
    assert_untouched(pid, "after --stacks=stop");
    target.assert_progress("after --stacks=stop");

    let gaps = &doc["snapshot"]["gaps"];
    let s = thread(&doc, spinner);
    let names = functions(s);
    assert!(
        names.windows(2).any(|w| w == ["crunch_numbers", "spinner"]),
        "the spinner's stack: {names:?}; gaps {gaps}"
    );
    assert_eq!(s["user_stack"]["source"], "stopped", "{s}");
    let us = s["user_stack"]["stopped_us"].as_u64();
    assert!(us.is_some_and(|us| us > 0), "no stop time: {s}");

    // Blocked in poll: unwound from the copy, never stopped.
    let p = thread(&doc, poller);
    assert_eq!(p["user_stack"]["source"], "syscall", "{p}");
    assert!(p["user_stack"].get("stopped_us").is_none(), "{p}");
    assert!(
        functions(p)
            .windows(2)
            .any(|w| w == ["wait_for_socket", "poller"]),
        "the poller's stack: {p}"
    );
    assert!(
        !stopped.contains(&poller),
        "the poller was seen stopped or traced (stopped: {stopped:?})"
    );

    // The report says how long, per thread and in all.
    let pid_s = pid.to_string();
    let out = hangscope(&[&pid_s, "--window", "0", "--stacks", "stop"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("stopped ")
            // One thread or more: the main thread, in nanosleep under main built with frame
            // pointers, unwinds from the copy now that the guessed frame pointer may sit
            // below a caller's RBP that is not one.
            && l.contains(" for at most ")
            && l.contains(" µs in total")),
        "no stop summary in:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("crunch_numbers") && l.contains("stopped ")),
        "no stop time under the spinner's line:\n{text}"
    );
    assert_untouched(pid, "after the text run");
}

#[test]
fn the_default_never_traces_a_thread() {
    let dir = TempDir::new("stacks-default");
    let Some(path) = build(&dir) else {
        return;
    };
    let target = Target::start(&path, 2);
    let pid = target.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_stops(pid, stop.clone());
    let doc = inspect_json(pid, &["--window", "0"]);
    stop.store(true, Ordering::Relaxed);
    let (stopped, samples) = watcher.join().expect("watcher");
    assert!(samples > 0, "the states were never sampled");
    assert!(
        stopped.is_empty(),
        "the default run stopped or traced {stopped:?}"
    );
    for t in doc["snapshot"]["threads"].as_array().into_iter().flatten() {
        assert_ne!(t["user_stack"]["source"], "stopped", "{t}");
    }
    // The blocked thread still has its stack, from the copy.
    let poll = doc["snapshot"]["threads"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["syscall"]["name"] == "poll")
        .expect("the poller");
    assert!(functions(poll).contains(&"wait_for_socket"), "{poll}");
}

/// hangscope killed while it holds a thread stopped (made to hold each one 150 ms, a test-only
/// knob), at several delays into that stop: the target must run on.
#[test]
fn killed_while_a_thread_is_stopped_the_target_runs_on() {
    let dir = TempDir::new("stacks-kill");
    let Some(path) = build(&dir) else {
        return;
    };
    let target = Target::start(&path, 3);
    let pid = target.pid();
    let pid_s = pid.to_string();
    for sig in [libc::SIGTERM, libc::SIGKILL] {
        for delay_ms in [0u64, 40, 110] {
            let what = format!("signal {sig} {delay_ms} ms into a stop");
            let mut hs = Command::new(HANGSCOPE)
                .args([&pid_s, "--window", "0", "--stacks", "stop"])
                .env("HANGSCOPE_TEST_STOP_HOLD_MS", "150")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start hangscope");
            let caught = wait_until(Duration::from_secs(30), || {
                states(pid).iter().any(|s| s.state == 't')
            });
            assert!(caught, "{what}: hangscope never stopped a thread");
            std::thread::sleep(Duration::from_millis(delay_ms));
            // SAFETY: kill(2) of the hangscope this test started, by its PID.
            let sent = unsafe { libc::kill(hs.id() as i32, sig) };
            assert_eq!(sent, 0, "{what}: kill");
            let until = Instant::now() + Duration::from_secs(10);
            let status = loop {
                if let Some(s) = hs.try_wait().expect("wait hangscope") {
                    break s;
                }
                assert!(Instant::now() < until, "{what}: hangscope did not exit");
                std::thread::sleep(Duration::from_millis(5));
            };
            if sig == libc::SIGTERM {
                // Deferred until the detach, then taken with its default action.
                assert_eq!(status.signal(), Some(sig), "{what}: {status:?}");
            }
            assert_untouched(pid, &what);
            target.assert_progress(&what);
        }
    }
}
