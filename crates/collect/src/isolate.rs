//! Reads of a target's files in a helper process, abandoned when it does not answer in time.
//!
//! An open or a read can block however local the file system is: a fanotify permission
//! listener (`FAN_OPEN_PERM`, `FAN_ACCESS_PERM`) that never answers holds the opener in the
//! kernel, and so does a disk or a FUSE server that stopped answering. A thread of hangscope
//! stuck there cannot be cancelled, and the whole process could not even exit (exit_group
//! waits for every thread). So the open and the reads run in a child process, handed the file
//! as an `O_PATH` fd (opened without a path walk, a lease break or a fanotify event, see
//! `logs::open`), which reopens it through /proc/self/fd and writes back what it read: the
//! last bytes of a file, or the names in a directory. A child that has not answered by the
//! time limit is killed and left behind: if it is stuck in the kernel it goes when the kernel
//! lets it, and it holds none of hangscope's output, so nothing waits for it.
//!
//! The logs' child is forked and does not exec (`forked`): the same process boundary, without
//! loading the binary again. The runtimes' reads, which need more than system calls, run
//! `hangscope __read MODE ...` with the file on fd 3 (`ask`; `crate::helper`), which serves
//! the same two file reads as well.

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

mod forked;

/// The hidden subcommand of the hangscope binary that serves one read.
pub const SUBCOMMAND: &str = "__read";
/// The fd the child finds the file on.
const FILE_FD: RawFd = 3;

#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    Failed(io::Error),
    /// No answer within the limit: the open or a read blocked.
    TimedOut(Duration),
}

impl<T> Outcome<T> {
    fn of(r: io::Result<T>) -> Outcome<T> {
        match r {
            Ok(t) => Outcome::Done(t),
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// The last `max_bytes` of the regular file `file` (an `O_PATH` fd), read by the `helper`
/// binary within `limit`; in this process when there is no helper (the library's own tests).
pub fn read_tail(
    helper: Option<&Path>,
    file: BorrowedFd<'_>,
    max_bytes: u64,
    limit: Duration,
) -> Outcome<RawTail> {
    if helper.is_none() {
        return Outcome::of(reopen(file.as_raw_fd()).and_then(|f| read_raw(&f, max_bytes)));
    }
    forked::tail(file, max_bytes, limit)
}

/// At most `max_entries` names in the directory `dir` (an `O_PATH` fd), listed by the
/// `helper` binary within `limit`, or in this process when there is none.
pub fn list_dir(
    helper: Option<&Path>,
    dir: BorrowedFd<'_>,
    max_entries: usize,
    limit: Duration,
) -> Outcome<Vec<OsString>> {
    if helper.is_none() {
        return Outcome::of(list_raw(dir.as_raw_fd(), max_entries));
    }
    forked::list(dir, max_entries, limit)
}

fn list_raw(fd: RawFd, max_entries: usize) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(format!("/proc/self/fd/{fd}"))?.take(max_entries) {
        names.push(e?.file_name());
    }
    Ok(names)
}

/// Runs `helper __read ARGS` with `file` on fd 3 and returns what it printed, at most `cap`
/// bytes, or `TimedOut` (and the child killed, not waited for) if it did not end in `limit`.
/// The answer starts with a header line, "ok ..." or "err ERRNO" (see [`split_answer`]).
pub(crate) fn ask(
    helper: &Path,
    file: BorrowedFd<'_>,
    args: &[&str],
    cap: usize,
    limit: Duration,
) -> Outcome<Vec<u8>> {
    let mut cmd = Command::new(helper);
    cmd.arg(SUBCOMMAND)
        .args(args)
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
        .and_then(|out| collect_answer(out, cap, limit));
    match answer {
        Ok(Some(bytes)) => {
            // It has answered and is exiting; reap it if it is gone already, never wait: its
            // close of the file could still block.
            let _ = child.try_wait();
            Outcome::Done(bytes)
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
    mut out: impl Read + AsFd + AsRawFd,
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

/// The header line of an answer and what follows it: "ok ..." or "err ERRNO".
pub(crate) fn split_answer(bytes: &[u8]) -> io::Result<(Vec<&str>, &[u8])> {
    let bad = || io::Error::other("the reading process gave no answer");
    let nl = bytes.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| bad())?;
    let words: Vec<&str> = header.split(' ').collect();
    match words.first() {
        Some(&"ok") => Ok((words[1..].to_vec(), &bytes[nl + 1..])),
        Some(&"err") => {
            let errno = words.get(1).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
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

/// The child's side of the file reads: `hangscope __read tail MAX_BYTES` or `__read list
/// MAX_ENTRIES`, with the file on fd 3 (`args` from MAX on); `None` for another mode.
pub(crate) fn serve(mode: &str, args: &[OsString], out: &mut impl Write) -> Option<io::Result<()>> {
    use std::os::unix::ffi::OsStrExt;
    let max = args.first().and_then(|a| a.to_str())?.parse::<u64>().ok()?;
    Some(match mode {
        "tail" => match reopen(FILE_FD).and_then(|f| read_raw(&f, max)) {
            Ok(t) => writeln!(out, "ok {} {} {}", t.size, t.mtime_s, t.start)
                .and_then(|_| out.write_all(&t.bytes)),
            Err(e) => error_line(out, &e),
        },
        "list" => match list_raw(FILE_FD, max as usize) {
            Ok(names) => writeln!(out, "ok").and_then(|_| {
                names.iter().try_for_each(|n| {
                    out.write_all(n.as_bytes())?;
                    out.write_all(b"\0")
                })
            }),
            Err(e) => error_line(out, &e),
        },
        _ => return None,
    })
}

pub(crate) fn error_line(out: &mut impl Write, e: &io::Error) -> io::Result<()> {
    writeln!(out, "err {}", e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split() {
        let (words, body) = split_answer(b"ok 10 4\nabc").unwrap();
        assert_eq!((words, body), (vec!["10", "4"], &b"abc"[..]));
        let e = split_answer(b"err 13\n").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        assert!(split_answer(b"").is_err());
        assert!(split_answer(b"what\n").is_err());
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
        let out = ask(
            &fake,
            file.as_fd(),
            &["tail", "1024"],
            2048,
            Duration::from_millis(300),
        );
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
            Outcome::Done(t) => {
                assert_eq!(t.bytes, b"two\n");
                assert_eq!((t.start, t.size), (4, 8));
            }
            other => panic!("{other:?}"),
        }
    }
}
