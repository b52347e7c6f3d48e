//! The fd table of a real process holding one of each kind of fd (issue: foundation).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::process::CommandExt;
use std::process::Command;

use support::*;

#[test]
fn reports_every_kind_of_fd_with_its_details() {
    let dir = TempDir::new("fds");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    let fds = holder.expect("fds");
    let doc = inspect_json(holder.pid(), &[]);

    assert_eq!(doc["schema_version"].as_str().map(|v| &v[..2]), Some("1."));
    assert_eq!(doc["snapshot"]["process"]["pid"], holder.pid());

    let kept = fd(&doc, Started::field(&fds, "kept"));
    assert_eq!(kept["kind"], "regular");
    assert_eq!(kept["target"], format!("{}/kept.txt", dir.path()));
    assert_ne!(kept["deleted"], true, "not deleted (absent means false)");
    let flags: Vec<&str> = kept["info"]["flags_decoded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        flags.contains(&"O_WRONLY") && flags.contains(&"O_CLOEXEC"),
        "{flags:?}"
    );

    let deleted = fd(&doc, Started::field(&fds, "deleted"));
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["target"], format!("{}/deleted.txt", dir.path()));
    assert_eq!(deleted["info"]["pos"], 14, "offset after writing 14 bytes");

    let r = fd(&doc, Started::field(&fds, "pipe_r"));
    let w = fd(&doc, Started::field(&fds, "pipe_w"));
    assert_eq!(r["kind"], "pipe");
    assert_eq!(w["kind"], "pipe");
    assert_eq!(r["pipe_inode"], w["pipe_inode"], "both ends of one pipe");
    assert_eq!(r["info"]["flags_decoded"][0], "O_RDONLY");
    assert_eq!(w["info"]["flags_decoded"][0], "O_WRONLY");

    let ev = fd(&doc, Started::field(&fds, "eventfd"));
    assert_eq!(ev["kind"], "eventfd");
    assert_eq!(ev["info"]["eventfd_count"], 5);

    let listener = Started::field(&fds, "listener");
    let ep = fd(&doc, Started::field(&fds, "epoll"));
    assert_eq!(ep["kind"], "eventpoll");
    let watches = ep["info"]["epoll_watches"].as_array().unwrap();
    assert_eq!(watches.len(), 1);
    assert_eq!(watches[0]["tfd"], listener);
    assert_eq!(watches[0]["events_decoded"][0], "EPOLLIN");
    assert_eq!(fd(&doc, listener)["kind"], "socket");

    let locked = Started::field(&fds, "locked");
    let locks = doc["snapshot"]["locks"].as_array().unwrap();
    let flock = locks
        .iter()
        .find(|l| l["class"] == "flock")
        .expect("the flock is reported");
    assert_eq!(flock["fd"], locked);
    assert_eq!(flock["access"], "write");
    assert_eq!(flock["waiting"], false);
    assert_eq!(flock["path"], format!("{}/locked", dir.path()));
}

#[test]
fn text_report_groups_files_and_anonymous_fds() {
    let dir = TempDir::new("text");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    let fds = holder.expect("fds");
    let out = hangscope(&[&holder.pid().to_string(), "--no-color"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains('\x1b'), "no colour with --no-color");
    let files = text.find("\nFILES\n").expect("FILES section");
    let anon = text.find("\nANONYMOUS\n").expect("ANONYMOUS section");
    assert!(files < anon);
    let deleted = Started::field(&fds, "deleted");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with(&format!("{deleted}w"))
                && l.ends_with("deleted.txt (deleted)")),
        "{text}"
    );
    let ev = Started::field(&fds, "eventfd");
    assert!(
        text.contains(&format!("  {ev}u"))
            && text
                .lines()
                .any(|l| l.contains("eventfd") && l.contains("count 5")),
        "{text}"
    );
    assert!(
        text.contains("\nLOCKS\n") && text.contains("FLOCK"),
        "{text}"
    );
}

#[test]
fn save_and_replay_give_the_same_report() {
    let dir = TempDir::new("replay");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    let file = format!("{}/snap.json", dir.path());
    let pid = holder.pid().to_string();
    let html = format!("{}/report.html", dir.path());
    // All output flags in one run.
    let live = hangscope(&[&pid, "--json", "--save", &file, "--html", &html]);
    assert_eq!(live.status.code(), Some(0));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains(&format!("(pid {pid})")) && page.contains("<summary>Open files ("));
    let saved = std::fs::read(&file).unwrap();
    assert_eq!(
        saved, live.stdout,
        "--save writes the same document --json prints"
    );
    let replayed = hangscope(&["replay", &file, "--json"]);
    assert_eq!(replayed.status.code(), Some(0));
    let a: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(a["snapshot"], b["snapshot"]);
}

#[test]
fn replay_refuses_another_major_version_and_garbage() {
    let dir = TempDir::new("badsnap");
    let future = format!("{}/future.json", dir.path());
    std::fs::write(&future, r#"{"schema_version":"9.1","snapshot":{}}"#).unwrap();
    let out = hangscope(&["replay", &future]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schema version 9.1") && !err.contains("panicked"),
        "{err}"
    );

    let garbage = format!("{}/garbage.json", dir.path());
    std::fs::write(&garbage, b"\x00\xffnot json").unwrap();
    let out = hangscope(&["replay", &garbage]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn a_pid_that_does_not_exist_is_a_clear_error() {
    // A child that has exited and been reaped: its PID is free.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let out = hangscope(&[&pid.to_string()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("no process or thread with id {pid}")),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_name_matching_several_processes_lists_them() {
    let dir = TempDir::new("ambiguous");
    let mut a = scenario("holder", &["--dir", dir.path()]);
    a.expect("fds");
    let dir2 = TempDir::new("ambiguous2");
    let mut b = scenario("holder", &["--dir", dir2.path()]);
    b.expect("fds");
    let out = hangscope(&["--name", "hangscope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&a.pid().to_string()) && err.contains(&b.pid().to_string()),
        "{err}"
    );
}

#[test]
fn without_privileges_it_reports_what_it_could_see() {
    let dir = TempDir::new("noroot");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    if !nix_is_root() {
        eprintln!("not root: the target is already ours, nothing to test");
        return;
    }
    // Run from a copy every user can reach: the checkout may be private (mode 0700).
    let bin = PublicBinary::new();
    let out = Command::new(bin.path())
        .args([&holder.pid().to_string(), "--json"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    record(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    // Printed, but not "nothing stuck": the process could not be seen.
    assert_eq!(out.status.code(), Some(3), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["snapshot"]["process"]["pid"], holder.pid());
    let gaps = doc["snapshot"]["gaps"].as_array().unwrap();
    let fd_gap = gaps
        .iter()
        .find(|g| g["what"] == format!("/proc/{}/fd", holder.pid()))
        .expect("the fd table is listed as not read");
    assert_eq!(fd_gap["reason"], "permission");
    // Typed, so the rule and the header need not read its words.
    assert_eq!(fd_gap["topic"], "fd_table", "{fd_gap:#}");
    // A user of its own: the 0500 directory and the ptrace check both refuse.
    let needs = fd_gap["needs"].as_str().unwrap();
    assert!(
        needs.contains("CAP_DAC_READ_SEARCH") && needs.contains("CAP_SYS_PTRACE"),
        "{needs}"
    );
    let unseen = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == "not_visible")
        .expect("a not_visible finding");
    assert_eq!(unseen["severity"], "warning");
}

/// With CAP_SYS_PTRACE alone (what the README used to say was enough), /proc/PID/fd, mode
/// 0500 and owned by the target's user, still cannot be listed: the report says it could not
/// see the process, and names CAP_DAC_READ_SEARCH, not the CAP_SYS_PTRACE it already has.
#[test]
fn with_only_cap_sys_ptrace_the_fd_table_is_not_seen_and_the_missing_cap_is_named() {
    let dir = TempDir::new("ptraceonly");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    if !nix_is_root() {
        eprintln!("not root: the target is already ours, nothing to test");
        return;
    }
    let bin = PublicBinary::new();
    let pid = holder.pid().to_string();
    let run = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=+sys_ptrace",
                "--ambient-caps=+sys_ptrace",
            ])
            .arg(bin.path())
            .args(args)
            .output()
            .expect("setpriv (util-linux) runs")
    };
    let out = run(&[&pid, "--json", "--window", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gaps = doc["snapshot"]["gaps"].as_array().unwrap();
    let fd_gap = gaps
        .iter()
        .find(|g| g["what"] == format!("/proc/{pid}/fd"))
        .expect("the fd table is listed as not read");
    let needs = fd_gap["needs"].as_str().unwrap();
    assert!(
        needs.contains("CAP_DAC_READ_SEARCH") && !needs.contains("CAP_SYS_PTRACE"),
        "{needs}"
    );
    // fdinfo needs only the ptrace check, which CAP_SYS_PTRACE passes: not a gap.
    assert!(
        !gaps
            .iter()
            .any(|g| g["what"].as_str().is_some_and(|w| w.contains("fdinfo"))
                && g["reason"] == "permission"),
        "{gaps:?}"
    );
    let text = run(&[&pid, "--window", "0"]);
    let report = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(3));
    assert!(
        report.contains("NOT SEEN") && !report.contains("Nothing looks stuck"),
        "{report}"
    );
    assert!(report.contains("fds ?"), "{report}");
}

#[test]
fn a_closed_pipe_ends_the_report_quietly() {
    let dir = TempDir::new("pipe");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    // stdout is a pipe whose reader is already gone, as after `hangscope PID | head -0`.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let out = Command::new(HANGSCOPE)
        .arg(holder.pid().to_string())
        .stdout(std::process::Stdio::from(writer))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "nothing on stderr: {err}");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn a_process_that_exits_during_the_window_is_no_panic() {
    let dir = TempDir::new("exits");
    // It exits one second in, while hangscope watches it for three.
    let mut holder = scenario("holder", &["--dir", dir.path(), "--max-seconds", "1"]);
    holder.expect("fds");
    let out = hangscope(&[&holder.pid().to_string(), "--json", "--window", "3s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    match out.status.code() {
        // The first look was complete: a report, with what vanished said as a gap.
        Some(0) | Some(1) => {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(doc["snapshot"]["process"]["pid"], holder.pid());
            let gaps = doc["snapshot"]["gaps"].as_array().unwrap();
            assert!(
                gaps.iter().any(|g| g["reason"] == "vanished"),
                "the exit is reported: {gaps:?}"
            );
        }
        // Or it was gone before the first read finished: a clear message.
        Some(3) => assert!(
            err.contains("exited") || err.contains("no process"),
            "{err}"
        ),
        other => panic!("unexpected exit {other:?}: {err}"),
    }
}

#[test]
fn a_window_longer_than_the_deadline_is_a_usage_error() {
    let out = hangscope(&["1", "--window", "10s", "--deadline", "5s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("raise --deadline"));
}

#[test]
fn a_zombie_is_reported_as_exited_with_its_parent() {
    // The child exits at once; its parent execs `sleep`, which never reaps it: a zombie.
    // Python, not a shell: a shell may reap its background job before its exec.
    let script = "import os\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    os._exit(0)\n\
                  print(pid, flush=True)\n\
                  os.execvp('sleep', ['sleep', '30'])\n";
    let mut parent = std::process::Command::new("python3")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(parent.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let zombie: i32 = line.trim().parse().unwrap();
    let state = || {
        std::fs::read_to_string(format!("/proc/{zombie}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(false)
    };
    // Until the shell has become `sleep` it may still reap its child (seen under load).
    let parent_pid = parent.id();
    let parent_sleeps = || {
        std::fs::read_to_string(format!("/proc/{parent_pid}/comm"))
            .is_ok_and(|c| c.trim() == "sleep")
    };
    let became = wait_until(std::time::Duration::from_secs(10), || {
        parent_sleeps() && state()
    });
    let out = hangscope(&[&zombie.to_string(), "--json", "--window", "0"]);
    let _ = parent.kill();
    let _ = parent.wait();
    assert!(became, "the child never became a zombie");
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = &doc["findings"][0];
    assert_eq!(top["cause"], "exited", "{top}");
    assert!(
        top["summary"].as_str().unwrap().contains("(sleep)"),
        "{top}"
    );
}

/// `unshare` into a PID namespace of its own, with its own /proc: only where it works (root).
const OWN_PID_NS: [&str; 5] = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"];

fn own_pid_ns_works() -> bool {
    nix_is_root()
        && Command::new(OWN_PID_NS[0])
            .args(&OWN_PID_NS[1..])
            .arg("true")
            .status()
            .is_ok_and(|s| s.success())
}

/// `hangscope PID --json EXTRA...` run where the target is: inside the PID namespace of
/// `inner` (a PID as this test sees it), where the target is `ns_pid`; or here.
fn inspect_where(inner: Option<i32>, ns_pid: i32, extra: &[&str]) -> serde_json::Value {
    let Some(inner) = inner else {
        return inspect_json(ns_pid, extra);
    };
    let t = inner.to_string();
    let pid = ns_pid.to_string();
    let mut args = vec![
        "--target", &t, "--pid", "--mount", "--", HANGSCOPE, &pid, "--json",
    ];
    args.extend_from_slice(extra);
    let out = Command::new("nsenter").args(&args).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "nsenter hangscope failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("hangscope --json prints JSON")
}

/// A target with more files open than hangscope reads in full (1,024): stdio, logs and deleted
/// files keep their fdinfo and size; the rest are listed with their access mode and one gap;
/// `--all-fdinfo` reads them all.
///
/// A lock in /proc/locks that may be the target's (an OFD lock, or a flock whose owner is
/// gone, as other tests' and the host's processes leave) rightly makes hangscope read every
/// file. So where it can, the target runs in a PID namespace with a /proc of its own, whose
/// /proc/locks lists only that namespace's flock and POSIX locks (OFD locks, which name no
/// process, still show), as hangscope inside a container sees it.
#[test]
fn a_huge_target_reads_in_full_only_the_files_a_diagnosis_uses() {
    let own_ns = own_pid_ns_works();
    if !own_ns {
        eprintln!("not root: the target runs beside the host's locks, which may be read as its");
    }
    let prefix: &[&str] = if own_ns { &OWN_PID_NS } else { &[] };
    let mut target = scenario_in_dir(
        prefix,
        "many-fds",
        &["--files", "1100", "--conns", "0", "--extras"],
    );
    let ready = target.expect("ready");
    let (log, ro, gone) = (
        Started::field(&ready, "log"),
        Started::field(&ready, "readonly"),
        Started::field(&ready, "deleted"),
    );
    // unshare's child is the namespace's PID 1: the scenario.
    let inner = own_ns.then(|| {
        let children = format!("/proc/{0}/task/{0}/children", target.pid());
        std::fs::read_to_string(children)
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse::<i32>().ok())
            .expect("unshare's child")
    });
    let ns_pid = if own_ns { 1 } else { target.pid() };
    let doc = inspect_where(inner, ns_pid, &["--window", "0"]);

    let plain = fd(&doc, ro);
    assert_eq!(plain["kind"], "file", "not stat'ed: {plain}");
    assert_eq!(plain["link_access"], "read");
    assert!(plain["info"].is_null(), "{plain}");
    let written = fd(&doc, 3);
    assert_eq!(
        written["link_access"], "write",
        "File::create opens for writing"
    );

    let log_fd = fd(&doc, log);
    assert_eq!(log_fd["kind"], "regular");
    let flags = log_fd["info"]["flags_decoded"].to_string();
    assert!(flags.contains("O_APPEND"), "{flags}");
    let deleted = fd(&doc, gone);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["kind"], "regular");
    assert_eq!(deleted["stat"]["size"], 0);

    let gaps = doc["snapshot"]["gaps"].as_array().unwrap();
    let skipped: usize = gaps
        .iter()
        .find_map(|g| g["what"].as_str()?.strip_prefix("fdinfo and size of "))
        .and_then(|rest| rest.strip_suffix(" files")?.parse().ok())
        .unwrap_or_else(|| panic!("a gap for the files not read: {gaps:?}"));
    // The 1,100 files, the read-only one, and whatever else the scenario holds besides.
    assert!((1101..1110).contains(&skipped), "{skipped}");

    let full = inspect_where(inner, ns_pid, &["--window", "0", "--all-fdinfo"]);
    assert_eq!(fd(&full, ro)["kind"], "regular");
    assert_eq!(fd(&full, ro)["info"]["flags_decoded"][0], "O_RDONLY");
    assert!(
        !full["snapshot"]["gaps"]
            .to_string()
            .contains("fdinfo and size of")
    );
}

/// A lock that may be the target's makes every file's fdinfo worth reading, however many there
/// are: a lock is matched to its fd through fdinfo.
#[test]
fn a_lock_on_a_read_only_file_of_a_huge_target_is_matched_to_its_fd() {
    let mut target = scenario_in_dir(
        &[],
        "many-fds",
        &["--files", "1100", "--conns", "0", "--extras", "--flock"],
    );
    let ready = target.expect("ready");
    let ro = Started::field(&ready, "readonly");
    let doc = inspect_json(target.pid(), &["--window", "0"]);
    assert_eq!(fd(&doc, ro)["kind"], "regular");
    let locks = doc["snapshot"]["locks"].as_array().unwrap();
    let flock = locks
        .iter()
        .find(|l| l["class"] == "flock")
        .expect("the flock is reported");
    assert_eq!(flock["fd"], ro);
    assert_eq!(flock["access"], "read");
    assert_eq!(flock["path"], format!("{}/readonly", target.dir()));
}

/// A flock named for a process that is gone (its child inherited the open file and holds the
/// lock) is still matched to the fd of the huge target that holds it, though the target's
/// other files get no fdinfo.
#[test]
fn a_lock_a_gone_process_took_is_matched_to_the_huge_target_that_inherited_it() {
    let mut target = scenario_in_dir(
        &[],
        "many-fds",
        &[
            "--files",
            "1100",
            "--conns",
            "0",
            "--extras",
            "--flock-by-child",
        ],
    );
    let ready = target.expect("ready");
    let ro = Started::field(&ready, "readonly");
    let doc = inspect_json(target.pid(), &["--window", "0"]);
    let flock = doc["snapshot"]["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["class"] == "flock" && l["fd"] == ro)
        .unwrap_or_else(|| {
            panic!(
                "the inherited flock is reported: {}",
                doc["snapshot"]["locks"]
            )
        });
    assert_eq!(flock["access"], "read");
    assert_eq!(flock["path"], format!("{}/readonly", target.dir()));
    assert_eq!(fd(&doc, ro)["kind"], "regular");
}

/// Another process's leftover flock, named for a process that is gone, does not make a huge
/// target read every file's fdinfo: only a file with that lock's inode could hold it. (It did:
/// each stale flock on the host cost a 9,000-file target 9,000 fdinfo reads.)
#[test]
fn a_stale_flock_elsewhere_does_not_make_a_huge_target_read_every_file() {
    let mut other = scenario_in_dir(
        &[],
        "many-fds",
        &[
            "--files",
            "0",
            "--conns",
            "0",
            "--extras",
            "--flock-by-child",
        ],
    );
    other.expect("ready");
    let mut target = scenario_in_dir(
        &[],
        "many-fds",
        &["--files", "1100", "--conns", "0", "--extras"],
    );
    let ready = target.expect("ready");
    let ro = Started::field(&ready, "readonly");
    let before = unnamed_locks();
    let doc = inspect_json(target.pid(), &["--window", "0"]);
    if before || unnamed_locks() {
        // An OFD lock, or one of a process outside our PID namespace, may be anyone's: every
        // file is read then, by design, and other tests running beside this one take some.
        eprintln!("skipped: /proc/locks holds a lock whose owner it does not name");
        return;
    }
    let plain = fd(&doc, ro);
    assert_eq!(plain["kind"], "file", "not stat'ed: {plain}");
    assert_eq!(plain["link_access"], "read");
    assert!(plain["info"].is_null(), "{plain}");
    assert!(fd(&doc, 3)["info"].is_null(), "{}", fd(&doc, 3));
    assert!(
        doc["snapshot"]["locks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["fd"].is_null()),
        "no lock is the target's: {}",
        doc["snapshot"]["locks"]
    );
}

/// Whether /proc/locks holds a lock whose owner it does not name (OFD, or another PID
/// namespace's: pid -1 or 0).
fn unnamed_locks() -> bool {
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains("->"))
        .any(|l| {
            l.split_whitespace()
                .nth(4)
                .and_then(|p| p.parse::<i64>().ok())
                .is_none_or(|p| p <= 0)
        })
}

/// A big table with holes and an fd far above the others is read in full: the fast path that
/// skips the listing for dense tables must not lose or invent fds.
#[test]
fn a_big_table_with_holes_lists_every_open_fd_and_no_other() {
    let mut target = scenario_in_dir(
        &[],
        "many-fds",
        &["--files", "4000", "--conns", "0", "--sparse"],
    );
    target.expect("ready");
    let doc = inspect_json(target.pid(), &["--window", "0"]);
    let mut open: Vec<i64> = std::fs::read_dir(format!("/proc/{}/fd", target.pid()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    open.sort_unstable();
    let reported: Vec<i64> = doc["snapshot"]["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect();
    assert!(
        open.len() > 2000 && *open.last().unwrap() > 8000,
        "{open:?}"
    );
    assert_eq!(reported, open);
    let gaps = doc["snapshot"]["gaps"].to_string();
    assert!(!gaps.contains("vanished"), "{gaps}");
}

/// Thousands of pipes: each keeps its access mode, from its link, without an fdinfo read.
#[test]
fn a_target_with_thousands_of_pipes_reads_only_their_access_mode() {
    let mut target = scenario_in_dir(
        &[],
        "many-fds",
        &["--files", "0", "--conns", "0", "--pipes", "600"],
    );
    let ready = target.expect("ready");
    let (r, w) = (
        Started::field(&ready, "pipe_read"),
        Started::field(&ready, "pipe_write"),
    );
    let doc = inspect_json(target.pid(), &["--window", "0"]);
    for (n, access) in [(r, "read"), (w, "write")] {
        let f = fd(&doc, n);
        assert_eq!(f["kind"], "pipe", "{f}");
        assert_eq!(f["link_access"], access, "{f}");
        assert!(f["info"].is_null(), "{f}");
    }
    let gaps = doc["snapshot"]["gaps"].as_array().unwrap();
    let skipped: usize = gaps
        .iter()
        .find_map(|g| {
            g["what"]
                .as_str()?
                .strip_prefix("fdinfo of ")?
                .strip_suffix(" pipes")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("a gap for the pipes not read: {gaps:?}"));
    // The 1,200 ends, and whatever pipes the scenario inherited besides stdio.
    assert!((1200..1210).contains(&skipped), "{skipped}");

    let full = inspect_json(target.pid(), &["--window", "0", "--all-fdinfo"]);
    assert_eq!(fd(&full, r)["info"]["flags_decoded"][0], "O_RDONLY");
    assert!(!full["snapshot"]["gaps"].to_string().contains("pipes"));
}
