//! Threads: what every thread is blocked in, on which fd, and whether it moves.
//!
//! Reads /proc/PID/task/TID/{stat,status,sched,syscall,wchan,stack} (proc_pid_task(5)),
//! decodes the syscall with its arguments (reading the target's memory with process_vm_readv(2)
//! where they point to it), joins each wait to the fd, futex or child it waits on, and over the
//! sampling window (`Options::window`) tells progress, spinning, loops and how long a thread has
//! been blocked. Nothing here stops or traces the target.

mod activity;
mod churn;
mod futex;
pub mod memory;
mod sampler;
pub mod sched;
pub mod syscall;
mod syscall_table_aarch64;
mod syscall_table_x86_64;
pub mod task;
pub mod task_clock;

use std::collections::{BTreeMap, BTreeSet};

use hangscope_model::units;
use hangscope_model::{
    Fd, Gap, GapReason, GapTopic, Looping, Snapshot, SyscallState, Thread, WaitObject, Window,
};

pub use activity::{Sample, classify};
pub use sampler::{Look, Outcome, Sampler};

use crate::error::gap_of;
use crate::{Options, ProcRoot, fd, fdinfo};
use task::TaskRead;

/// How often the per-thread loop looks at the clock.
const DEADLINE_CHECK_EVERY: usize = 64;

/// Reads the threads of `pid` into `snap.threads`, over the sampling window, and the fd churn
/// into `snap.fds`. `on_look` is called at every look after the threads were read: the place
/// for other collectors to sample what moves (e.g. per-connection counters). `measuring` is
/// the task clock's measurement, started by the caller early enough that the first look
/// does not wait for it (it sleeps and migrates between CPUs: milliseconds on a busy host).
pub fn collect(
    root: &ProcRoot,
    pid: i32,
    opts: &Options,
    snap: &mut Snapshot,
    measuring: task_clock::Measuring,
    on_look: &mut dyn FnMut(&Look),
) -> LastLook {
    let mut series: BTreeMap<i32, Vec<Sample>> = BTreeMap::new();
    let mut finals: Vec<TaskRead> = Vec::new();
    let mut look_gaps: Vec<Gap> = Vec::new();
    let mut churn = churn::FdChurn::new(&snap.fds);
    let mut measuring = Some(measuring);
    let mut clock: Option<task_clock::TaskClock> = None;
    let outcome = {
        let mut sampler = Sampler::new(opts.window, opts.deadline, opts.progress);
        sampler.on_look(|look| {
            let mut reads = look_at_threads(root, pid, look.last, opts, &mut look_gaps);
            let clock = clock.get_or_insert_with(|| {
                measuring
                    .take()
                    .map(task_clock::Measuring::finish)
                    .unwrap_or_default()
            });
            clock.absorb(if look.last {
                task_clock::LAST_LOOK_WAITS.min(opts.deadline.remaining())
            } else {
                std::time::Duration::ZERO
            });
            for t in &mut reads {
                let cpu = t.last_cpu;
                if let Some(sched) = t.sched.as_mut() {
                    sched.exec_start_ms = sched
                        .exec_start_ms
                        .and_then(|start| clock.to_monotonic_ms(start, cpu));
                }
            }
            for t in &reads {
                series.entry(t.tid).or_default().push(Sample::of(t));
            }
            if look.last {
                finals = reads;
            }
        });
        sampler.on_look(|look| {
            if look.index > 0 {
                churn.take(root, pid);
            }
        });
        sampler.on_look(|look| on_look(look));
        sampler.run()
    };
    snap.gaps.append(&mut look_gaps);
    if outcome.looks > 1 {
        // Churn needs a second look; with one there is nothing measured and nothing to say.
        churn.apply(&mut snap.fds, &mut snap.gaps);
        snap.window = Some(Window {
            looks: outcome.looks,
            duration_ms: outcome.duration.as_millis() as u64,
        });
    }
    if outcome.cut_by_deadline {
        snap.gaps.push(Gap::new(
            format!(
                "sampling window after {}",
                hangscope_model::units::duration(outcome.duration)
            ),
            GapReason::Deadline,
            "the window was cut short to finish before the deadline",
        ));
    }
    note_exit(pid, &finals, &series, snap);
    let last = LastLook {
        syscalls: finals
            .iter()
            .filter_map(|t| Some((t.tid, *t.syscall.as_ref()?.as_ref().ok()?)))
            .collect(),
    };
    snap.threads = build(root, pid, opts, finals, &series, snap);
    last
}

/// What the last look read that the snapshot does not keep.
#[derive(Debug, Default)]
pub struct LastLook {
    /// Each thread's syscall file as read (stack pointer and program counter included): the
    /// stacks are copied from these and checked against them.
    pub syscalls: std::collections::HashMap<i32, syscall::RawSyscall>,
}

/// A process that exited while it was watched: say so, and when, rather than report the
/// last look's empty or zombie state as if it were the process.
fn note_exit(
    pid: i32,
    finals: &[TaskRead],
    series: &BTreeMap<i32, Vec<Sample>>,
    snap: &mut Snapshot,
) {
    let main_state = finals.iter().find(|t| t.tid == pid).map(|t| t.state);
    let gone = match main_state {
        Some('Z') | Some('X') => true,
        Some(_) => false,
        // Seen in an earlier look and missing from the last: gone. Never seen: unreadable,
        // which is a permission gap reported elsewhere, not an exit.
        None => series.contains_key(&pid),
    };
    if !gone {
        return;
    }
    let looks_alive = series.get(&pid).map_or(0, |s| {
        s.iter().filter(|x| !matches!(x.state, 'Z' | 'X')).count()
    });
    snap.process.state = main_state.map_or_else(|| "X".to_string(), |c| c.to_string());
    snap.gaps.push(Gap::new(
        format!("process {pid}"),
        GapReason::Vanished,
        format!(
            "exited while it was watched (alive in {looks_alive} of the looks); \
             fds and sockets are from before it exited"
        ),
    ));
}

/// A process of at most this many threads keeps each look at each thread (`Activity::looks`),
/// for the page's timelines; beyond, the document would grow by a look per thread per look.
const LOOKS_KEPT_UP_TO: usize = 256;

/// A thread's samples as the document keeps them: times from the first look.
fn looks_of(arch: syscall::Arch, samples: &[Sample]) -> Vec<hangscope_model::ThreadLook> {
    let Some(first) = samples.first() else {
        return Vec::new();
    };
    samples
        .iter()
        .map(|s| {
            let running = s.state == 'R' || s.syscall == Some(syscall::RawSyscall::Running);
            hangscope_model::ThreadLook {
                at_ms: (s.mono_ms - first.mono_ms).max(0.0).round() as u64,
                state: s.state.to_string(),
                call: match s.syscall {
                    Some(syscall::RawSyscall::Blocked { nr, .. }) => syscall::name(arch, nr),
                    Some(syscall::RawSyscall::Running) => "running".into(),
                    Some(syscall::RawSyscall::NotInSyscall { .. }) => "user".into(),
                    None => String::new(),
                },
                cpu_ms: (s.cpu_ms - first.cpu_ms).max(0.0),
                off_cpu_ms: s
                    .exec_start_ms
                    .filter(|_| !running)
                    .map(|e| (s.mono_ms - e).max(0.0).round() as u64),
            }
        })
        .collect()
}

/// The fds the threads wait on: directly (read, poll, ...) or through an epoll instance whose
/// watch list names them.
pub fn fds_waited_on(threads: &[Thread]) -> BTreeSet<i32> {
    threads
        .iter()
        .filter_map(|t| t.syscall.as_ref())
        .flat_map(|s| s.waits_on.iter())
        .filter_map(|w| match w {
            WaitObject::Fd { fd, .. } => Some(*fd),
            _ => None,
        })
        .collect()
}

/// A thread's call; in restart_syscall, the call it resumes where wchan and the arguments say
/// which (`syscall::resumed_call`), so its wait is decoded (a poll's fds) rather than lost.
fn decode_resumed(
    raw: &syscall::RawSyscall,
    wchan: Option<&str>,
    ctx: &syscall::Context,
) -> SyscallState {
    if let syscall::RawSyscall::Blocked { nr, args, sp, pc } = *raw
        && let Some(call) = syscall::resumed_call(ctx.arch, nr, wchan, &args)
    {
        let resumed = syscall::RawSyscall::Blocked {
            nr: call,
            args,
            sp,
            pc,
        };
        let mut st = syscall::decode(&resumed, ctx);
        // Its timeout is the one first asked for: what is left of it is in the kernel's
        // restart block, which /proc does not show.
        st.summary
            .push_str(" (resumed by restart_syscall after a signal or a stop)");
        return st;
    }
    syscall::decode(raw, ctx)
}

/// Lists the threads and reads each; a full read (wchan, stack) on the last look.
fn look_at_threads(
    root: &ProcRoot,
    pid: i32,
    full: bool,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) -> Vec<TaskRead> {
    let dir = root.pid(pid).join("task");
    let tids: Vec<i32> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .collect(),
        Err(e) => {
            if full {
                gaps.push(gap_of(format!("/proc/{pid}/task"), &e).about(GapTopic::ThreadList));
            }
            return Vec::new();
        }
    };
    // Large processes are read by a few workers: the cost is the kernel generating small files,
    // which runs in parallel on several CPUs.
    let workers = if tids.len() >= PARALLEL_FROM {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_WORKERS)
    } else {
        1
    };
    let chunk = tids.len().div_ceil(workers.max(1)).max(1);
    let results: Vec<(usize, PartResult)> = std::thread::scope(|scope| {
        let handles: Vec<_> = tids
            .chunks(chunk)
            .map(|part| {
                let h = scope.spawn(move || read_part(root, pid, part, full, opts));
                (part.len(), h)
            })
            .collect();
        handles.into_iter().map(|(n, h)| (n, h.join())).collect()
    });
    let (mut out, unread) = join_parts(pid, results, gaps);
    if unread > 0 && full {
        gaps.push(Gap::new(
            format!("{unread} of {} threads", tids.len()),
            GapReason::Deadline,
            "not read before the deadline",
        ));
    }
    out.sort_by_key(|t| t.tid);
    out
}

/// One worker's outcome: the threads it read and how many it left at the deadline, or its
/// panic.
type PartResult = std::thread::Result<(Vec<TaskRead>, usize)>;

/// The workers' threads, and how many they left unread at the deadline. A worker that
/// panicked (a parser bug on some thread's files) loses only its own part, and a gap says how
/// many threads that is, rather than the threads vanishing from the report.
fn join_parts(
    pid: i32,
    results: Vec<(usize, PartResult)>,
    gaps: &mut Vec<Gap>,
) -> (Vec<TaskRead>, usize) {
    let mut out = Vec::new();
    let mut unread = 0usize;
    for (n, r) in results {
        match r {
            Ok((reads, left)) => {
                out.extend(reads);
                unread += left;
            }
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                gaps.push(Gap::new(
                    format!("{n} threads of /proc/{pid}/task"),
                    GapReason::Other,
                    format!("the reader of these threads panicked ({why}): a bug in hangscope"),
                ));
            }
        }
    }
    (out, unread)
}

/// Threads from which reading is split between workers, and how many workers at most.
const PARALLEL_FROM: usize = 32;
const MAX_WORKERS: usize = 4;

/// Reads some threads; returns them and how many were left unread at the deadline.
fn read_part(
    root: &ProcRoot,
    pid: i32,
    tids: &[i32],
    full: bool,
    opts: &Options,
) -> (Vec<TaskRead>, usize) {
    let mut out = Vec::with_capacity(tids.len());
    for (i, &tid) in tids.iter().enumerate() {
        if i % DEADLINE_CHECK_EVERY == 0 && opts.deadline.passed() {
            return (out, tids.len() - i);
        }
        // A thread that exited between the listing and the read is simply not there any more.
        if let Some(t) = task::read(root, pid, tid, full) {
            out.push(t);
        }
    }
    (out, 0)
}

fn build(
    root: &ProcRoot,
    pid: i32,
    opts: &Options,
    finals: Vec<TaskRead>,
    series: &BTreeMap<i32, Vec<Sample>>,
    snap: &mut Snapshot,
) -> Vec<Thread> {
    let arch = syscall::Arch::host();
    let tids: Vec<i32> = finals.iter().map(|t| t.tid).collect();

    // The epoll fds threads wait on need their fdinfo (watch list) before decoding.
    for t in &finals {
        if let Some(Ok(syscall::RawSyscall::Blocked { nr, args, .. })) = &t.syscall
            && syscall::name(arch, *nr).starts_with("epoll_")
        {
            ensure_fd(root, pid, &mut snap.fds, args[0] as i32, &mut snap.gaps);
        }
    }

    // Per error's words: its reason, its errno and how many threads met it.
    let mut stack_errors: BTreeMap<String, (GapReason, Option<i32>, usize)> = BTreeMap::new();
    let mut file_errors: BTreeMap<(&'static str, String), (GapReason, Option<i32>, usize)> =
        BTreeMap::new();
    let mut threads: Vec<Thread> = Vec::with_capacity(finals.len());
    for t in finals {
        let mem = memory::LiveMemory { tid: t.tid };
        let ctx = syscall::Context {
            arch,
            mem: &mem,
            fds: &snap.fds,
            tids: &tids,
        };
        let (stack, stack_unavailable) = match t.stack {
            Some(Ok(s)) => (Some(s), None),
            Some(Err(e)) => {
                let why = e.to_string();
                let reason = crate::error::reason_of(&e);
                let errno = e.raw_os_error();
                stack_errors
                    .entry(why.clone())
                    .or_insert((reason, errno, 0))
                    .2 += 1;
                (None, Some(why))
            }
            None => (None, None),
        };
        for (file, e) in &t.errors {
            let reason = crate::error::reason_of(e);
            file_errors
                .entry((file, e.to_string()))
                .or_insert((reason, e.raw_os_error(), 0))
                .2 += 1;
        }
        let syscall = match &t.syscall {
            // A kernel thread makes no system calls: its syscall file holds zeroes that would
            // read as read(0, ...). Its wchan and stack say where it sleeps.
            Some(Ok(_)) if snap.process.kernel_thread => None,
            Some(Ok(raw)) => Some(decode_resumed(raw, t.wchan.as_deref(), &ctx)),
            // A refused read is counted with the thread's other file errors above.
            Some(Err(why)) if why.kind == crate::error::ReadErrorKind::Malformed => {
                snap.gaps
                    .push(why.gap(format!("/proc/{pid}/task/{}/syscall", t.tid)));
                None
            }
            _ => None,
        };
        let mono_ms = t.mono_ns as f64 / 1e6;
        let last_ran_ms_ago = t
            .sched
            .and_then(|s| s.exec_start_ms)
            .map(|e| (mono_ms - e).max(0.0));
        let mut activity = series.get(&t.tid).and_then(|s| classify(s));
        if series.len() <= LOOKS_KEPT_UP_TO
            && let (Some(a), Some(samples)) = (activity.as_mut(), series.get(&t.tid))
        {
            a.looks = looks_of(arch, samples);
        }
        if let (Some(a), Some(s)) = (activity.as_mut(), syscall.as_ref())
            && let Some(rate) = a.rate_per_s
        {
            let rate = loop_rate(s, rate);
            a.rate_per_s = Some(rate);
            // `periodic` is the loop in words for readers before 1.7; `looping` has its fields.
            let looping = Looping::of(s);
            a.periodic = Some(units::looping(&looping, rate));
            a.looping = Some(looping);
        }
        threads.push(Thread {
            tid: t.tid,
            name: t.name,
            state: t.state.to_string(),
            wchan: t.wchan,
            stack,
            stack_unavailable,
            focus: opts.focus_tid == Some(t.tid),
            syscall,
            utime_ms: t.utime_ms,
            stime_ms: t.stime_ms,
            voluntary_ctxt_switches: t.voluntary.unwrap_or(0),
            nonvoluntary_ctxt_switches: t.involuntary.unwrap_or(0),
            last_cpu: t.last_cpu,
            last_ran_ms_ago,
            activity,
            user_stack: None,
            runtime: None,
        });
    }
    futex::join_waiters(&mut threads);
    futex::resolve_shared_owners(root, pid, &mut threads);

    // fdinfo of every fd a thread waits on, even where the fd listing skipped it (sockets).
    let waited: BTreeSet<i32> = threads
        .iter()
        .filter_map(|t| t.syscall.as_ref())
        .flat_map(|s| s.waits_on.iter())
        .filter_map(|w| match w {
            WaitObject::Fd { fd, .. } | WaitObject::Lock { fd, .. } => Some(*fd),
            _ => None,
        })
        .collect();
    for fd in waited {
        ensure_fd(root, pid, &mut snap.fds, fd, &mut snap.gaps);
    }

    for (why, (reason, errno, n)) in stack_errors {
        let mut g =
            Gap::new(format!("kernel stacks of {n} threads"), reason, why).with_errno(errno);
        if reason == GapReason::Permission {
            g = g.needing("root with CAP_SYS_ADMIN (the kernel checks it for /proc/PID/stack)");
        }
        snap.gaps.push(g);
    }
    for ((file, why), (reason, errno, n)) in file_errors {
        let mut g = Gap::new(format!("{file} of {n} threads"), reason, why).with_errno(errno);
        if file == "syscall" {
            g = g.about(GapTopic::ThreadSyscalls);
        }
        if reason == GapReason::Permission {
            g = g.needing("root or CAP_SYS_PTRACE over the target");
        }
        snap.gaps.push(g);
    }
    if let Some(focus) = opts.focus_tid
        && !threads.iter().any(|t| t.tid == focus)
    {
        snap.gaps.push(Gap::new(
            format!("thread {focus}"),
            GapReason::Vanished,
            "the thread asked about exited before it was read",
        ));
    }
    // The focus thread first, then by TID (the main thread, TID = PID, leads).
    threads.sort_by_key(|t| (!t.focus, t.tid));
    threads
}

fn sleep_ms(s: &SyscallState) -> Option<f64> {
    s.waits_on.iter().find_map(|w| match w {
        WaitObject::Sleep { ns } => Some(*ns as f64 / 1e6),
        _ => None,
    })
}

/// How often a loop re-enters its call. The sampled rate counts wake-ups, and a loop that also
/// waits on I/O between its sleeps (a heartbeat: sleep, send, wait for the answer) wakes up
/// more than once a round; a sleep of N ms is re-entered at most 1000/N times a second.
fn loop_rate(s: &SyscallState, rate: f64) -> f64 {
    match sleep_ms(s) {
        Some(ms) if ms > 0.0 => rate.min(1000.0 / ms),
        _ => rate,
    }
}

/// Makes sure fd `n` is in the table with its fdinfo: read it now if the listing skipped it
/// (socket fds skip fdinfo) or did not reach it (deadline).
pub(crate) fn ensure_fd(root: &ProcRoot, pid: i32, fds: &mut Vec<Fd>, n: i32, gaps: &mut Vec<Gap>) {
    if n < 0 {
        return;
    }
    let idx = match fds.binary_search_by_key(&n, |f| f.fd) {
        Ok(i) => i,
        Err(i) => match std::fs::read_link(root.pid(pid).join("fd").join(n.to_string())) {
            Ok(link) => {
                let link = std::os::unix::ffi::OsStrExt::as_bytes(link.as_os_str());
                fds.insert(i, fd::classify_bytes(n, link));
                i
            }
            // Closed since: the syscall will fail with EBADF or already has.
            Err(e) if task::is_gone(&e) => return,
            Err(e) => {
                gaps.push(gap_of(format!("/proc/{pid}/fd/{n}"), &e));
                return;
            }
        },
    };
    let Some(f) = fds.get_mut(idx) else { return };
    if f.info.is_some() {
        return;
    }
    match root.read(format!("{pid}/fdinfo/{n}")) {
        Ok(text) => f.info = Some(Box::new(fdinfo::parse(&text))),
        Err(e) if task::is_gone(&e) => {}
        Err(e) => gaps.push(gap_of(format!("/proc/{pid}/fdinfo/{n}"), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_texts() {
        let s = SyscallState {
            name: "clock_nanosleep".into(),
            waits_on: vec![WaitObject::Sleep { ns: 100_000_000 }],
            ..SyscallState::default()
        };
        assert_eq!(
            units::looping(&Looping::of(&s), 9.8),
            "clock_nanosleep 100 ms, ~10/s"
        );
        let p = SyscallState {
            name: "poll".into(),
            timeout_ms: Some(2000),
            ..SyscallState::default()
        };
        assert_eq!(
            units::looping(&Looping::of(&p), 0.5),
            "poll timeout 2 s, ~0.5/s"
        );
        // A heartbeat loop: sleep 500 ms, then a short read that also blocks.
        let h = SyscallState {
            name: "clock_nanosleep".into(),
            waits_on: vec![WaitObject::Sleep { ns: 500_000_000 }],
            ..SyscallState::default()
        };
        assert_eq!(loop_rate(&h, 4.1), 2.0);
        assert_eq!(
            units::looping(&Looping::of(&h), loop_rate(&h, 4.1)),
            "clock_nanosleep 500 ms, ~2/s"
        );
        assert_eq!(loop_rate(&p, 0.5), 0.5);
    }

    #[test]
    fn a_worker_that_panicked_leaves_a_gap_for_its_threads() {
        let read = |tid| TaskRead {
            tid,
            ..TaskRead::default()
        };
        // A real panic's payload, as join() hands it over.
        let panicked =
            std::thread::spawn(|| -> (Vec<TaskRead>, usize) { panic!("bad stat") }).join();
        let results = vec![
            (2, Ok((vec![read(10), read(11)], 0))),
            (3, panicked),
            (2, Ok((vec![read(15)], 1))),
        ];
        let mut gaps = Vec::new();
        let (threads, unread) = join_parts(7, results, &mut gaps);
        assert_eq!(
            threads.iter().map(|t| t.tid).collect::<Vec<_>>(),
            [10, 11, 15]
        );
        assert_eq!(unread, 1);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].what, "3 threads of /proc/7/task");
        assert!(gaps[0].detail.contains("bad stat"), "{:?}", gaps[0]);
    }
}
