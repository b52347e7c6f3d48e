//! Bounds and honesty of a run (issue 17): replay's input is bounded, a PID reused during the
//! window stops the run, a failed output file does not lose the report.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Runs hangscope with `args`, killed (by PID) if it is not done within `limit`: a test of a
/// bound must not hang when the bound is missing. Its output is drained while it runs: a
/// report larger than the pipe would otherwise block it in a write, and look like a hang.
fn bounded(args: &[&str], limit: Duration) -> (Output, Duration) {
    use std::io::Read;
    let start = Instant::now();
    let mut child = Command::new(HANGSCOPE)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = r.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let done = wait_until(limit, || child.try_wait().unwrap().is_some());
    if !done {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (out, start.elapsed())
}

#[test]
fn replay_refuses_what_is_not_a_snapshot_file_without_blocking() {
    let dir = TempDir::new("replay-kinds");
    let fifo = format!("{}/fifo", dir.path());
    nix::unistd::mkfifo(
        fifo.as_str(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    for (path, words) in [
        (fifo.as_str(), "a FIFO"),
        (dir.path(), "a directory"),
        ("/dev/zero", "a character device"),
    ] {
        // The old code blocked forever in open() of the FIFO, and read /dev/zero until the
        // allocation failed.
        let (out, took) = bounded(&["replay", path], Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{path}: {err}");
        assert!(
            err.contains(&format!("not a regular file ({words})")),
            "{path}: {err}"
        );
        assert!(took < Duration::from_secs(10), "{path} took {took:?}");
    }
}

#[test]
fn replay_refuses_a_file_over_the_size_limit_before_reading_it() {
    let dir = TempDir::new("replay-size");
    // 10 GiB of holes: instant to make, and the old code read it all into memory.
    let sparse = format!("{}/sparse.json", dir.path());
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(10 << 30)
        .unwrap();
    let (out, took) = bounded(&["replay", &sparse], Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("larger than --max-size 256.0 MiB: 10.0 GiB") && err.contains("raise"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // A real snapshot, refused under a small limit and read under its size.
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    let snap = format!("{}/snap.json", dir.path());
    let saved = hangscope(&[&holder.pid().to_string(), "--window", "0", "--save", &snap]);
    assert_eq!(saved.status.code(), Some(0));
    let size = std::fs::metadata(&snap).unwrap().len();
    assert!(size > 1024, "{size}");
    let (out, _) = bounded(
        &["replay", &snap, "--max-size", "1KiB"],
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("larger than --max-size 1.0 KiB"), "{err}");
    let (out, _) = bounded(
        &["replay", &snap, "--json", "--max-size", &size.to_string()],
        Duration::from_secs(20),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["snapshot"]["process"]["pid"], holder.pid());
}

#[test]
fn a_file_that_cannot_be_saved_costs_only_that_file() {
    let dir = TempDir::new("save-fails");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    let pid = holder.pid().to_string();
    let missing = format!("{}/no/such/dir", dir.path());
    let save = format!("{missing}/s.json");
    let html = format!("{missing}/r.html");
    let out = hangscope(&[&pid, "--window", "0", "--save", &save, "--html", &html]);
    let report = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    // The old code printed nothing and exited 4.
    assert_eq!(out.status.code(), Some(0), "the diagnosis's code: {err}");
    assert!(
        report.contains(&format!("pid {pid}")) && report.contains("VERDICT"),
        "{report}"
    );
    assert!(
        err.contains(&format!("cannot save to {save}"))
            && err.contains(&format!("cannot write {html}")),
        "{err}"
    );
}

/// PID reuse, forced: the test runs in a PID namespace of its own (`unshare --pid --fork
/// --mount-proc`, with a /proc of that namespace) so that it owns the namespace's PID counter,
/// /proc/sys/kernel/ns_last_pid, which is per namespace (the host's is never written). Inside
/// it, hangscope watches a `sleep` for 6 s; 2 s in (see reuse_run), the test kills and reaps the sleep, writes
/// its PID minus one to ns_last_pid, and starts a new `sleep`, which gets the same PID (retried
/// if one of hangscope's short-lived threads took that number first). hangscope must see the
/// start time change and stop rather than report the two processes as one.
#[test]
fn a_pid_taken_by_a_new_process_during_the_window_stops_the_run() {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: `unshare --pid --fork --mount-proc` is not available (needs root)");
        return;
    }
    // hangscope must have taken its first look before the sleep is killed: the delay is
    // ample on a quiet machine; on a loaded one, a run whose first look came too late (it
    // then finds no process) is tried again with a longer one, 3 times at most.
    let mut attempt = 0;
    let (dir, out) = loop {
        attempt += 1;
        let (dir, out) = reuse_run(2 * attempt);
        let err = std::fs::read_to_string(format!("{}/err", dir.path())).unwrap_or_default();
        if attempt == 3 || !err.contains("no process") {
            break (dir, out);
        }
    };
    let said = String::from_utf8_lossy(&out.stdout);
    let err = std::fs::read_to_string(format!("{}/err", dir.path())).unwrap_or_default();
    let report = std::fs::read_to_string(format!("{}/out", dir.path())).unwrap_or_default();
    let field = |k: &str| {
        said.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert_eq!(
        field("old"),
        field("new"),
        "the PID was not reused, nothing tested: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(field("rc"), "3", "{said}\nstderr: {err}\nstdout: {report}");
    assert!(
        err.contains("its PID was taken by another process"),
        "{err}"
    );
    assert!(report.is_empty(), "no mixed report: {report}");
}

/// One run of the reuse script in a new PID namespace: the sleep is killed `delay` seconds
/// into hangscope's window. Returns the dir holding hangscope's stdout ("out") and stderr
/// ("err"), and the script's own output ("old=PID new=PID rc=CODE").
fn reuse_run(delay: u64) -> (TempDir, Output) {
    let dir = TempDir::new("reuse");
    let script = r#"
        hs="$1"; dir="$2"; delay="$3"
        sleep 60 & t=$!
        "$hs" "$t" --json --window "$((delay + 4))s" --deadline "$((delay + 8))s" \
            >"$dir/out" 2>"$dir/err" & h=$!
        sleep "$delay"
        kill "$t"; wait "$t"
        n=
        for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            echo $((t - 1)) > /proc/sys/kernel/ns_last_pid
            sleep 60 & n=$!
            [ "$n" = "$t" ] && break
            kill "$n"; wait "$n"; n=
        done
        wait "$h"; rc=$?
        echo "old=$t new=$n rc=$rc"
        [ -n "$n" ] && kill "$n"
        exit 0
    "#;
    let mut child = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "bash",
            "-c",
            script,
            "bash",
        ])
        .args([HANGSCOPE, dir.path(), &delay.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // hangscope's own deadline ends the run. On a timeout, killing unshare kills its child
    // (--kill-child), the namespace's first process, and with it everything in the namespace.
    let done = wait_until(Duration::from_secs(60), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
    }
    (dir, child.wait_with_output().unwrap())
}
