//! Managed runtimes, whose locks the kernel does not see: a JVM (Debian's OpenJDK), a Go
//! program (Debian's Go) and CPython, each with two threads (goroutines) deadlocked on two
//! locks, and each with a healthy twin that gets no cause. The programs are written by the
//! test into a temp dir and built there (javac, go build: offline, the standard library only).
//! A test whose toolchain is absent says so and passes; CI installs them.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use support::*;

/// A program this test started: its stdout lines kept on a thread (so every wait is
/// bounded), killed by its PID and reaped on drop.
struct Program {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    /// Files it leaves when killed (a JVM's attach socket), removed after it.
    leaves: Vec<std::path::PathBuf>,
}

impl Program {
    fn start(cmd: &mut Command) -> Program {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let lines = support::lines_of(out);
        Program {
            child,
            lines,
            seen: Vec::new(),
            leaves: Vec::new(),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits (bounded) for a line starting with `word`; returns the rest.
    fn expect(&mut self, word: &str) -> String {
        let end = std::time::Instant::now() + ANNOUNCE_WITHIN;
        loop {
            if let Some(l) = self.seen.iter().find_map(|l| l.strip_prefix(word)) {
                return l.trim().to_string();
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(e) => panic!("no {word:?} line ({e}); got {:?}", self.seen),
            }
        }
    }

    /// Every line printed so far, waiting `quiet` for more.
    fn printed(&mut self, quiet: Duration) -> Vec<String> {
        while let Ok(l) = self.lines.recv_timeout(quiet) {
            self.seen.push(l);
        }
        self.seen.clone()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for f in &self.leaves {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(tool)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

fn top(doc: &serde_json::Value) -> &serde_json::Value {
    &doc["verdict"]
}

fn finding<'a>(doc: &'a serde_json::Value, rule: &str) -> &'a serde_json::Value {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {:#}", doc["findings"]))
}

/// The verdict's first sentence, for the record of what real programs got.
fn record_verdict(what: &str, doc: &serde_json::Value) {
    let s = top(doc)["summary"].as_str().unwrap_or("");
    let first = s.split(". ").next().unwrap_or(s);
    eprintln!("VERDICT [{what}]: {first}");
}

// ---------------------------------------------------------------------------------------
// Java

const JAVA: &str = r#"
import java.util.concurrent.LinkedBlockingQueue;

public class Stuck {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("deadlock")) {
            final Object a = new Object(), b = new Object();
            Thread left = new Thread(() -> { synchronized (a) { pause(); synchronized (b) { System.out.println("never"); } } }, "left-worker");
            Thread right = new Thread(() -> { synchronized (b) { pause(); synchronized (a) { System.out.println("never"); } } }, "right-worker");
            left.start();
            right.start();
            // Both hold their first lock before "ready".
            while (left.getState() != Thread.State.BLOCKED || right.getState() != Thread.State.BLOCKED) Thread.sleep(20);
            System.out.println("ready");
            left.join();
        } else {
            LinkedBlockingQueue<String> queue = new LinkedBlockingQueue<>();
            Thread consumer = new Thread(() -> { try { queue.take(); } catch (InterruptedException e) {} }, "queue-consumer");
            Thread sleeper = new Thread(() -> { try { Thread.sleep(600_000); } catch (InterruptedException e) {} }, "idle-sleeper");
            consumer.start();
            sleeper.start();
            System.out.println("ready");
            consumer.join();
        }
    }
    static void pause() { try { Thread.sleep(200); } catch (InterruptedException e) {} }
}
"#;

/// The compiled Java program's class dir, once per test binary; `None` without javac.
fn java_classes() -> Option<&'static Path> {
    static DIR: OnceLock<Option<TempDir>> = OnceLock::new();
    DIR.get_or_init(|| {
        if !have("javac") || !have("java") {
            return None;
        }
        let dir = TempDir::for_binary("java");
        std::fs::write(dir.0.join("Stuck.java"), JAVA).expect("write Stuck.java");
        let ok = Command::new("javac")
            .arg("Stuck.java")
            .current_dir(&dir.0)
            .status()
            .expect("run javac")
            .success();
        assert!(ok, "javac failed");
        // Readable by the other user a test runs the JVM as, whatever the umask.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        mode(&dir.0, 0o755).expect("chmod");
        mode(&dir.0.join("Stuck.class"), 0o644).expect("chmod");
        Some(dir)
    })
    .as_ref()
    .map(|d| d.0.as_path())
}

fn java(mode: &str, attach_listener: bool) -> Option<Program> {
    java_as(&[], mode, attach_listener)
}

/// `java` run through `prefix` (e.g. setpriv to another user), which must exec it.
fn java_as(prefix: &[&str], mode: &str, attach_listener: bool) -> Option<Program> {
    let Some(classes) = java_classes() else {
        eprintln!("skipped: javac/java not installed (Debian: openjdk-17-jdk-headless)");
        return None;
    };
    let mut cmd = match prefix.split_first() {
        Some((p, rest)) => {
            let mut c = Command::new(p);
            c.args(rest).arg("java");
            c
        }
        None => Command::new("java"),
    };
    if attach_listener {
        cmd.arg("-XX:+StartAttachListener");
    }
    // Small and quick to start on a shared machine.
    cmd.args(["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx64m", "-cp"])
        .arg(classes)
        .args(["Stuck", mode]);
    let mut p = Program::start(&mut cmd);
    // HotSpot removes its socket when it exits, not when it is killed.
    p.leaves = vec![format!("/tmp/.java_pid{}", p.pid()).into()];
    p.expect("ready");
    if attach_listener {
        let sock = format!("/tmp/.java_pid{}", p.pid());
        assert!(
            wait_until(Duration::from_secs(20), || Path::new(&sock).exists()),
            "the JVM's attach socket {sock} did not appear"
        );
    }
    Some(p)
}

#[test]
fn a_java_monitor_deadlock_is_named_from_the_jvms_own_thread_dump() {
    let Some(jvm) = java("deadlock", true) else {
        return;
    };
    let doc = inspect_json(jvm.pid(), &[]);
    record_verdict("JVM, two threads in a monitor deadlock", &doc);
    let rt = &doc["snapshot"]["process"]["runtime"];
    assert_eq!(rt["kind"], "jvm", "{rt:#}");
    assert!(
        rt["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("17") || v.parse::<f64>().is_ok() || !v.is_empty())
    );
    let v = top(&doc);
    assert_eq!(v["cause_found"], true, "{v:#}");
    assert_eq!(v["rule"], "managed_runtime", "{v:#}");
    let summary = v["summary"].as_str().expect("summary");
    assert!(summary.starts_with("This is a JVM (OpenJDK "), "{summary}");
    assert!(summary.contains("Java-level deadlock"), "{summary}");
    assert!(
        summary.contains("\"left-worker\" waits for a lock held by \"right-worker\""),
        "{summary}"
    );
    assert!(
        summary.contains("\"right-worker\" waits for a lock held by \"left-worker\""),
        "{summary}"
    );
    let f = finding(&doc, "managed_runtime");
    assert_eq!(f["cause"], "deadlock");
    let threads = f["facts"]["seen"]["threads"].as_array().expect("threads");
    assert_eq!(threads.len(), 2, "{threads:#?}");
    for t in threads {
        assert_eq!(t["state"], "BLOCKED (on object monitor)", "{t:#}");
        // The Java thread is the kernel thread hangscope saw waiting, by its native id.
        let tid = t["tid"].as_i64().expect("tid");
        let kernel = doc["snapshot"]["threads"]
            .as_array()
            .expect("threads")
            .iter()
            .find(|k| k["tid"] == tid)
            .unwrap_or_else(|| panic!("Java thread {tid} is not a thread of the process"));
        assert_eq!(kernel["name"], t["name"], "{kernel:#}");
        assert_eq!(t["kernel_syscall"].as_str(), Some("futex"), "{t:#}");
    }

    // Opted out: no question to the JVM, and then no cause from the kernel alone.
    let doc = inspect_json(jvm.pid(), &["--no-runtime-tools"]);
    record_verdict("JVM deadlock, --no-runtime-tools", &doc);
    assert_eq!(top(&doc)["cause_found"], false, "{:#}", top(&doc));
    assert_eq!(
        doc["snapshot"]["process"]["runtime"]["unavailable"]["reason"],
        "disabled"
    );
    assert!(doc["snapshot"]["process"]["runtime"]["view"].is_null());
}

/// A JVM of another user: HotSpot accepts root as a peer, and its socket is owned by that
/// user, as the check before connecting wants.
#[test]
fn a_jvm_of_another_user_is_asked_as_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let prefix = [
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
    ];
    let Some(jvm) = java_as(&prefix, "deadlock", true) else {
        return;
    };
    let status = std::fs::read_to_string(format!("/proc/{}/status", jvm.pid())).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );
    let doc = inspect_json(jvm.pid(), &[]);
    record_verdict("JVM deadlock, JVM as uid 65534, hangscope as root", &doc);
    assert_eq!(
        top(&doc)["cause_found"],
        true,
        "{:#}",
        doc["snapshot"]["process"]["runtime"]
    );
    assert_eq!(top(&doc)["rule"], "managed_runtime");
}

/// The process's children's PIDs, from /proc/PID/task/*/children.
fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// A JVM in PID and mount namespaces of its own, with its own /tmp (a tmpfs): its attach
/// socket is /tmp/.java_pid<its PID there>, seen from here only as
/// /proc/PID/root/tmp/.java_pid<NSPID>.
#[test]
fn a_jvm_in_its_own_pid_and_mount_namespaces_is_reached_by_its_pid_there() {
    let Some(classes) = java_classes() else {
        eprintln!("skipped: javac/java not installed (Debian: openjdk-17-jdk-headless)");
        return;
    };
    let ns_ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ns_ok {
        eprintln!("skipped: cannot make PID and mount namespaces (unshare)");
        return;
    }
    // The shell stays the namespace's init (PID 1), so the JVM is PID 2 there; the class is
    // copied, through the working directory, into the new /tmp (java would look for "." by
    // its absolute path, under the tmpfs).
    let script = "mount -t tmpfs tmpfs /tmp && mkdir /tmp/c && cp Stuck.class /tmp/c/ && \
                  { java -XX:+StartAttachListener -XX:TieredStopAtLevel=1 -Xmx64m -cp /tmp/c \
                  Stuck deadlock & wait; }";
    let mut ns = Program::start(
        Command::new("unshare")
            .args([
                "--pid",
                "--kill-child",
                "--mount",
                "--mount-proc",
                "sh",
                "-c",
                script,
            ])
            .current_dir(classes),
    );
    ns.expect("ready");
    let mut jvm = None;
    assert!(wait_until(Duration::from_secs(20), || {
        jvm = children(ns.pid()).into_iter().flat_map(children).find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "java")
        });
        jvm.is_some()
    }));
    let pid = jvm.expect("the JVM's PID");
    let nspid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last().map(str::to_string))
        .expect("NSpid");
    assert_ne!(
        nspid,
        pid.to_string(),
        "the JVM has a PID of its own in its namespace"
    );
    let inside = format!("/proc/{pid}/root/tmp/.java_pid{nspid}");
    assert!(
        wait_until(Duration::from_secs(20), || Path::new(&inside).exists()),
        "{inside} did not appear"
    );
    assert!(!Path::new(&format!("/tmp/.java_pid{nspid}")).exists() || nspid == "1");
    let doc = inspect_json(pid, &[]);
    record_verdict("JVM deadlock in its own PID and mount namespaces", &doc);
    let v = top(&doc);
    assert_eq!(v["cause_found"], true, "{v:#}");
    assert!(
        v["summary"]
            .as_str()
            .is_some_and(|s| s.contains("Java-level deadlock")),
        "{v:#}"
    );
    let tool = doc["snapshot"]["process"]["runtime"]["view"]["tool"]
        .as_str()
        .unwrap_or("");
    assert!(
        tool.contains(&format!("/proc/{pid}/root/tmp/.java_pid{nspid}")),
        "{tool}"
    );
}

#[test]
fn an_idle_jvm_is_not_stuck() {
    let Some(jvm) = java("idle", true) else {
        return;
    };
    let doc = inspect_json(jvm.pid(), &[]);
    record_verdict("JVM, idle threads (sleep, queue take)", &doc);
    assert_eq!(top(&doc)["cause_found"], false, "{:#}", top(&doc));
    let f = finding(&doc, "managed_runtime");
    assert_eq!(f["severity"], "info", "{f:#}");
    assert_eq!(f["facts"]["seen"]["kind"], "nothing", "{f:#}");
    let view = &doc["snapshot"]["process"]["runtime"]["view"];
    assert!(
        view["threads_total"].as_u64().is_some_and(|n| n >= 3),
        "{view:#}"
    );
}

#[test]
fn a_jvm_without_its_attach_listener_gets_no_signal_and_a_gap() {
    let Some(mut jvm) = java("deadlock", false) else {
        return;
    };
    let pid = jvm.pid();
    let sock = format!("/tmp/.java_pid{pid}");
    assert!(!Path::new(&sock).exists());
    let doc = inspect_json(pid, &[]);
    record_verdict("JVM deadlock, attach listener not running", &doc);
    let rt = &doc["snapshot"]["process"]["runtime"];
    assert_eq!(rt["unavailable"]["reason"], "no_attach_listener", "{rt:#}");
    assert_eq!(rt["catches_sigquit"], true, "{rt:#}");
    let v = top(&doc);
    assert_eq!(v["cause_found"], false, "{v:#}");
    assert_eq!(v["rule"], "managed_runtime", "{v:#}");
    let summary = v["summary"].as_str().expect("summary");
    assert!(
        summary.contains("its attach listener is not running"),
        "{summary}"
    );
    assert!(
        v["next_step"]
            .as_str()
            .is_some_and(|n| n.contains("--jvm-attach")),
        "{v:#}"
    );
    assert!(
        doc["snapshot"]["gaps"]
            .as_array()
            .expect("gaps")
            .iter()
            .any(|g| g["what"]
                .as_str()
                .is_some_and(|w| w.contains("JVM's own view"))),
        "{:#}",
        doc["snapshot"]["gaps"]
    );
    // No SIGQUIT reached it: HotSpot answers one without a trigger file by printing a thread
    // dump on its stdout, and with one by starting the listener; neither happened.
    let printed = jvm.printed(Duration::from_millis(500));
    assert!(
        !printed.iter().any(|l| l.contains("Full thread dump")),
        "the JVM printed a thread dump: it got a SIGQUIT: {printed:?}"
    );
    assert!(!Path::new(&sock).exists(), "{sock} appeared");

    // Asked for: the listener is started as jcmd does, and the deadlock is named.
    let doc = inspect_json(pid, &["--jvm-attach"]);
    record_verdict("JVM deadlock, --jvm-attach", &doc);
    assert_eq!(top(&doc)["cause_found"], true, "{:#}", top(&doc));
    assert!(
        top(&doc)["summary"]
            .as_str()
            .is_some_and(|s| s.contains("Java-level deadlock"))
    );
    assert!(Path::new(&sock).exists(), "{sock} did not appear");
    let printed = jvm.printed(Duration::from_millis(200));
    assert!(
        !printed.iter().any(|l| l.contains("Full thread dump")),
        "{printed:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Go

const GO: &str = r#"package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"sync"
)

var a, b sync.Mutex

func transfer(first, second *sync.Mutex, ready *sync.WaitGroup) {
	first.Lock()
	ready.Done()
	ready.Wait()
	second.Lock()
	fmt.Println("never")
}

func main() {
	mode := os.Args[1]
	if mode != "idle" {
		var ready sync.WaitGroup
		ready.Add(2)
		go transfer(&a, &b, &ready)
		go transfer(&b, &a, &ready)
		ready.Wait()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	handler := http.DefaultServeMux
	if mode == "deadlock-nopprof" {
		// A server of its own: /debug/pprof/ is not there.
		handler = http.NewServeMux()
		handler.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	}
	fmt.Println("port", ln.Addr().(*net.TCPAddr).Port)
	panic(http.Serve(ln, handler))
}
"#;

/// The built Go program, once per test binary; `None` without go.
fn go_binary() -> Option<&'static Path> {
    static BIN: OnceLock<Option<TempDir>> = OnceLock::new();
    BIN.get_or_init(|| {
        if !have("go") {
            return None;
        }
        let dir = TempDir::for_binary("go");
        std::fs::write(dir.0.join("main.go"), GO).expect("write main.go");
        std::fs::write(
            dir.0.join("go.mod"),
            "module example.com/stuck\n\ngo 1.19\n",
        )
        .expect("write go.mod");
        let out = Command::new("go")
            .args(["build", "-o", "stuck", "."])
            .current_dir(&dir.0)
            .env("GOCACHE", dir.0.join("cache"))
            .env("GOPATH", dir.0.join("gopath"))
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("CGO_ENABLED", "0")
            .output()
            .expect("run go build");
        assert!(
            out.status.success(),
            "go build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dir)
    })
    .as_ref()
    .map(|d| d.0.join("stuck"))
    .map(|p| &*Box::leak(p.into_boxed_path()))
}

fn go(mode: &str) -> Option<Program> {
    let Some(bin) = go_binary() else {
        eprintln!("skipped: go not installed (Debian: golang-go)");
        return None;
    };
    let mut p = Program::start(Command::new(bin).arg(mode));
    p.expect("port");
    Some(p)
}

#[test]
fn goroutines_deadlocked_on_a_mutex_are_named_from_pprof() {
    let Some(prog) = go("deadlock") else {
        return;
    };
    let doc = inspect_json(prog.pid(), &[]);
    record_verdict(
        "Go, two goroutines deadlocked on sync.Mutex, pprof served",
        &doc,
    );
    let rt = &doc["snapshot"]["process"]["runtime"];
    assert_eq!(rt["kind"], "go", "{rt:#}");
    assert!(
        rt["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("go1.")),
        "{rt:#}"
    );
    assert_eq!(rt["module"], "example.com/stuck", "{rt:#}");
    let v = top(&doc);
    assert_eq!(v["cause_found"], true, "{v:#}");
    assert_eq!(v["rule"], "managed_runtime", "{v:#}");
    let summary = v["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("This is a Go program (go1."),
        "{summary}"
    );
    assert!(summary.contains("2 goroutines"), "{summary}");
    assert!(summary.contains("sync.Mutex"), "{summary}");
    let f = finding(&doc, "managed_runtime");
    assert_eq!(f["cause"], "lock_wait");
    let seen = &f["facts"]["seen"];
    assert!(
        seen["lasted_ms"].as_u64().is_some_and(|ms| ms >= 1000),
        "{seen:#}"
    );
    let threads = seen["threads"].as_array().expect("threads");
    assert_eq!(threads.len(), 2, "{threads:#?}");
    for t in threads {
        assert_eq!(t["waits_for"], "sync.(*Mutex).Lock", "{t:#}");
        assert!(
            t["at"]
                .as_str()
                .is_some_and(|a| a.starts_with("main.transfer (")),
            "{t:#}"
        );
    }
}

#[test]
fn goroutines_deadlocked_without_pprof_get_the_gap_and_the_safe_next_step() {
    let Some(prog) = go("deadlock-nopprof") else {
        return;
    };
    let doc = inspect_json(prog.pid(), &[]);
    record_verdict("Go deadlock, no pprof endpoint", &doc);
    let rt = &doc["snapshot"]["process"]["runtime"];
    assert_eq!(rt["unavailable"]["reason"], "no_endpoint", "{rt:#}");
    assert!(
        rt["unavailable"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("404")),
        "{rt:#}"
    );
    let v = top(&doc);
    assert_eq!(v["cause_found"], false, "{v:#}");
    assert_eq!(v["rule"], "managed_runtime", "{v:#}");
    let next = v["next_step"].as_str().expect("next");
    assert!(next.contains("dlv attach"), "{next}");
    assert!(next.contains("Never send it SIGQUIT"), "{next}");
    // Still alive: nothing hangscope did ends a Go program.
    assert!(Path::new(&format!("/proc/{}", prog.pid())).exists());
}

#[test]
fn an_idle_go_server_is_not_stuck() {
    let Some(prog) = go("idle") else {
        return;
    };
    let doc = inspect_json(prog.pid(), &[]);
    record_verdict("Go, idle HTTP server with pprof", &doc);
    assert_eq!(top(&doc)["cause_found"], false, "{:#}", top(&doc));
    let f = finding(&doc, "managed_runtime");
    assert_eq!(f["facts"]["seen"]["kind"], "nothing", "{f:#}");
    assert_eq!(f["severity"], "info", "{f:#}");
}

// ---------------------------------------------------------------------------------------
// Python

/// The interpreter itself (not a shim script in front of it); `None` without python3.
fn python() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !exe.is_empty()).then_some(exe)
}

const PY_DEADLOCK: &str = r#"
import threading, time
a, b = threading.Lock(), threading.Lock()
both = threading.Barrier(2)
def take(x, y):
    with x:
        both.wait()
        with y:
            print("never")
ts = [threading.Thread(target=take, args=(a, b), name="left"),
      threading.Thread(target=take, args=(b, a), name="right")]
for t in ts: t.start()
print("ready", flush=True)
for t in ts: t.join()
"#;

const PY_IDLE: &str = r#"
import queue, threading
q = queue.Queue()
threading.Thread(target=q.get, name="consumer").start()
print("ready", flush=True)
"#;

fn py_spy_installed() -> bool {
    Command::new("py-spy")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn a_python_threading_deadlock_says_cpython_and_what_would_see_it() {
    let Some(py) = python() else {
        eprintln!("skipped: python3 not installed");
        return;
    };
    let mut p = Program::start(Command::new(&py).args(["-c", PY_DEADLOCK]));
    p.expect("ready");
    // Both threads in their second acquire, for good.
    let pid = p.pid();
    assert!(wait_steady(
        Duration::from_secs(20),
        Duration::from_millis(300),
        || { thread_count(pid) == 3 }
    ));
    let doc = inspect_json(pid, &[]);
    record_verdict("CPython, threading deadlock on two Locks", &doc);
    let rt = &doc["snapshot"]["process"]["runtime"];
    assert_eq!(rt["kind"], "cpython", "{rt:#}");
    let v = top(&doc);
    assert_eq!(v["rule"], "managed_runtime", "{v:#}");
    assert!(
        v["summary"]
            .as_str()
            .is_some_and(|s| s.contains("This is CPython 3.")),
        "{v:#}"
    );
    if py_spy_installed() {
        assert!(rt["view"].is_object(), "{rt:#}");
        // py-spy's frames put both threads in their own code (`with y:`), and their native
        // stacks in CPython's lock acquire: a lock wait, on both.
        assert_eq!(v["cause_found"], true, "{v:#}");
        let f = finding(&doc, "managed_runtime");
        assert_eq!(f["cause"], "lock_wait", "{f:#}");
        assert!(
            v["summary"]
                .as_str()
                .is_some_and(|s| s.matches("waits for a threading.Lock at take").count() == 2),
            "{v:#}"
        );
    } else {
        // Kernel state alone (three futex waits) does not tell a deadlock from idle threads:
        // no cause is claimed, and the report says what would see it.
        assert_eq!(rt["unavailable"]["reason"], "tool_absent", "{rt:#}");
        assert_eq!(v["cause_found"], false, "{v:#}");
        assert!(
            v["summary"]
                .as_str()
                .is_some_and(|s| s.contains("py-spy is not installed"))
        );
        assert!(
            v["next_step"]
                .as_str()
                .is_some_and(|s| s.contains("py-spy dump --nonblocking"))
        );
    }
}

#[test]
fn an_idle_python_is_not_stuck() {
    let Some(py) = python() else {
        eprintln!("skipped: python3 not installed");
        return;
    };
    let mut p = Program::start(Command::new(&py).args(["-c", PY_IDLE]));
    p.expect("ready");
    let doc = inspect_json(p.pid(), &[]);
    record_verdict("CPython, idle consumer on queue.get", &doc);
    assert_eq!(doc["snapshot"]["process"]["runtime"]["kind"], "cpython");
    assert_eq!(top(&doc)["cause_found"], false, "{:#}", top(&doc));
}

// ---------------------------------------------------------------------------------------
// Bounds

/// A process that looks like a JVM (it maps a file named libjvm.so) and serves an attach
/// socket that accepts and never answers: the question is given up in time, and said so.
const PY_SILENT_JVM: &str = r#"
import mmap, os, socket, sys
lib = os.path.join(sys.argv[1], "libjvm.so")
with open(lib, "wb") as f: f.write(b"\0" * 4096)
f = open(lib, "rb")
m = mmap.mmap(f.fileno(), 4096, prot=mmap.PROT_READ)
s = socket.socket(socket.AF_UNIX)
s.bind("/tmp/.java_pid%d" % os.getpid())
s.listen(8)
print("ready", flush=True)
held = []
while True:
    held.append(s.accept())
"#;

#[test]
fn an_attach_socket_that_never_answers_is_given_up_within_the_deadline() {
    let Some(py) = python() else {
        eprintln!("skipped: python3 not installed");
        return;
    };
    let dir = TempDir::new("silent-jvm");
    let mut p = Program::start(Command::new(&py).args(["-c", PY_SILENT_JVM, dir.path()]));
    p.expect("ready");
    let sock = format!("/tmp/.java_pid{}", p.pid());
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _remove = Remove(sock);
    let started = std::time::Instant::now();
    let doc = inspect_json(p.pid(), &["--window", "0", "--deadline", "3s"]);
    let took = started.elapsed();
    record_verdict("a fake JVM whose attach socket never answers", &doc);
    let rt = &doc["snapshot"]["process"]["runtime"];
    assert_eq!(rt["kind"], "jvm", "{rt:#}");
    assert_eq!(rt["unavailable"]["reason"], "timed_out", "{rt:#}");
    // At most 2 s for the question, within the 3 s deadline.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(
        doc["snapshot"]["collect_ms"]
            .as_u64()
            .is_some_and(|ms| ms < 3_000),
        "{}",
        doc["snapshot"]["collect_ms"]
    );
    assert_eq!(top(&doc)["cause_found"], false, "{:#}", top(&doc));
}
