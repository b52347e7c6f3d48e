//! stdout/stderr that go to systemd's journal (unix stream sockets to journald, as the seed's
//! fds 1 and 2 were): read with `journalctl _PID=N -n 200 -o short-precise`, see
//! journalctl(1), bounded in time — the child is killed by its PID when it overruns.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Output kept at most.
const MAX_OUTPUT: u64 = 256 * 1024;

/// journalctl in PATH (or the usual places), if installed.
pub fn find_journalctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join("journalctl"))
        .find(|p| p.is_file())
}

/// The command line, for notes ("read it with ...").
pub fn command_line(pid: i32, lines: usize) -> String {
    format!("journalctl _PID={pid} -n {lines} -o short-precise")
}

#[derive(Debug)]
pub enum Outcome {
    Output(String),
    /// Killed after the time limit; what it printed so far.
    TimedOut(String),
    Failed(String),
}

/// Runs journalctl for `pid`, waiting at most `limit`.
pub fn run(journalctl: &Path, pid: i32, lines: usize, limit: Duration) -> Outcome {
    let child = Command::new(journalctl)
        .args([
            format!("_PID={pid}"),
            "-n".into(),
            lines.to_string(),
            "-o".into(),
            "short-precise".into(),
            "--no-pager".into(),
            "-q".into(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot run {}: {e}", journalctl.display())),
    };
    // Read on a thread so a full pipe never stalls the child while we wait for it.
    let reader = child.stdout.take().map(|out| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.take(MAX_OUTPUT).read_to_string(&mut text);
            text
        })
    });
    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= limit => {
                timed_out = true;
                // Kill this child by its PID, and reap it.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Outcome::Failed(format!("waiting for journalctl: {e}")),
        }
    };
    let text = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    if timed_out {
        return Outcome::TimedOut(text);
    }
    match status {
        Some(s) if s.success() => Outcome::Output(text),
        Some(s) => Outcome::Failed(format!("journalctl exited with {s}")),
        None => Outcome::TimedOut(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_child_is_killed_in_time() {
        // A script stands in for a journalctl that hangs after printing a line.
        let dir = std::env::temp_dir().join(format!("hangscope-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("journalctl");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'Sep 17 05:25:27.038408 h p[1]: partial'\nexec sleep 30\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let started = Instant::now();
        let out = run(&fake, 1, 10, Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(started.elapsed() < Duration::from_secs(10));
        match out {
            Outcome::TimedOut(text) => assert!(text.contains("partial"), "{text:?}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
}
