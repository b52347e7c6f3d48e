//! User-space stacks of the threads blocked in a system call, without stopping them.
//!
//! A thread in a syscall has its user SP and PC in /proc/PID/task/TID/syscall, as the threads'
//! last look read it. Its stack above SP is copied with process_vm_readv(2) (at most
//! [`MAX_STACK`] bytes), the syscall file read again to be sure the thread is where the look
//! saw it (so the frames are those of the wait the report describes), and the copy unwound
//! with framehop ([`unwind`]) against the unwind tables of the modules in /proc/PID/maps
//! ([`module`]); the addresses are then symbolized ([`symbolize`]). The target is never
//! stopped or traced.
//!
//! Runs on a worker thread started with the collection ([`warm`]), which names the stacks as
//! they are then, so that at the look only its copies and what is new in them are left
//! ([`start`]); waited for at most a share of what is left of the run's deadline:
//! opening a module could block where the target's files are (a fanotify listener), and
//! hangscope must not. The worker checks the deadline between modules and threads.
//!
//! x86_64 only: on aarch64 the return address of the innermost frame is in LR, which the
//! syscall file does not give, so there is nothing to unwind from without a stop.

mod dwarf;
pub mod dwarf_cache;
mod maps;
pub mod module;
mod place;
mod stop;
mod symbolize;
mod tailcall;
mod unwind;

#[cfg(test)]
mod fixture {
    use std::path::PathBuf;

    /// tests/fixtures/stacks/`source` built by `compiler` with `args` (before `source -o OUT`)
    /// into a fresh directory named for `tag`: (that directory, the program). `None`, said on
    /// stderr, where the compiler is not installed; a failed build panics.
    pub fn build(
        compiler: &str,
        args: &[&str],
        source: &str,
        tag: &str,
    ) -> Option<(PathBuf, PathBuf)> {
        let dir = std::env::temp_dir().join(format!("hangscope-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let stem = source.rsplit_once('.').map_or(source, |(s, _)| s);
        let exe = dir.join(stem);
        let path = format!(
            "{}/../../tests/fixtures/stacks/{source}",
            env!("CARGO_MANIFEST_DIR")
        );
        let built = std::process::Command::new(compiler)
            .args(args)
            .arg(&path)
            .arg("-o")
            .arg(&exe)
            .status();
        match built {
            Ok(s) if s.success() => Some((dir, exe)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped: no {compiler} ({e})");
                let _ = std::fs::remove_dir_all(&dir);
                None
            }
            other => panic!("{compiler}: {other:?}"),
        }
    }
}

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IoSliceMut;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hangscope_model::{Frame, Gap, GapReason, Snapshot, StackSource, Text, UserStack};
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

use crate::locks::{LeaseRead, PendingLocks};
use crate::mountinfo::Mounts;
use crate::threads::syscall::{self, RawSyscall};
use crate::{Deadline, Options, ProcRoot};

/// Stack bytes copied per thread, above SP.
pub const MAX_STACK: usize = 256 * 1024;
/// The most the stacks take of what is left of the deadline, and at most this long.
const SHARE_OF_DEADLINE: u32 = 3;
const MAX_TIME: Duration = Duration::from_secs(2);

/// Whether and how stacks are read (`--stacks`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StackMode {
    Off,
    /// From a copy, for the threads blocked in a syscall.
    #[default]
    Copy,
    /// As `Copy`, and the threads it cannot unwind (running, or a walk that failed) from
    /// their registers in a brief ptrace stop each ([`stop`]).
    Stop,
}

/// The leases the module opens must not break, their read started now when stacks are to be
/// read: each read of /proc/locks waits for an RCU grace period (`locks::start`), which passes
/// while the fds and threads are read rather than at the stacks' first open.
pub fn early_leases(root: &ProcRoot, opts: &Options) -> Option<PendingLocks> {
    (opts.stacks != StackMode::Off && syscall::Arch::host() == syscall::Arch::X86_64)
        .then(|| crate::locks::start(root))
}

/// The threads to unwind: those blocked in a syscall (or outside one, "-1 SP PC").
fn blocked_tids(snap: &Snapshot) -> Vec<i32> {
    snap.threads
        .iter()
        .filter(|t| t.syscall.as_ref().is_some_and(|s| !s.running))
        .map(|t| t.tid)
        .collect()
}

/// The worker started by [`start`], collected by [`Pending::finish`].
pub struct Pending {
    rx: std::sync::mpsc::Receiver<(Stacks, Vec<Gap>)>,
    latest: Arc<Mutex<Stacks>>,
    budget: Duration,
    until: std::time::Instant,
}

/// The look the stacks are to stand for, as [`start`] gives it to the worker.
struct Look {
    tids: Vec<i32>,
    at_look: HashMap<i32, RawSyscall>,
    to_stop: Option<Vec<i32>>,
    deadline: Deadline,
}

/// Where the worker gets its look: given at once, or sent by [`start`] to a worker that
/// [`warm`] started with the collection.
enum LookSource {
    Now(Look),
    Later(std::sync::mpsc::Receiver<Look>, Deadline),
}

/// A worker started with the collection, before the fds and the threads are read: it opens the
/// modules and names the stacks of the threads as they are then (an early copy), so that when
/// the look comes ([`start`]) most of its frames' places are known, and only the copies, their
/// walks and the places not seen early are left. A stuck thread's stack is the one it had a
/// moment before, and naming it (tens of ms of DWARF for a Rust program) then runs beside the
/// reads of the fds (a large table's hundreds of ms) and the sampling window, not after them.
/// Nothing of the early copy reaches the report: only places, which depend on the module and
/// the address alone.
pub struct Warm {
    look: std::sync::mpsc::Sender<Look>,
    rx: std::sync::mpsc::Receiver<(Stacks, Vec<Gap>)>,
    latest: Arc<Mutex<Stacks>>,
}

/// Starts the stacks' worker ahead of the look ([`Warm`]); `None` where no stack will be read.
/// Dropped without a look, the worker stops at its next step.
pub fn warm(
    root: &ProcRoot,
    pid: i32,
    mounts: &Mounts,
    opts: &Options,
    leases: Option<PendingLocks>,
    kernel_thread: bool,
) -> Option<Warm> {
    if opts.stacks == StackMode::Off
        || kernel_thread
        || syscall::Arch::host() != syscall::Arch::X86_64
    {
        return None;
    }
    let (look, looks) = std::sync::mpsc::channel();
    let source = LookSource::Later(looks, opts.deadline);
    let (rx, latest) = spawn(root, pid, mounts, leases.map(LeaseRead::Pending), source).ok()?;
    Some(Warm { look, rx, latest })
}

/// Runs [`work`] on a thread: its result's receiver, and what it has published so far.
#[allow(clippy::type_complexity)]
fn spawn(
    root: &ProcRoot,
    pid: i32,
    mounts: &Mounts,
    leases: Option<LeaseRead>,
    source: LookSource,
) -> std::io::Result<(
    std::sync::mpsc::Receiver<(Stacks, Vec<Gap>)>,
    Arc<Mutex<Stacks>>,
)> {
    let (tx, rx) = std::sync::mpsc::channel();
    // What the worker has so far: the frames once unwound, then names module by module, so a
    // worker cut short still leaves frames (module+offset at least).
    let latest: Arc<Mutex<Stacks>> = Arc::default();
    let root2 = root.clone();
    let mounts2 = mounts.clone();
    let latest2 = latest.clone();
    std::thread::Builder::new()
        .name("stacks".into())
        .spawn(move || {
            let publish = |s: Stacks| {
                if let Ok(mut l) = latest2.lock() {
                    *l = s;
                }
            };
            let out = work(&root2, pid, &mounts2, leases, source, &publish);
            let _ = tx.send(out);
        })?;
    Ok((rx, latest))
}

/// Reads the stacks of the blocked threads as of the look `at_look`, on a worker that runs
/// while the rest of the collection goes on (`warm`'s, when one was started); [`Pending::finish`]
/// puts them in `snap.threads[..].user_stack`.
#[allow(clippy::too_many_arguments)]
pub fn start(
    root: &ProcRoot,
    pid: i32,
    mounts: &Mounts,
    opts: &Options,
    leases: Option<LeaseRead>,
    at_look: HashMap<i32, RawSyscall>,
    snap: &mut Snapshot,
    warm: Option<Warm>,
) -> Option<Pending> {
    if opts.stacks == StackMode::Off || snap.process.kernel_thread {
        return None;
    }
    let tids = blocked_tids(snap);
    // Every thread whose syscall file was read: which of them get a stop is known after the
    // copies were unwound.
    let to_stop: Option<Vec<i32>> = (opts.stacks == StackMode::Stop).then(|| {
        snap.threads
            .iter()
            .filter(|t| t.syscall.is_some())
            .map(|t| t.tid)
            .collect()
    });
    if tids.is_empty() && to_stop.as_ref().is_none_or(|s| s.is_empty()) {
        return None;
    }
    if syscall::Arch::host() != syscall::Arch::X86_64 {
        snap.gaps.push(Gap::new(
            "user stacks",
            GapReason::Unsupported,
            "unwinding from the syscall file needs x86_64: on this architecture the innermost \
             return address is in a register the file does not give",
        ));
        return None;
    }
    let budget = (opts.deadline.remaining() / SHARE_OF_DEADLINE).min(MAX_TIME);
    if budget.is_zero() {
        snap.gaps.push(Gap::new(
            "user stacks",
            GapReason::Deadline,
            "not read before the deadline",
        ));
        return None;
    }
    let look = Look {
        tids,
        at_look,
        to_stop,
        deadline: Deadline::after(budget),
    };
    // The warm worker, if it is still there to take the look; else one started now.
    let sent = match warm {
        Some(w) => match w.look.send(look) {
            Ok(()) => Ok((w.rx, w.latest)),
            Err(std::sync::mpsc::SendError(look)) => Err(look),
        },
        None => Err(look),
    };
    let spawned = match sent {
        Ok(worker) => Ok(worker),
        Err(look) => spawn(root, pid, mounts, leases, LookSource::Now(look)),
    };
    let (rx, latest) = match spawned {
        Ok(w) => w,
        Err(e) => {
            snap.gaps
                .push(Gap::new("user stacks", GapReason::Other, e.to_string()));
            return None;
        }
    };
    Some(Pending {
        rx,
        latest,
        budget,
        // A little past the worker's own deadline: it stops between items, not inside one.
        until: std::time::Instant::now() + budget + Duration::from_millis(200),
    })
}

impl Pending {
    /// Waits for the worker until its time is up, and keeps what it has.
    pub fn finish(self, snap: &mut Snapshot) {
        let Pending {
            rx,
            latest,
            budget,
            until,
        } = self;
        finish(snap, rx, latest, budget, until);
    }
}

fn finish(
    snap: &mut Snapshot,
    rx: std::sync::mpsc::Receiver<(Stacks, Vec<Gap>)>,
    latest: Arc<Mutex<Stacks>>,
    budget: Duration,
    until: std::time::Instant,
) {
    match rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now())) {
        Ok((stacks, gaps)) => {
            attach(snap, &stacks);
            snap.gaps.extend(gaps);
        }
        Err(_) => {
            let so_far = latest.lock().map(|l| l.clone()).unwrap_or_default();
            attach(snap, &so_far);
            let had = if so_far.is_empty() {
                "no stack was unwound"
            } else {
                "the stacks are as far as they were named"
            };
            snap.gaps.push(Gap::new(
                "user stacks",
                GapReason::Deadline,
                format!(
                    "not finished within {} ({had}): reading the modules' symbols took \
                     longer, or an open blocked; the reading thread was left behind",
                    hangscope_model::units::duration(budget)
                ),
            ));
        }
    }
}

type Stacks = BTreeMap<i32, UserStack>;

fn attach(snap: &mut Snapshot, stacks: &Stacks) {
    for t in &mut snap.threads {
        if let Some(s) = stacks.get(&t.tid) {
            t.user_stack = Some(s.clone());
        }
    }
}

/// Counts of the same trouble over threads or modules, for one gap each.
#[derive(Default)]
struct Troubles(Vec<(GapReason, String, Vec<String>)>);

impl Troubles {
    fn add(&mut self, reason: GapReason, why: String, what: String) {
        match self
            .0
            .iter_mut()
            .find(|(r, w, _)| *r == reason && *w == why)
        {
            Some((_, _, whats)) => whats.push(what),
            None => self.0.push((reason, why, vec![what])),
        }
    }

    fn gaps(self, noun: &str) -> Vec<Gap> {
        self.0
            .into_iter()
            .map(|(reason, why, whats)| {
                let what = match whats.as_slice() {
                    [one] => one.clone(),
                    many => format!("{} {noun}", many.len()),
                };
                Gap::new(what, reason, why)
            })
            .collect()
    }
}

/// A raw frame: which module (index) and the address to look up in it.
struct RawFrame {
    address: u64,
    module: Option<usize>,
    lookup_svma: u64,
    offset: u64,
    /// Rebuilt from DWARF's call sites: a function that tail-called the next-inner one.
    tail_call: bool,
}

/// Threads whose stacks the warm worker copies, at most: a pool of stuck threads shares its
/// frames, and the early naming is only ahead of the look's, never instead of it.
const MAX_WARM_THREADS: usize = 32;

/// The look as it reaches a warm worker: polled between its steps, so it can turn to the look
/// (or stop, when the collection dropped it) without finishing what it was ahead on.
struct Looks {
    rx: Option<std::sync::mpsc::Receiver<Look>>,
    look: Option<Look>,
    gone: bool,
}

impl Looks {
    fn poll(&mut self) {
        if self.look.is_some() || self.gone {
            return;
        }
        if let Some(rx) = &self.rx {
            match rx.try_recv() {
                Ok(l) => self.look = Some(l),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.gone = true,
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
        }
    }

    /// Waits for the look until `deadline`; `None` if it never came.
    fn wait(&mut self, deadline: Deadline) -> Option<&Look> {
        if self.look.is_none()
            && !self.gone
            && let Some(rx) = &self.rx
        {
            self.look = rx.recv_timeout(deadline.remaining()).ok();
        }
        self.look.as_ref()
    }
}

/// This thread's nice value raised by [`Niced::NICER`] until [`Niced::restore`]. Lowering it
/// again needs CAP_SYS_NICE (or an RLIMIT_NICE that allows it): without, the thread stays at
/// the nicer value, which is only slower where the host is busy.
struct Niced {
    tid: libc::id_t,
    /// The nice value before; `None` if it could not be read (and was left alone).
    was: Option<libc::c_int>,
}

impl Niced {
    const NICER: libc::c_int = 10;

    fn lower() -> Niced {
        let tid = nix::unistd::gettid().as_raw() as libc::id_t;
        // getpriority returns the nice value itself (-20..19) from glibc; errno tells an error
        // from -1, and on any doubt the value is left alone.
        // SAFETY: plain syscalls on this thread's own priority.
        let was = unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        };
        // SAFETY: as above.
        let failed = unsafe { *libc::__errno_location() } != 0;
        if failed {
            return Niced { tid, was: None };
        }
        // SAFETY: as above.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, (was + Self::NICER).min(19)) };
        Niced {
            tid,
            was: Some(was),
        }
    }

    fn restore(&self) {
        if let Some(was) = self.was {
            // SAFETY: this thread's own priority; a refusal (EACCES) leaves it nicer.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, self.tid, was) };
        }
    }
}

/// The places found so far, and which addresses were looked up in DWARF (found or not).
#[derive(Default)]
struct Naming {
    places: Places,
    looked_up: BTreeSet<(usize, u64)>,
}

fn work(
    root: &ProcRoot,
    pid: i32,
    mounts: &Mounts,
    leases: Option<LeaseRead>,
    source: LookSource,
    publish: &dyn Fn(Stacks),
) -> (Stacks, Vec<Gap>) {
    crate::stage::mark("  (stacks) start");
    let mut gaps = Vec::new();
    let (mut looks, run_deadline) = match source {
        LookSource::Now(l) => {
            let d = l.deadline;
            (
                Looks {
                    rx: None,
                    look: Some(l),
                    gone: false,
                },
                d,
            )
        }
        LookSource::Later(rx, d) => (
            Looks {
                rx: Some(rx),
                look: None,
                gone: false,
            },
            d,
        ),
    };
    let read_maps = |gaps: &mut Vec<Gap>| match root.read_pid_bytes(pid, "maps") {
        Ok(t) => Some(t),
        Err(e) => {
            gaps.push(crate::error::gap_of(format!("/proc/{pid}/maps"), &e));
            None
        }
    };
    let Some(mut maps_text) = read_maps(&mut gaps) else {
        return (BTreeMap::new(), gaps);
    };
    // Ahead of the look, at a lower priority: a large target's fds and socket dumps, which the
    // run waits for, keep both cores of a small host, and this work only fills what they leave.
    let niced = looks.look.is_none().then(Niced::lower);
    crate::stage::mark("  (stacks) copies");
    // Given the look at once: copied first, before any module is read, as near the look as
    // can be, and while /proc/locks, which the module opens wait for, is still being read.
    let mut copied = looks
        .look
        .as_ref()
        .map(|l| copy_all(root, pid, l, &maps::parse(&maps_text)));
    crate::stage::mark("  (stacks) leases");
    let guard = module::LeaseGuard::new(root, first_leases(root, leases, &mut gaps));
    let mut own_gaps = Vec::new();
    let own_mounts = crate::mountinfo::read(root, std::process::id() as i32, &mut own_gaps);
    let env = module::Env {
        root,
        pid,
        mounts,
        leases: &guard,
        own_mounts: &own_mounts,
    };
    // Twice at most: a second time with the modules opened again when the maps changed between
    // the early naming and the look (a library loaded or unloaded).
    for _ in 0..2 {
        let maps = maps::parse(&maps_text);
        crate::stage::mark("  (stacks) modules");
        let mut module_gaps = Vec::new();
        let mut stop_loading = || {
            looks.poll();
            looks.gone
                || looks
                    .look
                    .as_ref()
                    .map_or(run_deadline, |l| l.deadline)
                    .passed()
        };
        let (modules, unwinder) = load_modules(&env, &maps, &mut stop_loading, &mut module_gaps);
        let mut cache = framehop::x86_64::CacheX86_64::new();
        let mut dwarfs = tailcall::Dwarfs::new(&env, &modules);
        let mut naming = Naming::default();
        if looks.look.is_none() {
            crate::stage::mark("  (stacks) early copies");
            let early = early_copies(root, pid, &maps, &mut looks, run_deadline);
            let mut raw: Raw = early
                .iter()
                .map(|(tid, (copy, pc, sp))| {
                    (
                        *tid,
                        walk_copy(&unwinder, &mut cache, &modules, copy, *pc, *sp, 0),
                    )
                })
                .collect();
            drop(early);
            crate::stage::mark("  (stacks) early names");
            let mut ahead = || {
                looks.poll();
                looks.look.is_some() || looks.gone || run_deadline.passed()
            };
            name_all(
                &env,
                &modules,
                &mut dwarfs,
                &mut raw,
                &mut naming,
                &mut ahead,
                &|_| {},
            );
            crate::stage::mark("  (stacks) waiting for the look");
            if looks.wait(run_deadline).is_none() {
                return (BTreeMap::new(), gaps);
            }
            let Some(now) = read_maps(&mut gaps) else {
                return (BTreeMap::new(), gaps);
            };
            if now != maps_text {
                maps_text = now;
                continue;
            }
        }
        let Some(look) = looks.look.as_ref() else {
            return (BTreeMap::new(), gaps);
        };
        gaps.append(&mut module_gaps);
        if let Some(n) = &niced {
            n.restore();
        }
        let deadline = look.deadline;
        crate::stage::mark("  (stacks) walks");
        let (copies, mut copy_troubles) = match copied.take() {
            Some(c) => c,
            None => copy_all(root, pid, look, &maps),
        };
        let mut raw: Raw = BTreeMap::new();
        for (tid, (copy, pc, sp)) in &copies {
            let r = walk_copy(&unwinder, &mut cache, &modules, copy, *pc, *sp, 0);
            raw.insert(*tid, r);
        }
        drop(copies);
        let mut thread_troubles = Troubles::default();
        if let Some(candidates) = look.to_stop.as_deref() {
            let need: Vec<i32> = candidates
                .iter()
                .copied()
                .filter(|tid| raw.get(tid).is_none_or(stop::copy_fell_short))
                .filter(|tid| {
                    // A copy refused for want of privilege: a stop would be refused too.
                    !copy_troubles
                        .iter()
                        .any(|(t, (r, _))| t == tid && *r == GapReason::Permission)
                })
                .collect();
            let (stopped, troubles) = stop::stop_all(root, pid, &need, &maps, deadline);
            for (tid, s) in stopped {
                let mut r = walk_copy(&unwinder, &mut cache, &modules, &s.copy, s.pc, s.sp, s.bp);
                r.3 = Some(s.stopped_us);
                copy_troubles.retain(|(t, _)| *t != tid);
                raw.insert(tid, r);
            }
            for (tid, (reason, why)) in troubles {
                thread_troubles.add(reason, why, format!("thread {tid} (stop)"));
            }
        }
        for (tid, (reason, why)) in copy_troubles {
            thread_troubles.add(reason, why, format!("thread {tid}"));
        }
        gaps.extend(thread_troubles.gaps("threads' user stacks"));

        crate::stage::mark("  (stacks) names");
        let mut late_for = || deadline.passed();
        let late = name_all(
            &env,
            &modules,
            &mut dwarfs,
            &mut raw,
            &mut naming,
            &mut late_for,
            publish,
        );
        // After the stacks are named (and published, should the write outlast the caller's
        // wait), so only a run that had to inflate pays for writing.
        if !deadline.passed() {
            publish(assemble(&raw, &modules, &naming.places));
            crate::stage::mark("  (stacks) keeping inflated DWARF");
            dwarfs.keep_inflated();
        }
        if crate::stage::timing() {
            let cpu = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
                .map_or(0.0, |t| t.tv_sec() as f64 * 1e3 + t.tv_nsec() as f64 / 1e6);
            crate::stage::mark(&format!("  (stacks) done, the worker's cpu {cpu:.1} ms"));
        }
        if !late.is_empty() {
            gaps.push(Gap::new(
                format!("DWARF of {}", late.join(", ")),
                GapReason::Deadline,
                "not read before the deadline: their frames have names from the symbol table, \
                 without files, lines or inlined functions",
            ));
        }
        if let Some(e) = guard.take_trouble() {
            gaps.push(crate::error::gap_of(
                "/proc/locks, read again (the leases a module open must not break)",
                &e,
            ));
        }
        return (assemble(&raw, &modules, &naming.places), gaps);
    }
    (BTreeMap::new(), gaps)
}

/// The leases as of the read started with the collection (or of the lock table it read),
/// when still fresh; else read now. Unread, they are a gap, not "none".
fn first_leases(
    root: &ProcRoot,
    leases: Option<LeaseRead>,
    gaps: &mut Vec<Gap>,
) -> crate::locks::Leases {
    let fresh = |l: &crate::locks::Leases| l.read_at.elapsed() <= crate::logs::open::LEASES_FRESH;
    match leases {
        Some(LeaseRead::Done(l)) if fresh(&l) => l,
        other => {
            let read = |p: Option<PendingLocks>| {
                crate::locks::wait(p.unwrap_or_else(|| crate::locks::start(root)))
            };
            let mut table = read(match other {
                Some(LeaseRead::Pending(p)) => Some(p),
                _ => None,
            });
            if table.leases().is_some_and(|l| !fresh(&l)) {
                table = read(None);
            }
            match table.leases() {
                Some(l) => l,
                None => {
                    if let Some(e) = table.error() {
                        gaps.push(crate::error::gap_of(
                            "/proc/locks (the leases a module open must not break)",
                            e,
                        ));
                    }
                    crate::locks::Leases {
                        leases: Vec::new(),
                        read_at: std::time::Instant::now(),
                    }
                }
            }
        }
    }
}

type Copies = Vec<(i32, (unwind::StackCopy, u64, u64))>;
type CopyTroubles = Vec<(i32, (GapReason, String))>;

/// The copies of the look's threads' stacks; the troubles kept apart until the stops: a thread
/// stopped and unwound has no trouble left.
fn copy_all(
    root: &ProcRoot,
    pid: i32,
    look: &Look,
    maps: &[maps::Mapping],
) -> (Copies, CopyTroubles) {
    let mut troubles = Vec::new();
    let mut copies = Vec::with_capacity(look.tids.len());
    for &tid in &look.tids {
        let copied = if look.deadline.passed() {
            Err((
                GapReason::Deadline,
                "not unwound before the deadline".to_string(),
            ))
        } else {
            copy_stack(root, pid, tid, look.at_look.get(&tid).copied(), maps)
        };
        match copied {
            Ok(c) => copies.push((tid, c)),
            Err(t) => troubles.push((tid, t)),
        }
    }
    (copies, troubles)
}

/// The warm worker's copies: of the first threads of /proc/PID/task that are blocked now,
/// until the look comes. Any that cannot be copied is left out: the look's copy says why.
fn early_copies(
    root: &ProcRoot,
    pid: i32,
    maps: &[maps::Mapping],
    looks: &mut Looks,
    deadline: Deadline,
) -> Copies {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(root.pid(pid).join("task")) else {
        return out;
    };
    let tids = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok());
    for tid in tids.take(MAX_WARM_THREADS) {
        looks.poll();
        if looks.look.is_some() || looks.gone || deadline.passed() {
            break;
        }
        if let Ok(c) = copy_stack(root, pid, tid, None, maps) {
            out.push((tid, c));
        }
    }
    out
}

/// Every executable module of `maps` opened, with framehop's unwinder over them: a return
/// address can be in any of them.
fn load_modules(
    env: &module::Env,
    maps: &[maps::Mapping],
    stop: &mut dyn FnMut() -> bool,
    gaps: &mut Vec<Gap>,
) -> (
    Vec<module::Module>,
    framehop::x86_64::UnwinderX86_64<Vec<u8>>,
) {
    let mut modules: Vec<module::Module> = Vec::new();
    let mut unwinder = framehop::x86_64::UnwinderX86_64::new();
    let mut module_troubles = Troubles::default();
    for (m, avma) in module::exec_modules(maps) {
        if stop() {
            gaps.push(Gap::new(
                "modules for user stacks",
                GapReason::Deadline,
                "not all modules were read before the deadline",
            ));
            break;
        }
        match module::load(env, &m, avma) {
            Ok((module, unwind)) => {
                framehop::Unwinder::add_module(&mut unwinder, unwind);
                modules.push(module);
            }
            Err(why) => module_troubles.add(
                why.reason(),
                why.to_string(),
                String::from_utf8_lossy(m.path.as_deref().unwrap_or_default()).into_owned(),
            ),
        }
    }
    gaps.extend(module_troubles.gaps("modules"));
    (modules, unwinder)
}

/// One thread's copy unwound to raw frames.
fn walk_copy(
    unwinder: &framehop::x86_64::UnwinderX86_64<Vec<u8>>,
    cache: &mut framehop::x86_64::CacheX86_64,
    modules: &[module::Module],
    copy: &unwind::StackCopy,
    pc: u64,
    sp: u64,
    bp: u64,
) -> (Vec<RawFrame>, Option<String>, bool, Option<u64>) {
    let module_of = |addr: u64| modules.iter().position(|m| m.avma.contains(&addr));
    let in_code = |addr: u64| module_of(addr).is_some();
    let is_root = |addr: u64| {
        module_of(addr)
            .and_then(|i| modules.get(i))
            .is_some_and(|m| {
                let svma = addr.wrapping_sub(m.bias);
                // _start: a return address in it is that of its call of __libc_start_main.
                svma.wrapping_sub(m.entry) < 64
                    || m.symbols().lookup(svma).is_some_and(is_thread_root)
            })
    };
    let w = unwind::walk(unwinder, cache, copy, pc, sp, bp, &is_root, &in_code);
    let frames: Vec<RawFrame> = w
        .frames
        .iter()
        .map(|f| {
            let lookup = f.address_for_lookup();
            let module = module_of(f.address());
            let bias = module.and_then(|i| modules.get(i)).map_or(0, |m| m.bias);
            RawFrame {
                address: f.address(),
                module,
                lookup_svma: lookup.wrapping_sub(bias),
                offset: f.address().wrapping_sub(bias),
                tail_call: false,
            }
        })
        .collect();
    (frames, w.incomplete, w.guessed_bp, None)
}

/// Names the frames of `raw`: first from the symbol tables alone, fast, for every frame; then
/// module by module, the smallest first, the tail calls of the frames in it (which may add
/// frames) and its DWARF places; last the chains that needed the DWARF of a module not read
/// yet at their turn. Addresses `naming` has looked up already are not looked up again.
/// `stop` is asked before each module's DWARF; the modules it stopped are returned (their
/// frames named from the symbol table only).
fn name_all(
    env: &module::Env,
    modules: &[module::Module],
    dwarfs: &mut tailcall::Dwarfs,
    raw: &mut Raw,
    naming: &mut Naming,
    stop: &mut dyn FnMut() -> bool,
    publish: &dyn Fn(Stacks),
) -> Vec<String> {
    publish(assemble(raw, modules, &naming.places));
    name_new_frames(raw, modules, &mut naming.places);
    publish(assemble(raw, modules, &naming.places));
    dwarfs.deferred = false;
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut late = Vec::new();
    let svmas_of = |raw: &Raw, m: usize| -> Vec<u64> {
        order_of(raw, modules)
            .into_iter()
            .find(|(_, x, _)| *x == m)
            .map(|o| o.2)
            .unwrap_or_default()
    };
    loop {
        let next = order_of(raw, modules)
            .into_iter()
            .find(|(_, m, _)| !done.contains(m));
        let Some((_, m, _)) = next else {
            break;
        };
        done.insert(m);
        let Some(module) = modules.get(m) else {
            continue;
        };
        let new = |raw: &Raw, naming: &Naming| -> Vec<u64> {
            svmas_of(raw, m)
                .into_iter()
                .filter(|a| !naming.looked_up.contains(&(m, *a)))
                .collect()
        };
        // Its tail calls, even where every address was looked up early: the chains are of
        // this look's frames (found again from `dwarfs`' cache of them).
        if stop() {
            late.push(String::from_utf8_lossy(&module.name).into_owned());
            continue;
        }
        crate::stage::mark(&format!(
            "  (stacks) DWARF of {}",
            String::from_utf8_lossy(&module.name)
        ));
        dwarfs.allowed = Some(done.clone());
        dwarfs.prefetch(m, &new(raw, naming));
        for (frames, ..) in raw.values_mut() {
            insert_tail_calls(frames, dwarfs, modules, Some(m));
        }
        name_new_frames(raw, modules, &mut naming.places);
        crate::stage::mark("  (stacks)   its places");
        look_up(env, module, m, dwarfs, &new(raw, naming), naming);
        publish(assemble(raw, modules, &naming.places));
    }
    crate::stage::mark("  (stacks) deferred chains");
    if dwarfs.deferred && !stop() {
        dwarfs.allowed = None;
        for (frames, ..) in raw.values_mut() {
            insert_tail_calls(frames, dwarfs, modules, None);
        }
        name_new_frames(raw, modules, &mut naming.places);
        for (_, m, svmas) in order_of(raw, modules) {
            let Some(module) = modules.get(m) else {
                continue;
            };
            let new: Vec<u64> = svmas
                .into_iter()
                .filter(|a| !naming.looked_up.contains(&(m, *a)))
                .collect();
            if new.is_empty() || late.iter().any(|l| l.as_bytes() == module.name.as_slice()) {
                continue;
            }
            look_up(env, module, m, dwarfs, &new, naming);
        }
    }
    late
}

/// The DWARF places of `svmas` in module `m`, into `naming`.
fn look_up(
    env: &module::Env,
    module: &module::Module,
    m: usize,
    dwarfs: &mut tailcall::Dwarfs,
    svmas: &[u64],
    naming: &mut Naming,
) {
    if svmas.is_empty() {
        return;
    }
    let found = dwarf_places(env, module, dwarfs.get(m), svmas);
    naming.places.entry(m).or_default().extend(found);
    naming.looked_up.extend(svmas.iter().map(|&a| (m, a)));
}

/// Each module's addresses to look up: (file size, module, addresses), the smallest modules
/// first: the program's own code is what the report needs most, and a system library's
/// compressed DWARF (libc6-dbg) is the slowest to read.
fn order_of(raw: &Raw, modules: &[module::Module]) -> Vec<(u64, usize, Vec<u64>)> {
    let mut wanted: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for (frames, ..) in raw.values() {
        for f in frames {
            if let Some(m) = f.module {
                wanted.entry(m).or_default().insert(f.lookup_svma);
            }
        }
    }
    let mut order: Vec<(u64, usize, Vec<u64>)> = wanted
        .into_iter()
        .filter_map(|(m, svmas)| Some((modules.get(m)?.size, m, svmas.into_iter().collect())))
        .collect();
    order.sort();
    order
}

/// The places of `svmas` in `module`, from its DWARF (`opened`, as far as it was read, or
/// opened now) and its symbol table.
fn dwarf_places(
    env: &module::Env,
    module: &module::Module,
    opened: Option<&mut tailcall::Opened>,
    svmas: &[u64],
) -> BTreeMap<u64, Vec<symbolize::Place>> {
    match opened {
        Some(o) => {
            let debug = o.debug.as_ref().and_then(|f| f.try_clone().ok());
            symbolize::symbolize(module, debug.as_ref(), Some(o), svmas, svmas)
        }
        None => {
            let debug = module::debug_file(env, module);
            symbolize::symbolize(module, debug.as_ref(), None, svmas, svmas)
        }
    }
}

/// Names from the symbol tables for the frames that have no place yet (those just rebuilt).
fn name_new_frames(raw: &Raw, modules: &[module::Module], places: &mut Places) {
    for (_, m, svmas) in order_of(raw, modules) {
        let Some(module) = modules.get(m) else {
            continue;
        };
        let have = places.entry(m).or_default();
        let new: Vec<u64> = svmas
            .into_iter()
            .filter(|a| !have.contains_key(a))
            .collect();
        if !new.is_empty() {
            have.extend(symbolize::symbolize(module, None, None, &[], &new));
        }
    }
}

/// Puts between each frame and its caller the frames of the tail calls DWARF says were
/// made between them ([`tailcall`]); only for callers in module `only`, when given.
fn insert_tail_calls(
    frames: &mut Vec<RawFrame>,
    dwarfs: &mut tailcall::Dwarfs,
    modules: &[module::Module],
    only: Option<usize>,
) {
    let mut out: Vec<RawFrame> = Vec::with_capacity(frames.len());
    for (i, f) in std::mem::take(frames).into_iter().enumerate() {
        if i > 0
            && !f.tail_call
            && let Some(inner) = out.last()
            && !inner.tail_call
            && let (Some(mi), Some(mo)) = (inner.module, f.module)
            && only.is_none_or(|o| o == mo)
        {
            let inner_svma = inner.lookup_svma;
            for (m, ret) in dwarfs.between(mo, f.offset, mi, inner_svma) {
                let bias = modules.get(m).map_or(0, |md| md.bias);
                out.push(RawFrame {
                    address: ret.wrapping_add(bias),
                    module: Some(m),
                    // In the jump: the return address of a tail call is past its function's
                    // end, maybe in the next function.
                    lookup_svma: ret.wrapping_sub(1),
                    offset: ret,
                    tail_call: true,
                });
            }
        }
        out.push(f);
    }
    *frames = out;
}

type Places = BTreeMap<usize, BTreeMap<u64, Vec<symbolize::Place>>>;
/// Per thread: frames, why the walk stopped early, frame pointer guessed, stop time (µs).
type Raw = BTreeMap<i32, (Vec<RawFrame>, Option<String>, bool, Option<u64>)>;

/// The stacks from the unwound frames and the places found so far.
fn assemble(raw: &Raw, modules: &[module::Module], places: &Places) -> Stacks {
    let mut out = BTreeMap::new();
    for (tid, (frames, incomplete, guessed, stopped_us)) in raw {
        let mut stack = UserStack {
            source: if stopped_us.is_some() {
                StackSource::Stopped
            } else {
                StackSource::Syscall
            },
            incomplete: incomplete.clone(),
            frame_pointer_guessed: *guessed,
            stopped_us: *stopped_us,
            ..UserStack::default()
        };
        for f in frames {
            let module = f.module.and_then(|i| modules.get(i));
            let found = f
                .module
                .and_then(|i| places.get(&i))
                .and_then(|p| p.get(&f.lookup_svma));
            let base = Frame {
                address: f.address,
                module: module.map(|m| Text::from_bytes(m.name.clone())),
                offset: f.offset,
                tail_call: f.tail_call,
                ..Frame::default()
            };
            match found {
                Some(ps) if !ps.is_empty() => {
                    let n = ps.len();
                    for (i, p) in ps.iter().enumerate() {
                        stack.frames.push(Frame {
                            function: p.function.clone().map(Text::from),
                            file: p.file.clone().map(Text::from),
                            line: p.line,
                            inlined: i + 1 < n,
                            tail_call: f.tail_call,
                            ..base.clone()
                        });
                    }
                }
                _ => stack.frames.push(base),
            }
        }
        out.insert(*tid, stack);
    }
    out
}

/// Where threads start: nothing above these is a caller.
fn is_thread_root(name: &str) -> bool {
    let bare = name.trim_start_matches('_');
    matches!(
        bare,
        "start" | "clone" | "clone3" | "GI___clone" | "GI___clone3"
    )
}

/// Copies the stack above the SP of `seen` (the look's read of the syscall file, else a read
/// now) and reads the file again: the copy stands for the thread only if it is still where
/// it was seen.
fn copy_stack(
    root: &ProcRoot,
    pid: i32,
    tid: i32,
    seen: Option<RawSyscall>,
    maps: &[maps::Mapping],
) -> Result<(unwind::StackCopy, u64, u64), (GapReason, String)> {
    let read = || -> Result<RawSyscall, (GapReason, String)> {
        let path = root.task(pid, tid).join("syscall");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| (crate::error::reason_of(&e), e.to_string()))?;
        syscall::parse(&text).map_err(|e| (GapReason::Malformed, e.to_string()))
    };
    let first = match seen {
        Some(s) => s,
        None => read()?,
    };
    let (sp, pc) = match first {
        RawSyscall::Blocked { sp, pc, .. } | RawSyscall::NotInSyscall { sp, pc } => (sp, pc),
        RawSyscall::Running => {
            return Err((
                GapReason::Vanished,
                "running when its stack was to be copied".into(),
            ));
        }
    };
    let copy = copy_from(tid, sp, maps)?;
    if read()? != first {
        return Err((
            GapReason::Vanished,
            "it left the syscall it was seen in before its stack was copied".into(),
        ));
    }
    Ok((copy, pc, sp))
}

/// The stack above `sp`, at most [`MAX_STACK`] bytes, up to the end of its mapping.
fn copy_from(
    tid: i32,
    sp: u64,
    maps: &[maps::Mapping],
) -> Result<unwind::StackCopy, (GapReason, String)> {
    let mapping = maps
        .iter()
        .find(|m| m.contains(sp))
        .ok_or((GapReason::Malformed, "SP is in no mapping".to_string()))?;
    let len = ((mapping.end - sp) as usize).min(MAX_STACK);
    let mut bytes = vec![0u8; len];
    let n = process_vm_readv(
        Pid::from_raw(tid),
        &mut [IoSliceMut::new(&mut bytes)],
        &[RemoteIoVec {
            base: sp as usize,
            len,
        }],
    )
    .map_err(|e| match e {
        nix::errno::Errno::EPERM => (
            GapReason::Permission,
            "process_vm_readv refused (EPERM): needs root or CAP_SYS_PTRACE over the target"
                .to_string(),
        ),
        e => (
            GapReason::Other,
            format!("process_vm_readv of the stack: {}", e.desc()),
        ),
    })?;
    bytes.truncate(n);
    Ok(unwind::StackCopy { base: sp, bytes })
}

/// For the tests: the frames of `tid` with `function` set, innermost first.
pub fn function_names(stack: &UserStack) -> Vec<&str> {
    stack
        .frames
        .iter()
        .filter_map(|f| f.function.as_ref().map(Text::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Niced;

    fn nice_of(tid: libc::id_t) -> libc::c_int {
        // SAFETY: reads a thread's priority.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }
    }

    /// The warm worker's thread is nicer until the look, and as before after it (root may
    /// lower a nice value again; others keep the nicer one).
    #[test]
    fn the_warm_worker_is_nicer_until_the_look() {
        std::thread::spawn(|| {
            let tid = nix::unistd::gettid().as_raw() as libc::id_t;
            let before = nice_of(tid);
            let niced = Niced::lower();
            assert_eq!(nice_of(tid), (before + Niced::NICER).min(19));
            niced.restore();
            if nix::unistd::geteuid().is_root() {
                assert_eq!(nice_of(tid), before);
            }
        })
        .join()
        .expect("the niced thread");
    }
}
