//! A server's own command-line client (psql, mariadb), run the way its administrator would on
//! that host: a clean environment, from /, in its own process group, as the server's OS user,
//! killed with hangscope (PR_SET_PDEATHSIG), and bounded in time and in what it may print.
//! One runner for every server hangscope asks, so each gets the same protections.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hangscope_model::GapReason;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Most bytes of a client's answer read: 1,000 sessions of a few hundred bytes each fit.
pub(crate) const MAX_OUTPUT: usize = 2 << 20;
/// Most bytes of a client's complaint kept for the gap.
const MAX_STDERR: usize = 4096;

/// `program` with nothing of hangscope's environment but a plain PATH and the C locale; the
/// caller adds its arguments and variables.
pub(crate) fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .current_dir("/");
    cmd
}

/// Why a client gave no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// It could not be started.
    Spawn(io::Error),
    /// Killed at the limit; what it said on stderr by then.
    TimedOut { stderr: Vec<u8> },
    /// It exited with an error.
    Failed { status: ExitStatus, stderr: Vec<u8> },
    /// Its answer was longer than `MAX_OUTPUT`.
    TooLong,
}

impl Failure {
    /// The gap reason of a client that could not be started.
    pub(crate) fn spawn_reason(e: &io::Error) -> GapReason {
        match e.kind() {
            io::ErrorKind::NotFound => GapReason::Unsupported,
            io::ErrorKind::PermissionDenied => GapReason::Permission,
            _ => GapReason::Other,
        }
    }
}

/// Runs `cmd` (from [`command`]) as `uid`:`gid` (when hangscope, `me`, is another user), at most
/// `limit`: its stdout, or why there is none.
pub(crate) fn run(
    mut cmd: Command,
    me: u32,
    uid: u32,
    gid: u32,
    limit: Duration,
) -> Result<Vec<u8>, Failure> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a terminal's ^C for hangscope is not delivered to it.
        .process_group(0);
    if me != uid {
        cmd.uid(uid).gid(gid);
    }
    // SAFETY: between fork and exec the closure only calls prctl, which is async-signal-safe.
    // It runs after the uid change, which would clear the setting.
    unsafe {
        cmd.pre_exec(|| {
            // Killed with hangscope, should hangscope die before it can kill it: a client left
            // connected to a server that stopped answering would wait for ever.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(Failure::Spawn)?;
    let (out, stderr, status) = run_bounded(child, limit);
    // First: a client killed for saying too much was not slow.
    if out.len() > MAX_OUTPUT {
        return Err(Failure::TooLong);
    }
    let Some(status) = status else {
        return Err(Failure::TimedOut { stderr });
    };
    if !status.success() {
        return Err(Failure::Failed { status, stderr });
    }
    Ok(out)
}

/// Runs the child to its end or until `limit`: its stdout (at most `MAX_OUTPUT` + 1 bytes),
/// its stderr (at most `MAX_STDERR`), and how it ended; `None` when it was killed for taking
/// too long or saying too much.
fn run_bounded(
    mut child: Child,
    limit: Duration,
) -> (Vec<u8>, Vec<u8>, Option<std::process::ExitStatus>) {
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    for p in [
        stdout.as_ref().map(|s| s.as_fd()),
        stderr.as_ref().map(|s| s.as_fd()),
    ]
    .into_iter()
    .flatten()
    {
        let _ = nix::fcntl::fcntl(
            p,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    let mut chunk = vec![0u8; 64 * 1024];
    let mut too_much = false;
    while stdout.is_some() || stderr.is_some() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || too_much {
            break;
        }
        let mut fds = Vec::with_capacity(2);
        if let Some(s) = &stdout {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = &stderr {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        let timeout =
            PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
        drop(fds);
        if drain(&mut stdout, &mut out, &mut chunk, MAX_OUTPUT + 1) {
            too_much = out.len() > MAX_OUTPUT;
        }
        drain(&mut stderr, &mut err, &mut chunk, MAX_STDERR);
    }
    if stdout.is_none() && stderr.is_none() && !too_much {
        // Both closed: it is exiting. Reap it, bounded: its exit could still be held up.
        while Instant::now() < end {
            match child.try_wait() {
                Ok(Some(status)) => return (out, err, Some(status)),
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => break,
            }
        }
    }
    // Our own child, by its PID.
    let _ = child.kill();
    reap_later(child);
    (out, err, None)
}

/// Reads what is there from a non-blocking pipe into `into` (kept to `max` bytes); the pipe
/// is dropped at its end. Whether anything was read.
fn drain<R: Read>(pipe: &mut Option<R>, into: &mut Vec<u8>, chunk: &mut [u8], max: usize) -> bool {
    let mut read_any = false;
    while let Some(p) = pipe.as_mut() {
        match p.read(chunk) {
            Ok(0) => *pipe = None,
            Ok(n) => {
                read_any = true;
                let room = max.saturating_sub(into.len());
                into.extend_from_slice(&chunk[..n.min(room)]);
                if n > room {
                    // Over the bound: what it says beyond is not wanted.
                    into.push(0);
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return read_any,
        }
    }
    read_any
}

/// Waits for a killed child on a thread of its own, so it does not stay a zombie and nothing
/// of the run waits for it (a process in the kernel dies when the kernel lets it).
fn reap_later(mut child: Child) {
    let _ = std::thread::Builder::new()
        .name("hs-reap".into())
        .spawn(move || {
            let _ = child.wait();
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> u32 {
        // SAFETY: getuid cannot fail and touches no memory.
        unsafe { libc::getuid() }
    }

    fn sh(script: &str) -> Command {
        let mut cmd = command("/bin/sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn a_client_that_hangs_is_killed_at_the_limit() {
        let started = Instant::now();
        let got = run(
            sh("echo waiting >&2; exec sleep 30"),
            me(),
            me(),
            0,
            Duration::from_millis(300),
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        match got {
            Err(Failure::TimedOut { stderr }) => assert_eq!(stderr, b"waiting\n"),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[test]
    fn a_failure_keeps_its_status_and_complaint_and_the_environment_is_clean() {
        let limit = Duration::from_secs(5);
        match run(sh("echo refused >&2; exit 3"), me(), me(), 0, limit) {
            Err(Failure::Failed { status, stderr }) => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr, b"refused\n");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        // Nothing of hangscope's environment reaches the client (HOME is set for any test).
        let out = run(sh("echo \"[$HOME] $PWD\""), me(), me(), 0, limit).expect("runs");
        assert_eq!(out, b"[] /\n");
        // Too long an answer is refused, not cut into something that parses, and it is said
        // so: before, the kill made it "did not answer within 5.0 s".
        let big = format!("head -c {} /dev/zero", MAX_OUTPUT + 10);
        assert!(matches!(
            run(sh(&big), me(), me(), 0, limit),
            Err(Failure::TooLong)
        ));
        match run(command("/nonexistent/psql"), me(), me(), 0, limit) {
            Err(Failure::Spawn(e)) => {
                assert_eq!(Failure::spawn_reason(&e), GapReason::Unsupported)
            }
            other => panic!("expected a spawn failure, got {other:?}"),
        }
    }
}
