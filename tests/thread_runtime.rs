//! What each thread is to the managed runtime (crates/collect/src/runtime/threads.rs): a
//! CPython thread gets its interpreter frames from `py-spy dump --nonblocking --json` (or a gap
//! says py-spy is not installed); HotSpot's own threads are told from Java threads by name, and
//! a busy Java thread's JIT-compiled frames (code without a module) are counted.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use support::{hangscope, inspect_json, lines_of, thread_count, wait_steady};

struct Program {
    child: Child,
    lines: Receiver<String>,
}

impl Program {
    fn start(cmd: &mut Command) -> Program {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        let lines = lines_of(child.stdout.take().expect("stdout"));
        let p = Program { child, lines };
        let first = p.lines.recv_timeout(Duration::from_secs(60));
        assert_eq!(first.as_deref(), Ok("ready"), "{cmd:?}");
        p
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runs(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn threads(doc: &serde_json::Value) -> &Vec<serde_json::Value> {
    doc["snapshot"]["threads"].as_array().expect("threads")
}

/// Two workers behind a lock the main thread holds while it sleeps.
const PY_LOCKED: &str = r#"
import threading, time
l = threading.Lock()
l.acquire()
def worker():
    with l:
        pass
for i in range(2):
    threading.Thread(target=worker, name=f"worker-{i}").start()
print("ready", flush=True)
time.sleep(1000)
"#;

#[test]
fn python_threads_are_named_with_their_interpreter_frames() {
    if !runs("python3", "--version") {
        eprintln!("skipped: python3 not installed");
        return;
    }
    let p = Program::start(Command::new("python3").args(["-c", PY_LOCKED]));
    let pid = p.pid();
    assert!(wait_steady(
        Duration::from_secs(20),
        Duration::from_millis(300),
        || thread_count(pid) == 3
    ));
    let doc = inspect_json(pid, &["--window", "0"]);
    for t in threads(&doc) {
        assert_eq!(t["runtime"]["role"], "Python", "{t}");
    }
    let pid_s = pid.to_string();
    let text = String::from_utf8_lossy(&hangscope(&[&pid_s, "--window", "0"]).stdout).into_owned();
    if runs("py-spy", "--version") {
        let workers: Vec<_> = threads(&doc).iter().filter(|t| t["tid"] != pid).collect();
        assert_eq!(workers.len(), 2);
        for w in workers {
            let first = w["runtime"]["frames"][0].as_str().unwrap_or("");
            assert!(first.starts_with("worker ("), "{w}");
        }
        assert!(
            text.contains("runtime: Python: worker ("),
            "no Python frames under THREADS:\n{text}"
        );
    } else {
        assert!(
            doc["snapshot"]["gaps"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| g["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("py-spy is not installed"))),
            "no gap for py-spy: {}",
            doc["snapshot"]["gaps"]
        );
        assert!(text.contains("runtime: Python"), "{text}");
    }
}

const SPIN_JAVA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/runtime/Spin.java"
);

#[test]
fn hotspot_threads_by_name_and_a_busy_java_threads_jit_frames() {
    if !runs("java", "-version") {
        eprintln!("skipped: java not installed (Debian package openjdk-17-jdk-headless)");
        return;
    }
    // No hsperfdata file to leave behind when killed.
    let p = Program::start(Command::new("java").args(["-XX:-UsePerfData", SPIN_JAVA]));
    let pid = p.pid();
    let doc = inspect_json(pid, &["--window", "0", "--stacks", "stop"]);
    let role = |name: &str| {
        threads(&doc)
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["runtime"]["role"].clone())
    };
    assert_eq!(role("C2 CompilerThre"), Some("JVM compiler thread".into()));
    assert_eq!(role("VM Thread"), Some("JVM internal thread".into()));
    let spinner = threads(&doc)
        .iter()
        .find(|t| t["name"] == "spinner")
        .expect("the spinner thread");
    assert_eq!(spinner["runtime"]["role"], "Java thread", "{spinner}");
    // On a CPU: its stack from a stop, its innermost frame in the code cache (no module).
    assert_eq!(spinner["user_stack"]["source"], "stopped", "{spinner}");
    assert!(
        spinner["runtime"]["jit_frames"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{spinner}"
    );
    assert!(
        spinner["user_stack"]["frames"][0].get("module").is_none(),
        "{spinner}"
    );
}
