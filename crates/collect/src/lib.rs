//! Collection: everything that touches the live system lives behind this crate's boundary.
//!
//! The readers go through a [`ProcRoot`] (normally `/proc`) and parse with functions that take
//! text, so every parser is tested on recorded fixtures (`tests/fixtures/`). Collection never
//! fails as a whole once the process is found: what could not be read becomes a
//! [`hangscope_model::Gap`] in the snapshot.
//!
//! Nothing here stats through the target's fd links into a mount that could hang (NFS, FUSE):
//! types, inodes, offsets and flags come from readlink, fdinfo and mountinfo, which stay fast
//! on a hung mount; `statx` runs only on file systems known to be local.
//!
//! Order of a collection (`collect`): the process; /proc/locks started on its own thread (its
//! read waits for an RCU grace period); the sock_diag dumps started on another thread, which
//! keep their replies until the fd links say which socket inodes are the target's; the fd
//! links, then fdinfo and statx where they are read; the sockets joined to their fds;
//! the locks; the threads over the sampling window, with the connections re-dumped at its looks
//! so both describe the same moment; the other ends of waited-on pipes; last, the logs, which
//! are tied to the threads and connections read before them.

mod deadline;
mod error;
pub mod fd;
pub mod fdinfo;
pub mod freezer;
pub mod holders;
pub mod locks;
pub mod logs;
pub mod mountinfo;
pub mod peer_threads;
pub mod pipes;
mod proc_root;
pub mod process;
pub mod resolve;
pub mod sockets;
pub mod threads;

use std::time::{Duration, Instant};

use hangscope_model::{Host, Snapshot};

pub use deadline::Deadline;
pub use error::CollectError;
pub use proc_root::ProcRoot;

/// How much to read, and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// The run's deadline: what is not read by then is reported as skipped.
    pub deadline: Deadline,
    /// Read fdinfo of every fd, not only where it carries information.
    pub all_fdinfo: bool,
    /// How long to watch the process (several looks); zero for one look.
    pub window: Duration,
    /// The thread the user named (`hangscope TID`): listed first.
    pub focus_tid: Option<i32>,
    /// Show the window's progress on stderr (only when it is a terminal).
    pub progress: bool,
    /// Log files to read besides those the process has open (`--log PATH`).
    pub log_paths: Vec<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            deadline: Deadline::after(Duration::from_secs(5)),
            all_fdinfo: false,
            window: Duration::ZERO,
            focus_tid: None,
            progress: false,
            log_paths: Vec::new(),
        }
    }
}

/// Takes one snapshot of process `pid`.
///
/// Fails only when the process cannot be read at all (does not exist, or nothing of it is
/// visible); everything else that goes wrong is recorded as a gap.
pub fn collect(root: &ProcRoot, pid: i32, opts: &Options) -> Result<Snapshot, CollectError> {
    let started = Instant::now();
    let mut snap = Snapshot {
        taken_at_ms: now_ms(),
        host: host(),
        ..Snapshot::default()
    };
    snap.process = process::read(root, pid, &mut snap.gaps)?;

    let mut pending_locks = Some(locks::start(root));
    let mounts = mountinfo::read(root, pid, &mut snap.gaps);
    let (dumps, socket_inodes) = sockets::start_dumps(root, pid, &snap.process, opts);
    let mut lock_table = None;
    snap.fds = fd::read_all(root, pid, &mounts, opts, &mut snap.gaps, |fds| {
        // The dump thread may already be waiting for these; a send only fails if it is gone.
        let _ = socket_inodes.send(fds.iter().filter_map(|f| f.socket_inode).collect());
        // Ready by now; whether the target may hold a lock decides how much of its files
        // the second pass reads.
        let table = pending_locks.take().map(locks::wait);
        let files_locked = table
            .as_ref()
            .is_some_and(|t| t.may_involve(root, pid, snap.process.ppid));
        lock_table = table;
        files_locked
    });
    snap.process.fd_count = snap.fds.len() as u32;
    snap.sockets = sockets::read(
        root,
        pid,
        &snap.fds,
        &snap.process,
        opts,
        dumps,
        &mut snap.gaps,
    );
    let lock_table = lock_table.or_else(|| pending_locks.map(locks::wait));
    snap.locks = lock_table.map_or_else(Vec::new, |t| t.join(pid, &snap.fds, &mut snap.gaps));

    // Called at every look of the sampling window, after the threads: the hook for collectors
    // that measure movement (e.g. per-connection bytes and segments from sock_diag).
    let mut conns = sockets::window::ConnWindow::new(root, pid, &snap.sockets, &snap.process, opts);
    let mut on_look = |look: &threads::Look| conns.look(look);
    threads::collect(root, pid, opts, &mut snap, &mut on_look);
    // TCP and UDP sockets as of the last look, like the threads, with what moved over the window.
    conns.apply(&mut snap.sockets, &mut snap.gaps);

    pipes::read_peers(root, pid, &mut snap, opts);
    // After the threads: only the other ends a thread of the target waits on are looked at.
    peer_threads::read_for_waits(root, pid, &mut snap, opts);

    // Last: logs are tied to the threads and sockets read above.
    let mut log_gaps = Vec::new();
    snap.logs = logs::read(root, pid, &snap, &mounts, opts, &mut log_gaps);
    snap.gaps.extend(log_gaps);

    snap.collect_ms = started.elapsed().as_millis() as u64;
    Ok(snap)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `se.exec_start` in /proc/PID/task/TID/sched.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

fn host() -> Host {
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    Host {
        hostname: field(|u| u.nodename()),
        kernel: field(|u| u.release()),
        arch: std::env::consts::ARCH.to_string(),
        monotonic_ns: monotonic_ns(),
    }
}
