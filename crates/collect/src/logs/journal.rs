//! stdout/stderr that go to systemd's journal (unix stream sockets to journald, as the seed's
//! fds 1 and 2 were): read with `journalctl _PID=N -n 200 -o short-precise`, see
//! journalctl(1), bounded in time — the child is killed by its PID when it overruns.
//!
//! A failed read is a failure with its reason, never an empty output: journalctl exits 1 with
//! only a line on stderr when the journal is not readable ("No journal files were opened due
//! to insufficient permissions"), and one invalid UTF-8 byte used to empty the whole text.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Output kept at most.
const MAX_OUTPUT: u64 = 256 * 1024;
/// journalctl's complaint kept at most (one or two lines).
const MAX_STDERR: u64 = 2 * 1024;

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
    /// Not read: why, as an I/O error when there is one (for the gap's reason).
    Failed {
        detail: String,
        io: Option<io::Error>,
    },
}

fn failed(detail: String) -> Outcome {
    Outcome::Failed { detail, io: None }
}

/// Reads at most `max` bytes of a child's pipe on a thread, so a full pipe never stalls the
/// child while we wait for it.
fn drain(
    out: impl Read + Send + 'static,
    max: u64,
) -> std::thread::JoinHandle<io::Result<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        out.take(max).read_to_end(&mut bytes).map(|_| bytes)
    })
}

/// What a drain thread read; a panicked thread is an error, not an empty output.
fn drained(reader: Option<std::thread::JoinHandle<io::Result<Vec<u8>>>>) -> io::Result<Vec<u8>> {
    match reader {
        None => Err(io::Error::other("no pipe to journalctl")),
        Some(r) => r
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the pipe reader panicked"))),
    }
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
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Failed {
                detail: format!("cannot run {}: {e}", journalctl.display()),
                io: Some(e),
            };
        }
    };
    let reader = child.stdout.take().map(|out| drain(out, MAX_OUTPUT));
    let complaint = child.stderr.take().map(|err| drain(err, MAX_STDERR));
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
            Err(e) => {
                return Outcome::Failed {
                    detail: format!("waiting for journalctl: {e}"),
                    io: Some(e),
                };
            }
        }
    };
    let said = drained(reader);
    let complaint = drained(complaint)
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    match (status, said) {
        (Some(s), _) if !s.success() => {
            let mut detail = format!("journalctl exited with {s}");
            if !complaint.is_empty() {
                detail.push_str(": ");
                detail.push_str(&complaint);
            }
            failed(detail)
        }
        (_, Err(e)) => Outcome::Failed {
            detail: format!("reading journalctl's output: {e}"),
            io: Some(e),
        },
        // Lossy: one bad byte in a logged line must not lose the other lines.
        (status, Ok(bytes)) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if timed_out || status.is_none() {
                Outcome::TimedOut(text)
            } else {
                Outcome::Output(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script standing in for journalctl, in its own directory (removed by the caller).
    fn fake(name: &str, script: &str) -> (PathBuf, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("hangscope-journal-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("journalctl");
        std::fs::write(&fake, script).unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        (dir, fake)
    }

    #[test]
    fn a_refused_journal_is_a_failure_with_journalctls_words() {
        // What journalctl -q does for a user who may not read the journal: one line on stderr,
        // nothing on stdout, exit 1. The old code said "journalctl exited with exit status: 1".
        let (dir, fake) = fake(
            "refused",
            "#!/bin/sh\necho 'No journal files were opened due to insufficient permissions.' >&2\nexit 1\n",
        );
        let out = run(&fake, 1, 10, Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&dir);
        match out {
            Outcome::Failed { detail, .. } => {
                assert!(detail.contains("insufficient permissions"), "{detail}")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn one_bad_byte_does_not_empty_the_output() {
        // read_to_string drops everything on invalid UTF-8: the old code then said the journal
        // "printed nothing".
        let (dir, fake) = fake(
            "utf8",
            "#!/bin/sh\nprintf 'Sep 17 05:25:27.038408 h p[1]: first\\n\\377\\nSep 17 05:25:28.000000 h p[1]: second\\n'\n",
        );
        let out = run(&fake, 1, 10, Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&dir);
        match out {
            Outcome::Output(text) => {
                assert!(
                    text.contains("first") && text.contains("second"),
                    "{text:?}"
                )
            }
            other => panic!("expected output, got {other:?}"),
        }
    }

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
