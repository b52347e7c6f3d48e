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
    let mut child = Command::new(HANGSCOPE)
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
