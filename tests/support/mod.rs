//! Shared by the integration tests: start scenario processes, run hangscope, clean up.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HANGSCOPE: &str = env!("CARGO_BIN_EXE_hangscope");

/// A process this test started; killed and reaped on drop, also when an assertion fails.
pub struct Started {
    pub child: Child,
    pub out: BufReader<ChildStdout>,
}

impl Started {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads the scenario's announcement line that starts with `key`, e.g. "fds", "port".
    pub fn expect(&mut self, key: &str) -> String {
        let mut line = String::new();
        for _ in 0..8 {
            line.clear();
            let n = self.out.read_line(&mut line).expect("read scenario stdout");
            assert!(n > 0, "scenario exited before announcing {key:?}");
            if let Some(rest) = line.trim().strip_prefix(key) {
                return rest.trim().to_string();
            }
        }
        panic!("scenario did not announce {key:?}");
    }

    /// "kept=3 deleted=4" → the value of `name`.
    pub fn field(announcement: &str, name: &str) -> i32 {
        announcement
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {announcement:?}"))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hangscope __scenario NAME ARGS...`.
pub fn scenario(name: &str, args: &[&str]) -> Started {
    scenario_via(&[], name, args)
}

/// Starts `PREFIX... hangscope __scenario NAME ARGS...`, e.g. with `ip netns exec NS` as the
/// prefix. The prefix must exec the command in its own process (as `ip netns exec` does), so
/// the PID killed on drop is the scenario's.
pub fn scenario_via(prefix: &[&str], name: &str, args: &[&str]) -> Started {
    let (program, prefix_args) = match prefix.split_first() {
        Some((p, rest)) => (*p, rest),
        None => (HANGSCOPE, &[][..]),
    };
    let mut cmd = Command::new(program);
    cmd.args(prefix_args);
    if !prefix.is_empty() {
        cmd.arg(HANGSCOPE);
    }
    let mut child = cmd
        .arg("__scenario")
        .arg(name)
        .args(args)
        .args(["--max-seconds", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start scenario");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    Started { child, out }
}

/// Runs hangscope with `args` to completion (it has its own deadline).
pub fn hangscope(args: &[&str]) -> Output {
    Command::new(HANGSCOPE)
        .args(args)
        .output()
        .expect("run hangscope")
}

/// Runs `hangscope PID --json` and parses the document.
pub fn inspect_json(pid: i32, extra: &[&str]) -> serde_json::Value {
    let pid = pid.to_string();
    let mut args = vec![pid.as_str(), "--json"];
    args.extend_from_slice(extra);
    let out = hangscope(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "hangscope failed: {:?}\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).expect("hangscope --json prints JSON")
}

/// Runs `hangscope PID --json EXTRA...`; returns the exit code and the parsed document.
pub fn inspect(pid: i32, extra: &[&str]) -> (i32, serde_json::Value) {
    let pid = pid.to_string();
    let mut args = vec![pid.as_str(), "--json"];
    args.extend_from_slice(extra);
    let out = hangscope(&args);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hangscope --json did not print JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

/// The findings of severity "cause", in rank order.
pub fn causes(doc: &serde_json::Value) -> Vec<&serde_json::Value> {
    doc["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| f["severity"] == "cause")
        .collect()
}

/// The syscall number a thread is in, from /proc/PID/task/TID/syscall (None when running or
/// gone).
pub fn syscall_nr(pid: i32, tid: i32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Whether the thread is blocked in poll() (ppoll on architectures without poll).
pub fn in_poll(pid: i32, tid: i32) -> bool {
    let nr = syscall_nr(pid, tid);
    #[cfg(target_arch = "x86_64")]
    if nr == Some(libc::SYS_poll) {
        return true;
    }
    nr == Some(libc::SYS_ppoll)
}

/// How many threads the process has.
pub fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Polls `cond` every 20 ms until it has held without a break for `hold` (a state that lasts,
/// not one passed through), or `limit` passes.
pub fn wait_steady(limit: Duration, hold: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut since: Option<Instant> = None;
    while start.elapsed() < limit {
        if cond() {
            let s = *since.get_or_insert_with(Instant::now);
            if s.elapsed() >= hold {
                return true;
            }
        } else {
            since = None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "hangscope-test-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fd object with number `n` in a JSON document.
pub fn fd(doc: &serde_json::Value, n: i32) -> &serde_json::Value {
    doc["snapshot"]["fds"]
        .as_array()
        .expect("fds array")
        .iter()
        .find(|f| f["fd"] == n)
        .unwrap_or_else(|| panic!("fd {n} not in the report"))
}
