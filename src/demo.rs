//! `hangscope demo`: the seed incident in miniature. Starts two silent servers on loopback and a
//! client that fails over between them, waits until the client is stuck, reports on it, and
//! stops every process it started.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hangscope_collect::resolve::Resolved;

use crate::cli::{CollectArgs, OutputArgs, exit};

/// Kills and reaps the child when dropped, so every exit path cleans up.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> Result<(Started, BufReader<std::process::ChildStdout>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut child = Command::new(exe)
        .arg("__scenario")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.join(" ")))?;
    let out = child.stdout.take().ok_or("no stdout")?;
    Ok((Started(child), BufReader::new(out)))
}

/// Reads the child's announcement that starts with `key`.
fn expect_line(r: &mut BufReader<std::process::ChildStdout>, key: &str) -> Result<String, String> {
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

pub fn run(output: &OutputArgs, collect: &CollectArgs) -> i32 {
    match run_inner(output, collect) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hangscope demo: {e}");
            exit::FAILURE
        }
    }
}

fn run_inner(output: &OutputArgs, collect: &CollectArgs) -> Result<i32, String> {
    let (_server_a, mut a_out) = start(&["silent-server", "--max-seconds", "60"])?;
    let port_a = expect_line(&mut a_out, "port")?;
    let (_server_b, mut b_out) = start(&["silent-server", "--max-seconds", "60"])?;
    let port_b = expect_line(&mut b_out, "port")?;
    let log = std::env::temp_dir().join(format!("hangscope-demo-{}.log", std::process::id()));
    let log_s = log.to_string_lossy().into_owned();
    let peer_a = format!("127.0.0.1:{port_a}");
    let peer_b = format!("127.0.0.1:{port_b}");
    let (client, mut c_out) = start(&[
        "meta-client",
        "--peer",
        &peer_a,
        "--peer",
        &peer_b,
        "--timeout-ms",
        "3000",
        "--log",
        &log_s,
        "--max-seconds",
        "60",
    ])?;
    let worker: i32 = expect_line(&mut c_out, "worker")?
        .parse()
        .map_err(|_| "bad worker announcement")?;
    let pid = client.0.id() as i32;
    eprintln!(
        "hangscope demo: client {pid} (worker thread {worker}) calls silent servers on :{port_a} and :{port_b}; waiting for it to get stuck..."
    );
    wait_in_poll(pid, worker, Duration::from_secs(5));
    // Let the first call time out and fail over, so the log shows history.
    std::thread::sleep(Duration::from_millis(3500));
    wait_in_poll(pid, worker, Duration::from_secs(5));
    let code = crate::inspect(
        Resolved {
            pid,
            focus_tid: Some(worker),
        },
        output,
        collect,
    );
    let _ = std::fs::remove_file(&log);
    Ok(code)
}

/// Waits, bounded, until the thread is inside poll (x86_64 nr 7, aarch64 ppoll nr 73).
fn wait_in_poll(pid: i32, tid: i32, limit: Duration) {
    let start = Instant::now();
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    while start.elapsed() < limit {
        if let Ok(s) = std::fs::read_to_string(&path) {
            let nr = s.split_whitespace().next().unwrap_or("");
            if nr == "7" || nr == "73" || nr == "271" {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
