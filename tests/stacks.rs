//! User-space stacks from a copy (crates/collect/src/stacks): C, C++ and Rust programs whose
//! threads block in poll, futex, nanosleep and read under functions of their own names;
//! hangscope must name those functions on each thread's stack (demangled as gdb names them),
//! and never stop a thread while it reads them.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{TempDir, hangscope, inspect_json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stacks");

/// The C program, built with `flags`; `None` (and a note) without a C compiler.
fn build(dir: &TempDir, name: &str, flags: &[&str]) -> Option<String> {
    let mut args = vec!["-g", "-pthread"];
    args.extend_from_slice(flags);
    build_with(dir, name, "cc", "blocked.c", &args, "gcc")
}

/// Fixture `source` built by `compiler` with `args` (the source and output appended); `None`,
/// and a note naming the Debian package, when the compiler is not there.
fn build_with(
    dir: &TempDir,
    name: &str,
    compiler: &str,
    source: &str,
    args: &[&str],
    package: &str,
) -> Option<String> {
    let out = format!("{}/{name}", dir.path());
    let built = Command::new(compiler)
        .args(args)
        .arg(format!("{FIXTURES}/{source}"))
        .args(["-o", &out])
        .status();
    match built {
        Ok(s) if s.success() => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: no {compiler} ({e}); Debian package {package}");
            None
        }
        other => panic!("{compiler} {args:?} {source}: {other:?}"),
    }
}

/// The running program, killed on drop.
struct Target(Child);

impl Target {
    fn start(path: &str, pollers: usize) -> Target {
        let mut child = Command::new(path)
            .arg(pollers.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the C program");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(line.trim(), "ready");
        let t = Target(child);
        let pid = t.pid();
        // Every thread in its syscall, bounded.
        let settled = support::wait_until(Duration::from_secs(5), || {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|d| {
                    d.flatten().all(|e| {
                        std::fs::read_to_string(e.path().join("syscall"))
                            .is_ok_and(|s| s != "running\n")
                    })
                })
                .unwrap_or(false)
        });
        assert!(settled, "the threads did not block");
        t
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Samples every thread's State and TracerPid until stopped (bounded to 60 s); returns what
/// was seen that a stop would show: "TID: State t" or "TID: TracerPid N".
fn watch_states(pid: i32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<String>, usize)> {
    std::thread::spawn(move || {
        let mut bad = Vec::new();
        let mut samples = 0;
        let until = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            if let Ok(d) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                for e in d.flatten() {
                    let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
                        continue;
                    };
                    for l in status.lines() {
                        let stopped = l.starts_with("State:")
                            && (l.contains("(stopped)") || l.contains("(tracing stop)"));
                        let traced = l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0";
                        if stopped || traced {
                            bad.push(format!("{:?}: {l}", e.file_name()));
                        }
                    }
                }
                samples += 1;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        (bad, samples)
    })
}

/// The function names on the stack of the thread blocked in `call`, innermost first.
fn functions_in(doc: &serde_json::Value, call: &str) -> Vec<Vec<String>> {
    doc["snapshot"]["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .filter(|t| t["syscall"]["name"] == call)
        .map(|t| {
            t["user_stack"]["frames"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter_map(|f| f["function"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

fn assert_path(doc: &serde_json::Value, call: &str, want: &[&str]) {
    let stacks = functions_in(doc, call);
    assert!(!stacks.is_empty(), "no thread in {call}");
    assert!(
        stacks.iter().any(|names| {
            // In this order, innermost first, with anything between them.
            let mut it = names.iter();
            want.iter().all(|w| it.any(|n| n == w))
        }),
        "{call}: want {want:?} in order on a stack, got {stacks:?}; gaps {}",
        doc["snapshot"]["gaps"]
    );
}

/// hangscope's document on `target` (default `--stacks`), its threads' State and TracerPid
/// sampled all along: none may be stopped or traced.
fn inspect_unstopped(target: &Target) -> serde_json::Value {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_states(target.pid(), stop.clone());
    let doc = inspect_json(target.pid(), &["--window", "0"]);
    stop.store(true, Ordering::Relaxed);
    let (bad, samples) = watcher.join().expect("watcher");
    assert!(samples > 0, "the states were never sampled");
    assert!(bad.is_empty(), "a thread was stopped or traced: {bad:?}");
    doc
}

fn check(flags: &[&str], tag: &str) {
    let dir = TempDir::new(tag);
    let Some(path) = build(&dir, tag, flags) else {
        return;
    };
    let target = Target::start(&path, 1);
    let doc = inspect_unstopped(&target);
    assert_path(
        &doc,
        "poll",
        // The program's own frames: libc's (start_thread) need libc6-dbg's DWARF, which a
        // loaded machine may not read within the stacks' time (a gap then says so).
        &["wait_for_socket", "fetch_reply", "poller"],
    );
    assert_path(&doc, "futex", &["wait_for_work", "condwaiter"]);
    assert_path(&doc, "clock_nanosleep", &["nap_between_rounds", "sleeper"]);
    assert_path(&doc, "read", &["read_command", "reader"]);
    // The main thread, in pthread_join: down to main.
    assert_path(&doc, "futex", &["main"]);
    // File and line, from DWARF.
    let poll = doc["snapshot"]["threads"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["syscall"]["name"] == "poll")
        .expect("poller");
    let frame = poll["user_stack"]["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["function"] == "fetch_reply")
        .expect("fetch_reply frame");
    assert!(
        frame["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("blocked.c"))
            && frame["line"].as_u64() == Some(19),
        "fetch_reply's place: {frame}"
    );
}

#[test]
fn c_with_frame_pointers_at_o0() {
    // -O0 keeps RBP-based frames: the wrapper in libc does not save RBP, so it is found in
    // the copy.
    check(&["-O0"], "stacks-o0");
}

#[test]
fn c_without_frame_pointers_at_o2() {
    check(&["-O2", "-fomit-frame-pointer"], "stacks-o2");
}

/// C++: methods of namespaced classes and of class templates, named as gdb names them (scope,
/// template arguments, no parameters), at -O0 (std::thread's own template frames too) and -O2.
#[test]
fn cpp_names_are_demangled_with_namespaces_and_templates() {
    let dir = TempDir::new("stacks-cpp");
    for opt in ["-O0", "-O2"] {
        let name = format!("blocked{opt}");
        let Some(path) = build_with(
            &dir,
            &name,
            "g++",
            "blocked.cpp",
            &["-g", "-pthread", opt],
            "g++",
        ) else {
            return;
        };
        let target = Target::start(&path, 1);
        let doc = inspect_unstopped(&target);
        assert_path(
            &doc,
            "poll",
            &[
                "meta::RpcChannel<meta::ListDbReply>::wait_reply",
                "meta::MetaClient::list_db",
            ],
        );
        assert_path(&doc, "futex", &["work::JobQueue::pop"]);
        assert_path(&doc, "clock_nanosleep", &["work::Backoff<100000>::nap"]);
        assert_path(&doc, "read", &["work::CommandReader::read_command"]);
        if opt == "-O0" {
            assert_path(
                &doc,
                "read",
                &[
                    "work::CommandReader::read_command",
                    "std::__invoke_impl<void, void (work::CommandReader::*)(), \
                     work::CommandReader*>",
                    "std::thread::_Invoker<std::tuple<void (work::CommandReader::*)(), \
                     work::CommandReader*> >::_M_invoke<0ul, 1ul>",
                    "std::thread::_State_impl<std::thread::_Invoker<std::tuple<void \
                     (work::CommandReader::*)(), work::CommandReader*> > >::_M_run",
                ],
            );
        }
    }
}

/// Rust: functions of modules, a method of a generic type and closures, by their demangled
/// paths without the hash (as Rust's own backtraces print them).
#[test]
fn rust_names_are_demangled_paths() {
    let dir = TempDir::new("stacks-rust");
    for opt in ["0", "2"] {
        let name = format!("blocked-o{opt}");
        let level = format!("-Copt-level={opt}");
        let Some(path) = build_with(&dir, &name, "rustc", "blocked.rs", &["-g", &level], "rustc")
        else {
            return;
        };
        let target = Target::start(&path, 1);
        let doc = inspect_unstopped(&target);
        assert_path(
            &doc,
            "poll",
            &[
                "blocked::rpc::Channel<Reply>::wait_reply",
                "blocked::rpc::MetaClient::list_db",
            ],
        );
        if opt == "0" {
            // A frame of its own at -O0; inlined at -O2, where only DWARF names it, which a
            // loaded machine may not read within the stacks' time (a gap then says so).
            assert_path(
                &doc,
                "poll",
                &[
                    "blocked::rpc::MetaClient::list_db",
                    "blocked::main::{{closure}}",
                ],
            );
        }
        assert_path(&doc, "futex", &["blocked::work::wait_for_job"]);
        assert_path(
            &doc,
            "clock_nanosleep",
            &["blocked::work::nap_between_rounds"],
        );
        // At -O2 std's File::read keeps a frame pointer that read_command, built without,
        // does not: RBP is guessed from the copy, and the record File::read pushed holds
        // read_command's RBP, which is not a frame pointer; the guess must still stop there.
        assert_path(
            &doc,
            "read",
            &[
                "<std::sys::fs::unix::File>::read",
                "blocked::work::read_command",
            ],
        );
    }
}

#[test]
fn threads_section_shows_the_path_and_shares_one_stack() {
    let dir = TempDir::new("stacks-text");
    let Some(path) = build(&dir, "blocked", &["-O0"]) else {
        return;
    };
    // Eight pollers: one wait, one stack, printed once with the count.
    let target = Target::start(&path, 8);
    let out = hangscope(&[&target.pid().to_string(), "--window", "0", "--no-color"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let threads = text.split("THREADS").nth(1).expect("a THREADS section");
    assert!(
        threads.contains("8 × from wait_for_socket (blocked.c:17) ← fetch_reply (blocked.c:19)"),
        "{threads}"
    );
    assert!(
        threads.contains("from read_command (blocked.c:37) ← reader"),
        "{threads}"
    );
    // What each futex wait is for, from the glibc function the stack is in: the condition
    // variable's waiter and the main thread's join are not taken for mutex waits.
    let line_of = |from: &str| {
        let lines: Vec<&str> = threads.lines().collect();
        lines
            .windows(2)
            .find(|w| w[1].contains(from))
            .map(|w| w[0].to_string())
            .unwrap_or_default()
    };
    let waiter = line_of("from wait_for_work (blocked.c:24)");
    assert!(
        waiter.contains("futex wait on 0x")
            && waiter.contains(" for a condition variable (")
            && !waiter.contains("held by"),
        "{waiter}\n{threads}"
    );
    let main = line_of("from main (blocked.c:");
    assert!(
        main.contains(" for a thread to end (") && !main.contains("held by"),
        "{main}\n{threads}"
    );
    let verbose = hangscope(&[
        &target.pid().to_string(),
        "--window",
        "0",
        "--no-color",
        "-v",
    ]);
    let v = String::from_utf8_lossy(&verbose.stdout);
    assert_eq!(v.matches("8 × user stack:").count(), 1, "{v}");
}

#[test]
fn off_reads_no_stack() {
    let dir = TempDir::new("stacks-off");
    let Some(path) = build(&dir, "blocked", &["-O2"]) else {
        return;
    };
    let target = Target::start(&path, 1);
    let doc = inspect_json(target.pid(), &["--window", "0", "--stacks", "off"]);
    let any = doc["snapshot"]["threads"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t.get("user_stack").is_some());
    assert!(!any);
}

/// gcc -O2 turns `return f(x);` into a jump: `relay`'s frame is gone from the stack, and is
/// rebuilt from the call-site records (`ask` calls `relay`, `relay` jumps to `block_in_read`),
/// marked as inferred. `pick` jumps to `via_a` or to `via_b`, both of which jump to
/// `block_in_read_too`: two ways, so none is put between `block_in_read_too` and `choose`.
#[test]
fn tail_calls_are_rebuilt() {
    let dir = TempDir::new("stacks-tail");
    let Some(path) = build_with(
        &dir,
        "tailcall",
        "cc",
        "tailcall.c",
        &["-g", "-O2", "-pthread"],
        "gcc",
    ) else {
        return;
    };
    let target = Target::start(&path, 1);
    let doc = inspect_unstopped(&target);
    let threads = doc["snapshot"]["threads"].as_array().expect("threads");
    let stack_with = |name: &str| -> Vec<serde_json::Value> {
        threads
            .iter()
            .filter_map(|t| t["user_stack"]["frames"].as_array())
            .find(|fs| fs.iter().any(|f| f["function"] == name))
            .unwrap_or_else(|| panic!("no stack with {name}: {threads:?}"))
            .clone()
    };
    let names = |fs: &[serde_json::Value]| -> Vec<String> {
        fs.iter()
            .map(|f| f["function"].as_str().unwrap_or("?").to_string())
            .collect()
    };

    let asker = stack_with("block_in_read");
    let at = |name: &str| asker.iter().position(|f| f["function"] == name);
    let (inner, relay, outer) = (at("block_in_read"), at("relay"), at("ask"));
    assert!(
        inner.is_some() && relay == inner.map(|i| i + 1) && outer == relay.map(|i| i + 1),
        "want block_in_read, relay, ask: {:?}",
        names(&asker)
    );
    let relay = &asker[relay.unwrap_or_default()];
    assert_eq!(relay["tail_call"], true, "{relay}");
    assert!(
        relay["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("tailcall.c"))
            && relay["line"] == 17,
        "{relay}"
    );
    let on_stack = asker.iter().filter(|f| f["tail_call"] == true).count();
    assert_eq!(on_stack, 1, "only relay is rebuilt: {:?}", names(&asker));

    let chooser = stack_with("block_in_read_too");
    let at = |name: &str| chooser.iter().position(|f| f["function"] == name);
    assert!(
        at("block_in_read_too").map(|i| i + 1) == at("choose"),
        "nothing between block_in_read_too and choose: {:?}",
        names(&chooser)
    );
    assert!(
        !chooser.iter().any(|f| f["tail_call"] == true),
        "{:?}",
        names(&chooser)
    );

    // The report says the frame was inferred.
    let out = hangscope(&[&target.pid().to_string(), "--window", "0", "--no-color"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("relay (tailcall.c:17) [tail call, inferred] ← ask (tailcall.c:18)"),
        "{text}"
    );
}

/// After a debugger has attached and detached (as in the seed's incident: strace -p, gdb -p),
/// the poll and the sleep are resumed in restart_syscall: they are still read as the poll on
/// its fd and the sleep they are, from wchan and their arguments, and said to be resumed.
#[test]
fn calls_resumed_after_a_debugger_detached_are_read_as_themselves() {
    let dir = TempDir::new("stacks-restart");
    let Some(path) = build(&dir, "blocked", &["-O0"]) else {
        return;
    };
    let target = Target::start(&path, 1);
    let pid = target.pid();
    match Command::new("gdb")
        .args(["-batch", "-nx", "-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: no gdb ({e})");
            return;
        }
        other => panic!("gdb: {other:?}"),
    }
    let resumed = |tid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"))
            .is_ok_and(|s| s.starts_with(&format!("{} ", libc::SYS_restart_syscall)))
    };
    let tids: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        support::wait_until(Duration::from_secs(10), || {
            tids.iter().filter(|t| resumed(t)).count() >= 2
        }),
        "the poll and the sleep were not resumed in restart_syscall"
    );
    let doc = inspect_json(pid, &["--window", "0"]);
    let threads = doc["snapshot"]["threads"].as_array().expect("threads");
    let poller = threads
        .iter()
        .find(|t| t["syscall"]["name"] == "poll")
        .unwrap_or_else(|| panic!("no thread read as in poll: {threads:#?}"));
    assert!(
        poller["syscall"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("restart_syscall")),
        "{poller:#}"
    );
    assert!(
        poller["syscall"]["waits_on"]
            .as_array()
            .is_some_and(|w| w.iter().any(|o| o["kind"] == "fd" && o["fd"] == 3)),
        "its fd: {poller:#}"
    );
    assert!(
        threads
            .iter()
            .any(|t| t["syscall"]["name"] == "clock_nanosleep"),
        "the sleeper: {threads:#?}"
    );
    assert!(
        !threads
            .iter()
            .any(|t| t["syscall"]["name"] == "restart_syscall"),
        "{threads:#?}"
    );
}

/// libc6-dbg's DWARF is compressed: the first run inflates it and keeps it in the cache
/// directory, the next reads the same frames from there, and a cache turned off is never
/// written.
#[test]
fn compressed_dwarf_is_inflated_once_and_kept() {
    let dir = TempDir::new("stacks-cache");
    let Some(path) = build(&dir, "blocked", &["-O0"]) else {
        return;
    };
    let target = Target::start(&path, 1);
    let cache = format!("{}/cache", dir.path());
    let run = |cache_dir: &str| -> Vec<Vec<String>> {
        let out = Command::new(support::HANGSCOPE)
            .args([&target.pid().to_string(), "--json", "--window", "0"])
            .env("HANGSCOPE_CACHE_DIR", cache_dir)
            .output()
            .expect("run hangscope");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        doc["snapshot"]["threads"]
            .as_array()
            .expect("threads")
            .iter()
            .map(|t| {
                t["user_stack"]["frames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| format!("{} {} {}", f["function"], f["file"], f["line"]))
                    .collect()
            })
            .collect()
    };
    let entries = || -> usize {
        std::fs::read_dir(&cache)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".dwarf"))
                    .count()
            })
            .unwrap_or(0)
    };
    let off = run("off");
    assert!(!std::path::Path::new(&cache).exists());
    let cold = run(&cache);
    // libc's frames have a file only from its DWARF: libc6-dbg's, compressed.
    let libc_dwarf = cold
        .iter()
        .flatten()
        .any(|f| f.contains("\"start_thread\"") && f.contains("pthread_create.c"));
    if !libc_dwarf {
        eprintln!("skipped the cache part: no DWARF for libc's frames (Debian package libc6-dbg)");
        return;
    }
    assert_eq!(entries(), 1, "one entry, for libc's debug file");
    let warm = run(&cache);
    assert_eq!(entries(), 1);
    assert_eq!(warm, cold, "the same frames from the kept DWARF");
    // Unless a loaded machine cut the uncached run's DWARF short (a gap says so).
    let off_has_dwarf = off
        .iter()
        .flatten()
        .any(|f| f.contains("\"start_thread\"") && f.contains("pthread_create.c"));
    if off_has_dwarf {
        assert_eq!(off, cold, "the same frames without a cache");
    }
}

/// A Rust std Mutex records no owner in its word: the waiter's stack says it waits for a
/// mutex, and the one other thread blocked since before that wait (in a read) is named as its
/// likely holder. The healthy twin (the read without the lock) gets no cause.
#[test]
fn a_rust_mutex_held_across_a_read_is_found_and_its_healthy_twin_is_not() {
    let dir = TempDir::new("stacks-rust-mutex");
    let Some(path) = build_with(&dir, "held", "rustc", "held.rs", &["-g", "-O"], "rustc") else {
        return;
    };
    for mode in ["held", "free"] {
        let mut child = Command::new(&path)
            .arg(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start held.rs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(line.trim(), "ready");
        let pid = child.id() as i32;
        // Long enough blocked for a wait that should have ended (the rules' 1 s), bounded.
        std::thread::sleep(Duration::from_millis(1500));
        let doc = inspect_json(pid, &["--window", "1s", "--no-chain"]);
        let findings = doc["findings"].as_array().cloned().unwrap_or_default();
        let tid_of = |name: &str| {
            doc["snapshot"]["threads"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["name"] == name))
                .and_then(|t| t["tid"].as_i64())
        };
        if mode == "held" {
            let f = findings
                .iter()
                .find(|f| f["rule"] == "mutex_holder_blocked")
                .unwrap_or_else(|| panic!("no mutex finding: {doc:#}"));
            assert_eq!(
                f["facts"]["owner_from"], "only_thread_blocked_before",
                "{f:#}"
            );
            assert_eq!(f["subject"]["tid"].as_i64(), tid_of("holder"), "{f:#}");
            assert_eq!(
                f["facts"]["waiters"][0]["tid"].as_i64(),
                tid_of("waiter"),
                "{f:#}"
            );
            assert_eq!(doc["verdict"]["cause_found"], true, "{doc:#}");
        } else {
            assert_eq!(doc["verdict"]["cause_found"], false, "{doc:#}");
        }
        drop(child.stdin.take());
        let ended = support::wait_until(Duration::from_secs(5), || {
            child.try_wait().ok().flatten().is_some()
        });
        if !ended {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// A library loaded after the run began (dlopen during the window, after the stacks' worker
/// first read the maps) holds the frame the thread blocks in at the look: it must be named,
/// as the modules are opened again when the maps changed.
#[test]
fn a_library_loaded_during_the_window_is_named() {
    let dir = TempDir::new("late-library");
    let lib = format!("{}/liblate.so", dir.path());
    let Some(_) = build_with(
        &dir,
        "liblate.so",
        "cc",
        "late_library_lib.c",
        &["-g", "-O0", "-fPIC", "-shared"],
        "gcc",
    ) else {
        return;
    };
    let Some(path) = build_with(&dir, "late", "cc", "late_library.c", &["-g", "-O0"], "gcc") else {
        return;
    };
    let mut child = Command::new(&path)
        .args([lib.as_str(), "1500"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the C program");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let target = Target(child);
    let pid = target.pid();
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    assert_eq!(line.trim(), "ready");
    let maps_before = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    // The window outlasts the 1.5 s before the load: the look is at its end.
    let doc = inspect_json(pid, &["--window", "3s", "--no-chain"]);
    line.clear();
    out.read_line(&mut line).expect("loaded line");
    assert_eq!(
        line.trim(),
        "loaded",
        "the library was not loaded during the run"
    );
    assert!(
        !maps_before.contains("liblate.so"),
        "the library was mapped before the run began"
    );
    assert_path(&doc, "read", &["read_in_late_library", "main"]);
    let frame = doc["snapshot"]["threads"][0]["user_stack"]["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["function"] == "read_in_late_library")
        .cloned()
        .unwrap_or_default();
    assert!(
        frame["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("late_library_lib.c")),
        "its place, from the library's DWARF: {frame}"
    );
    drop(target);
}
