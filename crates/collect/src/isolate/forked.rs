//! The same reads as `hangscope __read tail|list`, in a forked child that does not exec: the
//! isolation is the same (a separate process, abandoned when it does not answer in time, that
//! holds none of hangscope's fds), without loading the 80 MB binary again (an exec measured
//! 4–14 ms of a small target's 30 ms look; a fork, under 1 ms).
//!
//! Between fork and `_exit` the child makes only system calls, on memory prepared before the
//! fork: a multi-threaded process's child may not allocate or take a lock (as in
//! `sockets::probe`). It answers with a fixed header — 0 or an errno, then the sizes — and the
//! bytes read: the file's last bytes, or the directory's raw `getdents64` records, which the
//! parent parses.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use super::{Outcome, collect_answer};
use crate::logs::tail::RawTail;

/// Size of the header of a tail's answer: errno, size, mtime, start, length (i64 each).
const TAIL_HEADER: usize = 5 * 8;
/// The buffer a listing's child reads `getdents64` records into.
const DENTS_BUF: usize = 32 * 1024;
/// A `linux_dirent64` record: d_ino, d_off (8 bytes each), d_reclen (2), d_type (1), d_name.
const DIRENT_NAME_AT: usize = 19;

/// The last `max_bytes` of the regular file the `O_PATH` fd `file` refers to.
pub(super) fn tail(file: BorrowedFd<'_>, max_bytes: u64, limit: Duration) -> Outcome<RawTail> {
    let mut buf = vec![0u8; TAIL_HEADER + max_bytes as usize];
    let path = match reopen_path(file.as_raw_fd()) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(e),
    };
    let answer = run(file.as_raw_fd(), buf.len(), limit, |tx| {
        // SAFETY: in the child: system calls on `buf`, its own copy, and its fds.
        unsafe { tail_child(&path, &mut buf, max_bytes, tx) }
    });
    match answer {
        Outcome::Done(bytes) => Outcome::of(parse_tail(&bytes)),
        Outcome::Failed(e) => Outcome::Failed(e),
        Outcome::TimedOut(d) => Outcome::TimedOut(d),
    }
}

/// At most `max_entries` names in the directory the `O_PATH` fd `dir` refers to.
pub(super) fn list(
    dir: BorrowedFd<'_>,
    max_entries: usize,
    limit: Duration,
) -> Outcome<Vec<OsString>> {
    let mut buf = vec![0u8; DENTS_BUF];
    let path = match reopen_path(dir.as_raw_fd()) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(e),
    };
    // Records are at least 24 bytes: this many bytes hold `max_entries` names and the dots.
    let cap = 8 + (max_entries + 2) * (DIRENT_NAME_AT + 256);
    let answer = run(dir.as_raw_fd(), cap, limit, |tx| {
        // SAFETY: in the child: system calls on `buf`, its own copy, and its fds.
        unsafe { list_child(&path, &mut buf, max_entries, tx) }
    });
    match answer {
        Outcome::Done(bytes) => Outcome::of(parse_list(&bytes, max_entries)),
        Outcome::Failed(e) => Outcome::Failed(e),
        Outcome::TimedOut(d) => Outcome::TimedOut(d),
    }
}

fn reopen_path(fd: RawFd) -> io::Result<CString> {
    CString::new(format!("/proc/self/fd/{fd}")).map_err(io::Error::other)
}

/// Forks a child that runs `child` (which must end in `_exit`) with a pipe's write end, and
/// returns what it wrote, at most `cap` bytes, or `TimedOut` (and the child killed, not waited
/// for) if it did not end its answer in `limit`.
fn run(keep: RawFd, cap: usize, limit: Duration, child: impl FnOnce(RawFd)) -> Outcome<Vec<u8>> {
    let (rx, tx) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(e.into()),
    };
    let tx_raw = tx.as_raw_fd();
    // SAFETY: fork(2); the child only closes fds and runs `child`, which makes system calls
    // on memory allocated before the fork and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Outcome::Failed(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child; see `close_all_but`.
        unsafe { close_all_but(keep, tx_raw) };
        child(tx_raw);
        // SAFETY: `child` should not return; if it does, the child ends here.
        unsafe { libc::_exit(1) };
    }
    drop(tx);
    let answer = collect_answer(File::from(rx), cap, limit);
    let pid = nix::unistd::Pid::from_raw(pid);
    if !matches!(answer, Ok(Some(_))) {
        // Our own child, by its PID. Not waited for: it may stay in the kernel.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    // Reaped if it is gone already; never waited for: its close of the file could block.
    let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
    match answer {
        Ok(Some(bytes)) => Outcome::Done(bytes),
        Ok(None) => Outcome::TimedOut(limit),
        Err(e) => Outcome::Failed(e),
    }
}

/// Closes every fd but `a` and `b`: a child left behind must not hold hangscope's output open.
///
/// # Safety
/// Only in the child of fork(2).
unsafe fn close_all_but(a: RawFd, b: RawFd) {
    let (lo, hi) = (i64::from(a.min(b)), i64::from(a.max(b)));
    let ranges = [(0, lo - 1), (lo + 1, hi - 1), (hi + 1, i64::from(u32::MAX))];
    for (from, to) in ranges {
        if from > to {
            continue;
        }
        // SAFETY: close_range(2) on this process's own fds.
        let rc = unsafe { libc::syscall(libc::SYS_close_range, from as u32, to as u32, 0u32) };
        if rc != 0 {
            // Before 5.9: one by one, up to the usual limit.
            for fd in from..=to.min(65535) {
                // SAFETY: close(2) of an fd number of this process.
                unsafe { libc::close(fd as i32) };
            }
        }
    }
}

fn errno() -> i64 {
    io::Error::last_os_error()
        .raw_os_error()
        .map_or(i64::from(libc::EIO), i64::from)
}

/// Writes all of `bytes` to `fd`, as far as it goes.
///
/// # Safety
/// System calls only.
unsafe fn write_all(fd: RawFd, bytes: &[u8]) {
    let mut off = 0;
    while off < bytes.len() {
        // SAFETY: write(2) from a live slice.
        let w = unsafe { libc::write(fd, bytes[off..].as_ptr().cast(), bytes.len() - off) };
        if w < 0 && errno() == i64::from(libc::EINTR) {
            continue;
        }
        if w <= 0 {
            return;
        }
        off += w as usize;
    }
}

/// Opens `path` (a /proc/self/fd link) for reading, non-blocking: a FIFO or device is never
/// waited on.
///
/// # Safety
/// System calls only.
unsafe fn open_for_reading(path: &CString, extra: i32) -> i32 {
    // SAFETY: open(2) of a NUL-terminated path.
    unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC | extra,
        )
    }
}

/// The child of [`tail`]: header (errno, size, mtime, start, length) in `buf`'s first
/// [`TAIL_HEADER`] bytes, the file's last bytes after it.
///
/// # Safety
/// Only in the child of fork(2), on its own copy of `buf`.
unsafe fn tail_child(path: &CString, buf: &mut [u8], max_bytes: u64, tx: RawFd) {
    let mut header = [0i64; 5];
    let (head, body) = buf.split_at_mut(TAIL_HEADER);
    // SAFETY: system calls on this process's fds and on `body`.
    unsafe {
        let fd = open_for_reading(path, 0);
        if fd < 0 {
            header[0] = errno();
        } else {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 {
                header[0] = errno();
            } else if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                header[0] = i64::from(libc::EINVAL);
            } else {
                let size = st.st_size.max(0) as u64;
                let start = size.saturating_sub(max_bytes);
                let want = ((size - start) as usize).min(body.len());
                let mut got = 0usize;
                while got < want {
                    let n = libc::pread(
                        fd,
                        body[got..].as_mut_ptr().cast(),
                        want - got,
                        (start + got as u64) as libc::off_t,
                    );
                    if n < 0 && errno() == i64::from(libc::EINTR) {
                        continue;
                    }
                    if n < 0 {
                        header[0] = errno();
                        break;
                    }
                    if n == 0 {
                        break;
                    }
                    got += n as usize;
                }
                header[1..].copy_from_slice(&[size as i64, st.st_mtime, start as i64, got as i64]);
            }
        }
        for (i, v) in header.iter().enumerate() {
            head[i * 8..(i + 1) * 8].copy_from_slice(&v.to_ne_bytes());
        }
        let len = if header[0] == 0 {
            header[4] as usize
        } else {
            0
        };
        write_all(tx, &buf[..TAIL_HEADER + len]);
        libc::_exit(0)
    }
}

fn parse_tail(bytes: &[u8]) -> io::Result<RawTail> {
    let bad = || io::Error::other("the reading process gave no answer");
    let word = |i: usize| -> io::Result<i64> {
        let b = bytes.get(i * 8..(i + 1) * 8).ok_or_else(bad)?;
        Ok(i64::from_ne_bytes(b.try_into().map_err(|_| bad())?))
    };
    let errno = word(0)?;
    if errno != 0 {
        if errno == i64::from(libc::EINVAL) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        return Err(io::Error::from_raw_os_error(errno as i32));
    }
    let body = &bytes[TAIL_HEADER.min(bytes.len())..];
    if body.len() as i64 != word(4)? {
        return Err(bad());
    }
    Ok(RawTail {
        bytes: body.to_vec(),
        size: word(1)? as u64,
        mtime_s: word(2)?,
        start: word(3)? as u64,
    })
}

/// The child of [`list`]: an errno (8 bytes), then the raw `getdents64` records of at least
/// `max_entries` names, or all of them.
///
/// # Safety
/// Only in the child of fork(2), on its own copy of `buf`.
unsafe fn list_child(path: &CString, buf: &mut [u8], max_entries: usize, tx: RawFd) {
    // SAFETY: system calls on this process's fds and on `buf`.
    unsafe {
        let fd = open_for_reading(path, libc::O_DIRECTORY);
        if fd < 0 {
            write_all(tx, &errno().to_ne_bytes());
            libc::_exit(0)
        }
        write_all(tx, &0i64.to_ne_bytes());
        let mut names = 0usize;
        while names < max_entries + 2 {
            let n = libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len());
            if n <= 0 {
                break;
            }
            let n = n as usize;
            let mut at = 0;
            while at + DIRENT_NAME_AT <= n {
                let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
                if reclen == 0 {
                    break;
                }
                names += 1;
                at += reclen;
            }
            write_all(tx, &buf[..n]);
        }
        libc::_exit(0)
    }
}

fn parse_list(bytes: &[u8], max_entries: usize) -> io::Result<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let bad = || io::Error::other("the reading process gave no answer");
    let head = bytes.get(..8).ok_or_else(bad)?;
    let errno = i64::from_ne_bytes(head.try_into().map_err(|_| bad())?);
    if errno != 0 {
        return Err(io::Error::from_raw_os_error(errno as i32));
    }
    let mut names = Vec::new();
    let mut rest = &bytes[8..];
    while rest.len() >= DIRENT_NAME_AT && names.len() < max_entries {
        let reclen = u16::from_ne_bytes([rest[16], rest[17]]) as usize;
        if reclen < DIRENT_NAME_AT || reclen > rest.len() {
            return Err(bad());
        }
        let name = &rest[DIRENT_NAME_AT..reclen];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name != b"." && name != b".." {
            names.push(std::ffi::OsStr::from_bytes(name).to_os_string());
        }
        rest = &rest[reclen..];
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn opath(p: &std::path::Path) -> std::os::fd::OwnedFd {
        nix::fcntl::open(
            p,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn a_forked_child_reads_what_the_helper_reads() {
        let dir = std::env::temp_dir().join(format!("hangscope-forked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.log");
        std::fs::write(&p, "one\ntwo\n").unwrap();
        for n in 0..40 {
            std::fs::write(dir.join(format!("a.log.{n}")), "").unwrap();
        }
        let file = opath(&p);
        let forked = tail(file.as_fd(), 4, Duration::from_secs(5));
        let here = super::super::read_tail(None, file.as_fd(), 4, Duration::from_secs(5));
        match (forked, here) {
            (Outcome::Done(a), Outcome::Done(b)) => {
                assert_eq!(a.bytes, b"two\n");
                assert_eq!(
                    (a.bytes, a.start, a.size, a.mtime_s),
                    (b.bytes, b.start, b.size, b.mtime_s)
                );
            }
            other => panic!("{other:?}"),
        }
        let d = opath(&dir);
        let mut forked = match list(d.as_fd(), 1000, Duration::from_secs(5)) {
            Outcome::Done(n) => n,
            other => panic!("{other:?}"),
        };
        let mut here = match super::super::list_dir(None, d.as_fd(), 1000, Duration::from_secs(5)) {
            Outcome::Done(n) => n,
            other => panic!("{other:?}"),
        };
        forked.sort();
        here.sort();
        assert_eq!(forked.len(), 41);
        assert_eq!(forked, here);
        // Bounded as the helper is.
        let few = match list(d.as_fd(), 5, Duration::from_secs(5)) {
            Outcome::Done(n) => n,
            other => panic!("{other:?}"),
        };
        assert_eq!(few.len(), 5);
        // A directory is not a regular file; a missing one cannot be opened.
        assert!(matches!(
            tail(d.as_fd(), 4, Duration::from_secs(5)),
            Outcome::Failed(_)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
