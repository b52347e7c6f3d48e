//! Thread scenarios: one process with a thread in each wait the threads report must explain,
//! and a process with many threads parked on one lock (for grouping and the benchmark).
//!
//! Every thread announces itself on stdout (`NAME TID [details]`) once it is about to enter its
//! wait; the tests then poll /proc/PID/task/TID/syscall until the thread is in it.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::time::Duration;

use super::{announce, flag, tid};

/// A pthread mutex shared by the threads of the scenario; glibc keeps the owner's TID in it.
pub(super) struct SharedMutex(pub(super) std::cell::UnsafeCell<libc::pthread_mutex_t>);
// SAFETY: a pthread mutex is made to be shared between threads; it is only used through
// pthread_mutex_lock/unlock.
unsafe impl Sync for SharedMutex {}

static MUTEX: SharedMutex =
    SharedMutex(std::cell::UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

fn lock_shared_mutex() {
    // SAFETY: the mutex is a static, initialised, never moved.
    unsafe {
        libc::pthread_mutex_lock(MUTEX.0.get());
    }
}

pub(super) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| format!("spawn {name}: {e}"))
}

pub(super) fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// One thread per wait: poll on a silent loopback peer, a 100 ms sleep loop, a busy spin, a
/// pthread mutex held by another thread, read on a pipe nobody writes, epoll_wait on a socket,
/// flock on a file another open file description holds. The main thread waits in pause().
pub(super) fn zoo(args: &[String]) -> Result<(), String> {
    let dir = flag(args, "--dir").ok_or("give --dir DIR")?.to_string();
    let err = |what: &str, e: std::io::Error| format!("{what}: {e}");

    // A silent peer in the same process: accepts, reads nothing, answers nothing.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| err("listen", e))?;
    let addr = listener.local_addr().map_err(|e| err("addr", e))?;
    spawn("silent_peer", move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    })?;

    let mut conn = TcpStream::connect(addr).map_err(|e| err("connect", e))?;
    spawn("poller", move || {
        let _ = conn.write_all(b"CALL demo.ListDb\n");
        let fd = conn.as_raw_fd();
        announce(&format!("poller {} {fd}", tid()));
        loop {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 10_000) };
        }
    })?;

    spawn("sleeper", || {
        announce(&format!("sleeper {}", tid()));
        loop {
            std::thread::sleep(Duration::from_millis(100));
        }
    })?;

    spawn("spinner", || {
        announce(&format!("spinner {}", tid()));
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    })?;

    let (held_tx, held_rx) = std::sync::mpsc::channel();
    spawn("mutex_holder", move || {
        lock_shared_mutex();
        announce(&format!("mutex_holder {}", tid()));
        let _ = held_tx.send(());
        park_forever();
    })?;
    held_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("mutex holder: {e}"))?;
    spawn("mutex_waiter", || {
        announce(&format!(
            "mutex_waiter {} {:#x}",
            tid(),
            MUTEX.0.get() as usize
        ));
        lock_shared_mutex();
        park_forever();
    })?;

    let mut pipe = [0i32; 2];
    // SAFETY: pipe writes two fds into the array; both stay open until the process exits.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return Err(err("pipe", std::io::Error::last_os_error()));
    }
    let (pipe_r, pipe_w) = (pipe[0], pipe[1]);
    spawn("pipe_reader", move || {
        announce(&format!("pipe_reader {} {pipe_r} {pipe_w}", tid()));
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into a buffer we own.
            unsafe { libc::read(pipe_r, buf.as_mut_ptr().cast(), buf.len()) };
        }
    })?;

    let watched = TcpStream::connect(addr).map_err(|e| err("connect", e))?;
    let watched_fd = watched.into_raw_fd();
    // SAFETY: creating an epoll fd this process keeps until it exits.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: watched_fd as u64,
    };
    // SAFETY: valid fds and a live event struct.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, watched_fd, &mut ev) } != 0 {
        return Err(err("epoll_ctl", std::io::Error::last_os_error()));
    }
    spawn("epoller", move || {
        announce(&format!("epoller {} {epfd} {watched_fd}", tid()));
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        loop {
            // SAFETY: a valid epoll fd and an array of 8 events.
            unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 8, -1) };
        }
    })?;

    let path = format!("{dir}/flocked");
    let holder = std::fs::File::create(&path).map_err(|e| err("create", e))?;
    // SAFETY: flock on an fd we own; held until the process exits.
    if unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(err("flock", std::io::Error::last_os_error()));
    }
    let second = std::fs::File::open(&path).map_err(|e| err("open", e))?;
    let holder_fd = holder.into_raw_fd();
    spawn("flocker", move || {
        let fd = second.as_raw_fd();
        announce(&format!("flocker {} {fd} {holder_fd}", tid()));
        // A second open file description: blocks while the first holds LOCK_EX.
        // SAFETY: flock on an fd we own.
        unsafe { libc::flock(fd, libc::LOCK_EX) };
        park_forever();
    })?;

    announce(&format!("main {}", tid()));
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}

/// `--count N` threads named worker-0.., all waiting for the pthread mutex the main thread
/// holds: one group of N identical waits.
pub(super) fn many(args: &[String]) -> Result<(), String> {
    let count: usize = flag(args, "--count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    // `--sleep`: healthy threads, each in a one-second sleep loop (the host a scan reads).
    let sleep = args.iter().any(|a| a == "--sleep");
    lock_shared_mutex();
    for i in 0..count {
        spawn(&format!("worker-{i}"), move || {
            if sleep {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
            lock_shared_mutex();
            park_forever();
        })?;
    }
    announce(&format!("main {} threads {count}", tid()));
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}

static LOCK_A: SharedMutex =
    SharedMutex(std::cell::UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));
static LOCK_B: SharedMutex =
    SharedMutex(std::cell::UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

/// Two threads taking two pthread mutexes in opposite orders, each holding one when it asks for
/// the other: a lock cycle. The main thread sleeps in a loop, as a supervisor would.
pub(super) fn mutex_deadlock(_args: &[String]) -> Result<(), String> {
    let both_hold = std::sync::Arc::new(std::sync::Barrier::new(2));
    for (name, first, second) in [
        ("transfer-a", &LOCK_A, &LOCK_B),
        ("transfer-b", &LOCK_B, &LOCK_A),
    ] {
        let both_hold = std::sync::Arc::clone(&both_hold);
        spawn(name, move || {
            // SAFETY: static, initialised mutexes, never moved; locked through pthread only.
            unsafe {
                libc::pthread_mutex_lock(first.0.get());
            }
            both_hold.wait();
            announce(&format!("{name} {}", tid()));
            // SAFETY: as above. This lock never returns: the other thread holds it.
            unsafe {
                libc::pthread_mutex_lock(second.0.get());
            }
            park_forever();
        })?;
    }
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}
