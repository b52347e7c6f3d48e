//! File scenarios: a process holding one of each kind of fd.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{announce, flag};

/// Holds one of each kind of fd the fd table must show, announces their numbers, and waits.
pub(super) fn holder(args: &[String]) -> Result<(), String> {
    let dir = flag(args, "--dir").ok_or("give --dir DIR")?;
    let err = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let kept = std::fs::File::create(format!("{dir}/kept.txt")).map_err(|e| err("kept", e))?;
    let deleted_path = format!("{dir}/deleted.txt");
    let mut deleted = std::fs::File::create(&deleted_path).map_err(|e| err("deleted", e))?;
    deleted
        .write_all(b"gone but open\n")
        .map_err(|e| err("deleted", e))?;
    std::fs::remove_file(&deleted_path).map_err(|e| err("unlink", e))?;
    let locked = std::fs::File::create(format!("{dir}/locked")).map_err(|e| err("locked", e))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(locked.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(err("flock", std::io::Error::last_os_error()));
    }
    let mut pipe = [0i32; 2];
    // SAFETY: pipe writes two fds into the array.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return Err(err("pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: plain syscalls creating fds this process owns until it exits.
    let efd = unsafe { libc::eventfd(5, libc::EFD_CLOEXEC) };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| err("listen", e))?;
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: listener.as_raw_fd() as u64,
    };
    // SAFETY: valid epoll fd, valid listener fd, live event struct.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, listener.as_raw_fd(), &mut ev) } != 0 {
        return Err(err("epoll_ctl", std::io::Error::last_os_error()));
    }
    announce(&format!(
        "fds kept={} deleted={} locked={} pipe_r={} pipe_w={} eventfd={} epoll={} listener={}",
        kept.as_raw_fd(),
        deleted.as_raw_fd(),
        locked.as_raw_fd(),
        pipe[0],
        pipe[1],
        efd,
        epfd,
        listener.as_raw_fd()
    ));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
