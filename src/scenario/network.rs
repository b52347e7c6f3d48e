//! Network scenarios: the seed incident's silent peer and the client stuck on it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::threads::{SharedMutex, park_forever, spawn};
use super::{announce, flag, flags, glog, tid};

/// The store lock of `silent-server --handler-lock`.
static STORE: SharedMutex =
    SharedMutex(std::cell::UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

/// Accepts connections, reads what arrives, never answers: the seed's peer application.
///
/// With `--handler-lock`, the seed's server side: each request gets a handler thread that
/// reads it and then takes the store lock, which a `compactor` thread took at start and holds
/// while it sleeps in a long back-off; so no handler ever answers.
pub(super) fn silent_server(args: &[String]) -> Result<(), String> {
    let addr = flag(args, "--listen").unwrap_or("127.0.0.1:0");
    let handler_lock = args.iter().any(|a| a == "--handler-lock");
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    if handler_lock {
        let (held, holding) = std::sync::mpsc::channel();
        spawn("compactor", move || {
            // SAFETY: a static, initialised mutex, never moved; locked through pthread only.
            unsafe {
                libc::pthread_mutex_lock(STORE.0.get());
            }
            let _ = held.send(tid());
            std::thread::sleep(Duration::from_secs(3600));
        })?;
        let compactor = holding.recv().map_err(|e| e.to_string())?;
        announce(&format!("compactor {compactor}"));
    }
    announce(&format!("port {port}"));
    let mut held = Vec::new();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        if handler_lock {
            spawn("MetaService", move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                // SAFETY: as above. Never returns: the compactor holds the lock.
                unsafe {
                    libc::pthread_mutex_lock(STORE.0.get());
                }
                let _ = conn.write_all(b"never");
                park_forever();
            })?;
            continue;
        }
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
pub(super) fn meta_client(args: &[String]) -> Result<(), String> {
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
    // The wait on the last peer: a test that looks after the failover to it keeps the client
    // waiting there past its look, however slow the host makes that look.
    let last_timeout_ms: i32 = flag(args, "--last-timeout-ms")
        .and_then(|s| s.parse().ok())
        .unwrap_or(timeout_ms);
    let log_path = flag(args, "--log").map(String::from);
    let method = flag(args, "--method")
        .unwrap_or("demo.meta.MetaService.ListDb")
        .to_string();
    // Time between connecting and sending the request: lets a test cut the network in between.
    let delay_send = Duration::from_millis(
        flag(args, "--delay-send-ms")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    );
    // A side connection to a healthy service on the same host, used every 500 ms.
    if let Some(side) = flag(args, "--side") {
        let side = side.to_string();
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || heartbeat(&side))
            .map_err(|e| e.to_string())?;
    }
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
                let wait = if i % peers.len() == peers.len() - 1 {
                    last_timeout_ms
                } else {
                    timeout_ms
                };
                match call(peer, &method, wait, delay_send) {
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

fn call(peer: &str, method: &str, timeout_ms: i32, delay_send: Duration) -> Result<(), String> {
    let mut conn = TcpStream::connect(peer).map_err(|e| format!("connect: {e}"))?;
    announce(&format!("connected {}", conn.as_raw_fd()));
    std::thread::sleep(delay_send);
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

/// Sends a small ping and reads the answer every 500 ms, for as long as the peer answers.
fn heartbeat(peer: &str) {
    let Ok(mut conn) = TcpStream::connect(peer) else {
        return;
    };
    let mut buf = [0u8; 64];
    loop {
        if conn.write_all(b"ping\n").is_err() || conn.read(&mut buf).unwrap_or(0) == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
