//! The target's socket fds duplicated (pidfd_getfd) and read in a short-lived child process,
//! so that an fd which is no longer a socket never reaches this one.
//!
//! The fd number readlink saw may have been closed and reused by the target by the time it is
//! duplicated: the duplicate can be a file on a hung FUSE or NFS mount. An fstat of it may
//! call the file system, and every close(2) of it calls the file's flush — FUSE sends FLUSH to
//! its daemon, a request no signal interrupts — so a close could hold a thread for ever, and a
//! process cannot exit while one of its threads is stuck (its parent's wait, and the reader
//! of its output, would hang with it). So the duplicates live only in a forked child: it asks
//! each one `SO_DOMAIN` first (ENOTSOCK for anything else, answered without the file system);
//! only a socket is then fstat'ed (its inode, sockfs), asked its protocol and addresses, and
//! closed. A duplicate that is not a socket is left open in the child, which writes what it
//! read, closes its pipe and exits; if its exit blocks on that close it is left behind, having
//! already closed every other fd (hangscope's output among them). The parent waits for the
//! answer at most [`ANSWER_LIMIT`] and never for the child's exit.
//!
//! Between fork and `_exit` the child makes only system calls, on memory prepared before the
//! fork: a multi-threaded process's child may not allocate or take a lock.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::error::ReadError;

/// The longest wait for the child's answer: it makes a few dozen non-blocking calls.
pub const ANSWER_LIMIT: Duration = Duration::from_millis(500);

/// What the child read of one fd.
#[repr(C)]
#[derive(Clone, Copy)]
struct Raw {
    fd: i32,
    /// 0: not reached; 1: a socket, read; 2: not a socket; -errno: pidfd_getfd or a read of
    /// the socket failed (`step` says which).
    state: i32,
    step: i32,
    domain: i32,
    protocol: i32,
    ino: u64,
    local: libc::sockaddr_storage,
    /// 0, or the errno of getpeername (ENOTCONN: not connected).
    peer_errno: i32,
    peer: libc::sockaddr_storage,
}

/// One fd of the target, as the child found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Socket {
        inode: u64,
        domain: i32,
        protocol: i32,
        local: Option<SocketAddr>,
        /// `None`: not connected.
        peer: Option<SocketAddr>,
    },
    /// The fd now refers to something else than a socket: closed and reused by the target.
    NotSocket,
}

const STEP_GETFD: i32 = 1;
const STEP_DOMAIN: i32 = 2;
const STEP_FSTAT: i32 = 3;
const STEP_PROTOCOL: i32 = 4;
const STEP_NAME: i32 = 5;

fn step_name(step: i32) -> &'static str {
    match step {
        STEP_GETFD => "pidfd_getfd",
        STEP_DOMAIN => "getsockopt SO_DOMAIN",
        STEP_FSTAT => "fstat",
        STEP_PROTOCOL => "getsockopt SO_PROTOCOL",
        _ => "getsockname",
    }
}

/// Duplicates and reads `fds` of the process `pidfd` refers to, in a child; one answer per fd,
/// in order. `Err` for the whole: no child, no answer in time, or an fd that could not be read.
pub fn read(pidfd: &OwnedFd, fds: &[i32]) -> Result<Vec<Found>, ReadError> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let blank: Raw = unsafe { std::mem::zeroed() };
    let mut raws: Vec<Raw> = fds.iter().map(|&fd| Raw { fd, ..blank }).collect();
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ReadError::errno("pipe", e))?;
    let (pidfd_raw, tx_raw) = (pidfd.as_raw_fd(), tx.as_raw_fd());
    let bytes = std::mem::size_of_val(raws.as_slice());
    let buf = raws.as_mut_ptr();
    let n = raws.len();
    // SAFETY: fork(2); the child only runs `child`, which makes system calls on `raws` (its
    // own copy) and never returns.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(ReadError::io("fork", &io::Error::last_os_error()));
    }
    if child == 0 {
        // SAFETY: in the child, on memory allocated before the fork; see `child`.
        unsafe { run_child(pidfd_raw, tx_raw, buf, n, bytes) }
    }
    drop(tx);
    let got = read_answer(&rx, bytes, ANSWER_LIMIT);
    // Reaped if it is gone already; never waited for: its exit may block on a close.
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(child),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
    let got = got?;
    if got.len() != bytes {
        return Err(ReadError::malformed(format!(
            "the probe answered {} of {bytes} bytes",
            got.len()
        )));
    }
    // SAFETY: `got` holds exactly `n` Raw values as the child wrote them from the same layout.
    unsafe { std::ptr::copy_nonoverlapping(got.as_ptr(), buf.cast::<u8>(), bytes) };
    raws.iter().map(found).collect()
}

fn found(r: &Raw) -> Result<Found, ReadError> {
    match r.state {
        1 => Ok(Found::Socket {
            inode: r.ino,
            domain: r.domain,
            protocol: r.protocol,
            local: address(&r.local),
            peer: if r.peer_errno == 0 {
                address(&r.peer)
            } else {
                None
            },
        }),
        2 => Ok(Found::NotSocket),
        0 => Err(ReadError::other(format!(
            "fd {}: not reached by the probe",
            r.fd
        ))),
        e => Err(ReadError::io(
            format_args!("fd {}: {}", r.fd, step_name(r.step)),
            &super::sock_diag::error_from(e),
        )
        .at(format!("fd {}", r.fd))),
    }
}

/// The child: see the module header. Never returns.
///
/// # Safety
/// Only in the child of fork(2), with `buf` pointing at `n` Raw values of its own memory.
unsafe fn run_child(pidfd: i32, tx: i32, buf: *mut Raw, n: usize, bytes: usize) -> ! {
    // SAFETY: system calls only, on fds and memory this process owns.
    unsafe {
        // Nothing of hangscope's stays open here but the two fds needed: a child left behind
        // must not hold its output open.
        let (lo, hi) = (i64::from(pidfd.min(tx)), i64::from(pidfd.max(tx)));
        let ranges = [(0, lo - 1), (lo + 1, hi - 1), (hi + 1, u32::MAX as i64)];
        for (a, b) in ranges {
            if a <= b {
                let rc = libc::syscall(libc::SYS_close_range, a as u32, b as u32, 0u32);
                if rc != 0 {
                    // Before 5.9: close one by one, up to the usual limit.
                    let mut fd = a;
                    while fd <= b.min(65535) {
                        libc::close(fd as i32);
                        fd += 1;
                    }
                }
            }
        }
        for i in 0..n {
            let r = &mut *buf.add(i);
            probe_one(pidfd, r);
        }
        let mut off = 0usize;
        let base = buf.cast::<u8>();
        while off < bytes {
            let w = libc::write(tx, base.add(off).cast(), bytes - off);
            if w <= 0 {
                break;
            }
            off += w as usize;
        }
        libc::close(tx);
        libc::_exit(0)
    }
}

/// # Safety
/// System calls on the child's own fds; see [`run_child`].
unsafe fn probe_one(pidfd: i32, r: &mut Raw) {
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // SAFETY: plain system calls with buffers of the sizes given.
    unsafe {
        let dup = libc::syscall(libc::SYS_pidfd_getfd, pidfd, r.fd, 0) as i32;
        if dup < 0 {
            (r.state, r.step) = (-errno(), STEP_GETFD);
            return;
        }
        // First, without the file system: anything but a socket gives ENOTSOCK.
        let int_opt = |opt: libc::c_int, out: &mut i32| {
            let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
            libc::getsockopt(
                dup,
                libc::SOL_SOCKET,
                opt,
                (out as *mut i32).cast(),
                &mut len,
            )
        };
        if int_opt(libc::SO_DOMAIN, &mut r.domain) != 0 {
            let e = errno();
            if e == libc::ENOTSOCK {
                // Left open: its close could block; this process's exit closes it.
                r.state = 2;
            } else {
                (r.state, r.step) = (-e, STEP_DOMAIN);
                libc::close(dup);
            }
            return;
        }
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(dup, &mut st) != 0 {
            (r.state, r.step) = (-errno(), STEP_FSTAT);
        } else if int_opt(libc::SO_PROTOCOL, &mut r.protocol) != 0 {
            (r.state, r.step) = (-errno(), STEP_PROTOCOL);
        } else {
            r.ino = st.st_ino;
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let p = (&mut r.local as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
            if libc::getsockname(dup, p, &mut len) != 0 {
                (r.state, r.step) = (-errno(), STEP_NAME);
            } else {
                let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                let p = (&mut r.peer as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
                r.peer_errno = if libc::getpeername(dup, p, &mut len) != 0 {
                    errno()
                } else {
                    0
                };
                r.state = 1;
            }
        }
        // A socket's close is the socket layer's: no file system is called.
        libc::close(dup);
    }
}

/// Reads the child's answer to its end (EOF), or fails after `limit`.
fn read_answer(rx: &OwnedFd, cap: usize, limit: Duration) -> Result<Vec<u8>, ReadError> {
    let end = Instant::now() + limit;
    let mut got = Vec::with_capacity(cap);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::deadline(format!(
                "no answer from the probe in {}",
                hangscope_model::units::duration(limit)
            )));
        }
        let timeout =
            PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(ReadError::errno("poll", e)),
        }
        match nix::unistd::read(rx, &mut chunk) {
            Ok(0) => return Ok(got),
            Ok(k) => {
                got.extend_from_slice(&chunk[..k]);
                if got.len() > cap {
                    return Err(ReadError::malformed("the probe said too much"));
                }
            }
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(ReadError::errno("read", e)),
        }
    }
}

/// An IPv4 or IPv6 address as the kernel wrote it; `None` for another family.
pub fn address(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    let p = (ss as *const libc::sockaddr_storage).cast::<libc::sockaddr>();
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET; storage is large enough.
            let a: libc::sockaddr_in = unsafe { *(p as *const libc::sockaddr_in) };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let a: libc::sockaddr_in6 = unsafe { *(p as *const libc::sockaddr_in6) };
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)),
                u16::from_be(a.sin6_port),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn own_pidfd() -> OwnedFd {
        // SAFETY: pidfd_open of this process; the fd is ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
        assert!(fd >= 0, "pidfd_open: {}", io::Error::last_os_error());
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    }

    #[test]
    fn a_socket_is_read_and_a_file_is_only_found_not_to_be_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let dir = std::env::temp_dir().join(format!("hs-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A FIFO opened read-write: a file whose wrong open or read would block, standing in
        // for one on a hung mount.
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let fifo_fd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let file = std::fs::File::create(dir.join("plain")).unwrap();
        let pidfd = own_pidfd();
        let fds = [
            client.as_raw_fd(),
            fifo_fd.as_raw_fd(),
            file.as_raw_fd(),
            listener.as_raw_fd(),
        ];
        let started = Instant::now();
        let out = read(&pidfd, &fds).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(started.elapsed() < ANSWER_LIMIT, "{:?}", started.elapsed());
        use std::os::unix::fs::MetadataExt;
        let ino = |fd: i32| {
            nix::sys::stat::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
                .unwrap()
                .st_ino
        };
        match &out[0] {
            Found::Socket {
                inode,
                domain,
                protocol,
                local,
                peer,
            } => {
                assert_eq!(*inode, ino(client.as_raw_fd()));
                assert_eq!((*domain, *protocol), (libc::AF_INET, libc::IPPROTO_TCP));
                assert_eq!(*local, Some(client.local_addr().unwrap()));
                assert_eq!(*peer, Some(server.local_addr().unwrap()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(out[1], Found::NotSocket);
        assert_eq!(out[2], Found::NotSocket);
        let _ = file.metadata().map(|m| m.ino());
        match &out[3] {
            Found::Socket { peer, local, .. } => {
                assert_eq!(*peer, None, "a listener has no peer");
                assert_eq!(*local, Some(listener.local_addr().unwrap()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_closed_fd_is_an_error_not_a_socket() {
        let pidfd = own_pidfd();
        let err = read(&pidfd, &[100_000]).unwrap_err();
        assert_eq!(
            err.kind,
            crate::error::ReadErrorKind::Errno(libc::EBADF),
            "{err}"
        );
        assert_eq!(err.path.as_deref(), Some("fd 100000"));
    }
}
