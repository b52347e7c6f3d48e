//! Threads in known states (`__scenario thread-zoo`, `__scenario many-threads`), and what
//! hangscope says about each: the decoded syscall, the object it is joined to, the activity.

// Test helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use hangscope_collect::threads::memory::Memory;
use hangscope_collect::threads::syscall::{self, Arch, Context, RawSyscall};
use serde_json::Value;

use support::*;

/// Starts `hangscope __scenario NAME ARGS` in a temp dir and waits (bounded) for its
/// announcement of each key in `until`.
fn start(name: &str, args: &[&str], until: &[&str]) -> Started {
    let mut s = scenario_in_dir(&[], name, args);
    s.wait_for(until);
    s
}

/// Word `i` after "KEY " in the announcement of KEY, decimal or 0x-hex.
fn num(s: &Started, key: &str, i: usize) -> i64 {
    let w = s
        .announced(key)
        .split_whitespace()
        .nth(i)
        .unwrap_or_else(|| panic!("no word {i} in {key} {:?}", s.announced(key)));
    match w.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).unwrap(),
        None => w.parse().unwrap(),
    }
}

/// Waits (bounded) until the thread's syscall file shows one of `names` (or "running").
fn wait_in(pid: i32, tid: i64, names: &[&str]) {
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    let end = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < end {
        last = std::fs::read_to_string(&path).unwrap_or_default();
        let name = match syscall::parse(&last) {
            Ok(RawSyscall::Blocked { nr, .. }) => syscall::name(Arch::host(), nr),
            Ok(RawSyscall::Running) => "running".into(),
            _ => String::new(),
        };
        if names.contains(&name.as_str()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("thread {tid} never reached {names:?}; last {last:?}");
}

fn thread(doc: &Value, tid: i64) -> &Value {
    doc["snapshot"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"].as_i64() == Some(tid))
        .unwrap_or_else(|| panic!("no thread {tid}"))
}

fn waits(t: &Value) -> &Vec<Value> {
    t["syscall"]["waits_on"].as_array().unwrap()
}

fn start_zoo() -> Started {
    let z = start(
        "thread-zoo",
        &[],
        &[
            "poller",
            "sleeper",
            "spinner",
            "mutex_holder",
            "mutex_waiter",
            "pipe_reader",
            "epoller",
            "flocker",
            "main",
        ],
    );
    let pid = z.pid();
    let poll = ["poll", "ppoll"];
    let sleep = ["clock_nanosleep", "nanosleep", "running"];
    let epoll = ["epoll_wait", "epoll_pwait", "epoll_pwait2"];
    wait_in(pid, num(&z, "poller", 0), &poll);
    wait_in(pid, num(&z, "sleeper", 0), &sleep);
    wait_in(pid, num(&z, "mutex_waiter", 0), &["futex"]);
    wait_in(pid, num(&z, "pipe_reader", 0), &["read"]);
    wait_in(pid, num(&z, "epoller", 0), &epoll);
    wait_in(pid, num(&z, "flocker", 0), &["flock"]);
    wait_in(
        pid,
        num(&z, "main", 0),
        &["pause", "ppoll", "rt_sigsuspend"],
    );
    z
}

#[test]
fn every_wait_is_decoded_joined_and_classified() {
    let z = start_zoo();
    let doc = inspect_json(z.pid(), &["--window", "1s"]);
    let window = &doc["snapshot"]["window"];
    assert!(window["looks"].as_u64().unwrap() >= 3, "{window}");

    // poll on a silent loopback peer: the fd, POLLIN, the 10 s timeout, and the fd is a socket
    // whose fdinfo was read although the fd listing skips sockets.
    let poller = thread(&doc, num(&z, "poller", 0));
    let poll_fd = num(&z, "poller", 1);
    assert!(["poll", "ppoll"].contains(&poller["syscall"]["name"].as_str().unwrap()));
    assert_eq!(poller["syscall"]["timeout_ms"], 10_000);
    assert_eq!(waits(poller)[0]["kind"], "fd");
    assert_eq!(waits(poller)[0]["fd"], poll_fd);
    assert_eq!(waits(poller)[0]["events"][0], "POLLIN");
    assert_eq!(fd(&doc, poll_fd)["kind"], "socket");
    assert!(fd(&doc, poll_fd)["info"].is_object());
    assert_eq!(poller["activity"]["busy"], false);

    // The 100 ms sleep loop: the duration read from the target, and a rate near 10/s.
    let sleeper = thread(&doc, num(&z, "sleeper", 0));
    let a = &sleeper["activity"];
    let rate = a["rate_per_s"].as_f64().unwrap_or(0.0);
    assert!((3.0..=12.0).contains(&rate), "{a}");
    let periodic = a["periodic"].as_str().unwrap();
    assert!(periodic.contains("100 ms"), "{periodic}");
    assert!(a["progressed"].as_bool().unwrap());

    // The spinner: runnable, CPU growing, no voluntary switches.
    let spinner = thread(&doc, num(&z, "spinner", 0));
    assert_eq!(spinner["activity"]["busy"], true, "{spinner}");
    assert_eq!(spinner["activity"]["voluntary_switches"], 0);

    // A pthread mutex held by another thread: the futex, its address, the owner's TID.
    let waiter = thread(&doc, num(&z, "mutex_waiter", 0));
    assert_eq!(waiter["syscall"]["name"], "futex");
    let w = &waits(waiter)[0];
    assert_eq!(w["kind"], "futex");
    assert_eq!(w["addr"].as_i64(), Some(num(&z, "mutex_waiter", 1)));
    assert_eq!(w["owner_tid"].as_i64(), Some(num(&z, "mutex_holder", 0)));
    assert!(w["op"].as_str().unwrap().starts_with("FUTEX_WAIT"));

    // read on a pipe nobody writes: the fd is the pipe's read end; blocked all along.
    let reader = thread(&doc, num(&z, "pipe_reader", 0));
    let pipe_r = num(&z, "pipe_reader", 1);
    assert_eq!(reader["syscall"]["name"], "read");
    assert_eq!(waits(reader)[0]["fd"], pipe_r);
    assert_eq!(fd(&doc, pipe_r)["kind"], "pipe");
    assert_eq!(reader["activity"]["progressed"], false);
    assert!(reader["activity"]["blocked_at_least_ms"].as_u64().unwrap() >= 900);
    assert!(reader["last_ran_ms_ago"].as_f64().unwrap() >= 900.0);

    // epoll_wait: the epoll fd's watch list gives the watched socket.
    let epoller = thread(&doc, num(&z, "epoller", 0));
    let (epfd, watched) = (num(&z, "epoller", 1), num(&z, "epoller", 2));
    assert!(
        epoller["syscall"]["name"]
            .as_str()
            .unwrap()
            .starts_with("epoll_")
    );
    assert!(
        waits(epoller)
            .iter()
            .any(|w| w["fd"] == watched && w["via_epoll"] == epfd),
        "{epoller}"
    );
    assert_eq!(fd(&doc, watched)["kind"], "socket");

    // flock on a file another open file description holds: the fd and the lock op.
    let flocker = thread(&doc, num(&z, "flocker", 0));
    let ffd = num(&z, "flocker", 1);
    assert_eq!(flocker["syscall"]["name"], "flock");
    assert_eq!(waits(flocker)[0]["kind"], "lock");
    assert_eq!(waits(flocker)[0]["fd"], ffd);
    assert_eq!(waits(flocker)[0]["op"], "LOCK_EX");

    // Each thread's basic facts are there.
    for t in doc["snapshot"]["threads"].as_array().unwrap() {
        assert!(!t["name"].as_str().unwrap().is_empty());
        assert!(!t["state"].as_str().unwrap().is_empty());
    }
}

#[test]
fn a_thread_id_puts_that_thread_first_with_its_wait_on_one_line() {
    let z = start_zoo();
    let tid = num(&z, "pipe_reader", 0);
    let pipe_r = num(&z, "pipe_reader", 1);
    let pipe_w = num(&z, "pipe_reader", 2);
    let doc = inspect_json(tid as i32, &["--window", "0"]);
    assert_eq!(doc["snapshot"]["process"]["pid"], z.pid());
    let first = &doc["snapshot"]["threads"][0];
    assert_eq!(first["tid"].as_i64(), Some(tid));
    assert_eq!(first["focus"], true);
    assert!(doc["snapshot"]["window"].is_null());

    let out = hangscope(&[&tid.to_string(), "--window", "0", "--no-color"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(" pipe_reader "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with('▶'), "{line}");
    // The header says whose thread it is.
    assert!(
        text.lines()
            .take(3)
            .any(|l| l.starts_with(&format!("thread {tid} of process {}", z.pid()))),
        "{text}"
    );
    assert!(
        line.contains(&format!("read(fd {pipe_r}) → pipe:[")),
        "{line}"
    );
    assert!(
        line.contains(&format!("other end: fd {pipe_w} here")),
        "{line}"
    );
    // Its line under THREADS (a finding may name it above).
    let table = &text[text.find("THREADS").unwrap_or(0)..];
    let poll = table.lines().find(|l| l.contains(" poller ")).unwrap();
    assert!(
        poll.contains(&format!(
            "(fd {} POLLIN, timeout 10000 ms) → TCP 127.0.0.1:",
            num(&z, "poller", 1)
        )) && poll.contains(" ESTAB"),
        "{poll}"
    );
}

#[test]
fn a_thousand_threads_on_one_lock_are_one_line() {
    let s = start("many-threads", &["--count", "1000"], &["main"]);
    let pid = s.pid();
    // Wait until the last worker is in its futex wait.
    let all_in = wait_until(Duration::from_secs(30), || thread_count(pid) >= 1001);
    assert!(all_in, "only {} threads", thread_count(pid));
    let started = Instant::now();
    let doc = inspect_json(pid, &["--window", "0"]);
    let wall = started.elapsed();
    let threads = doc["snapshot"]["threads"].as_array().unwrap();
    assert!(threads.len() >= 1001);
    let owner = num(&s, "main", 0);
    let waiting = threads
        .iter()
        .filter(|t| t["syscall"]["waits_on"][0]["owner_tid"].as_i64() == Some(owner))
        .count();
    // Workers still on their way into the wait are allowed for; most are in it.
    assert!(
        waiting >= 900,
        "{waiting} waiting on the main thread's mutex"
    );
    eprintln!(
        "1,000 threads, --window 0: collect {} ms, whole run {} ms",
        doc["snapshot"]["collect_ms"],
        wall.as_millis()
    );

    let out = hangscope(&[&pid.to_string(), "--window", "0", "--no-color"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let group = text
        .lines()
        .find(|l| l.contains(" threads S  futex wait on 0x"))
        .unwrap_or_else(|| panic!("{text}"));
    // "mutex held by N", or "for a mutex (__lll_lock_wait), held by N" with its stack.
    assert!(group.contains(&format!("held by {owner}")), "{group}");
    assert!(group.contains("names worker-*"), "{group}");
    let section = text
        .split("THREADS")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    assert!(section.lines().count() < 10, "{section}");
}

/// Memory that is never readable: decoding must still name the call and its fd.
struct NoMemory;

impl Memory for NoMemory {
    fn read(&self, addr: u64, _len: usize) -> Result<Vec<u8>, hangscope_collect::ReadError> {
        Err(hangscope_collect::ReadError::other(format!(
            "not recorded ({addr:#x})"
        )))
    }
}

#[test]
fn aarch64_syscall_lines_decode_with_the_aarch64_table() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/proc/task-syscall-aarch64-constructed.txt"
    ))
    .unwrap();
    let ctx = Context {
        arch: Arch::Aarch64,
        mem: &NoMemory,
        fds: &[],
        tids: &[],
    };
    let mut seen = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (expected, raw) = line.split_once('\t').unwrap();
        let st = syscall::decode(&syscall::parse(raw).unwrap(), &ctx);
        assert_eq!(st.name, expected, "{line}");
        seen += 1;
        match expected {
            "read" => {
                assert!(matches!(
                    st.waits_on[0],
                    hangscope_model::WaitObject::Fd { fd: 7, .. }
                ));
                assert_eq!(st.summary, "read(7, 0xffff893fe6f0, 64)");
            }
            "flock" => {
                assert_eq!(
                    st.waits_on,
                    vec![hangscope_model::WaitObject::Lock {
                        fd: 13,
                        op: "LOCK_EX".into()
                    }]
                );
            }
            "wait4" => {
                assert_eq!(
                    st.waits_on,
                    vec![hangscope_model::WaitObject::Process { pid: -1 }]
                );
            }
            "ppoll" | "futex" | "clock_nanosleep" => {
                // Their arguments point into memory that was not recorded: said, not guessed.
                assert!(st.decode_error.is_some(), "{st:?}");
            }
            "epoll_pwait" => {
                assert_eq!(st.timeout_ms, Some(-1));
                assert!(st.decode_error.as_deref().unwrap().contains("epoll fd 5"));
            }
            "running" => assert!(st.running),
            "not in a syscall" => assert_eq!(st.nr, -1),
            other => panic!("fixture names {other}"),
        }
    }
    assert_eq!(seen, 9);
}
