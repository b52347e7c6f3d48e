//! Never hang where the target hangs: a target holds a file on a FUSE mount whose every call
//! blocks; hangscope must finish within its deadline and still list the fd with its path.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The FUSE server, the mount, and anything stuck on them; torn down in an order that cannot
/// hang: the server (which aborts its pending calls), then the stuck clients, then a lazy
/// unmount.
struct HungMount {
    dir: TempDir,
    /// The mount point's name in `dir`.
    name: &'static str,
    server: Child,
    stuck: Vec<Child>,
}

impl HungMount {
    fn mountpoint(&self) -> String {
        format!("{}/{}", self.dir.path(), self.name)
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        // The server first: its death aborts the calls its clients wait in, which a SIGKILL to
        // a client alone does not end (measured: a killed `stat` stayed 58 s).
        let _ = self.server.kill();
        let _ = self.server.wait();
        for c in &mut self.stuck {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mountpoint())
            .status();
    }
}

fn mounted(mountpoint: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mountpoint))
}

/// A mount at DIR/mnt that hangs once a file on it has been opened.
fn start_hung_mount() -> HungMount {
    start_hung_mount_at("mnt", false)
}

/// A mount at DIR/`name` whose every call hangs from the start (`now`), or once a file on it
/// has been opened.
fn start_hung_mount_at(name: &'static str, now: bool) -> HungMount {
    let dir = TempDir::new("fuse");
    let mnt = format!("{}/{name}", dir.path());
    std::fs::create_dir(&mnt).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/hangfs.py");
    let mut args = vec![script, &mnt, "60"];
    if now {
        args.push("now");
    }
    let server = Command::new("python3")
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 with fusepy (installed by .ci/run)");
    let m = HungMount {
        dir,
        name,
        server,
        stuck: Vec::new(),
    };
    assert!(
        wait_until(Duration::from_secs(15), || mounted(&mnt)),
        "the FUSE file system did not mount (needs /dev/fuse, fuse3, libfuse2 and fusepy)"
    );
    m
}

#[test]
fn finishes_within_its_deadline_on_a_hung_fuse_mount() {
    let mut mount = start_hung_mount();
    let file = format!("{}/stuck.txt", mount.mountpoint());
    let mut target = scenario("open-hold", &["--path", &file]);
    let fd: i32 = target.expect("fd").parse().unwrap();

    // The trap is real: a stat through the fd link does not come back.
    let stat = Command::new("stat")
        .args(["-L", &format!("/proc/{}/fd/{fd}", target.pid())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    mount.stuck.push(stat);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        mount.stuck[0].try_wait().unwrap().is_none(),
        "stat through the link should hang on this mount"
    );

    let started = Instant::now();
    let hs = Command::new(HANGSCOPE)
        .args([&target.pid().to_string(), "--json", "--deadline", "3s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let Some(out) = finish_within(hs, Duration::from_secs(30)) else {
        panic!("hangscope did not finish within 30 s on a hung mount");
    };
    eprintln!("hangscope took {:?} on the hung mount", started.elapsed());
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = support::fd(&doc, fd);
    assert_eq!(f["target"], file);
    let skipped = f["stat_skipped"].as_str().unwrap_or("");
    assert!(
        skipped.contains("fuse"),
        "not stat'ed because of the FUSE mount: {f}"
    );
    let gaps = doc["snapshot"]["gaps"].as_array().unwrap();
    assert!(
        gaps.iter().any(|g| g["reason"] == "unsafe"
            && g["what"].as_str().unwrap().contains(&mount.mountpoint())),
        "the report says what it did not read on the hung mount: {gaps:?}"
    );
    drop(target);
}

/// On a target with more files than hangscope reads in full, a file on a network or FUSE mount
/// is still read (fdinfo, never a statx): that is where a hang may be.
#[test]
fn a_huge_target_still_reads_its_file_on_a_hung_mount() {
    let mount = start_hung_mount();
    let file = format!("{}/stuck.txt", mount.mountpoint());
    let mut target = scenario_in_dir(
        &[],
        "many-fds",
        &["--files", "1100", "--conns", "0", "--path", &file],
    );
    let held = Started::field(&target.expect("ready"), "held");
    let doc = inspect_json(target.pid(), &["--window", "0", "--deadline", "3s"]);
    let f = support::fd(&doc, held);
    assert_eq!(f["target"], file);
    assert!(f["info"]["mnt_id"].is_u64(), "fdinfo read: {f}");
    assert!(
        f["stat_skipped"].as_str().unwrap_or("").contains("fuse"),
        "{f}"
    );
    let gaps = doc["snapshot"]["gaps"].to_string();
    assert!(
        gaps.contains("fdinfo and size of"),
        "the other files are skipped: {gaps}"
    );
    assert!(gaps.contains(&mount.mountpoint()), "{gaps}");
    drop(target);
}

#[test]
fn what_the_deadline_cuts_is_reported_and_the_rest_printed() {
    let dir = TempDir::new("deadline");
    let mut holder = scenario("holder", &["--dir", dir.path()]);
    holder.expect("fds");
    let out = hangscope(&[
        &holder.pid().to_string(),
        "--json",
        "--window",
        "0",
        "--deadline",
        "0s",
    ]);
    assert!(matches!(out.status.code(), Some(0) | Some(1)));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["snapshot"]["process"]["pid"],
        holder.pid(),
        "the process is still reported"
    );
    let gaps = doc["snapshot"]["gaps"].as_array().unwrap();
    assert!(
        gaps.iter().any(|g| g["reason"] == "deadline"),
        "what was not read is said to be cut by the deadline: {gaps:?}"
    );
    // Every open fd keeps its number, also those below the open count that were never tried.
    let listed: Vec<i64> = doc["snapshot"]["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["fd"].as_i64())
        .collect();
    let mut open: Vec<i64> = std::fs::read_dir(format!("/proc/{}/fd", holder.pid()))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    open.sort_unstable();
    assert!(open.contains(&0), "{open:?}");
    assert_eq!(listed, open, "fds are still listed by number");
}

/// The state letter of a thread (/proc/PID/task/TID/stat, after the comm's closing paren).
fn thread_state(pid: i32, tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[test]
fn a_thread_stuck_in_the_kernel_on_a_hung_mount_is_the_cause() {
    // Declared before the mount so it is dropped after it: the server must die first, or the
    // thread waiting on it cannot be killed (see HungMount's drop).
    let mut target: Option<Started> = None;
    let mount = start_hung_mount();
    let file = format!("{}/stuck.txt", mount.mountpoint());
    let t = target.insert(scenario("stat-hung", &["--path", &file]));
    let tid: i32 = t.expect("stat").parse().unwrap();
    let pid = t.pid();
    // A FUSE request waits interruptibly (S) until a signal comes; the wchan shows it.
    let wchan =
        || std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(15), || {
            matches!(thread_state(pid, tid), Some('S' | 'D'))
                && wchan().contains("request_wait_answer")
        }),
        "the stat thread never waited on the FUSE server: {:?} {}",
        thread_state(pid, tid),
        wchan()
    );
    std::thread::sleep(Duration::from_millis(1200));
    let out = hangscope(&[
        &pid.to_string(),
        "--json",
        "--window",
        "1s",
        "--deadline",
        "5s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = &doc["findings"][0];
    assert_eq!(top["cause"], "disk_wait", "{top}");
    assert_eq!(top["subject"]["tid"], tid);
    assert!(top["summary"].as_str().unwrap().contains("FUSE"), "{top}");
    assert_eq!(top["rule"], "uninterruptible");
    assert_eq!(top["facts"]["waits_for"], "fuse_server", "{top}");
    assert_eq!(top["facts"]["thread"]["tid"], tid);
    // The server of the mount the stat's path is on: the process holding /dev/fuse whose
    // command line names the mount point.
    let server = mount.server.id() as i32;
    assert_eq!(
        top["facts"]["fuse"]["mount_point"],
        mount.mountpoint(),
        "{top}"
    );
    assert_eq!(top["facts"]["fuse"]["server"]["pid"], server, "{top}");
    assert_eq!(top["facts"]["fuse"]["matched_by"], "cmdline");
    assert_eq!(top["next"]["kind"], "process");
    assert_eq!(top["next"]["pid"], server);
    // The chain goes on to the server, which has nothing of its own: the root.
    let hops: Vec<i64> = doc["chain"]["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(
        hops,
        [i64::from(pid), i64::from(server)],
        "{:#}",
        doc["chain"]
    );
    assert_eq!(doc["verdict"]["root"]["pid"], server);
    drop(mount);
}

/// A process writing DIR/`name` (tests/support/log_target.py plain), killed on drop.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_writer(log: &str) -> Writer {
    use std::io::BufRead;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/log_target.py");
    let mut child = Command::new("python3")
        .args([script, log, "plain", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let out = child.stdout.take().unwrap();
    let w = Writer(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(ANNOUNCE_WITHIN).unwrap_or_default();
    assert_eq!(line.trim(), "ready", "log_target.py did not start");
    w
}

/// Runs `hangscope PID --json --window 0 --deadline 5s EXTRA` in `cwd`, with openat2 or with
/// the walk that stands in for it on older kernels; asserts the run ends well within its
/// deadline with a report, and returns it.
fn run_beside_hung_mount(pid: i32, extra: &[&str], cwd: &str, fallback: bool) -> serde_json::Value {
    let mut cmd = Command::new(HANGSCOPE);
    cmd.args([
        &pid.to_string(),
        "--json",
        "--window",
        "0",
        "--deadline",
        "5s",
    ])
    .args(extra)
    .current_dir(cwd)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if fallback {
        cmd.env("HANGSCOPE_NO_OPENAT2", "1");
    }
    let started = Instant::now();
    let hs = cmd.spawn().unwrap();
    let Some(out) = finish_within(hs, Duration::from_secs(30)) else {
        panic!("hangscope {extra:?} did not finish within 30 s beside a hung mount");
    };
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("hangscope {extra:?} (fallback {fallback}) took {took:?}");
    assert!(
        took < Duration::from_secs(4),
        "{took:?} for a 5 s deadline: {stderr}"
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The gap whose `what` contains `what`, asserted to be "unsafe" with `detail` in its detail.
fn unsafe_gap(doc: &serde_json::Value, what: &str, detail: &str) {
    let gaps = doc["snapshot"]["gaps"].as_array().unwrap();
    let found = gaps
        .iter()
        .find(|g| g["what"].as_str().unwrap().contains(what));
    let g = found.unwrap_or_else(|| panic!("no gap on {what}: {gaps:?}"));
    assert_eq!(g["reason"], "unsafe", "{g}");
    assert!(g["detail"].as_str().unwrap().contains(detail), "{g}");
}

#[test]
fn a_log_path_that_leads_onto_a_hung_mount_is_not_followed() {
    let mount = start_hung_mount_at("mnt", true);
    let d = mount.dir.path().to_string();
    let mnt = mount.mountpoint();
    std::os::unix::fs::symlink(format!("{mnt}/stuck.txt"), format!("{d}/link.log")).unwrap();
    std::fs::create_dir(format!("{d}/a")).unwrap();
    let held = format!("{d}/held.txt");
    std::fs::write(&held, "x").unwrap();
    let mut target = scenario("open-hold", &["--path", &held]);
    target.expect("fd");
    let on_mount = format!("fuse.hangfs mount {mnt}");
    for fallback in [false, true] {
        let doc = run_beside_hung_mount(target.pid(), &["--log", "link.log"], &d, fallback);
        unsafe_gap(&doc, &format!("log {d}/link.log"), &on_mount);
        let doc = run_beside_hung_mount(target.pid(), &["--log", "a/../mnt/x"], &d, fallback);
        unsafe_gap(&doc, &format!("log {d}/a/../mnt/x"), &on_mount);
    }
    drop(target);
}

#[test]
fn a_log_directory_replaced_by_a_symlink_onto_a_hung_mount_is_not_listed() {
    let mount = start_hung_mount_at("mnt", true);
    let d = mount.dir.path().to_string();
    let logs = format!("{d}/logs");
    std::fs::create_dir(&logs).unwrap();
    let mut target = scenario("log-writer", &["--dir", &logs]);
    let log = target.expect("log");
    target.expect("ready");
    // The directory goes, the open log stays; a symlink of the same name leads to the mount.
    std::fs::remove_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(mount.mountpoint(), &logs).unwrap();
    for fallback in [false, true] {
        let doc = run_beside_hung_mount(target.pid(), &[], &d, fallback);
        unsafe_gap(
            &doc,
            &format!("{logs} (rotated logs)"),
            &format!("fuse.hangfs mount {}", mount.mountpoint()),
        );
        let read = doc["snapshot"]["logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == log.as_str())
            .unwrap_or_else(|| panic!("the deleted log itself is still read: {doc}"));
        assert!(!read["entries"].as_array().unwrap().is_empty(), "{read}");
    }
    drop(target);
}

#[test]
fn a_hung_mount_point_named_like_a_rotated_log_is_not_stat_ed() {
    let mount = start_hung_mount_at("app.log.1", true);
    let d = mount.dir.path().to_string();
    let log = format!("{d}/app.log");
    let writer = start_writer(&log);
    let pid = writer.0.id() as i32;
    for fallback in [false, true] {
        let doc = run_beside_hung_mount(pid, &[], &d, fallback);
        unsafe_gap(&doc, &mount.mountpoint(), "not stat'ed");
        let read = doc["snapshot"]["logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == log.as_str())
            .unwrap_or_else(|| panic!("the log itself is read: {doc}"));
        assert_eq!(read["entries"].as_array().unwrap().len(), 5, "{read}");
    }
    drop(writer);
}

/// Waits at most `limit` for `hs` to exit, reading its stdout and stderr meanwhile: a report
/// larger than the pipe's 64 KiB would otherwise block hangscope's write and look like a hang.
fn finish_within(mut hs: std::process::Child, limit: Duration) -> Option<std::process::Output> {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        hs.stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        hs.stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    if !wait_until(limit, || hs.try_wait().unwrap().is_some()) {
        let _ = hs.kill();
        let _ = hs.wait();
        return None;
    }
    let status = hs.wait().unwrap();
    Some(std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    })
}
