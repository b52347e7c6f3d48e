//! Wait chains on real processes: hangscope follows the target's wait to the process that
//! holds it up, hop by hop, and names the root. Each chain has a healthy twin whose run names
//! no chain. Programs: coreutils (yes, cat, sleep), util-linux flock, python3 for two flocks
//! taken in opposite orders.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hangscope_model::{ChainEnd, Document};
use support::procs::*;
use support::*;

fn syscall_name_is(pid: i32, nr: i64) -> bool {
    syscall_nr(pid, pid) == Some(nr)
}

fn chain_pids(doc: &Document) -> Vec<i32> {
    doc.chain
        .as_ref()
        .map(|c| c.hops.iter().map(|h| h.pid).collect())
        .unwrap_or_default()
}

/// `yes | cat` with cat stopped: yes fills the pipe and blocks writing; the chain goes from
/// yes to cat, which is the root because it is stopped.
#[test]
fn a_writer_blocked_on_a_stopped_reader_leads_to_the_reader() {
    let mut yes = Proc::spawn(
        Command::new("yes")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let out = yes.0.stdout.take().expect("yes's stdout");
    let cat = Proc::spawn(
        Command::new("cat")
            .stdin(Stdio::from(out))
            .stdout(Stdio::null()),
    );
    cat.signal(libc::SIGSTOP);
    assert!(
        wait_until(Duration::from_secs(10), || state_of(cat.pid()) == Some('T')
            && state_of(yes.pid()) == Some('S')),
        "cat stopped and yes blocked on the full pipe"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let doc = document(yes.pid(), &[]);
    assert_eq!(chain_pids(&doc), [yes.pid(), cat.pid()], "{:#?}", doc.chain);
    let chain = doc.chain.as_ref().expect("a chain");
    assert!(
        matches!(
            chain.end,
            ChainEnd::Root {
                why: Some(hangscope_model::Cause::Stopped),
                ..
            }
        ),
        "{:?}",
        chain.end
    );
    assert_eq!(chain.hops[0].rule, "pipe_wait");
    let root = doc
        .verdict
        .root
        .as_ref()
        .expect("the verdict names the root");
    assert_eq!(root.pid, cat.pid());
    assert!(
        doc.verdict
            .next_step
            .contains(&format!("kill -CONT {}", cat.pid())),
        "the next step is the root's: {}",
        doc.verdict.next_step
    );
    // The chain's other process is in the document, so a saved file replays the chain.
    assert_eq!(doc.others.len(), 1);
    assert_eq!(doc.others[0].process.pid, cat.pid());
    let saved = TempDir::new("chain");
    let file = format!("{}/doc.json", saved.path());
    std::fs::write(&file, doc.to_json_pretty()).expect("save");
    let out = hangscope(&["replay", &file, "--json"]);
    let replayed = Document::from_json(&String::from_utf8_lossy(&out.stdout)).expect("replay");
    assert_eq!(replayed.chain, doc.chain, "replay walks the same chain");

    // The text report tells the chain under the verdict.
    let text = hangscope(&[&yes.pid().to_string(), "--no-color"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("CHAIN"))
        .unwrap_or_else(|| panic!("a CHAIN line:\n{text}"));
    assert!(
        line.contains(&format!("yes {} → cat {} (root)", yes.pid(), cat.pid())),
        "{line}"
    );
}

/// The twin: cat reads, yes writes; nothing is stuck and no chain is told.
#[test]
fn a_pipeline_that_flows_has_no_chain() {
    let mut yes = Proc::spawn(
        Command::new("yes")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let out = yes.0.stdout.take().expect("yes's stdout");
    let cat = Proc::spawn(
        Command::new("cat")
            .stdin(Stdio::from(out))
            .stdout(Stdio::null()),
    );
    assert!(wait_until(Duration::from_secs(10), || state_of(cat.pid()).is_some()));
    let doc = document(yes.pid(), &["--window", "1s"]);
    assert!(!doc.verdict.cause_found, "{:?}", doc.verdict);
    assert_eq!(chain_pids(&doc), [yes.pid()]);
    assert!(doc.verdict.root.is_none());
}

/// `flock FILE sleep` holds the lock while it waits for its child; a second flock waits for
/// the lock. The chain goes waiter → holder (lock_wait) → its child (child_wait), an idle
/// root: the lock is free when sleep ends.
#[test]
fn a_lock_holder_waiting_on_its_child_leads_to_the_child() {
    let dir = TempDir::new("chain-flock");
    let lock = format!("{}/lock", dir.path());
    let holder = Proc::spawn(
        Command::new("flock")
            .args([&lock, "sleep", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    let sleep_pid = || {
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.pid()))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i32>().ok())
    };
    assert!(
        wait_until(Duration::from_secs(10), || sleep_pid().is_some()),
        "flock started sleep"
    );
    let child = sleep_pid().expect("sleep's pid");
    // flock's child holds the lock's fd too: it must die with the test, not outlive it.
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the child of a process this test started.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _child_guard = KillOnDrop(child);

    // The twin first: the holder alone waits for its child, which is what parents do.
    let doc = document(holder.pid(), &["--window", "500ms"]);
    assert!(!doc.verdict.cause_found, "{:?}", doc.verdict);
    assert_eq!(chain_pids(&doc), [holder.pid()]);
    let edge = doc
        .findings
        .iter()
        .find(|f| f.rule == "child_wait")
        .expect("the holder's wait for its child is context");
    assert_eq!(edge.severity, hangscope_model::Severity::Info);
    assert_eq!(edge.next.as_ref().and_then(|n| n.pid), Some(child));

    let waiter = Proc::spawn(
        Command::new("flock")
            .args([&lock, "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    assert!(
        wait_until(Duration::from_secs(10), || syscall_name_is(
            waiter.pid(),
            libc::SYS_flock
        )),
        "the second flock waits for the lock"
    );
    std::thread::sleep(Duration::from_millis(1200));
    for forced in [false, true] {
        // Kernels without CONFIG_PROC_CHILDREN: the children come from a scan of /proc.
        let mut cmd = Command::new(HANGSCOPE);
        cmd.args([&waiter.pid().to_string(), "--json"]);
        if forced {
            cmd.env("HANGSCOPE_NO_PROC_CHILDREN", "1");
        }
        let out = cmd.output().expect("run hangscope");
        let doc = Document::from_json(&String::from_utf8_lossy(&out.stdout)).expect("document");
        assert_eq!(
            chain_pids(&doc),
            [waiter.pid(), holder.pid(), child],
            "forced scan {forced}: {:#?}",
            doc.chain
        );
        let chain = doc.chain.as_ref().expect("a chain");
        let rules: Vec<&str> = chain.hops.iter().map(|h| h.rule.as_str()).collect();
        assert_eq!(rules, ["lock_wait", "child_wait", ""]);
        assert_eq!(
            chain.end,
            ChainEnd::Root {
                why: None,
                idle: true
            }
        );
        assert_eq!(doc.verdict.root.as_ref().map(|r| r.pid), Some(child));
    }
}

/// Two processes take two flocks in opposite orders: each waits for the other. The chain
/// from either one closes on the other: a cycle, told from where you stand.
#[test]
fn two_processes_waiting_on_each_others_flock_are_a_cycle() {
    let dir = TempDir::new("chain-cycle");
    let (a, b) = (format!("{}/a", dir.path()), format!("{}/b", dir.path()));
    let script = "import fcntl, sys, time\n\
                  first = open(sys.argv[1], 'w'); fcntl.flock(first, fcntl.LOCK_EX)\n\
                  time.sleep(0.5)\n\
                  second = open(sys.argv[2], 'w'); fcntl.flock(second, fcntl.LOCK_EX)\n\
                  time.sleep(600)\n";
    let one = Proc::spawn(
        Command::new("python3")
            .args(["-c", script, &a, &b])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    let two = Proc::spawn(
        Command::new("python3")
            .args(["-c", script, &b, &a])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            syscall_name_is(one.pid(), libc::SYS_flock)
                && syscall_name_is(two.pid(), libc::SYS_flock)
        }),
        "both wait for the other's lock"
    );
    std::thread::sleep(Duration::from_millis(1200));
    for (me, other) in [(&one, &two), (&two, &one)] {
        let doc = document(me.pid(), &[]);
        assert_eq!(
            chain_pids(&doc),
            [me.pid(), other.pid()],
            "{:#?}",
            doc.chain
        );
        let chain = doc.chain.as_ref().expect("a chain");
        assert_eq!(chain.end, ChainEnd::Cycle { back_to: 0 });
        assert!(doc.verdict.root.as_ref().is_some_and(|r| r.cycle));
    }
}

/// An OFD lock (fcntl F_OFD_SETLKW, as QEMU and some databases take them) belongs to an open
/// file description: /proc/locks names no process for the holder or the waiter (pid -1). The
/// waiter's chain still leads to the holder, found by the fdinfo of the fds on that file. Twin:
/// a holder that lets go leaves the waiter holding the lock, with no cause and no chain.
#[test]
fn a_wait_behind_an_ofd_lock_leads_to_its_holder() {
    let script = "import fcntl, os, struct, sys, time\n\
                  fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n\
                  lk = struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0) + bytes(4)\n\
                  fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, lk)\n\
                  if sys.argv[2] == 'release':\n    os.close(fd)\n\
                  time.sleep(600)\n";
    for release in [false, true] {
        let dir = TempDir::new("chain-ofd");
        let file = format!("{}/image.lock", dir.path());
        let how = if release { "release" } else { "hold" };
        let spawn = |how: &str| {
            Proc::spawn(
                Command::new("python3")
                    .args(["-c", script, &file, how])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
            )
        };
        let holder = spawn(how);
        assert!(
            wait_until(Duration::from_secs(10), || {
                std::fs::read_to_string("/proc/locks")
                    .is_ok_and(|l| l.lines().any(|l| l.contains("OFDLCK")))
                    || release
            }),
            "the holder takes its lock"
        );
        std::thread::sleep(Duration::from_millis(300));
        let waiter = spawn("hold");
        if release {
            // The waiter gets the lock and sleeps holding it.
            assert!(
                wait_steady(Duration::from_secs(10), Duration::from_millis(500), || {
                    syscall_name_is(waiter.pid(), libc::SYS_clock_nanosleep)
                        || syscall_name_is(waiter.pid(), libc::SYS_select)
                }),
                "the waiter took the released lock"
            );
            let doc = document(waiter.pid(), &[]);
            assert!(!doc.verdict.cause_found, "{:#?}", doc.verdict);
            assert!(
                doc.findings.iter().all(|f| f.rule != "lock_wait"),
                "{:#?}",
                doc.findings
            );
            assert_eq!(chain_pids(&doc), [waiter.pid()]);
            assert!(doc.verdict.root.is_none());
            continue;
        }
        assert!(
            wait_until(Duration::from_secs(10), || syscall_name_is(
                waiter.pid(),
                libc::SYS_fcntl
            )),
            "the waiter blocks in fcntl"
        );
        std::thread::sleep(Duration::from_millis(2200));
        let doc = document(waiter.pid(), &[]);
        let lock = doc
            .findings
            .iter()
            .find(|f| f.rule == "lock_wait")
            .unwrap_or_else(|| panic!("no lock_wait: {:#?}", doc.findings));
        assert_eq!(lock.severity, hangscope_model::Severity::Cause);
        assert!(
            lock.summary
                .contains(&format!("held by process {}", holder.pid())),
            "{}",
            lock.summary
        );
        assert_eq!(chain_pids(&doc), [waiter.pid(), holder.pid()]);
        assert!(matches!(
            doc.chain.as_ref().map(|c| &c.end),
            Some(ChainEnd::Root { idle: true, .. })
        ));
    }
}

/// A process holding a write lease (fcntl F_SETLEASE, as Samba and file servers use them)
/// ignores the SIGIO that asks it to give the lease up: another process's open() of the file
/// waits in __break_lease, and its chain leads to the lease holder. Twin: a holder that gives
/// the lease up when asked lets the open go on, with no cause.
#[test]
fn an_open_behind_a_lease_leads_to_the_lease_holder() {
    let holder_script = "import fcntl, os, signal, sys, time\n\
                         fd = os.open(sys.argv[1], os.O_RDONLY)\n\
                         give_up = lambda *a: fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)\n\
                         signal.signal(signal.SIGIO, give_up if sys.argv[2] == 'yield' else (lambda *a: None))\n\
                         fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)\n\
                         print('leased', flush=True)\n\
                         time.sleep(600)\n";
    let opener_script = "import os, sys, time\n\
                         os.open(sys.argv[1], os.O_RDWR)\n\
                         time.sleep(600)\n";
    for give_up in [false, true] {
        let dir = TempDir::new("chain-lease");
        let file = format!("{}/share.doc", dir.path());
        std::fs::write(&file, "x").expect("write the file");
        let mut holder = Proc::spawn(
            Command::new("python3")
                .args([
                    "-c",
                    holder_script,
                    &file,
                    if give_up { "yield" } else { "hold" },
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped()),
        );
        let leased = lines_of(holder.0.stdout.take().expect("stdout"));
        assert_eq!(
            leased.recv_timeout(Duration::from_secs(10)).ok().as_deref(),
            Some("leased")
        );
        let opener = Proc::spawn(
            Command::new("python3")
                .args(["-c", opener_script, &file])
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        );
        if give_up {
            assert!(
                wait_steady(Duration::from_secs(10), Duration::from_millis(500), || {
                    syscall_name_is(opener.pid(), libc::SYS_clock_nanosleep)
                        || syscall_name_is(opener.pid(), libc::SYS_select)
                }),
                "the open went on once the lease was given up"
            );
            let doc = document(opener.pid(), &[]);
            assert!(!doc.verdict.cause_found, "{:#?}", doc.verdict);
            assert!(doc.findings.iter().all(|f| f.rule != "lock_wait"));
            assert_eq!(chain_pids(&doc), [opener.pid()]);
            continue;
        }
        assert!(
            wait_until(Duration::from_secs(10), || syscall_name_is(
                opener.pid(),
                libc::SYS_openat
            )),
            "the opener blocks in openat"
        );
        std::thread::sleep(Duration::from_millis(2200));
        let doc = document(opener.pid(), &[]);
        let lock = doc
            .findings
            .iter()
            .find(|f| f.rule == "lock_wait")
            .unwrap_or_else(|| panic!("no lock_wait: {:#?}", doc.findings));
        assert_eq!(lock.severity, hangscope_model::Severity::Cause);
        assert!(
            lock.summary.contains(&format!(
                "for process {} to give up its lease on {file}",
                holder.pid()
            )),
            "{}",
            lock.summary
        );
        assert_eq!(chain_pids(&doc), [opener.pid(), holder.pid()]);
    }
}

/// On a host with 1,000 more processes, a pipeline longer than the walk's bound, its last
/// stage stopped: each stage blocks writing to the next. The walk stops at its bound on hops,
/// within the run's deadline, though every hop's pipe peers come from a scan over all the
/// processes.
#[test]
fn a_long_chain_stops_at_the_bound_within_the_deadline() {
    const CROWD: usize = 1000;
    const STAGES: usize = hangscope_diagnose::chain::MAX_HOPS + 4;
    let crowd: Vec<Proc> = (0..CROWD)
        .map(|_| {
            Proc::spawn(
                Command::new("sleep")
                    .arg("600")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
            )
        })
        .collect();
    let mut yes = Proc::spawn(
        Command::new("yes")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let mut upstream = yes.0.stdout.take();
    let mut cats = Vec::new();
    for i in 0..STAGES {
        let last = i + 1 == STAGES;
        let mut cmd = Command::new("cat");
        cmd.stdin(Stdio::from(
            upstream.take().expect("the previous stage's stdout"),
        ));
        cmd.stdout(if last { Stdio::null() } else { Stdio::piped() });
        let mut cat = Proc::spawn(&mut cmd);
        upstream = cat.0.stdout.take();
        cats.push(cat);
    }
    let last = cats.last().expect("cats");
    last.signal(libc::SIGSTOP);
    // Every stage but the stopped one in write(), steadily: the pipes are full.
    let writers: Vec<i32> = std::iter::once(yes.pid())
        .chain(cats.iter().take(STAGES - 1).map(Proc::pid))
        .collect();
    assert!(
        wait_steady(Duration::from_secs(30), Duration::from_millis(500), || {
            writers
                .iter()
                .all(|&p| syscall_name_is(p, libc::SYS_write) && state_of(p) == Some('S'))
        }),
        "every stage blocks writing"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let started = Instant::now();
    let doc = document(yes.pid(), &["--deadline", "5s"]);
    let took = started.elapsed();
    let chain = doc.chain.as_ref().expect("a chain");
    assert!(
        matches!(
            chain.end,
            ChainEnd::HopLimit { .. } | ChainEnd::Deadline { .. }
        ),
        "{:?} {:#?}",
        chain.end,
        chain.hops
    );
    let pids: Vec<i32> = chain.hops.iter().map(|h| h.pid).collect();
    assert_eq!(
        pids,
        writers[..pids.len()],
        "the chain follows the pipeline"
    );
    assert!(pids.len() > 2, "{:#?}", chain.hops);
    // The deadline bounds collection, hops included; the watchdog's grace is 3 s.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    drop(crowd);
}

/// redis-cli waits on redis-server, which gdb holds in a tracing stop; gdb itself waits for
/// the shell command it runs. The chain goes from the client through the server to gdb: the
/// root is the debugger left attached, told from the client.
#[test]
fn a_client_of_a_server_held_by_a_debugger_leads_to_the_debugger() {
    let port = free_port();
    let server = redis(port);
    let gdb = gdb_holding(server.pid());
    let client = Proc::quiet(Command::new("redis-cli").args(["-p", &port.to_string(), "PING"]));
    std::thread::sleep(Duration::from_millis(1500));
    let doc = document(client.pid(), &["--window", "1s"]);
    let pids = chain_pids(&doc);
    assert_eq!(pids[..2], [client.pid(), server.pid()], "{:#?}", doc.chain);
    let chain = doc.chain.as_ref().expect("a chain");
    assert_eq!(chain.hops[1].rule, "stopped", "{:#?}", chain.hops);
    assert_eq!(
        chain.hops[1].next.as_ref().and_then(|n| n.pid),
        Some(gdb.pid()),
        "the server's hop names its tracer"
    );
    assert_eq!(pids.get(2), Some(&gdb.pid()), "{:#?}", chain.hops);
    // gdb waits for its shell command: context the chain follows, not a cause in gdb.
    assert_eq!(chain.hops[2].rule, "child_wait");
    // hangscope changed nothing: the server is still gdb's, still in its tracing stop.
    assert_eq!(tracer_of(server.pid()), Some(gdb.pid()));
    assert_eq!(state_of(server.pid()), Some('t'));
}

/// A silent DNS resolver on this host, for `answer` false; one that answers every query with
/// NXDOMAIN otherwise. Bound to 127.53.0.1:53 (free on a test machine: not systemd-resolved's
/// 127.0.0.53).
fn resolver(answer: bool) -> Proc {
    let script = "import socket, sys\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  s.bind(('127.53.0.1', 53))\n\
                  print('ready', flush=True)\n\
                  while True:\n\
                  \x20   q, peer = s.recvfrom(4096)\n\
                  \x20   if sys.argv[1] == 'answer':\n\
                  \x20       s.sendto(q[:2] + b'\\x81\\x83' + q[4:6] + bytes(6) + q[12:], peer)\n";
    let mut p = Proc::spawn(
        Command::new("python3")
            .args(["-c", script, if answer { "answer" } else { "silent" }])
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    let out = p.0.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).expect("ready");
    assert_eq!(
        line.trim(),
        "ready",
        "the resolver did not bind 127.53.0.1:53"
    );
    p
}

/// glibc's resolver (getent hosts), pointed at the local resolver by a resolv.conf bind-mounted
/// in a mount namespace of its own, so the host's resolv.conf is untouched.
fn lookup(dir: &TempDir) -> Proc {
    let conf = format!("{}/resolv.conf", dir.path());
    std::fs::write(
        &conf,
        "nameserver 127.53.0.1\noptions timeout:30 attempts:1\n",
    )
    .expect("resolv.conf");
    Proc::quiet(Command::new("unshare").args([
        "-m",
        "sh",
        "-c",
        &format!("mount --bind {conf} /etc/resolv.conf && exec getent hosts example.invalid"),
    ]))
}

/// A lookup waits on a resolver on this host that never answers: the chain goes from the
/// client to the resolver's process. The twin, a resolver that answers, ends the lookup.
#[test]
fn a_lookup_on_a_silent_local_resolver_leads_to_the_resolver() {
    let dir = TempDir::new("chain-dns");
    let silent = resolver(false);
    let client = lookup(&dir);
    // unshare execs sh, which execs getent: the same pid, once it is in poll().
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{}/comm", client.pid()))
                .is_ok_and(|c| c.trim() == "getent")
                && support::in_poll(client.pid(), client.pid())
        }),
        "getent waits for an answer"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let doc = document(client.pid(), &["--window", "1s"]);
    let top = &doc.findings[0];
    assert_eq!(top.rule, "name_resolution", "{top:#?}");
    assert_eq!(top.next.as_ref().and_then(|n| n.pid), Some(silent.pid()));
    assert!(
        top.summary
            .contains(&format!("process {} (python3) on this host", silent.pid())),
        "{}",
        top.summary
    );
    assert_eq!(chain_pids(&doc), [client.pid(), silent.pid()]);
    drop(client);
    drop(silent);

    let answering = resolver(true);
    let mut client = lookup(&dir);
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = client.0.try_wait() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(10) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // getent's exit code 2: the name was not found, which is the answer it was given.
    assert_eq!(status.and_then(|s| s.code()), Some(2), "the lookup ends");
    let doc = document(answering.pid(), &["--window", "500ms"]);
    assert!(!doc.verdict.cause_found, "{:?}", doc.verdict);
}
