//! End to end: idle and healthy servers get no cause finding and exit code 0. Real processes
//! (`hangscope __scenario ...`) on loopback, inspected by the real binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_hangscope");

/// Kills and reaps the scenario process when dropped, also when an assertion fails.
struct Scenario {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Scenario {
    fn start(args: &[&str]) -> Scenario {
        let mut child = Command::new(EXE)
            .arg("__scenario")
            .args(args)
            .args(["--max-seconds", "60"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start scenario");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Scenario { child, out }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The value of the announcement line starting with `key`.
    fn announced(&mut self, key: &str) -> String {
        let mut line = String::new();
        for _ in 0..10 {
            line.clear();
            if self.out.read_line(&mut line).expect("read announcement") == 0 {
                break;
            }
            if let Some(rest) = line.trim().strip_prefix(key) {
                return rest.trim().to_string();
            }
        }
        panic!("scenario did not announce {key:?}");
    }
}

/// Polls until `ok` holds, for at most 20 s (generous: the machine is shared and loaded).
fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The syscall number a thread is blocked in, from /proc/PID/task/TID/syscall.
fn syscall_nr(pid: i32, tid: i32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Runs `hangscope PID --json`; returns the exit code and the parsed document.
fn inspect(pid: i32) -> (i32, serde_json::Value) {
    let out = Command::new(EXE)
        .args([&pid.to_string(), "--json"])
        .output()
        .expect("run hangscope");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

fn causes(doc: &serde_json::Value) -> Vec<serde_json::Value> {
    doc["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| f["severity"] == "cause")
        .cloned()
        .collect()
}

#[test]
fn idle_server_gets_no_cause() {
    let mut server = Scenario::start(&["idle-server"]);
    let _port = server.announced("port");
    let pid = server.pid();
    wait_for("the server to block in accept4", || {
        syscall_nr(pid, pid) == Some(libc::SYS_accept4)
    });
    let (code, doc) = inspect(pid);
    assert_eq!(doc["snapshot"]["process"]["pid"], pid);
    assert_eq!(causes(&doc), Vec::<serde_json::Value>::new(), "{doc:#}");
    assert_eq!(code, 0, "exit code 0 means no cause was found");
}

#[test]
fn busy_echo_server_gets_no_cause() {
    let mut server = Scenario::start(&["echo-server"]);
    let port = server.announced("port");
    let peer = format!("127.0.0.1:{port}");
    let mut client = Scenario::start(&["echo-client", "--peer", &peer, "--conns", "4"]);
    assert_eq!(client.announced("conns"), "4");
    let pid = server.pid();
    // Main thread plus one echo thread per connection.
    wait_for("4 echo threads", || threads(pid) >= 5);
    let (code, doc) = inspect(pid);
    assert_eq!(doc["snapshot"]["process"]["pid"], pid);
    assert_eq!(causes(&doc), Vec::<serde_json::Value>::new(), "{doc:#}");
    assert_eq!(code, 0, "exit code 0 means no cause was found");
}
