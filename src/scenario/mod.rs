//! Small processes in known states, used by `hangscope demo` and by the test suite: a server
//! that accepts and never answers, a client stuck waiting on it, a holder of assorted fds.
//!
//! Every scenario dies with its parent (PR_SET_PDEATHSIG) and after `--max-seconds` at the
//! latest, so a failed test or an interrupted demo leaves nothing behind.

use std::io::Write;
use std::time::Duration;

use crate::cli::exit;

mod files;
mod logs;
mod network;
mod shared_mutex;
mod sockets;
mod threads;
mod verdict;

pub fn run(name: &str, args: &[String]) -> i32 {
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // Named for its part in the story, so a report's "look at process N (NAME)" says which
    // part; threads started from here on inherit the name.
    if let Some(role) = flag(args, "--role") {
        set_name(role);
    }
    let max = flag(args, "--max-seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(120u64);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(max));
        std::process::exit(0);
    });
    let result = match name {
        "silent-server" => network::silent_server(args),
        "meta-client" => network::meta_client(args),
        "holder" => files::holder(args),
        "many-fds" => files::many_fds(args),
        "open-hold" => files::open_hold(args),
        "pipe-parent" => files::pipe_parent(args),
        "stat-hung" => files::stat_hung(args),
        "socket-holder" => sockets::socket_holder(args),
        "fd-holder" => sockets::fd_holder(args),
        "deaf-server" => verdict::deaf_server(args),
        "flood-client" => verdict::flood_client(args),
        "greeter-server" => verdict::greeter_server(args),
        "unread-client" => verdict::unread_client(args),
        "echo-server" => verdict::echo_server(args),
        "echo-client" => verdict::echo_client(args),
        "idle-server" => verdict::idle_server(args),
        "unix-server" => verdict::unix_server(args),
        "unix-client" => verdict::unix_client(args),
        "backlog-server" => verdict::backlog_server(args),
        "connect-client" => verdict::connect_client(args),
        "thread-zoo" => threads::zoo(args),
        "many-threads" => threads::many(args),
        "mutex-deadlock" => threads::mutex_deadlock(args),
        "shared-mutex" => shared_mutex::shared_mutex(args),
        "log-writer" => logs::log_writer(args),
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

/// Sets this process's comm (what /proc/PID/comm, ps and the report's names show), cut to the
/// kernel's 15 bytes.
fn set_name(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|b| *b != 0).take(15).collect();
    bytes.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes, which `bytes` is.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr());
    }
}

pub(crate) fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

pub(crate) fn flags<'a>(args: &'a [String], name: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].as_str())
        .collect()
}

pub(crate) fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Announces a fact to the parent on stdout, one "key value" line, flushed.
pub(crate) fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Writes one glog line: `I0917 05:25:17.037914 31576 file.cc:97] msg`.
pub(crate) fn glog(w: &mut dyn Write, level: char, location: &str, msg: &str) {
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
