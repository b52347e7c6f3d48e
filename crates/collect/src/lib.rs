//! Collection: everything that touches the live system lives behind this crate's boundary.
//!
//! The readers go through a [`ProcRoot`] (normally `/proc`) and parse with functions that take
//! text, so every parser is tested on recorded fixtures (`tests/fixtures/`). Collection never
//! fails as a whole once the process is found: what could not be read becomes a
//! [`hangscope_model::Gap`] in the snapshot.
//!
//! Nothing here stats through the target's fd links into a mount that could hang (NFS, FUSE):
//! types, inodes, offsets and flags come from readlink, fdinfo and mountinfo, which stay fast
//! on a hung mount; `statx` runs only on file systems known to be local. Paths are walked with
//! [`safe_path`], never by their text alone. The only opens of the target's files are the
//! logs' (`logs::open`): never of a file with a lease on it, and in a helper process
//! ([`isolate`]) that is abandoned if the open or read blocks.
//!
//! Order of a collection (`collect`): the process; /proc/locks started on its own thread (its
//! read waits for an RCU grace period), on a small target's one look only when something needs
//! it (`locks_need`: else after the fds or the threads, if they show a need); the sock_diag dumps started on another thread, which
//! keep their replies until the fd links say which socket inodes are the target's; the fd
//! links, then fdinfo and statx where they are read; the sockets joined to their fds;
//! the locks; the threads over the sampling window, with the connections re-dumped at its looks
//! so both describe the same moment; the user-space stacks, read by a worker started
//! with the fds, which names the stacks as they were then while the fds and threads are read,
//! and copies them again at the last look (collected before the logs); the other ends of waited-on pipes; last, the logs, which
//! are tied to the threads and connections read before them. A managed runtime (JVM, Go,
//! CPython) is recognised with the process and asked for its own view of its threads after
//! them (`runtime`), Go once more before the window. A server's own view of its sessions
//! (`apps`) is read after the threads and the other ends, before the logs.

pub mod apps;
pub mod children;
mod deadline;
mod error;
pub mod fd;
pub mod fdinfo;
pub mod freezer;
pub mod fuse;
#[doc(hidden)]
pub mod fuzzing;
pub mod helper;
pub mod holders;
pub mod host_scan;
pub mod isolate;
pub mod locks;
pub mod locks_need;
pub mod logs;
pub mod mountinfo;
pub mod peer_threads;
pub mod pipes;
mod privilege;
mod proc_root;
pub mod process;
pub mod resolve;
pub mod runtime;
pub mod safe_path;
pub mod sockets;
pub mod stacks;
pub mod stage;
pub mod threads;

use std::time::{Duration, Instant};

use hangscope_model::{FdKind, Host, Snapshot};

pub use deadline::Deadline;
pub use error::{CollectError, ReadError, ReadErrorKind};
use privilege::Privileges;
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
    /// The hangscope binary that opens and reads the target's files (`isolate`); `None`
    /// reads them in this process, as the library's own tests do.
    pub reader: Option<std::path::PathBuf>,
    /// Whether and how to ask a managed runtime (JVM, Go, CPython) for its own view of its
    /// threads.
    pub runtime_tools: runtime::Tools,
    /// Ask a server the target belongs to (PostgreSQL) about its sessions, over its unix
    /// socket as its OS user (`apps`); off with `--no-app-introspection`.
    pub app_introspection: bool,
    /// User-space stacks of the blocked threads (`--stacks`).
    pub stacks: stacks::StackMode,
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
            reader: None,
            runtime_tools: runtime::Tools::default(),
            app_introspection: true,
            stacks: stacks::StackMode::default(),
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
    stage::enter("the process");
    // Only when something needs it, on a small target's one look (`locks_need`); then the
    // stacks' lease check reads it too, else it reads it alone from the start.
    let locks_from_start = locks_need::from_start(root, pid, opts);
    let mut pending_locks = locks_from_start.then(|| locks::start(root));
    let stack_leases = (!locks_from_start)
        .then(|| stacks::early_leases(root, opts))
        .flatten();
    // On its own thread from the start: the first look needs it, and it sleeps.
    let task_clock = threads::task_clock::TaskClock::start();
    let kmsg = opts
        .window
        .is_zero()
        .then(|| logs::kmsg::start(logs::KMSG, opts.deadline));
    let (process, start_ticks) = process::read(root, pid, &mut snap.gaps)?;
    snap.process = process;
    let privileges = Privileges::of(root, pid);
    snap.process.runtime = runtime::recognise(root, pid, opts, &mut snap.gaps);

    stage::enter("the fds");
    let mounts = mountinfo::read(root, pid, &mut snap.gaps);
    // Ahead of the look, beside the fds and the threads (`stacks::Warm`).
    let warm_stacks = stacks::warm(
        root,
        pid,
        &mounts,
        opts,
        stack_leases,
        snap.process.kernel_thread,
    );
    let (dumps, socket_inodes) = sockets::start_dumps(root, pid, &snap.process, opts);
    let mut lock_table = None;
    snap.fds = fd::read_all(root, pid, &mounts, opts, &mut snap.gaps, |fds| {
        // The dump thread may already be waiting for these; a send only fails if it is gone.
        let _ = socket_inodes.send(sockets::Wanted::of(fds));
        // Whether the target may hold a lock decides how much of its files the second pass
        // reads, where it reads only some of them.
        let files = fds.iter().filter(|f| f.kind == FdKind::File).count();
        if files <= fd::EVERY_FILE_UPTO || opts.all_fdinfo {
            return locks::LockScope::None;
        }
        stage::enter("the file locks table (/proc/locks)");
        let table = pending_locks
            .take()
            .or_else(|| Some(locks::start(root)))
            .map(locks::wait);
        let scope = table.as_ref().map_or(locks::LockScope::None, |t| {
            t.scope(root, pid, snap.process.ppid)
        });
        lock_table = table;
        stage::enter("the fds' fdinfo");
        scope
    });
    snap.process.fd_count = snap.fds.len() as u32;
    if pending_locks.is_none() && lock_table.is_none() && locks_need::by_fds(&snap.fds) {
        pending_locks = Some(locks::start(root));
    }
    stage::enter("the sockets");
    snap.ephemeral_ports = dumps.ephemeral_ports();
    snap.sockets = sockets::read(
        root,
        pid,
        &snap.fds,
        &snap.process,
        opts,
        dumps,
        &mut snap.gaps,
    );
    // Called at every look of the sampling window, after the threads: the hook for collectors
    // that measure movement (e.g. per-connection bytes and segments from sock_diag).
    let mut conns = sockets::window::ConnWindow::new(root, pid, &snap.sockets, &snap.process, opts);
    let mut on_look = |look: &threads::Look| conns.look(look);
    // Go: the first of two goroutine dumps, so the second can tell a wait that lasted.
    stage::enter("the runtime's own view");
    let first_dump = runtime::before_window(&mut snap, opts);
    stage::enter("the threads");
    let last_look = threads::collect(root, pid, opts, &mut snap, task_clock, &mut on_look);
    // Joined after the threads' look, which does not need it: the read started with the run
    // waits for an RCU grace period (`locks::start`) while the threads are read, not before.
    stage::enter("the file locks");
    let lock_table = lock_table
        .or_else(|| pending_locks.map(locks::wait))
        // A wait the peek at the start missed (it began since).
        .or_else(|| locks_need::by_threads(&snap.threads).then(|| locks::wait(locks::start(root))));
    // For the logs' lease check and the stacks' module opens: one read of /proc/locks less
    // when it is still fresh.
    let leases = lock_table.as_ref().and_then(locks::LockTable::leases);
    snap.locks = lock_table.map_or_else(Vec::new, |t| {
        t.join(root, pid, &snap.fds, &opts.deadline, &mut snap.gaps)
    });
    // Right after the last look, so the frames are those of the waits it saw; read on a
    // worker while the rest goes on, and collected after the logs, which are read meanwhile.
    let stacks = stacks::start(
        root,
        pid,
        &mounts,
        opts,
        leases.clone().map(locks::LeaseRead::Done),
        last_look.syscalls,
        &mut snap,
        warm_stacks,
    );
    // TCP and UDP sockets as of the last look, like the threads, with what moved over the window.
    conns.apply(&mut snap.sockets, &mut snap.gaps);
    // Before reading through the target's fds again (pipes, logs): still the same process?
    process::check_same(root, pid, start_ticks)?;
    // The header's age to the instant of the last look, which the waits are measured at.
    if let Some(age) = process::age_s(root, start_ticks) {
        snap.process.age_s = Some(age);
    }

    stage::enter("the other ends of pipes and sockets");
    pipes::read_peers(root, pid, &mut snap, opts);
    // After the threads: only the other ends a thread of the target waits on are looked at.
    let peer_gaps = peer_threads::read_for_waits(root, pid, &mut snap, opts);
    snap.gaps.extend(peer_gaps);
    children::read_for_waits(root, pid, &mut snap, opts);
    fuse::read_for_waits(root, pid, &mut snap, &mounts, opts);

    // After the threads, so the runtime's view is of the moment they describe.
    stage::enter("the runtime's own view");
    runtime::ask(root, pid, &mut snap, opts, first_dump);

    // After the threads and sockets, so the server's sessions are seen at the moment the
    // process's own waits were; before the logs, which are the least urgent.
    stage::enter("the server's own view of its sessions");
    snap.app = apps::read(root, pid, &mut snap, opts);

    // Last: logs are tied to the threads and sockets read above. Read while the stacks'
    // worker goes on: they need nothing of it, and the two took turns before (a stack of
    // Rust code is tens of ms of DWARF, the logs' reads a few ms of forks and waits).
    stage::enter("the logs");
    let mut log_gaps = Vec::new();
    let early = logs::Early { leases, kmsg };
    snap.logs = logs::read(root, pid, &snap, &mounts, opts, early, &mut log_gaps);
    snap.gaps.extend(log_gaps);
    // The logs were read through /proc/PID/fd: a successor's would not be this process's.
    process::check_same(root, pid, start_ticks)?;

    stage::enter("the user-space stacks");
    if let Some(s) = stacks {
        s.finish(&mut snap);
    }
    runtime::threads::label(&mut snap);
    privileges.explain(pid, &mut snap.gaps);

    stage::enter("nothing: collection is done");
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

/// The host this runs on, as a snapshot names it.
pub fn host() -> Host {
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
