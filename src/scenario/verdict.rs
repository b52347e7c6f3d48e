//! Scenarios for the verdict: a peer that stops reading (zero window), data that arrived and
//! nobody reads, a healthy busy server, an idle server, a local service on a unix socket that
//! does not answer, a server that does not accept. Each announces what a test needs (port, thread ids, fd numbers) on stdout
//! and runs until killed or `--max-seconds`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use super::{announce, flag, tid};

/// Longest any loop here runs; `--max-seconds` (default 120 s) ends the process first.
const FOREVER: Duration = Duration::from_secs(3600);

fn listen(args: &[String]) -> Result<TcpListener, String> {
    let addr = flag(args, "--listen").unwrap_or("127.0.0.1:0");
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    announce(&format!("port {port}"));
    Ok(listener)
}

fn connect(args: &[String]) -> Result<TcpStream, String> {
    let peer = flag(args, "--peer").ok_or("give --peer ADDR")?;
    TcpStream::connect(peer).map_err(|e| format!("connect {peer}: {e}"))
}

/// Sets a socket buffer size (SO_RCVBUF / SO_SNDBUF) so queues fill within a few writes.
fn set_buf(fd: i32, opt: libc::c_int, bytes: libc::c_int) -> Result<(), String> {
    // SAFETY: setsockopt on an fd we own, with a c_int option value that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("setsockopt: {}", std::io::Error::last_os_error()))
    }
}

fn sleep_forever() {
    let start = Instant::now();
    while start.elapsed() < FOREVER {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// (c) the peer side: accepts and never reads, with a small receive buffer so its window
/// closes quickly.
pub(super) fn deaf_server(args: &[String]) -> Result<(), String> {
    let listener = listen(args)?;
    // Accepted sockets inherit the listener's receive buffer size.
    set_buf(listener.as_raw_fd(), libc::SO_RCVBUF, 4096)?;
    let mut held = Vec::new();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        held.push(conn);
    }
    Ok(())
}

/// (c) the stuck side: a "sender" thread writes until it blocks in write(); main sleeps.
pub(super) fn flood_client(args: &[String]) -> Result<(), String> {
    let mut conn = connect(args)?;
    set_buf(conn.as_raw_fd(), libc::SO_SNDBUF, 16384)?;
    announce(&format!("fd {}", conn.as_raw_fd()));
    let sender = std::thread::Builder::new()
        .name("sender".into())
        .spawn(move || {
            announce(&format!("sender {}", tid()));
            let chunk = vec![b'x'; 65536];
            let start = Instant::now();
            while start.elapsed() < FOREVER {
                if conn.write_all(&chunk).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let _ = sender;
    sleep_forever();
    Ok(())
}

/// (d) the peer side: sends `--bytes` (default 4096) on each accepted connection, then holds it.
pub(super) fn greeter_server(args: &[String]) -> Result<(), String> {
    let listener = listen(args)?;
    let n: usize = flag(args, "--bytes")
        .and_then(|s| s.parse().ok())
        .unwrap_or(4096);
    let mut held = Vec::new();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = conn.write_all(&vec![b'g'; n]);
        held.push(conn);
    }
    Ok(())
}

/// (d) the stuck side: connects, receives data it never reads; its "consumer" thread sleeps.
pub(super) fn unread_client(args: &[String]) -> Result<(), String> {
    let conn = connect(args)?;
    announce(&format!("fd {}", conn.as_raw_fd()));
    let consumer = std::thread::Builder::new()
        .name("consumer".into())
        .spawn(move || {
            announce(&format!("consumer {}", tid()));
            let _keep = conn;
            sleep_forever();
        })
        .map_err(|e| e.to_string())?;
    let _ = consumer.join();
    Ok(())
}

/// (e) a healthy server: one thread per connection echoing what it reads.
pub(super) fn echo_server(args: &[String]) -> Result<(), String> {
    let listener = listen(args)?;
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = std::thread::Builder::new()
            .name("echo".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
    }
    Ok(())
}

/// (e) load for the echo server: `--conns` (default 4) threads, each sending 512 bytes and
/// reading the echo, in a loop.
pub(super) fn echo_client(args: &[String]) -> Result<(), String> {
    let conns: usize = flag(args, "--conns")
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let mut workers = Vec::new();
    for _ in 0..conns {
        let mut conn = connect(args)?;
        workers.push(std::thread::spawn(move || {
            let msg = [b'e'; 512];
            let mut buf = [0u8; 512];
            let start = Instant::now();
            while start.elapsed() < FOREVER {
                if conn.write_all(&msg).is_err() || conn.read_exact(&mut buf).is_err() {
                    break;
                }
            }
        }));
    }
    announce(&format!("conns {conns}"));
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// (f) an idle server: accepts, and nothing ever connects.
pub(super) fn idle_server(args: &[String]) -> Result<(), String> {
    let listener = listen(args)?;
    let mut held = Vec::new();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        held.push(conn);
    }
    Ok(())
}

/// (g) a local service on a unix socket (`--socket PATH`): accepts, reads each request and
/// never answers; with `--no-read` it never reads either, so what clients send stays queued;
/// with `--reads-more` a "session" thread per connection keeps reading, waiting for the rest
/// of a request that is already complete (both ends then wait to read).
pub(super) fn unix_server(args: &[String]) -> Result<(), String> {
    let path = flag(args, "--socket").ok_or("give --socket PATH")?;
    let reads = !args.iter().any(|a| a == "--no-read");
    let reads_more = args.iter().any(|a| a == "--reads-more");
    let listener = UnixListener::bind(path).map_err(|e| format!("bind {path}: {e}"))?;
    announce(&format!("socket {path}"));
    let mut held = Vec::new();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        if reads_more {
            let _ = std::thread::Builder::new()
                .name("session".into())
                .spawn(move || {
                    announce(&format!("session {}", tid()));
                    let mut request = [0u8; 4096];
                    while matches!(conn.read(&mut request), Ok(n) if n > 0) {}
                });
            continue;
        }
        if reads {
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
        }
        held.push(conn);
    }
    Ok(())
}

/// (g) the client of a local service (`--socket PATH`): an "rpc" thread sends a request and
/// waits in read() for the reply; with `--flood` it writes until the socket's buffer is full
/// and it blocks in write(). Main sleeps.
pub(super) fn unix_client(args: &[String]) -> Result<(), String> {
    let path = flag(args, "--socket").ok_or("give --socket PATH")?;
    let flood = args.iter().any(|a| a == "--flood");
    let mut conn = UnixStream::connect(path).map_err(|e| format!("connect {path}: {e}"))?;
    if flood {
        set_buf(conn.as_raw_fd(), libc::SO_SNDBUF, 16384)?;
    }
    let fd = conn.as_raw_fd();
    let rpc = std::thread::Builder::new()
        .name("rpc".into())
        .spawn(move || {
            announce(&format!("rpc {} fd {fd}", tid()));
            if flood {
                let chunk = vec![b'x'; 65536];
                let start = Instant::now();
                while start.elapsed() < FOREVER && conn.write_all(&chunk).is_ok() {}
                return;
            }
            if conn
                .write_all(b"MetaService.ListDb {\"db\": \"meta\"}\n")
                .is_ok()
            {
                let mut reply = [0u8; 4096];
                let _ = conn.read(&mut reply);
            }
            sleep_forever();
        })
        .map_err(|e| e.to_string())?;
    let _ = rpc;
    sleep_forever();
    Ok(())
}

/// (h) a server that listens with a backlog of `--backlog` (default 0) and never accepts, so
/// its accept queue fills at once.
pub(super) fn backlog_server(args: &[String]) -> Result<(), String> {
    let listener = listen(args)?;
    let backlog: libc::c_int = flag(args, "--backlog")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: listen() again on our listening socket only changes its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(format!("listen: {}", std::io::Error::last_os_error()));
    }
    announce(&format!("listen_fd {}", listener.as_raw_fd()));
    sleep_forever();
    Ok(())
}

/// (h) the client of a server that does not accept: `--fill N` (default 2) connections opened
/// without waiting fill its accept queue, then a "connector" thread waits in connect().
pub(super) fn connect_client(args: &[String]) -> Result<(), String> {
    let peer: std::net::SocketAddr = flag(args, "--peer")
        .ok_or("give --peer ADDR")?
        .parse()
        .map_err(|e| format!("--peer: {e}"))?;
    let fill: usize = flag(args, "--fill")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut held = Vec::new();
    for _ in 0..fill {
        // A short timeout: the first ones complete at once, the rest are left opening.
        if let Ok(c) = TcpStream::connect_timeout(&peer, Duration::from_millis(100)) {
            held.push(c);
        }
    }
    let connector = std::thread::Builder::new()
        .name("connector".into())
        .spawn(move || {
            announce(&format!("connector {}", tid()));
            let _ = TcpStream::connect(peer);
            sleep_forever();
        })
        .map_err(|e| e.to_string())?;
    let _ = connector;
    let _keep = held;
    sleep_forever();
    Ok(())
}
