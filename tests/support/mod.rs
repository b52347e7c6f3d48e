//! Shared by the integration tests: start scenario processes, run hangscope, clean up.

#![allow(dead_code)]

pub mod healthy;
pub mod host;
pub mod mariadb;
pub mod netns;
pub mod pg_cluster;
pub mod procs;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use hangscope_model::Document;

pub const HANGSCOPE: &str = env!("CARGO_BIN_EXE_hangscope");

/// How long a scenario may take to announce what a test waits for: generous, the machine is
/// shared and busy.
pub const ANNOUNCE_WITHIN: Duration = Duration::from_secs(60);

/// A process this test started; killed and reaped on drop, also when an assertion fails, and
/// then its temp dir (if it was given one) removed.
pub struct Started {
    pub child: Child,
    /// The scenario's stdout lines, read on a thread so that every wait for one is bounded.
    lines: Receiver<String>,
    /// Announcements received so far, in the order printed.
    announced: Vec<String>,
    dir: Option<TempDir>,
}

/// `line` is the announcement of `key` ("KEY" or "KEY rest"; a key may be several words, as
/// in "tid worker-1"): the rest, trimmed.
fn announcement_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(key)?;
    (rest.is_empty() || rest.starts_with(' ')).then(|| rest.trim())
}

impl Started {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits, at most [`ANNOUNCE_WITHIN`] in all, until the scenario has announced every one
    /// of `keys`, in any order.
    pub fn wait_for(&mut self, keys: &[&str]) {
        let end = Instant::now() + ANNOUNCE_WITHIN;
        while let Some(key) = keys.iter().find(|k| self.find(k).is_none()) {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.announced.push(line.trim_end().to_string()),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "scenario did not announce {key:?} within {ANNOUNCE_WITHIN:?}; got {:?}",
                    self.announced
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "scenario exited before announcing {key:?}; got {:?}",
                    self.announced
                ),
            }
        }
    }

    /// Waits (bounded) for the scenario's announcement of `key`, e.g. "fds", "port", and
    /// returns the rest of its line. Earlier announcements are kept, so keys may be asked for
    /// in any order.
    pub fn expect(&mut self, key: &str) -> String {
        self.wait_for(&[key]);
        self.announced(key).to_string()
    }

    /// The rest of the announcement of `key`, already received (see [`Started::wait_for`]).
    pub fn announced(&self, key: &str) -> &str {
        self.find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {:?}", self.announced))
    }

    fn find(&self, key: &str) -> Option<&str> {
        self.announced.iter().find_map(|l| announcement_of(l, key))
    }

    /// The temp dir this scenario was started in (see [`scenario_in_dir`]).
    pub fn dir(&self) -> &str {
        self.dir.as_ref().expect("started with a dir").path()
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
        // `dir` is dropped (removed) after this, with the process gone.
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
    start(prefix, name, args, None)
}

/// Starts `PREFIX... hangscope __scenario NAME ARGS... --dir DIR` with a new temp dir that
/// is removed when the process is gone.
pub fn scenario_in_dir(prefix: &[&str], name: &str, args: &[&str]) -> Started {
    let dir = TempDir::new(name);
    let path = dir.path().to_string();
    let args: Vec<&str> = args.iter().copied().chain(["--dir", &path]).collect();
    start(prefix, name, &args, Some(dir))
}

fn start(prefix: &[&str], name: &str, args: &[&str], dir: Option<TempDir>) -> Started {
    let (program, prefix_args) = match prefix.split_first() {
        Some((p, rest)) => (*p, rest),
        None => (HANGSCOPE, &[][..]),
    };
    let mut cmd = Command::new(program);
    cmd.args(prefix_args);
    if !prefix.is_empty() {
        cmd.arg(HANGSCOPE);
    }
    // ARGS come first: a scenario reads the first of a repeated flag, so a test's own
    // --max-seconds wins over this default.
    let mut child = cmd
        .arg("__scenario")
        .arg(name)
        .args(args)
        .args(["--max-seconds", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start scenario");
    let out = child.stdout.take().expect("stdout");
    let lines = lines_of(out);
    Started {
        child,
        lines,
        announced: Vec::new(),
        dir,
    }
}

/// Runs hangscope with `args` to completion (it has its own deadline).
pub fn hangscope(args: &[&str]) -> Output {
    let out = Command::new(HANGSCOPE)
        .args(args)
        .output()
        .expect("run hangscope");
    if args.contains(&"--json") && matches!(out.status.code(), Some(0 | 1)) {
        record(&out.stdout);
    }
    out
}

/// With `HANGSCOPE_RECORD=DIR`, every document a test gets from hangscope is also written to
/// DIR as `<test>.json` (then `<test>-2.json`, ...): how the snapshots under
/// tests/fixtures/snapshots/recorded/ were made from the real processes of these tests. A test
/// that runs hangscope its own way (as another user) records its document with this too.
pub fn record(stdout: &[u8]) {
    let Some(dir) = std::env::var_os("HANGSCOPE_RECORD") else {
        return;
    };
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", "-");
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let n = seen.iter().filter(|t| **t == test).count();
    seen.push(test.clone());
    let name = if n == 0 {
        format!("{test}.json")
    } else {
        format!("{test}-{}.json", n + 1)
    };
    std::fs::write(std::path::Path::new(&dir).join(name), stdout).expect("record a document");
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

/// Runs `hangscope PID --json EXTRA...` and reads the document as the model's type.
pub fn document(pid: i32, extra: &[&str]) -> Document {
    let pid = pid.to_string();
    let mut args = vec![pid.as_str(), "--json"];
    args.extend_from_slice(extra);
    let out = hangscope(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    Document::from_json(&text).unwrap_or_else(|e| {
        panic!(
            "hangscope {args:?}: not a document ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
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

/// The lines a child prints, as they come, read on a thread of their own so a wait for one
/// can be bounded (`recv_timeout`).
pub fn lines_of(out: std::process::ChildStdout) -> Receiver<String> {
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        // Tests of one binary run in parallel, several with the same tag.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "hangscope-test-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }

    /// A directory that lives as long as the test binary: held in a static, which is never
    /// dropped, so it is not removed at exit. The ones earlier binaries left with this tag
    /// are removed instead, once their process is gone.
    pub fn for_binary(tag: &str) -> TempDir {
        let prefix = format!("hangscope-test-{tag}-");
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                    continue;
                };
                let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
                let gone = pid.is_some_and(|p| {
                    p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists()
                });
                if gone {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        TempDir::new(tag)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fd object with number `n` in a JSON document.
pub fn fd(doc: &serde_json::Value, n: impl Into<i64>) -> &serde_json::Value {
    let n = n.into();
    doc["snapshot"]["fds"]
        .as_array()
        .expect("fds array")
        .iter()
        .find(|f| f["fd"] == n)
        .unwrap_or_else(|| panic!("fd {n} not in the report"))
}

/// A copy of the hangscope binary that any user can run, for tests that run it as another
/// user (uid 65534): the checkout may be in a private directory (a fresh clone in
/// `mktemp -d`, or root's home, both mode 0700), which such a user cannot reach. The copy is
/// in a temp dir of mode 0755 whose every parent is searchable by all (the system temp dir,
/// or /tmp when TMPDIR is private), and is removed with it.
pub struct PublicBinary {
    dir: TempDir,
}

impl PublicBinary {
    pub fn new() -> PublicBinary {
        use std::os::unix::fs::PermissionsExt;
        let searchable_by_all = |p: &std::path::Path| {
            p.ancestors()
                .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
        };
        let base = std::env::temp_dir();
        let base = if searchable_by_all(&base) {
            base
        } else {
            std::path::PathBuf::from("/tmp")
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = base.join(format!(
            "hangscope-test-public-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("mkdir");
        let dir = TempDir(path);
        // Explicit modes: the umask may be 077.
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let bin = dir.0.join("hangscope");
        std::fs::copy(HANGSCOPE, &bin).expect("copy hangscope");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(
            searchable_by_all(&dir.0),
            "{} is not reachable by every user",
            dir.path()
        );
        PublicBinary { dir }
    }

    pub fn path(&self) -> String {
        format!("{}/hangscope", self.dir.path())
    }
}

/// Whether strace can trace here (it cannot in some containers).
pub fn strace_works() -> bool {
    std::process::Command::new("strace")
        .args(["-qq", "-e", "trace=none", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}
