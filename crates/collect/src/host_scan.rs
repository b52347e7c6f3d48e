//! One cheap look at every thread of the host, for `scan` and `watch`: which processes deserve
//! the full look of [`crate::collect`].
//!
//! A look reads, per thread, `/proc/PID/task/TID/stat` (state, CPU ticks, flags) and
//! `schedstat` (CPU time in ns and the number of times it was scheduled, which moves at every
//! context switch); `status` only where `schedstat` is missing (CONFIG_SCHED_INFO off). A
//! thread that did not move between two looks, or every thread at a single look, also has its
//! `syscall` and `wchan` read (see [`look`] for what each mode skips). The first look of a
//! window keeps each thread's `schedstat` open for the second ([`KeptFiles`]). A process's
//! task directory is listed only where its TIDs are not known otherwise: not for a single
//! live thread (the leader), nor at a look compared with one that read as many threads as
//! there are now (listed after all if one of those is gone). Nothing else:
//! no fd table, no cmdline (which takes the target's
//! mmap lock, held for good by a process stuck in a page fault), no netlink. Kernel threads
//! are skipped: hangscope explains processes.
//!
//! Suspects are picked by [`suspects`] from two looks (or one, with `--window 0`): a thread in
//! D state, stopped or traced, frozen, spinning on a CPU, or still in a wait that should end
//! (a lock, I/O on a socket or pipe, connect, poll on a few fds, a futex with no timeout).
//! Waits that are idle by design (epoll_wait, accept, nanosleep, wait4, a read of a terminal)
//! are not suspects: an idle server or a shell is what most of a host is.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use crate::threads::syscall::{self, Arch, RawSyscall};
use crate::threads::task::is_gone;
use crate::{Deadline, ProcRoot};

/// How often the loop over threads looks at the clock.
const DEADLINE_CHECK_EVERY: usize = 64;

/// The state of a thread whose `stat` a look did not read.
pub const UNKNOWN_STATE: char = '?';

/// PF_KTHREAD (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

/// One thread at one look.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadLook {
    pub tid: i32,
    pub state: char,
    /// CPU time: schedstat's ns, or stat's ticks in ns where schedstat is missing.
    pub cpu_ns: u64,
    /// Times the thread was switched in (schedstat), or its context switches (status).
    pub switches: Option<u64>,
    /// Read only for a thread that did not move (or at a single look).
    pub syscall: Option<RawSyscall>,
    pub wchan: Option<String>,
    /// The file the fd of a blocked read or write names, for a read of a terminal.
    pub fd_target: Option<String>,
}

/// One process at one look.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcLook {
    pub pid: i32,
    pub name: hangscope_model::Text,
    pub ppid: i32,
    /// Clock ticks after boot (stat field 22): with the PID, names one process.
    pub start_ticks: u64,
    /// In TID order.
    pub threads: Vec<ThreadLook>,
}

impl ProcLook {
    /// A thread by TID: a look keeps them in TID order.
    pub fn thread(&self, tid: i32) -> Option<&ThreadLook> {
        self.threads
            .binary_search_by_key(&tid, |t| t.tid)
            .ok()
            .and_then(|i| self.threads.get(i))
    }
}

/// Every process of the host at one look.
#[derive(Debug, Clone, Default)]
pub struct HostLook {
    pub procs: Vec<ProcLook>,
    /// CLOCK_MONOTONIC when the look began, ns.
    pub mono_ns: u64,
    /// The deadline came before every process was read.
    pub cut_short: bool,
    /// Processes listed in /proc whose main thread could not be read (gone, or hidden).
    pub unreadable: u32,
    /// A baseline look's schedstat files, kept open for the look that compares with it.
    pub kept: KeptFiles,
}

/// Each thread's `schedstat`, left open by a baseline look so that the look compared with it
/// reads it again by `pread` at offset 0 (seq_file makes the record afresh) instead of
/// opening it by name: the open and close are most of a read's cost (path walk, pid
/// revalidation, the file and seq_file allocations). A kept file stays bound to its thread:
/// once that thread is gone its read fails, and a TID reused since is opened by name.
///
/// Each one costs the kernel about 4.5 KiB (the file, and the seq_file's page-sized buffer,
/// kept until close), so at most [`MAX_KEPT`], within RLIMIT_NOFILE (its soft limit raised
/// towards the hard one for the window, and put back when they are closed). A clone keeps
/// none.
#[derive(Default)]
pub struct KeptFiles {
    /// Sorted by TID.
    by_tid: Vec<(i32, OwnedFd)>,
    /// The RLIMIT_NOFILE to put back once the files are closed, when the look raised it.
    restore: Option<libc::rlimit>,
}

/// Most files a baseline look keeps open: about 90 MiB of the kernel's memory for a window.
pub const MAX_KEPT: usize = 20_000;
/// Fds left free for everything else while the files are kept.
const FD_HEADROOM: u64 = 512;

impl KeptFiles {
    pub fn len(&self) -> usize {
        self.by_tid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tid.is_empty()
    }

    fn get(&self, tid: i32) -> Option<&OwnedFd> {
        self.by_tid
            .binary_search_by_key(&tid, |(t, _)| *t)
            .ok()
            .and_then(|i| self.by_tid.get(i))
            .map(|(_, fd)| fd)
    }

    /// How many files a look may keep, raising the soft RLIMIT_NOFILE (up to the hard one) so
    /// that they fit beside the fds already open.
    fn budget(&mut self) -> usize {
        // SAFETY: getrlimit fills the struct it is given.
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return 0;
        }
        let open = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(u64::from(u16::MAX));
        let wanted = (open + FD_HEADROOM + MAX_KEPT as u64).min(lim.rlim_max);
        if wanted > lim.rlim_cur {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: setrlimit reads the struct it is given; raising the soft limit up to
            // the hard one needs no privilege.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                self.restore = Some(lim);
                lim.rlim_cur = wanted;
            }
        }
        (lim.rlim_cur.saturating_sub(open + FD_HEADROOM) as usize).min(MAX_KEPT)
    }
}

impl Clone for KeptFiles {
    fn clone(&self) -> Self {
        KeptFiles::default()
    }
}

impl std::fmt::Debug for KeptFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeptFiles({})", self.by_tid.len())
    }
}

impl Drop for KeptFiles {
    fn drop(&mut self) {
        // Closed before the limit goes back down.
        self.by_tid.clear();
        if let Some(lim) = self.restore.take() {
            // SAFETY: setrlimit reads the struct it is given.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        }
    }
}

impl HostLook {
    pub fn threads(&self) -> usize {
        self.procs.iter().map(|p| p.threads.len()).sum()
    }

    pub fn get(&self, pid: i32) -> Option<&ProcLook> {
        self.procs
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .and_then(|i| self.procs.get(i))
    }

    /// Closes the files kept for the next look (once it has been taken).
    pub fn close_kept(&mut self) {
        self.kept = KeptFiles::default();
    }
}

/// Which processes a look reads.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every process of the host.
    All,
    /// Only these PIDs (sorted or not).
    Pids(&'a [i32]),
}

/// Looks at every thread in `scope`. With `prev`, `stat`, `syscall` and `wchan` are read only
/// for a thread that did not move since `prev`; without, for every thread, unless the look is
/// a `baseline` for a later one (only `schedstat` then, and the main thread's `stat`).
///
/// The processes are shared among a few threads: the reads are system calls that wait on
/// nothing but the kernel's own locks, so the look's wall time shrinks with the cores.
pub fn look(
    root: &ProcRoot,
    scope: Scope,
    prev: Option<&HostLook>,
    baseline: bool,
    deadline: Deadline,
) -> HostLook {
    let mut out = HostLook {
        mono_ns: crate::monotonic_ns(),
        ..HostLook::default()
    };
    let pids: Vec<i32> = match scope {
        Scope::All => list_pids(root),
        Scope::Pids(p) => {
            let mut p = p.to_vec();
            p.sort_unstable();
            p.dedup();
            p
        }
    };
    // A File, not a Dir: the workers share it.
    let Ok(proc_dir) = File::open(root.path()) else {
        out.unreadable = pids.len() as u32;
        return out;
    };
    let mode = match (prev, baseline) {
        (Some(p), _) => LookMode::Compare(p),
        (None, true) => LookMode::Baseline,
        (None, false) => LookMode::Single,
    };
    let budget = AtomicUsize::new(match mode {
        LookMode::Baseline => out.kept.budget(),
        _ => 0,
    });
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_WORKERS)
        .min(pids.len().div_ceil(PIDS_PER_CLAIM))
        .max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut part = Part::default();
        let mut reader = Reader::new();

        loop {
            let from = next.fetch_add(PIDS_PER_CLAIM, Ordering::Relaxed);
            let claim = pids
                .get(from..(from + PIDS_PER_CLAIM).min(pids.len()))
                .unwrap_or_default();
            if claim.is_empty() {
                part.kept = std::mem::take(&mut reader.kept);
                return part;
            }
            for &pid in claim {
                if deadline.passed() {
                    part.cut_short = true;
                    part.kept = std::mem::take(&mut reader.kept);
                    return part;
                }
                match look_at_process(&proc_dir, pid, mode, &mut reader, &budget, deadline) {
                    Some(Some(p)) => part.procs.push(p),
                    Some(None) => {}
                    None => part.unreadable += 1,
                }
            }
        }
    };
    let parts: Vec<Part> = if workers == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers).map(|_| s.spawn(work)).collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    };
    for part in parts {
        out.procs.extend(part.procs);
        out.cut_short |= part.cut_short;
        out.unreadable += part.unreadable;
        out.kept.by_tid.extend(part.kept);
    }
    out.procs.sort_unstable_by_key(|p| p.pid);
    out.kept.by_tid.sort_unstable_by_key(|(t, _)| *t);
    out
}

/// Most threads a look uses.
const MAX_WORKERS: usize = 4;
/// Processes a worker takes at a time: few enough that the workers end together.
const PIDS_PER_CLAIM: usize = 16;

/// What a look reads per thread.
#[derive(Clone, Copy)]
enum LookMode<'a> {
    /// For a later look to compare with: only what moves (schedstat).
    Baseline,
    /// Compared with a previous look: the state and the wait only of what did not move.
    Compare(&'a HostLook),
    /// One look alone: the state and the wait of every thread; nothing to compare.
    Single,
}

/// One worker's share of a look.
#[derive(Default)]
struct Part {
    procs: Vec<ProcLook>,
    cut_short: bool,
    unreadable: u32,
    kept: Vec<(i32, OwnedFd)>,
}

/// The numeric entries of /proc, sorted.
pub fn list_pids(root: &ProcRoot) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_dir(root.path())
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&p| p > 0)
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// `None`: unreadable; `Some(None)`: a kernel thread, skipped.
fn look_at_process(
    proc_dir: &File,
    pid: i32,
    mode: LookMode,
    r: &mut Reader,
    budget: &AtomicUsize,
    deadline: Deadline,
) -> Option<Option<ProcLook>> {
    // One open of the task directory per process: every file below is opened relative to it,
    // and its entries are the TIDs.
    // A plain fd, not a DIR: most processes' directories are never listed, and opendir's
    // fstat, fcntl and 32 KiB buffer (and rewinddir's lseek) would be paid for each.
    r.name.set(pid, "task");
    let task_dir = openat(
        proc_dir,
        r.name.as_c_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let main = parse_stat_fields(r.read(&task_dir, pid, "stat").ok()?)?;
    if main.flags & PF_KTHREAD != 0 {
        return Some(None);
    }
    let mut p = ProcLook {
        pid,
        name: main.name.clone(),
        ppid: main.ppid,
        start_ticks: main.start_ticks,
        threads: Vec::with_capacity(main.num_threads.max(1) as usize),
    };
    // A PID reused since the previous look is another process: nothing of it moved or not.
    let prev = match mode {
        LookMode::Compare(h) => h.get(pid).filter(|q| q.start_ticks == main.start_ticks),
        _ => None,
    };
    // The TIDs: a process's threads are listed from its task directory, unless the listing can
    // only say what is already known. A single live thread is the leader (a zombie leader's
    // threads are not). A look compared with `prev` reads the threads that look read when
    // there are as many now: were one of them gone, one was born too, and the directory is
    // listed after all (below) for it.
    let listed = |r: &mut Reader, dir: &OwnedFd, again: bool| -> Vec<i32> {
        let mut tids = r.list_ids(dir.as_fd(), again);
        tids.sort_unstable();
        tids
    };
    let known =
        prev.filter(|q| !q.threads.is_empty() && q.threads.len() as i64 == main.num_threads);
    let mut tids: Vec<i32> = match known {
        Some(q) => q.threads.iter().map(|t| t.tid).collect(),
        None if main.num_threads == 1 && !matches!(main.state, 'Z' | 'X') => vec![pid],
        None => listed(r, &task_dir, false),
    };
    if tids.is_empty() {
        tids.push(pid);
    }
    let one = |r: &mut Reader, task_dir: &OwnedFd, tid: i32| -> Option<ThreadLook> {
        // Threads are kept in TID order, so the previous look's is found by bisection.
        let before = prev.and_then(|q| q.thread(tid));
        let mut t = ThreadLook {
            tid,
            state: UNKNOWN_STATE,
            ..ThreadLook::default()
        };
        // One look alone compares nothing: what moves (schedstat) is not read.
        let mut scheduled = false;
        if !matches!(mode, LookMode::Single) {
            let read = match mode {
                // The previous look's file, when it is this process's (not a reused PID's).
                LookMode::Compare(h) => match prev.and(h.kept.get(tid)) {
                    Some(fd) => r
                        .fill(fd.as_fd())
                        .or_else(|_| r.read_len(task_dir, tid, "schedstat", false)),
                    None => r.read_len(task_dir, tid, "schedstat", false),
                },
                _ => r.read_len(task_dir, tid, "schedstat", take_one(budget)),
            };
            match read.map(|n| r.bytes(n)) {
                Ok(text) => {
                    let parsed = std::str::from_utf8(text).ok().and_then(parse_schedstat);
                    if let Some((cpu, switches)) = parsed {
                        t.cpu_ns = cpu;
                        t.switches = Some(switches);
                        scheduled = true;
                    }
                }
                Err(e) if is_gone(&e) => return None,
                Err(_) => {}
            }
        }
        // The wait is read only where it may matter: every thread at a single look, a thread
        // that did not move since `prev`.
        let wants_wait = match mode {
            LookMode::Single => true,
            LookMode::Compare(_) => before.is_some_and(|b| !moved(b, &t)),
            LookMode::Baseline => false,
        };
        // Most of a host sleeps by design (nanosleep, pause, wait4, epoll_wait, accept), and
        // wchan alone says so: such a thread is in S (these sleeps are interruptible), not
        // frozen, and whatever its syscall's arguments not a suspect; its stat and syscall
        // are not read, one file instead of three. Not when the main thread is in another
        // state than S or R: a stopped or frozen process (v1's freezer and, since Linux 6.1,
        // every freezer but v2's parks a sleeping thread where it sleeps, shown as D) has
        // every thread read in full.
        let fast = wants_wait
            && matches!(main.state, 'S' | 'R')
            // Without schedstat, stat's CPU ticks are what the next look compares.
            && (matches!(mode, LookMode::Single) || scheduled)
            && (tid != pid || main.state == 'S');
        let mut wchan_read = false;
        if fast && let Ok(w) = r.read(task_dir, tid, "wchan") {
            t.wchan = wchan_of(w);
            wchan_read = true;
            if t.wchan.as_deref().is_some_and(is_idle_sleep) {
                t.state = 'S';
                return Some(t);
            }
        }
        // The state is not needed where schedstat already tells enough: at a baseline look
        // (only what moves since is compared), and for a thread that moved since `prev`.
        let need_stat = tid == pid
            || !scheduled
            || !(matches!(mode, LookMode::Baseline) || before.is_some_and(|b| moved(b, &t)));
        if need_stat {
            let stat = if tid == pid {
                main.clone()
            } else {
                r.read(task_dir, tid, "stat")
                    .ok()
                    .and_then(parse_stat_fields)?
            };
            t.state = stat.state;
            if !scheduled {
                t.cpu_ns = stat.cpu_ticks.saturating_mul(ns_per_tick());
                if !matches!(mode, LookMode::Single)
                    && let Ok(text) = r.read(task_dir, tid, "status")
                {
                    t.switches = parse_status_switches(&String::from_utf8_lossy(text));
                }
            }
        }
        let details = match (mode, before) {
            (_, Some(b)) => !moved(b, &t) || matches!(t.state, 'D' | 'T' | 't'),
            // A stopped thread is a suspect whatever its wait: only the others' are read.
            (LookMode::Single, None) => !matches!(t.state, 'R' | 'T' | 't'),
            _ => false,
        };
        if details {
            if let Ok(text) = r.read(task_dir, tid, "syscall") {
                t.syscall = std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| syscall::parse(s).ok());
            }
            if !wchan_read && let Ok(w) = r.read(task_dir, tid, "wchan") {
                t.wchan = wchan_of(w);
            }
            if let Some(RawSyscall::Blocked { nr, args, .. }) = t.syscall
                && is_read_or_write(&syscall::name(Arch::host(), nr))
            {
                t.fd_target = r.fd_link(proc_dir, pid, args[0] as i32);
            }
        }
        Some(t)
    };
    let fresh = known.is_some();
    let mut lost = false;
    let mut cut = false;
    for &tid in &tids {
        r.count += 1;
        if r.count.is_multiple_of(DEADLINE_CHECK_EVERY) && deadline.passed() {
            cut = true;
            break;
        }
        match one(r, &task_dir, tid) {
            Some(t) => p.threads.push(t),
            None => lost = true,
        }
    }
    // A thread of the previous look is gone while the count is the same: another was born.
    if fresh && lost && !cut {
        let born: Vec<i32> = listed(r, &task_dir, true)
            .into_iter()
            .filter(|t| tids.binary_search(t).is_err())
            .collect();
        for tid in born {
            if let Some(t) = one(r, &task_dir, tid) {
                p.threads.push(t);
            }
        }
        p.threads.sort_unstable_by_key(|t| t.tid);
    }
    Some(Some(p))
}

/// A wchan file's function, or `None` for a running thread ("0", or empty).
fn wchan_of(text: &[u8]) -> Option<String> {
    let w = String::from_utf8_lossy(text);
    let w = w.trim();
    (!w.is_empty() && w != "0").then(|| w.to_string())
}

/// Where a thread sleeps by design, and only from a syscall that is never a suspect's wait:
/// nanosleep and clock_nanosleep, pause, wait4 and waitid, rt_sigsuspend, rt_sigtimedwait,
/// epoll_wait, accept. Each sleep is interruptible (state S). A name the kernel does not use
/// (another version's) only costs the full read.
fn is_idle_sleep(wchan: &str) -> bool {
    // "sigsuspend.isra.0": the compiler's clones keep the name before the first dot.
    let name = wchan.split('.').next().unwrap_or(wchan);
    matches!(
        name,
        "hrtimer_nanosleep"
            | "do_nanosleep"
            | "__do_sys_pause"
            | "do_sys_pause"
            | "sys_pause"
            | "do_wait"
            | "sigsuspend"
            | "do_sigtimedwait"
            | "ep_poll"
            | "do_epoll_wait"
            | "inet_csk_accept"
    )
}

/// Takes one file from a look's budget of kept files, if any is left.
fn take_one(budget: &AtomicUsize) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// Reads a look's small /proc files with one buffer and one file name, reused: a look reads
/// tens of thousands of them.
struct Reader {
    buf: Vec<u8>,
    /// getdents64's records.
    dents: Vec<u8>,
    name: NameBuf,
    /// Threads read, for the deadline's checks.
    count: usize,
    /// The files this worker keeps for the next look, by TID.
    kept: Vec<(i32, OwnedFd)>,
}

impl Reader {
    fn new() -> Self {
        Reader {
            buf: vec![0; 4096],
            dents: vec![0; 16 * 1024],
            name: NameBuf::default(),
            count: 0,
            kept: Vec::new(),
        }
    }

    fn open(&mut self, dir: &impl AsFd, id: i32, file: &str) -> io::Result<OwnedFd> {
        self.name.set(id, file);
        openat(
            dir,
            self.name.as_c_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
    }

    /// The bytes of `dir`/`id`/`file`: an open, one read, a close.
    fn read(&mut self, dir: &impl AsFd, id: i32, file: &str) -> io::Result<&[u8]> {
        let n = self.read_len(dir, id, file, false)?;
        Ok(self.bytes(n))
    }

    /// Reads `dir`/`id`/`file` into the buffer, its length; `keep`: the file is kept open
    /// (under `id`) for the next look, else closed.
    fn read_len(&mut self, dir: &impl AsFd, id: i32, file: &str, keep: bool) -> io::Result<usize> {
        let fd = self.open(dir, id, file)?;
        let n = self.fill(fd.as_fd())?;
        if keep {
            self.kept.push((id, fd));
        }
        Ok(n)
    }

    fn bytes(&self, n: usize) -> &[u8] {
        self.buf.get(..n).unwrap_or_default()
    }

    /// Reads the file from its start into the buffer, its length: by pread, so a kept file is
    /// read again from offset 0, where seq_file makes the record afresh.
    fn fill(&mut self, fd: std::os::fd::BorrowedFd) -> io::Result<usize> {
        let mut n = 0;
        loop {
            if n == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let room = self.buf.get_mut(n..).unwrap_or_default();
            let got = match nix::sys::uio::pread(fd, room, n as libc::off_t) {
                Ok(got) => got,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            n += got;
            // Each file is one record, which procfs makes whole at the first read (seq_file's
            // single_open): a read that did not fill the buffer had all of it, and the read
            // that would return 0 is saved.
            if got == 0 || n < self.buf.len() {
                break;
            }
        }
        Ok(n)
    }

    /// The numeric names in a directory (a task directory's TIDs), by getdents64 into a
    /// reused buffer; `again`: the directory was listed before, and is read from its start.
    fn list_ids(&mut self, dir: BorrowedFd, again: bool) -> Vec<i32> {
        let mut ids = Vec::new();
        // SAFETY: lseek on an fd this look owns moves only its offset.
        if again && unsafe { libc::lseek(dir.as_raw_fd(), 0, libc::SEEK_SET) } != 0 {
            return ids;
        }
        loop {
            // SAFETY: getdents64 writes at most the given length into the buffer.
            let got = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    dir.as_raw_fd(),
                    self.dents.as_mut_ptr(),
                    self.dents.len(),
                )
            };
            // 0: the end; an error: what was listed is what there is (as readdir's).
            let Ok(got @ 1..) = usize::try_from(got) else {
                return ids;
            };
            let mut at = 0;
            // linux_dirent64: ino (8), off (8), reclen (2), type (1), the name NUL-ended.
            while let Some(rec) = self.dents.get(at..got.min(self.dents.len())) {
                let Some(&[a, b]) = rec.get(16..18) else {
                    break;
                };
                let len = usize::from(u16::from_ne_bytes([a, b]));
                let Some(name) = rec.get(19..len) else {
                    break;
                };
                let name = name.split(|&c| c == 0).next().unwrap_or_default();
                if let Some(id) = std::str::from_utf8(name).ok().and_then(|n| n.parse().ok()) {
                    ids.push(id);
                }
                at += len;
            }
        }
    }

    fn fd_link(&mut self, proc_dir: &File, pid: i32, fd: i32) -> Option<String> {
        let link = format!("{pid}/fd/{fd}");
        nix::fcntl::readlinkat(proc_dir, link.as_str())
            .ok()
            .map(|l| l.to_string_lossy().into_owned())
    }
}

/// "ID/FILE" as a C string, rebuilt in place.
#[derive(Default)]
struct NameBuf(Vec<u8>);

impl NameBuf {
    fn set(&mut self, id: i32, file: &str) {
        // By hand, not write!: a look names tens of thousands of files, and core::fmt was a
        // visible part of its user time.
        self.0.clear();
        if id < 0 {
            self.0.push(b'-');
        }
        let at = self.0.len();
        let mut n = id.unsigned_abs();
        loop {
            self.0.insert(at, b'0' + (n % 10) as u8);
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.0.push(b'/');
        self.0.extend_from_slice(file.as_bytes());
        self.0.push(0);
    }

    fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.0).unwrap_or_default()
    }
}

fn ns_per_tick() -> u64 {
    1_000_000_000 / crate::process::ticks_per_second().max(1)
}

/// Whether the thread ran between the two looks.
fn moved(before: &ThreadLook, now: &ThreadLook) -> bool {
    before.cpu_ns != now.cpu_ns || before.switches != now.switches
}

/// The fields of a stat line a look needs.
#[derive(Debug, Clone, Default, PartialEq)]
struct StatFields {
    name: hangscope_model::Text,
    state: char,
    ppid: i32,
    flags: u64,
    cpu_ticks: u64,
    num_threads: i64,
    start_ticks: u64,
}

/// "pid (comm) state ppid ..." (proc_pid_stat(5)); the comm may hold spaces and parentheses,
/// so the fields are counted from the last ')'.
fn parse_stat_fields(line: &[u8]) -> Option<StatFields> {
    let name = crate::proc_root::comm_of_stat(line)?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 (state): field N is f[N - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<i64>().ok());
    let state = f.first()?.chars().next()?;
    Some(StatFields {
        name,
        state,
        ppid: num(4)? as i32,
        flags: num(9)? as u64,
        cpu_ticks: (num(14)?.max(0) + num(15)?.max(0)) as u64,
        num_threads: num(20)?,
        start_ticks: num(22)?.max(0) as u64,
    })
}

/// "runtime_ns run_delay_ns timeslices" (Documentation/scheduler/sched-stats.rst).
pub fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut it = text.split_ascii_whitespace();
    let cpu = it.next()?.parse().ok()?;
    let _delay: u64 = it.next()?.parse().ok()?;
    let slices = it.next()?.parse().ok()?;
    Some((cpu, slices))
}

fn parse_status_switches(text: &str) -> Option<u64> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?)
}

/// Why a process deserves the full look.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Stopped by a signal or traced (state T or t).
    Stopped { tid: i32 },
    /// In the kernel's uninterruptible sleep, and did not move.
    Uninterruptible { tid: i32 },
    /// Held by a cgroup freezer (wchan of the freezer's trap).
    Frozen { tid: i32 },
    /// Still in a wait that should end: a lock, I/O, connect, a poll on a few fds, a futex.
    Waiting { tid: i32, syscall: String },
    /// On a CPU for (nearly) the whole window.
    Spinning { tid: i32 },
}

impl Reason {
    /// Short words for a line of `scan`.
    pub fn describe(&self) -> String {
        match self {
            Reason::Stopped { tid } => format!("thread {tid} stopped"),
            Reason::Uninterruptible { tid } => format!("thread {tid} in D state"),
            Reason::Frozen { tid } => format!("thread {tid} frozen"),
            Reason::Waiting { tid, syscall } => format!("thread {tid} still in {syscall}"),
            Reason::Spinning { tid } => format!("thread {tid} on a CPU throughout"),
        }
    }
}

/// A process picked for the full look, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    pub pid: i32,
    pub name: hangscope_model::Text,
    pub reasons: Vec<Reason>,
}

impl Suspect {
    /// The strongest reason first: a stopped, D-state or frozen process is read before one
    /// that only waits, when there is not time for all.
    pub fn rank(&self) -> u8 {
        self.reasons
            .iter()
            .map(|r| match r {
                Reason::Stopped { .. } | Reason::Uninterruptible { .. } | Reason::Frozen { .. } => {
                    0
                }
                Reason::Waiting { syscall, .. } if !is_soft_wait(syscall) => 1,
                Reason::Waiting { .. } => 2,
                Reason::Spinning { .. } => 2,
            })
            .min()
            .unwrap_or(3)
    }
}

/// Waits that usually mean "waiting for something that should have ended".
fn is_stuck_wait(name: &str) -> bool {
    is_read_or_write(name)
        || matches!(
            name,
            "flock"
                | "fcntl"
                | "connect"
                | "open"
                | "openat"
                | "openat2"
                | "sendfile"
                | "splice"
                | "fsync"
                | "fdatasync"
                | "msync"
                | "poll"
                | "ppoll"
                | "select"
                | "pselect6"
                | "futex"
                | "futex_waitv"
        )
}

/// Waits that are as often idle as stuck: read after the others when time is short.
fn is_soft_wait(name: &str) -> bool {
    matches!(
        name,
        "poll" | "ppoll" | "select" | "pselect6" | "futex" | "futex_waitv"
    )
}

fn is_read_or_write(name: &str) -> bool {
    matches!(
        name,
        "read"
            | "readv"
            | "pread64"
            | "preadv"
            | "preadv2"
            | "recvfrom"
            | "recvmsg"
            | "recvmmsg"
            | "write"
            | "writev"
            | "pwrite64"
            | "pwritev"
            | "pwritev2"
            | "sendto"
            | "sendmsg"
            | "sendmmsg"
    )
}

/// A terminal: a shell or REPL reading its tty is idle, not stuck.
fn is_terminal(target: &str) -> bool {
    target.starts_with("/dev/pts/")
        || target.starts_with("/dev/tty")
        || target == "/dev/console"
        || target == "/dev/ptmx"
}

/// A thread held by the cgroup freezer, by its wchan: v2's trap, v1's refrigerator. Newer
/// kernels (6.x) inline v2's trap into `get_signal`, where a thread in S is frozen: the signal
/// stops that also park there show as T or t.
fn is_frozen(t: &ThreadLook) -> bool {
    match t.wchan.as_deref() {
        Some("do_freezer_trap" | "__refrigerator" | "refrigerator") => true,
        Some("get_signal") => t.state == 'S',
        _ => false,
    }
}

/// Most fds a poll may watch for the wait to count as a client's (a server polls many).
const FEW_FDS: u64 = 8;

/// Picks the suspects from the last look `now`, and `before` over `window_ns` when the scan
/// looked twice. Sorted by [`Suspect::rank`], then PID.
pub fn suspects(before: Option<&HostLook>, now: &HostLook, own_pid: i32) -> Vec<Suspect> {
    let arch = Arch::host();
    let window_ns = before.map(|b| now.mono_ns.saturating_sub(b.mono_ns));
    let mut out = Vec::new();
    for p in &now.procs {
        if p.pid == own_pid {
            continue;
        }
        let prev = before
            .and_then(|b| b.get(p.pid))
            .filter(|q| q.start_ticks == p.start_ticks);
        let mut reasons = Vec::new();
        for t in &p.threads {
            let b = prev.and_then(|q| q.thread(t.tid));
            // With two looks, a thread that moved is not stuck; with one, nothing is known.
            let still = match (before, b) {
                (Some(_), Some(b)) => !moved(b, t),
                (Some(_), None) => false,
                (None, _) => true,
            };
            if matches!(t.state, 'T' | 't') {
                reasons.push(Reason::Stopped { tid: t.tid });
                continue;
            }
            if is_frozen(t) {
                reasons.push(Reason::Frozen { tid: t.tid });
                continue;
            }
            if t.state == 'D' && still && b.is_none_or(|b| matches!(b.state, 'D' | UNKNOWN_STATE)) {
                reasons.push(Reason::Uninterruptible { tid: t.tid });
                continue;
            }
            if let (Some(b), Some(w)) = (b, window_ns) {
                // 90% of the window on a CPU, and runnable at both looks (as far as read).
                let spun = t.cpu_ns.saturating_sub(b.cpu_ns);
                let running = |c: char| matches!(c, 'R' | UNKNOWN_STATE);
                if w > 0
                    && spun.saturating_mul(10) >= w.saturating_mul(9)
                    && running(t.state)
                    && running(b.state)
                {
                    reasons.push(Reason::Spinning { tid: t.tid });
                    continue;
                }
            }
            if !still {
                continue;
            }
            let Some(RawSyscall::Blocked { nr, args, .. }) = t.syscall else {
                continue;
            };
            let name = syscall::name(arch, nr);
            if !is_stuck_wait(&name) {
                continue;
            }
            let idle = match name.as_str() {
                _ if is_read_or_write(&name) => t.fd_target.as_deref().is_some_and(is_terminal),
                "poll" | "ppoll" => args[1] > FEW_FDS,
                // nfds is the highest fd + 1: a bound, not a count.
                "select" | "pselect6" => args[0] > 64,
                // A futex wait with a timeout is a timed sleep or a condition with a limit.
                "futex" => args[3] != 0,
                _ => false,
            };
            if !idle {
                reasons.push(Reason::Waiting {
                    tid: t.tid,
                    syscall: name,
                });
            }
        }
        if !reasons.is_empty() {
            reasons.sort();
            reasons.dedup();
            out.push(Suspect {
                pid: p.pid,
                name: p.name.clone(),
                reasons,
            });
        }
    }
    out.sort_by_key(|s| (s.rank(), s.pid));
    out
}

/// The cgroup a process is in, and the container its path names, from /proc/PID/cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    /// The unified (v2) path, or the first v1 path.
    pub cgroup: String,
    /// The 64-hex container id in the path (docker, containerd, CRI-O, podman), if any.
    pub id: Option<String>,
    /// Who made it, when the path says: "docker", "containerd", "crio", "podman", "kubepods".
    pub runtime: Option<String>,
}

/// The last 64-hex segment of a cgroup path: docker's "docker-ID.scope" or "/docker/ID",
/// containerd's "cri-containerd-ID.scope", CRI-O's "crio-ID.scope", podman's "libpod-ID".
fn container_id(path: &str) -> Option<String> {
    path.split(['/', '-', '.', ':'])
        .rev()
        .find(|seg| seg.len() == 64 && seg.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
}

pub fn container_of(root: &ProcRoot, pid: i32) -> Option<Container> {
    root.read_pid(pid, "cgroup")
        .ok()
        .map(|t| parse_container(&t))
}

pub fn parse_container(cgroup: &str) -> Container {
    let unified = crate::freezer::parse_cgroup(cgroup).unified;
    let v1 = cgroup.lines().filter_map(|l| l.splitn(3, ':').nth(2));
    // A v1 host's unified line is often "/": the path that names a container is a v1 one.
    let paths: Vec<&str> = unified.as_deref().into_iter().chain(v1).collect();
    let named = paths
        .iter()
        .find_map(|p| container_id(p).map(|id| (p.to_string(), id)));
    let (path, id) = match named {
        Some((p, id)) => (p, Some(id)),
        None => (
            paths.first().map(|p| p.to_string()).unwrap_or_default(),
            None,
        ),
    };
    let runtime = [
        ("docker", "docker"),
        ("cri-containerd", "containerd"),
        ("crio", "crio"),
        ("libpod", "podman"),
        ("kubepods", "kubepods"),
    ]
    .iter()
    .find(|(k, _)| path.contains(k))
    .map(|(_, r)| r.to_string());
    Container {
        cgroup: path,
        id,
        runtime,
    }
}

/// What moved, per process, between two looks: for `--all`'s one line on a healthy process.
pub fn moving_threads(before: &HostLook, now: &HostLook) -> BTreeMap<i32, usize> {
    now.procs
        .iter()
        .map(|p| {
            let prev = before.get(p.pid).filter(|q| q.start_ticks == p.start_ticks);
            let n = p
                .threads
                .iter()
                .filter(|t| {
                    prev.and_then(|q| q.thread(t.tid))
                        .is_none_or(|b| moved(b, t))
                })
                .count();
            (p.pid, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::dir::Dir;

    fn thread(tid: i32, state: char, cpu_ns: u64, switches: u64) -> ThreadLook {
        ThreadLook {
            tid,
            state,
            cpu_ns,
            switches: Some(switches),
            ..ThreadLook::default()
        }
    }

    fn blocked(mut t: ThreadLook, nr: i64, args: [u64; 6]) -> ThreadLook {
        t.syscall = Some(RawSyscall::Blocked {
            nr,
            args,
            sp: 0,
            pc: 0,
        });
        t
    }

    fn host(mono_ns: u64, procs: Vec<ProcLook>) -> HostLook {
        HostLook {
            procs,
            mono_ns,
            ..HostLook::default()
        }
    }

    fn proc_of(pid: i32, threads: Vec<ThreadLook>) -> ProcLook {
        ProcLook {
            pid,
            name: "p".into(),
            ppid: 1,
            start_ticks: 7,
            threads,
        }
    }

    #[test]
    fn stat_fields_are_counted_from_the_last_paren() {
        let line = b"42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 30 12 0 0 20 0 3 0 555 0 0";
        let s = parse_stat_fields(line).unwrap();
        assert_eq!(s.name, "a) b");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.cpu_ticks, 42);
        assert_eq!(s.num_threads, 3);
        assert_eq!(s.start_ticks, 555);
        assert!(parse_stat_fields(b"garbage").is_none());
        assert!(parse_stat_fields(b"1 (x) S 1").is_none());
    }

    #[test]
    fn schedstat_and_status() {
        assert_eq!(parse_schedstat("123 45 6\n"), Some((123, 6)));
        assert_eq!(parse_schedstat("123"), None);
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t5\nnonvoluntary_ctxt_switches:\t2\n";
        assert_eq!(parse_status_switches(status), Some(7));
    }

    #[test]
    fn still_waits_that_should_end_are_suspects_and_idle_ones_are_not() {
        let flock = libc::SYS_flock;
        let epoll = libc::SYS_epoll_wait;
        let read = libc::SYS_read;
        let before = host(
            0,
            vec![
                proc_of(10, vec![thread(10, 'S', 5, 3)]),
                proc_of(11, vec![thread(11, 'S', 5, 3)]),
                proc_of(12, vec![thread(12, 'S', 5, 3)]),
                proc_of(13, vec![thread(13, 'S', 5, 3)]),
                proc_of(14, vec![thread(14, 'S', 5, 3)]),
            ],
        );
        let mut tty = blocked(thread(13, 'S', 5, 3), read, [0; 6]);
        tty.fd_target = Some("/dev/pts/3".into());
        let mut sock = blocked(thread(14, 'S', 5, 3), read, [0; 6]);
        sock.fd_target = Some("socket:[1234]".into());
        let now = host(
            2_000_000_000,
            vec![
                proc_of(10, vec![blocked(thread(10, 'S', 5, 3), flock, [0; 6])]),
                proc_of(11, vec![blocked(thread(11, 'S', 5, 3), epoll, [0; 6])]),
                // Moved: the same flock is a new one, not a stuck one.
                proc_of(12, vec![blocked(thread(12, 'S', 5, 4), flock, [0; 6])]),
                proc_of(13, vec![tty]),
                proc_of(14, vec![sock]),
            ],
        );
        let s = suspects(Some(&before), &now, 0);
        let pids: Vec<i32> = s.iter().map(|s| s.pid).collect();
        assert_eq!(pids, [10, 14]);
        assert_eq!(
            s[0].reasons,
            [Reason::Waiting {
                tid: 10,
                syscall: "flock".into()
            }]
        );
    }

    #[test]
    fn stopped_d_state_frozen_and_spinning_are_suspects() {
        let before = host(
            0,
            vec![
                proc_of(20, vec![thread(20, 'T', 5, 3)]),
                proc_of(21, vec![thread(21, 'D', 5, 3)]),
                proc_of(22, vec![thread(22, 'S', 5, 3)]),
                // A baseline look read no state: runnable as far as it knows.
                proc_of(23, vec![thread(23, UNKNOWN_STATE, 0, 3)]),
                // Busy, but it sleeps half the time: not a spin.
                proc_of(24, vec![thread(24, 'R', 0, 3)]),
            ],
        );
        let mut frozen = thread(22, 'S', 5, 3);
        frozen.wchan = Some("do_freezer_trap".into());
        let now = host(
            1_000_000_000,
            vec![
                proc_of(20, vec![thread(20, 'T', 5, 3)]),
                proc_of(21, vec![thread(21, 'D', 5, 3)]),
                proc_of(22, vec![frozen]),
                proc_of(23, vec![thread(23, 'R', 990_000_000, 3)]),
                proc_of(24, vec![thread(24, 'R', 500_000_000, 900)]),
            ],
        );
        let s = suspects(Some(&before), &now, 0);
        let got: Vec<(i32, Reason)> = s.iter().map(|s| (s.pid, s.reasons[0].clone())).collect();
        assert_eq!(
            got,
            [
                (20, Reason::Stopped { tid: 20 }),
                (21, Reason::Uninterruptible { tid: 21 }),
                (22, Reason::Frozen { tid: 22 }),
                (23, Reason::Spinning { tid: 23 }),
            ]
        );
    }

    #[test]
    fn a_thread_asleep_in_get_signal_is_frozen() {
        // Linux 6.x: v2's freezer trap is inlined into get_signal (measured on 6.18: a frozen
        // sleep shows S, wchan get_signal, syscall clock_nanosleep).
        let mut frozen = thread(40, 'S', 5, 3);
        frozen.wchan = Some("get_signal".into());
        // Running through get_signal to deliver a signal is not frozen.
        let mut delivering = thread(41, 'R', 5, 3);
        delivering.wchan = Some("get_signal".into());
        let now = host(
            0,
            vec![proc_of(40, vec![frozen]), proc_of(41, vec![delivering])],
        );
        let got: Vec<(i32, Vec<Reason>)> = suspects(None, &now, 0)
            .into_iter()
            .map(|s| (s.pid, s.reasons))
            .collect();
        assert_eq!(got, [(40, vec![Reason::Frozen { tid: 40 }])]);
    }

    #[test]
    fn a_reused_pid_is_not_compared_with_its_predecessor() {
        let before = host(0, vec![proc_of(30, vec![thread(30, 'S', 5, 3)])]);
        let mut reborn = proc_of(
            30,
            vec![blocked(thread(30, 'S', 5, 3), libc::SYS_flock, [0; 6])],
        );
        reborn.start_ticks = 99;
        let now = host(1_000_000_000, vec![reborn]);
        assert!(suspects(Some(&before), &now, 0).is_empty());
    }

    #[test]
    fn idle_sleeps_are_known_by_wchan_alone() {
        for w in [
            "hrtimer_nanosleep",
            "__do_sys_pause",
            "do_wait",
            "sigsuspend.isra.0",
            "ep_poll",
        ] {
            assert!(is_idle_sleep(w), "{w}");
        }
        // Waits whose syscall (or its arguments, or its fd) decides: read in full.
        for w in [
            "futex_do_wait",
            "anon_pipe_read",
            "poll_schedule_timeout.constprop.0",
            "wait_woken",
            "do_freezer_trap",
            "do_signal_stop",
            "0",
        ] {
            assert!(!is_idle_sleep(w), "{w}");
        }
        assert_eq!(wchan_of(b"0"), None);
        assert_eq!(wchan_of(b""), None);
        assert_eq!(wchan_of(b"do_wait"), Some("do_wait".to_string()));
    }

    #[test]
    fn the_reader_grows_its_buffer_for_a_long_file() {
        let dir = std::env::temp_dir().join(format!("hs-reader-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("7")).unwrap();
        let long: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(dir.join("7/f"), &long).unwrap();
        let d = Dir::open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let mut r = Reader::new();
        assert_eq!(r.read(&d, 7, "f").unwrap(), long.as_slice());
        assert!(r.read(&d, 8, "f").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn burn_cpu() {
        let end = std::time::Instant::now() + std::time::Duration::from_millis(30);
        let mut x = 0u64;
        while std::time::Instant::now() < end {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn a_kept_schedstat_read_again_from_offset_0_is_made_afresh() {
        let d = Dir::open("/proc/thread-self/..", OFlag::O_RDONLY, Mode::empty()).unwrap();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let mut r = Reader::new();
        let n = r.read_len(&d, tid, "schedstat", true).unwrap();
        let first = parse_schedstat(std::str::from_utf8(r.bytes(n)).unwrap()).unwrap();
        assert_eq!(r.kept.len(), 1);
        burn_cpu();
        let (_, fd) = r.kept.pop().unwrap();
        let n = r.fill(fd.as_fd()).unwrap();
        let again = parse_schedstat(std::str::from_utf8(r.bytes(n)).unwrap()).unwrap();
        assert!(again.0 > first.0, "{first:?} then {again:?}");
    }

    #[test]
    fn a_baseline_look_keeps_its_files_for_the_look_that_compares() {
        let root = ProcRoot::default();
        let own = [std::process::id() as i32];
        let deadline = Deadline::after(std::time::Duration::from_secs(10));
        let mut first = look(&root, Scope::Pids(&own), None, true, deadline);
        let me = first.get(own[0]).unwrap();
        assert!(!first.kept.is_empty());
        assert!(first.kept.len() <= me.threads.len());
        assert!(first.clone().kept.is_empty(), "a clone keeps no file");
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        assert!(first.kept.get(tid).is_some(), "{:?}", first.kept);
        burn_cpu();
        let second = look(&root, Scope::Pids(&own), Some(&first), false, deadline);
        assert!(second.kept.is_empty(), "only a baseline keeps files");
        let (a, b) = (
            first.get(own[0]).unwrap().thread(tid).unwrap(),
            second.get(own[0]).unwrap().thread(tid).unwrap(),
        );
        assert!(b.cpu_ns > a.cpu_ns, "this thread ran: {a:?} {b:?}");
        first.close_kept();
        assert!(first.kept.is_empty());
    }

    #[test]
    fn a_compared_look_lists_the_threads_again_when_one_it_knew_is_gone() {
        // sleep(1): one thread, its TID the PID. The previous look is made to know another
        // thread instead (a TID above any pid_max), as when one thread exited and another was
        // born between the looks: same count, and the newborn must still be read.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let root = ProcRoot::default();
        let deadline = Deadline::after(std::time::Duration::from_secs(10));
        let mut first = look(&root, Scope::Pids(&[pid]), None, true, deadline);
        first.close_kept();
        let same = look(&root, Scope::Pids(&[pid]), Some(&first), false, deadline);
        let tids = |h: &HostLook| -> Vec<i32> {
            h.get(pid).unwrap().threads.iter().map(|t| t.tid).collect()
        };
        assert_eq!(tids(&same), [pid]);
        const GONE: i32 = 0x7fff_fff0;
        first.procs[0].threads[0].tid = GONE;
        let again = look(&root, Scope::Pids(&[pid]), Some(&first), false, deadline);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(tids(&again), [pid], "{again:?}");
    }

    #[test]
    fn names_are_built_in_place() {
        let mut n = NameBuf::default();
        for (id, want) in [
            (0, "0/stat"),
            (7, "7/stat"),
            (4_194_304, "4194304/stat"),
            (i32::MAX, "2147483647/stat"),
            (-12, "-12/stat"),
        ] {
            n.set(id, "stat");
            assert_eq!(n.as_c_str().to_str().unwrap(), want);
        }
    }

    #[test]
    fn ids_are_listed_past_one_buffer_and_again_from_the_start() {
        let dir = std::env::temp_dir().join(format!("hs-ids-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Enough entries for several getdents64 calls into the 16 KiB buffer.
        let want: Vec<i32> = (1..=3000).map(|i| i * 7).collect();
        for id in &want {
            std::fs::write(dir.join(id.to_string()), b"").unwrap();
        }
        std::fs::write(dir.join("not-a-tid"), b"").unwrap();
        let d =
            nix::fcntl::open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let mut r = Reader::new();
        let mut first = r.list_ids(d.as_fd(), false);
        first.sort_unstable();
        assert_eq!(first, want);
        let mut again = r.list_ids(d.as_fd(), true);
        again.sort_unstable();
        assert_eq!(again, want);
        // Our own task directory: this thread is in it.
        let t = nix::fcntl::open("/proc/thread-self/..", OFlag::O_RDONLY, Mode::empty()).unwrap();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        assert!(r.list_ids(t.as_fd(), false).contains(&tid));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn containers_are_named_from_the_cgroup_path() {
        let id = "a".repeat(64);
        let c = parse_container(&format!("0::/system.slice/docker-{id}.scope\n"));
        assert_eq!(c.id.as_deref(), Some(id.as_str()));
        assert_eq!(c.runtime.as_deref(), Some("docker"));
        let c = parse_container(&format!("12:freezer:/kubepods/burstable/pod1/{id}\n0::/\n"));
        assert_eq!(c.cgroup, format!("/kubepods/burstable/pod1/{id}"));
        assert_eq!(c.id.as_deref(), Some(id.as_str()));
        let c = parse_container("0::/user.slice/user-0.slice/session-1.scope\n");
        assert_eq!(c.id, None);
        assert_eq!(c.runtime, None);
    }
}
