//! Reads of a target's file data in a helper process, abandoned when it does not answer in
//! time.
//!
//! An open or a read of a file can block however local its file system is: a fanotify
//! permission listener (`FAN_OPEN_PERM`, `FAN_ACCESS_PERM`) that never answers holds the opener
//! in the kernel, and so does a disk or a FUSE server that stopped answering. A thread of
//! hangscope stuck there cannot be cancelled, and the whole process could not even exit
//! (exit_group waits for every thread). So the open and the read run in a child,
//! `hangscope __read-tail MAX_BYTES`, which is handed the file as an `O_PATH` fd 3 (opened
//! without a path walk, a lease break or a fanotify event, see `logs`), reopens it through
//! /proc/self/fd/3 and writes back what it read. A child that has not answered by the time
//! limit is killed and left behind: if it is stuck in the kernel it goes when the kernel lets
//! it, and it holds none of hangscope's output, so nothing waits for it.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::logs::tail::{RawTail, read_raw};

/// The hidden subcommand of the hangscope binary that serves one read.
pub const SUBCOMMAND: &str = "__read-tail";
/// The fd the child finds the file on.
const FILE_FD: RawFd = 3;
/// Room for the answer's header line, beyond the bytes read.
const HEADER_MAX: usize = 128;

#[derive(Debug)]
pub enum Outcome {
    Read(RawTail),
    Failed(io::Error),
    /// No answer within the limit: the open or a read blocked.
    TimedOut(Duration),
}

/// The last `max_bytes` of the regular file `file` (an `O_PATH` fd), read by the `helper`
/// binary within `limit`; in this process when there is no helper (the library's own tests).
pub fn read_tail(
    helper: Option<&Path>,
    file: BorrowedFd<'_>,
    max_bytes: u64,
    limit: Duration,
) -> Outcome {
    let Some(helper) = helper else {
        return match reopen(file.as_raw_fd()).and_then(|f| read_raw(&f, max_bytes)) {
            Ok(t) => Outcome::Read(t),
            Err(e) => Outcome::Failed(e),
        };
    };
    let mut cmd = Command::new(helper);
    cmd.arg(SUBCOMMAND)
        .arg(max_bytes.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let raw = file.as_raw_fd();
    // SAFETY: between fork and exec the closure only calls dup2 and fcntl, which are
    // async-signal-safe, and touches no memory but its captured integer.
    unsafe {
        cmd.pre_exec(move || {
            let rc = if raw == FILE_FD {
                libc::fcntl(FILE_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, FILE_FD)
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    let answer = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no pipe from the reading process"))
        .and_then(|out| collect_answer(out, max_bytes as usize + HEADER_MAX, limit));
    match answer {
        Ok(Some(bytes)) => {
            // It has answered and is exiting; reap it if it is gone already, never wait: its
            // close of the file could still block.
            let _ = child.try_wait();
            match parse_answer(&bytes) {
                Ok(t) => Outcome::Read(t),
                Err(e) => Outcome::Failed(e),
            }
        }
        Ok(None) => {
            // Our own child, by its PID. Not waited for: it may stay in the kernel.
            let _ = child.kill();
            let _ = child.try_wait();
            Outcome::TimedOut(limit)
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.try_wait();
            Outcome::Failed(e)
        }
    }
}

/// Reads the child's answer to its end, or `None` if it is not complete within `limit`.
fn collect_answer(
    mut out: std::process::ChildStdout,
    cap: usize,
    limit: Duration,
) -> io::Result<Option<Vec<u8>>> {
    let fd = out.as_raw_fd();
    // SAFETY: fcntl on an fd we own; only the O_NONBLOCK status flag changes.
    let rc = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match out.read(&mut chunk) {
            Ok(0) => return Ok(Some(got)),
            Ok(n) => {
                got.extend_from_slice(&chunk[..n]);
                if got.len() > cap {
                    return Err(io::Error::other("the reading process said too much"));
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let timeout =
            PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// "ok SIZE MTIME START\n" then the bytes, or "err ERRNO\n".
fn parse_answer(bytes: &[u8]) -> io::Result<RawTail> {
    let bad = || io::Error::other("the reading process gave no answer");
    let nl = bytes.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| bad())?;
    let mut it = header.split(' ');
    match it.next() {
        Some("ok") => {
            let mut num = || {
                it.next()
                    .and_then(|v| v.parse::<i64>().ok())
                    .ok_or_else(bad)
            };
            let (size, mtime_s, start) = (num()?, num()?, num()?);
            Ok(RawTail {
                bytes: bytes[nl + 1..].to_vec(),
                start: start as u64,
                size: size as u64,
                mtime_s,
            })
        }
        Some("err") => {
            let errno = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            Err(io::Error::from_raw_os_error(errno))
        }
        _ => Err(bad()),
    }
}

/// Opens for reading the file an `O_PATH` fd refers to, without a path walk. Non-blocking: a
/// FIFO or device is never waited on.
fn reopen(fd: RawFd) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{fd}"))
}

/// The child's side: `hangscope __read-tail MAX_BYTES` with the file on fd 3. Returns the exit
/// code.
pub fn serve(args: &[OsString]) -> i32 {
    let max_bytes = args
        .first()
        .and_then(|a| a.to_str())
        .and_then(|a| a.parse::<u64>().ok());
    let Some(max_bytes) = max_bytes else {
        return 2;
    };
    let answer = reopen(FILE_FD).and_then(|f| read_raw(&f, max_bytes));
    let mut out = io::stdout().lock();
    let written = match answer {
        Ok(t) => writeln!(out, "ok {} {} {}", t.size, t.mtime_s, t.start)
            .and_then(|_| out.write_all(&t.bytes)),
        Err(e) => writeln!(out, "err {}", e.raw_os_error().unwrap_or(libc::EIO)),
    };
    if written.and_then(|_| out.flush()).is_err() {
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let t = parse_answer(b"ok 10 1700000000 4\nabcdef").unwrap();
        assert_eq!(t.bytes, b"abcdef");
        assert_eq!((t.size, t.mtime_s, t.start), (10, 1_700_000_000, 4));
        let e = parse_answer(b"err 13\n").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        assert!(parse_answer(b"").is_err());
        assert!(parse_answer(b"ok 1 2\n").is_err());
        assert!(parse_answer(b"what\n").is_err());
    }

    #[test]
    fn a_child_that_does_not_answer_is_left_in_time() {
        // A shell stands in for a helper whose open never returns.
        let dir = std::env::temp_dir().join(format!("hangscope-isolate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("helper");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let file = std::fs::File::open(&fake).unwrap();
        let started = Instant::now();
        let out = read_tail(Some(&fake), file.as_fd(), 1024, Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(out, Outcome::TimedOut(_)), "{out:?}");
    }

    #[test]
    fn in_process_without_a_helper() {
        let dir = std::env::temp_dir().join(format!("hangscope-isolate-in-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.log");
        std::fs::write(&p, "one\ntwo\n").unwrap();
        let opath = nix::fcntl::open(
            &p,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let out = read_tail(None, opath.as_fd(), 4, Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(&dir);
        match out {
            Outcome::Read(t) => {
                assert_eq!(t.bytes, b"two\n");
                assert_eq!((t.start, t.size), (4, 8));
            }
            other => panic!("{other:?}"),
        }
    }
}
