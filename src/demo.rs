//! `hangscope demo`: the seed incident in miniature. Starts two replicas of a service that
//! accept and never answer, a healthy service on the same host, and a client whose worker
//! thread times out on the first replica, fails over to the second and waits there, logging
//! like glog. Reports on the client once it is stuck, and stops every process it started and
//! removes its log file on every path out.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use hangscope_collect::resolve::Resolved;

use crate::cli::{CollectArgs, OutputArgs, exit};

/// A wait shorter than this is not called stuck (the diagnosis's threshold, plus a margin).
const STUCK: Duration = Duration::from_millis(1200);

/// Longest the demo waits for any one step; the client's first timeout is the longest step.
const STEP_LIMIT: Duration = Duration::from_secs(15);

/// Kills and reaps the child when dropped, so every exit path cleans up.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the demo's log file when dropped.
struct LogFile(PathBuf);

impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts a scenario process as `role`: its argv[0] and its comm, so the report names the
/// part it plays ("meta-replica-b"), not the tool that staged it.
fn start(
    role: &str,
    args: &[&str],
    stderr: Stdio,
) -> Result<(Started, BufReader<ChildStdout>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut child = Command::new(exe)
        .arg0(role)
        .arg("__scenario")
        .args(args)
        .args(["--max-seconds", "60", "--role", role])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.join(" ")))?;
    let out = child.stdout.take().ok_or("no stdout")?;
    Ok((Started(child), BufReader::new(out)))
}

/// Reads the child's announcement that starts with `key`.
fn expect_line(r: &mut BufReader<ChildStdout>, key: &str) -> Result<String, String> {
    let mut line = String::new();
    for _ in 0..4 {
        line.clear();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            break;
        }
        if let Some(rest) = line.trim().strip_prefix(key) {
            return Ok(rest.trim().to_string());
        }
    }
    Err(format!("the demo process did not announce {key:?}"))
}

/// Exits 0 when the demo ran and hangscope explained the process it staged; the demo's
/// point is the explanation, so "a cause was found" is its success.
pub fn run(output: &OutputArgs, collect: &CollectArgs) -> i32 {
    match run_inner(output, collect) {
        Ok(exit::CAUSE_FOUND) => exit::OK,
        Ok(exit::OK) => {
            eprintln!("hangscope demo: no cause was found in the process the demo staged");
            exit::FAILURE
        }
        Ok(code) => code,
        Err(e) => {
            eprintln!("hangscope demo: {e}");
            exit::FAILURE
        }
    }
}

fn run_inner(output: &OutputArgs, collect: &CollectArgs) -> Result<i32, String> {
    let (_replica_a, mut a_out) = start("meta-replica-a", &["silent-server"], Stdio::inherit())?;
    let peer_a = format!("127.0.0.1:{}", expect_line(&mut a_out, "port")?);
    // The second replica reads the request and then blocks on its store lock, which another
    // of its threads holds: the chain goes on from the client into it.
    let (_replica_b, mut b_out) = start(
        "meta-replica-b",
        &["silent-server", "--handler-lock"],
        Stdio::inherit(),
    )?;
    expect_line(&mut b_out, "compactor")?;
    let peer_b = format!("127.0.0.1:{}", expect_line(&mut b_out, "port")?);
    let (_healthy, mut h_out) = start("heartbeat-svc", &["echo-server"], Stdio::inherit())?;
    let healthy = format!("127.0.0.1:{}", expect_line(&mut h_out, "port")?);

    let log = LogFile(std::env::temp_dir().join(format!(
        "hangscope-demo-{}.meta-client.log",
        std::process::id()
    )));
    let log_s = log.0.to_string_lossy().into_owned();
    // The client must still be waiting on B when the window's last look is taken.
    let timeout = collect.window + Duration::from_millis(2500);
    let timeout_ms = timeout.as_millis().to_string();
    // Its stderr is not the demo's terminal, so the report does not quote the demo's own output.
    let (client, mut c_out) = start(
        "meta-client",
        &[
            "meta-client",
            "--peer",
            &peer_a,
            "--peer",
            &peer_b,
            "--side",
            &healthy,
            "--timeout-ms",
            &timeout_ms,
            "--log",
            &log_s,
        ],
        Stdio::null(),
    )?;
    let worker: i32 = expect_line(&mut c_out, "worker")?
        .parse()
        .map_err(|_| "bad worker announcement")?;
    let pid = client.0.id() as i32;
    eprintln!(
        "hangscope demo: a client (pid {pid}) calls a service with two replicas, {peer_a} and \
         {peer_b},\n  that accept and never answer; a heartbeat to {healthy} on the same host \
         answers.\n  Its thread {worker} (dump_meta) gives up on {peer_a} after {} and fails \
         over to {peer_b}.\n  Waiting for that, then: hangscope {pid}\n",
        hangscope_model::units::duration(timeout)
    );

    let failover = format!("new meta: {peer_b}");
    if !wait_until(STEP_LIMIT, || {
        std::fs::read_to_string(&log.0).is_ok_and(|t| t.contains(&failover))
    }) {
        return Err("the client did not fail over in time".into());
    }
    let since_failover = Instant::now();
    // Stuck long enough by the end of the window to be called stuck.
    let settle = STUCK.saturating_sub(collect.window);
    if !wait_until(STEP_LIMIT, || {
        in_poll(pid, worker) && since_failover.elapsed() >= settle
    }) {
        return Err("the client's worker thread is not waiting in poll()".into());
    }
    Ok(crate::inspect(
        Resolved {
            pid,
            focus_tid: Some(worker),
        },
        output,
        collect,
    ))
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Whether the thread is inside poll (x86_64 poll 7, ppoll 271; aarch64 ppoll 73).
fn in_poll(pid: i32, tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).is_ok_and(|s| {
        let nr = s.split_whitespace().next().unwrap_or("");
        #[cfg(target_arch = "x86_64")]
        let poll = ["7", "271"];
        #[cfg(not(target_arch = "x86_64"))]
        let poll = ["73"];
        poll.contains(&nr)
    })
}
