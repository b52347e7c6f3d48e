//! `--stacks=stop`: the registers of a thread the copy cannot unwind (one running on a CPU, or
//! one whose walk from the syscall file's SP/PC failed), taken in a brief ptrace stop.
//!
//! Per thread: PTRACE_SEIZE (which, unlike PTRACE_ATTACH, sends no SIGSTOP), PTRACE_INTERRUPT,
//! a wait bounded to [`WAIT_LIMIT`] (to [`RUNNABLE_LIMIT`] for a thread still runnable then),
//! the registers (PTRACE_GETREGSET NT_PRSTATUS) and the stack
//! (process_vm_readv) copied, PTRACE_DETACH at once; the walk is done after, on the copy. The
//! time from the interrupt to the detach's return is the thread's stop, measured and reported.
//!
//! The thread must never be left stopped:
//! - every path after the seize goes through [`Traced`], whose drop detaches (re-delivering the
//!   signal of a signal-delivery stop, which a plain detach would discard);
//! - a thread that did not stop in time (a detach needs a stopped tracee) is detached by the
//!   kernel when its tracer exits: ptrace is per tracer thread, so the stops run on a thread of
//!   their own, which ends there and a new one takes the remaining threads;
//! - SIGINT, SIGTERM and SIGHUP are blocked on the tracing thread, and the process's handler
//!   (installed here where the disposition was the default) defers them while a thread is
//!   stopped: the tracing thread delivers them again, with the default action, once detached;
//! - SIGKILL of hangscope, or its exit at the deadline: the kernel detaches the tracees of an
//!   exiting tracer and wakes them (tests/stacks_stop.rs checks both signals).

use std::collections::BTreeMap;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hangscope_model::GapReason;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::maps::Mapping;
use super::unwind::StackCopy;
use crate::{Deadline, ProcRoot};

/// The longest a thread is waited for after PTRACE_INTERRUPT.
const WAIT_LIMIT: Duration = Duration::from_millis(50);
/// The longest a thread still runnable at [`WAIT_LIMIT`] is waited for. Such a thread stops as
/// soon as it next runs; on a busy host it may wait for a CPU longer than WAIT_LIMIT (seen at
/// load 11 on 2 CPUs: a spinner 1 time in 3), and it is not stopped while it waits. A thread
/// in any other state (D: the kernel holds it) is given up at WAIT_LIMIT.
const RUNNABLE_LIMIT: Duration = Duration::from_secs(1);
/// How often the state of a thread not stopped yet is looked at, past WAIT_LIMIT.
const STATE_EVERY: Duration = Duration::from_millis(10);
/// Tests only: how long to keep each thread stopped, so a test can kill hangscope while a
/// thread is in its stop. Capped: it can never hold a thread long.
const HOLD_ENV: &str = "HANGSCOPE_TEST_STOP_HOLD_MS";
const MAX_HOLD: Duration = Duration::from_millis(200);

/// What one stop gave.
pub(super) struct Stopped {
    pub copy: StackCopy,
    pub pc: u64,
    pub sp: u64,
    pub bp: u64,
    /// From PTRACE_INTERRUPT to PTRACE_DETACH's return.
    pub stopped_us: u64,
}

/// Why a thread got no stop.
pub(super) type Trouble = (GapReason, String);

/// Stops each of `tids` in turn, briefly, and copies its registers and stack.
pub(super) fn stop_all(
    root: &ProcRoot,
    pid: i32,
    tids: &[i32],
    maps: &[Mapping],
    deadline: Deadline,
) -> (BTreeMap<i32, Stopped>, Vec<(i32, Trouble)>) {
    install_handlers();
    let hold = std::env::var(HOLD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis)
        .min(MAX_HOLD);
    let mut done = BTreeMap::new();
    let mut troubles = Vec::new();
    let mut rest = tids;
    while !rest.is_empty() {
        // A tracer thread per run of threads: it ends (and the kernel detaches what it still
        // traces) after a thread that could not be detached.
        let ran = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("stacks-stop".into())
                .spawn_scoped(s, || tracer(root, pid, rest, maps, deadline, hold))
                .map(|h| h.join())
        });
        match ran {
            Ok(Ok((d, t, used))) => {
                done.extend(d);
                troubles.extend(t);
                rest = rest.get(used.max(1)..).unwrap_or_default();
            }
            Ok(Err(_)) | Err(_) => {
                troubles.extend(rest.iter().map(|&tid| {
                    (
                        tid,
                        (
                            GapReason::Other,
                            "the thread that stops threads could not run".to_string(),
                        ),
                    )
                }));
                break;
            }
        }
    }
    (done, troubles)
}

type TracerRun = (BTreeMap<i32, Stopped>, Vec<(i32, Trouble)>, usize);

/// Stops threads from `tids` until one could not be detached; returns how many it went
/// through.
fn tracer(
    root: &ProcRoot,
    pid: i32,
    tids: &[i32],
    maps: &[Mapping],
    deadline: Deadline,
    hold: Duration,
) -> TracerRun {
    // A thread is held from the interrupt until this thread has copied and detached it: on a
    // busy machine the wait for a CPU would count in the stop, so this thread asks for the
    // most CPU share it may (root may; others keep their niceness).
    // SAFETY: setpriority(2) of this very thread (gettid), no memory involved.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, -20);
    }
    let mut done = BTreeMap::new();
    let mut troubles = Vec::new();
    for (i, &tid) in tids.iter().enumerate() {
        if deadline.passed() {
            troubles.push((
                tid,
                (
                    GapReason::Deadline,
                    "not stopped before the deadline".to_string(),
                ),
            ));
            continue;
        }
        if let Some(why) = unstoppable(root, pid, tid) {
            troubles.push((tid, why));
            continue;
        }
        let limit = deadline.remaining();
        // "t": stopped since the last wait, which the next one sees.
        let runnable = || thread_state(root, pid, tid).is_ok_and(|s| s == "R" || s == "t");
        let mut stuck = false;
        match stop_one(tid, maps, limit, &runnable, hold, &mut stuck) {
            Ok(s) => {
                done.insert(tid, s);
            }
            Err(t) => troubles.push((tid, t)),
        }
        if stuck {
            return (done, troubles, i + 1);
        }
    }
    (done, troubles, tids.len())
}

/// A thread not to stop, from its state now: one in D would keep the stop waiting for the
/// kernel, and one stopped or traced already is someone else's.
fn unstoppable(root: &ProcRoot, pid: i32, tid: i32) -> Option<Trouble> {
    let state = match thread_state(root, pid, tid) {
        Ok(s) => s,
        Err(e) => return Some((crate::error::reason_of(&e), e.to_string())),
    };
    match state.as_str() {
        "R" | "S" => None,
        "D" => Some((
            GapReason::Unsafe,
            "in D state: a stop would wait for the kernel to let it go".into(),
        )),
        "T" | "t" => Some((
            GapReason::Unsafe,
            "already stopped or traced: left alone".into(),
        )),
        other => Some((
            GapReason::Vanished,
            format!("in state {other}: not stopped"),
        )),
    }
}

/// The state letter of a thread's stat ("R", "S", "D", "t"...).
fn thread_state(root: &ProcRoot, pid: i32, tid: i32) -> std::io::Result<String> {
    let stat = std::fs::read_to_string(root.task(pid, tid).join("stat"))?;
    // "TID (comm) S ...": the comm may hold anything, the state follows its last ')'.
    Ok(stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("?")
        .to_string())
}

/// Seize, interrupt, wait, copy, detach: all on the calling thread. `limit` caps every wait
/// (the run's deadline); `runnable` tells a thread that has yet to run into its stop.
fn stop_one(
    tid: i32,
    maps: &[Mapping],
    limit: Duration,
    runnable: &dyn Fn() -> bool,
    hold: Duration,
    stuck: &mut bool,
) -> Result<Stopped, Trouble> {
    // Dropped last, in this order: the detach happens with the signals still deferred.
    let _mask = BlockSignals::new()?;
    let _critical = Critical::enter();
    let p = Pid::from_raw(tid);
    ptrace::seize(p, ptrace::Options::empty()).map_err(|e| match e {
        Errno::EPERM => (
            GapReason::Permission,
            "PTRACE_SEIZE refused (EPERM): needs CAP_SYS_PTRACE over the target, or it is \
             traced already, or Yama's ptrace_scope forbids it"
                .to_string(),
        ),
        Errno::ESRCH => (GapReason::Vanished, "exited before its stop".to_string()),
        e => (GapReason::Other, format!("PTRACE_SEIZE: {}", e.desc())),
    })?;
    let mut traced = Traced {
        pid: p,
        resend: None,
        stuck,
    };
    ptrace::interrupt(p)
        .map_err(|e| (GapReason::Other, format!("PTRACE_INTERRUPT: {}", e.desc())))?;
    let not_yet = wait_stopped(p, limit, runnable, &mut traced)?;
    let (pc, sp, bp) = registers(p)?;
    let copy = super::copy_from(tid, sp, maps);
    if !hold.is_zero() {
        std::thread::sleep(hold);
    }
    let detached = traced.detach();
    // From the last look that found it running: a thread waiting for a CPU is not held.
    let stopped_us = not_yet.elapsed().as_micros() as u64;
    detached?;
    Ok(Stopped {
        copy: copy?,
        pc,
        sp,
        bp,
        stopped_us,
    })
}

/// PC, SP and the frame pointer of a stopped thread.
#[cfg(target_arch = "x86_64")]
fn registers(p: Pid) -> Result<(u64, u64, u64), Trouble> {
    let r = ptrace::getregset::<ptrace::regset::NT_PRSTATUS>(p)
        .map_err(|e| (GapReason::Other, format!("PTRACE_GETREGSET: {}", e.desc())))?;
    Ok((r.rip, r.rsp, r.rbp))
}

#[cfg(not(target_arch = "x86_64"))]
fn registers(_: Pid) -> Result<(u64, u64, u64), Trouble> {
    Err((GapReason::Unsupported, "x86_64 only".into()))
}

/// Polls for the stop (never a blocking wait: the thread may not stop, e.g. it entered D
/// meanwhile) for [`WAIT_LIMIT`], and on to [`RUNNABLE_LIMIT`] while the thread is runnable;
/// never past `limit`. Returns when it was last seen not stopped (PTRACE_INTERRUPT's return
/// if the first look found it stopped): its stop began after that.
fn wait_stopped(
    p: Pid,
    limit: Duration,
    runnable: &dyn Fn() -> bool,
    traced: &mut Traced,
) -> Result<Instant, Trouble> {
    let started = Instant::now();
    let mut not_yet = started;
    let mut polls = 0u32;
    // Past WAIT_LIMIT: when the state was last looked at, and whether it was R every time.
    let mut looked: Option<Instant> = None;
    let mut always_runnable = true;
    loop {
        match waitpid(p, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => not_yet = Instant::now(),
            // A signal arrived first: the thread is stopped all the same, and the signal is
            // its own, to be delivered at the detach.
            Ok(WaitStatus::Stopped(_, sig)) => {
                traced.resend = Some(sig);
                return Ok(not_yet);
            }
            // PTRACE_EVENT_STOP: the interrupt, or a group stop (left as it is at the detach).
            Ok(WaitStatus::PtraceEvent(..)) => return Ok(not_yet),
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                traced.gone();
                return Err((GapReason::Vanished, "exited during its stop".into()));
            }
            Ok(other) => {
                return Err((
                    GapReason::Other,
                    format!("unexpected wait status {other:?}"),
                ));
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err((GapReason::Other, format!("waitpid: {}", e.desc()))),
        }
        let waited = started.elapsed();
        if waited >= WAIT_LIMIT && looked.is_none_or(|at| at.elapsed() >= STATE_EVERY) {
            looked = Some(Instant::now());
            always_runnable &= runnable();
        }
        let over = if waited >= WAIT_LIMIT && !always_runnable {
            Some(format!(
                "did not stop within {} of PTRACE_INTERRUPT",
                hangscope_model::units::duration(WAIT_LIMIT)
            ))
        } else if waited >= RUNNABLE_LIMIT || waited >= limit {
            Some(format!(
                "did not stop within {} of PTRACE_INTERRUPT{}",
                hangscope_model::units::duration(waited),
                if waited >= WAIT_LIMIT {
                    ", runnable all that time (waiting for a CPU on a busy host, or in the \
                     kernel without returning to user space)"
                } else {
                    ""
                }
            ))
        } else {
            None
        };
        if let Some(why) = over {
            return Err((GapReason::Deadline, why));
        }
        // Not sched_yield: on a busy machine it hands the CPU over for a whole time slice,
        // while the thread waits stopped.
        polls += 1;
        std::thread::sleep(Duration::from_micros(if polls < 20 { 5 } else { 50 }));
    }
}

/// A seized thread; dropping it detaches.
struct Traced<'a> {
    pid: Pid,
    /// The signal of a signal-delivery stop, given back at the detach.
    resend: Option<Signal>,
    /// Set when the detach failed: only the tracer thread's exit lets the thread go now.
    stuck: &'a mut bool,
}

impl Traced<'_> {
    fn detach(&mut self) -> Result<(), Trouble> {
        let pid = std::mem::replace(&mut self.pid, Pid::from_raw(0));
        if pid.as_raw() == 0 {
            return Ok(());
        }
        ptrace::detach(pid, self.resend).map_err(|e| {
            *self.stuck = true;
            (GapReason::Other, format!("PTRACE_DETACH: {}", e.desc()))
        })
    }

    /// The thread exited: nothing to detach.
    fn gone(&mut self) {
        self.pid = Pid::from_raw(0);
    }
}

impl Drop for Traced<'_> {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

/// SIGINT, SIGTERM and SIGHUP blocked on this thread while it holds a thread stopped.
struct BlockSignals(SigSet);

fn deferred() -> SigSet {
    let mut s = SigSet::empty();
    for sig in DEFERRED {
        s.add(sig);
    }
    s
}

const DEFERRED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

impl BlockSignals {
    fn new() -> Result<BlockSignals, Trouble> {
        let mut old = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&deferred()), Some(&mut old))
            .map_err(|e| (GapReason::Other, format!("pthread_sigmask: {}", e.desc())))?;
        Ok(BlockSignals(old))
    }
}

impl Drop for BlockSignals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Threads held stopped right now (0 or 1: one tracer at a time), and a terminating signal
/// that came meanwhile.
static IN_STOP: AtomicUsize = AtomicUsize::new(0);
static PENDING: AtomicI32 = AtomicI32::new(0);

struct Critical;

impl Critical {
    fn enter() -> Critical {
        IN_STOP.fetch_add(1, Ordering::SeqCst);
        Critical
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        if IN_STOP.fetch_sub(1, Ordering::SeqCst) == 1 {
            let sig = PENDING.load(Ordering::SeqCst);
            if sig != 0 {
                die(sig);
            }
        }
    }
}

/// The signal again, with its default action (terminate), to the process: another thread
/// than this one (which blocks it) takes it.
fn die(sig: i32) {
    // SAFETY: signal(2) and kill(2) are async-signal-safe; SIG_DFL installs no code.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::kill(libc::getpid(), sig);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Stored before IN_STOP is looked at, and IN_STOP lowered before PENDING is: one side or
    // the other (or both, harmlessly) sees the signal through.
    PENDING.store(sig, Ordering::SeqCst);
    if IN_STOP.load(Ordering::SeqCst) == 0 {
        die(sig);
    }
}

/// Defers SIGINT, SIGTERM and SIGHUP while a thread is stopped, where the process had the
/// default disposition (terminate); a handler of its own (`watch`) is left as it is.
fn install_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for sig in DEFERRED {
            // SAFETY: the handler only touches atomics and calls async-signal-safe functions.
            let Ok(old) = (unsafe { nix::sys::signal::sigaction(sig, &action) }) else {
                continue;
            };
            if !matches!(old.handler(), SigHandler::SigDfl) {
                // SAFETY: puts back the disposition just read.
                let _ = unsafe { nix::sys::signal::sigaction(sig, &old) };
            }
        }
    });
}

/// Whether the walk from the copy left the thread without a useful stack: at most one frame,
/// or a walk that stopped before the outermost frame for another reason than its length.
pub(super) fn copy_fell_short(
    r: &(Vec<super::RawFrame>, Option<String>, bool, Option<u64>),
) -> bool {
    let (frames, incomplete, _, _) = r;
    frames.len() <= 1
        || incomplete
            .as_ref()
            .is_some_and(|why| !why.starts_with("cut at"))
}
