//! Small processes in known states, used by `hangscope demo` and by the test suite: a server
//! that accepts and never answers, a client stuck waiting on it, a holder of assorted fds.
//!
//! Every scenario dies with its parent (PR_SET_PDEATHSIG) and after `--max-seconds` at the
//! latest, so a failed test or an interrupted demo leaves nothing behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::cli::exit;

pub fn run(name: &str, args: &[String]) -> i32 {
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let max = flag(args, "--max-seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(120u64);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(max));
        std::process::exit(0);
    });
    let result = match name {
        "silent-server" => silent_server(args),
        "meta-client" => meta_client(args),
        "holder" => holder(args),
        _ => Err(format!("unknown scenario {name:?}")),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("scenario {name}: {e}");
            exit::FAILURE
        }
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn flags<'a>(args: &'a [String], name: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].as_str())
        .collect()
}

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Announces a fact to the parent on stdout, one "key value" line, flushed.
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Accepts connections, reads what arrives, never answers: the seed's peer application.
fn silent_server(args: &[String]) -> Result<(), String> {
    let addr = flag(args, "--listen").unwrap_or("127.0.0.1:0");
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    announce(&format!("port {port}"));
    let mut held = Vec::new();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        // Drain the request so it is acknowledged and not left in Recv-Q, then say nothing.
        let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf);
        held.push(conn);
    }
    Ok(())
}

/// A client whose worker thread sends a request to each peer in turn and waits in poll() for a
/// reply that does not come, logging like glog; the main thread sleeps in a 100 ms loop.
fn meta_client(args: &[String]) -> Result<(), String> {
    let peers: Vec<String> = flags(args, "--peer")
        .into_iter()
        .map(String::from)
        .collect();
    if peers.is_empty() {
        return Err("give at least one --peer ADDR".into());
    }
    let timeout_ms: i32 = flag(args, "--timeout-ms")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let log_path = flag(args, "--log").map(String::from);
    let method = flag(args, "--method")
        .unwrap_or("demo.meta.MetaService.ListDb")
        .to_string();
    let mut log: Box<dyn Write + Send> = match &log_path {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("{p}: {e}"))?,
        ),
        None => Box::new(std::io::sink()),
    };
    let worker = std::thread::Builder::new()
        .name("dump_meta".into())
        .spawn(move || {
            announce(&format!("worker {}", tid()));
            let mut i = 0usize;
            loop {
                let peer = &peers[i % peers.len()];
                glog(&mut log, 'I', "dump_meta.cc:97", &format!("Dump meta from {peer}"));
                match call(peer, &method, timeout_ms) {
                    Ok(()) => {}
                    Err(why) => {
                        glog(
                            &mut log,
                            'W',
                            "dump_meta.cc:104",
                            &format!(
                                "Fail to dump meta from {peer} st:\nTraceback:\n[ETimedOut]: {why} when calling: {method}"
                            ),
                        );
                        let next = &peers[(i + 1) % peers.len()];
                        glog(
                            &mut log,
                            'I',
                            "meta.cc:1736",
                            &format!("[LIBMETA ADDR UPDATE] old meta: {peer} new meta: {next}"),
                        );
                    }
                }
                i += 1;
            }
        })
        .map_err(|e| e.to_string())?;
    let _ = worker;
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn call(peer: &str, method: &str, timeout_ms: i32) -> Result<(), String> {
    let mut conn = TcpStream::connect(peer).map_err(|e| format!("connect: {e}"))?;
    let request = format!("CALL {method}\n");
    conn.write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut pfd = libc::pollfd {
        fd: conn.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n == 0 {
        return Err("failed to read response header".into());
    }
    let mut buf = [0u8; 512];
    match conn.read(&mut buf) {
        Ok(0) => Err("connection closed by peer".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes one glog line: `I0917 05:25:17.037914 31576 file.cc:97] msg`.
fn glog(w: &mut dyn Write, level: char, location: &str, msg: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes into the tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        libc::localtime_r(&secs, &mut tm);
    }
    let _ = writeln!(
        w,
        "{level}{:02}{:02} {:02}:{:02}:{:02}.{:06} {} {location}] {msg}",
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_micros(),
        tid()
    );
    let _ = w.flush();
}

/// Holds one of each kind of fd the fd table must show, announces their numbers, and waits.
fn holder(args: &[String]) -> Result<(), String> {
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
