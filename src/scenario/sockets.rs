//! Socket scenarios: one process holding one socket of each kind the socket report covers.

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::{announce, flag};

/// Holds, and announces as `key value` lines: a TCP client connected to `--peer` that sent one
/// request (`client_fd`, `client_port`), a listener (`listen_fd`, `listen_port`) with a
/// connection it accepted and one it did not (see below), a bound UDP
/// socket (`udp_fd`, `udp_port`), one end of a UNIX socketpair whose other end a child process
/// holds (`unix_fd`, `child_pid`, `child_fd`) and a TCP socket never bound (`unbound_fd`);
/// then `ready`, and sleeps.
pub(super) fn socket_holder(args: &[String]) -> Result<(), String> {
    let max = flag(args, "--max-seconds").unwrap_or("120").to_string();
    let _client = match flag(args, "--peer") {
        Some(peer) => {
            let mut c = TcpStream::connect(peer).map_err(|e| format!("connect {peer}: {e}"))?;
            c.write_all(b"CALL demo.meta.MetaService.ListDb\n")
                .map_err(|e| format!("send: {e}"))?;
            let port = c.local_addr().map_err(|e| e.to_string())?.port();
            announce(&format!("client_fd {}", c.as_raw_fd()));
            announce(&format!("client_port {port}"));
            Some(c)
        }
        None => None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listen: {e}"))?;
    announce(&format!("listen_fd {}", listener.as_raw_fd()));
    announce(&format!(
        "listen_port {}",
        listener.local_addr().map_err(|e| e.to_string())?.port()
    ));
    // Both ends of one connection (`paired_fd`, `accepted_fd`), and one the listener never
    // accepts (`queued_fd`); connected in this order so accept() takes the first.
    let listen_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let paired = TcpStream::connect(listen_addr).map_err(|e| format!("connect: {e}"))?;
    let (accepted, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let queued = TcpStream::connect(listen_addr).map_err(|e| format!("connect: {e}"))?;
    announce(&format!("paired_fd {}", paired.as_raw_fd()));
    announce(&format!("accepted_fd {}", accepted.as_raw_fd()));
    announce(&format!("queued_fd {}", queued.as_raw_fd()));
    let udp = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("udp: {e}"))?;
    announce(&format!("udp_fd {}", udp.as_raw_fd()));
    announce(&format!(
        "udp_port {}",
        udp.local_addr().map_err(|e| e.to_string())?.port()
    ));

    let (mine, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let child_fd = theirs.as_raw_fd();
    // SAFETY: clears FD_CLOEXEC on an fd we own, so the child inherits it at the same number.
    if unsafe { libc::fcntl(child_fd, libc::F_SETFD, 0) } != 0 {
        return Err(format!("fcntl: {}", std::io::Error::last_os_error()));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = std::process::Command::new(exe)
        .args(["__scenario", "fd-holder", "--max-seconds", &max])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn fd-holder: {e}"))?;
    drop(theirs);
    announce(&format!("unix_fd {}", mine.as_raw_fd()));
    announce(&format!("child_pid {}", child.id()));
    announce(&format!("child_fd {child_fd}"));

    // SAFETY: socket(2) with constant arguments; the fd is owned by this function until exit.
    let unbound = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if unbound < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    announce(&format!("unbound_fd {unbound}"));
    announce("ready");
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sleeps, holding whatever fds it inherited (the other end of `socket-holder`'s socketpair).
pub(super) fn fd_holder(_args: &[String]) -> Result<(), String> {
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}
