//! Threads: /proc/PID/task/TID/{stat,status,wchan,stack,syscall,sched}, and what changed over the
//! sampling window.

use serde::{Deserialize, Serialize};

use crate::Text;

/// One thread of the target, from /proc/PID/task/TID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Thread {
    /// The thread's ID, as hangscope's PID namespace numbers it.
    pub tid: i32,
    /// `comm` of the thread, e.g. "dump_meta".
    pub name: Text,
    /// One letter: R S D T t Z X I.
    pub state: String,
    /// Kernel function the thread sleeps in, e.g. "do_sys_poll"; `None` when not readable.
    pub wchan: Option<String>,
    /// Kernel stack, innermost first, e.g. "do_sys_poll+0x2d4/0x4f0". `None` when not readable.
    pub stack: Option<Vec<String>>,
    /// Why `stack` is `None`, e.g. "Operation not permitted (os error 1)".
    pub stack_unavailable: Option<String>,
    /// The thread the user asked about (`hangscope TID`); listed first.
    pub focus: bool,
    /// The syscall the thread is in, decoded; `None` when not readable.
    pub syscall: Option<SyscallState>,
    /// User-mode CPU time over the thread's life, milliseconds (utime in /proc/PID/task/TID/stat).
    pub utime_ms: u64,
    /// Kernel-mode CPU time over the thread's life, milliseconds (stime in
    /// /proc/PID/task/TID/stat).
    pub stime_ms: u64,
    /// Times it gave up the CPU to wait (`voluntary_ctxt_switches` in /proc/PID/task/TID/status); 0
    /// when unreadable.
    pub voluntary_ctxt_switches: u64,
    /// Times the scheduler took the CPU from it (`nonvoluntary_ctxt_switches` in
    /// /proc/PID/task/TID/status); 0 when unreadable.
    pub nonvoluntary_ctxt_switches: u64,
    /// CPU the thread last ran on.
    pub last_cpu: Option<i32>,
    /// Time since the thread last ran (from `sched`'s se.exec_start), milliseconds.
    pub last_ran_ms_ago: Option<f64>,
    /// What the sampling window showed; `None` with a single look.
    pub activity: Option<Activity>,
    /// The user-space stack, unwound from a copy (since 1.6); `None` when not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_stack: Option<crate::UserStack>,
    /// What the thread is to the process's managed runtime (since 1.7); `None` without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<crate::ThreadRuntime>,
}

/// /proc/PID/task/TID/syscall, decoded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SyscallState {
    /// True when the file said "running": the thread is on a CPU (or runnable), not in a syscall.
    pub running: bool,
    /// Syscall number; -1 means blocked but not in a syscall (e.g. a page fault).
    pub nr: i64,
    /// "poll", "clock_nanosleep", ...; "syscall_N" when the number is not in the table.
    pub name: String,
    /// The raw argument registers.
    pub args: Vec<u64>,
    /// Arguments interpreted, in strace order.
    pub decoded: Vec<SyscallArg>,
    /// The objects the thread waits on, e.g. the fds of a poll.
    pub waits_on: Vec<WaitObject>,
    /// The syscall's timeout, milliseconds; `None` = no timeout given or not applicable,
    /// Some(-1) = infinite.
    pub timeout_ms: Option<i64>,
    /// A one-line strace-like rendering, e.g. "poll([{fd=29, events=POLLIN}], 1, 10000)".
    pub summary: String,
    /// Why some arguments could not be decoded (e.g. process_vm_readv refused).
    pub decode_error: Option<String>,
    /// The path a call on a path names (stat, open, ...), exactly as the target passed it:
    /// relative to its cwd, or to `path_dirfd` (since 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    /// The directory fd the path is relative to, when not the cwd (since 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_dirfd: Option<i32>,
}

impl SyscallState {
    /// The fds the call waits on, as the threads collector decoded them: (fd, events, the
    /// epoll fd it is reached through). An epoll fd whose watch list was decoded stands for
    /// that list and is left out; one whose list could not be read stays, the only fd known.
    /// Diagnosis and the look at the other end's threads both count a call's set from this.
    pub fn fd_waits(&self) -> Vec<(i32, &[String], Option<i32>)> {
        let epolls: Vec<i32> = self
            .waits_on
            .iter()
            .filter_map(|w| match w {
                WaitObject::Fd {
                    via_epoll: Some(ep),
                    ..
                } => Some(*ep),
                _ => None,
            })
            .collect();
        let mut out: Vec<(i32, &[String], Option<i32>)> = Vec::new();
        for w in &self.waits_on {
            if let WaitObject::Fd {
                fd,
                events,
                via_epoll,
            } = w
            {
                if (via_epoll.is_none() && epolls.contains(fd)) || out.iter().any(|o| o.0 == *fd) {
                    continue;
                }
                out.push((*fd, events.as_slice(), *via_epoll));
            }
        }
        out
    }
}

/// One argument of a system call, decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyscallArg {
    /// The argument's name as the man page gives it, e.g. "fds", "timeout".
    pub name: String,
    /// Its value as strace would print it, e.g. "[{fd=29, events=POLLIN}]", "10000".
    pub value: String,
}

/// Something a thread waits on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitObject {
    /// An fd, with the poll events requested ("POLLIN", ...) when the syscall names them.
    Fd {
        /// The fd it waits on.
        fd: i32,
        /// The poll events it waits for, e.g. "POLLIN"; empty when the call names none (a
        /// read, an accept).
        #[serde(default)]
        events: Vec<String>,
        /// For fds reached through an epoll: the epoll fd.
        #[serde(default)]
        via_epoll: Option<i32>,
    },
    /// A futex word; `owner_tid` for a glibc mutex (or PI futex) whose owner could be read.
    Futex {
        /// The futex word's address in the target's memory.
        addr: u64,
        /// The futex operation, e.g. "FUTEX_WAIT_PRIVATE", "FUTEX_LOCK_PI".
        #[serde(default)]
        op: String,
        /// The thread holding the mutex: the TID in a glibc mutex's `__owner` word or a PI
        /// futex's value; `None` when the word names none or could not be read.
        #[serde(default)]
        owner_tid: Option<i32>,
        /// Other threads of the process waiting on the same address (the first 32; see
        /// `waiters` for the count).
        #[serde(default)]
        other_waiters: Vec<i32>,
        /// Threads of the process waiting on this address, this one included.
        #[serde(default)]
        waiters: u32,
        /// The owner's process, when `owner_tid` is a thread of another process: a
        /// process-shared mutex in memory both map (since 1.6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner_pid: Option<i32>,
        /// The file both processes map the mutex from, as the waiter's maps name it
        /// ("/dev/shm/ledger", "/memfd:locks (deleted)"), when the owner is in another process
        /// (since 1.6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shared_file: Option<Text>,
    },
    /// A child process (wait4 / waitid).
    Process {
        /// The child waited for; -1 means any child (0 or below -1: any in a process group).
        pid: i32,
    },
    /// A sleep (nanosleep, clock_nanosleep).
    Sleep {
        /// The requested length, nanoseconds; for an absolute sleep (TIMER_ABSTIME), the time
        /// left on its clock when read; 0 when the timespec could not be read.
        ns: u64,
    },
    /// A file lock request (flock, fcntl F_SETLKW) through an fd.
    Lock {
        /// The fd the lock is asked through.
        fd: i32,
        /// The request, e.g. "LOCK_EX" (flock), "F_SETLKW F_WRLCK 100-109" (fcntl, with the
        /// byte range).
        op: String,
    },
    /// A signal (pause, sigsuspend, rt_sigtimedwait).
    Signal,
    /// A Linux AIO context (io_getevents).
    Aio {
        /// The context's id, as io_setup returned it.
        ctx: u64,
    },
}

/// How a thread behaved over the sampling window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Activity {
    /// Context switches, CPU time or the syscall changed between looks.
    pub progressed: bool,
    /// Spinning: runnable, CPU time growing, no voluntary switches.
    pub busy: bool,
    /// A loop re-entering the same call, in words, e.g. "clock_nanosleep 100 ms, ~10/s";
    /// `looping` has it as fields.
    pub periodic: Option<String>,
    /// A loop re-entering the same call, as fields (since 1.7; a document before has only
    /// `periodic`, and a reader derives these from the thread's syscall).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub looping: Option<Looping>,
    /// How often the loop re-enters the call, per second.
    pub rate_per_s: Option<f64>,
    /// Lower bound on how long the thread has been in its current wait, milliseconds.
    pub blocked_at_least_ms: Option<u64>,
    /// CPU time used over the window, milliseconds (the scheduler's sum_exec_runtime, else utime
    /// plus stime).
    pub cpu_ms: u64,
    /// Voluntary context switches over the window.
    pub voluntary_switches: u64,
    /// Involuntary context switches over the window.
    pub involuntary_switches: u64,
    /// Distinct syscall states seen.
    pub syscall_changes: u32,
    /// Each look at the thread, oldest first, for a timeline (since 1.6); empty for a process
    /// of more than 256 threads, whose looks would make the document large.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub looks: Vec<ThreadLook>,
}

/// A thread re-entering the same call over the window (since 1.7, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Looping {
    /// The call it re-enters, e.g. "clock_nanosleep".
    pub syscall: String,
    /// The length it waits each time, milliseconds: its sleep, else its timeout; absent when
    /// the call has neither (a futex woken by another thread).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_ms: Option<f64>,
    /// `period_ms` is the call's timeout (poll, epoll_wait), not a sleep.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timeout: bool,
}

impl Looping {
    /// The loop of `syscall`, as its decoded arguments set it: its sleep, else its timeout.
    pub fn of(syscall: &SyscallState) -> Looping {
        let sleep = syscall.waits_on.iter().find_map(|w| match w {
            WaitObject::Sleep { ns } => Some(*ns as f64 / 1e6),
            _ => None,
        });
        let timeout = syscall.timeout_ms.filter(|ms| *ms >= 0).map(|ms| ms as f64);
        Looping {
            syscall: syscall.name.clone(),
            period_ms: sleep.or(timeout),
            timeout: sleep.is_none() && timeout.is_some(),
        }
    }
}

impl Thread {
    /// The loop it is in, if any: the document's fields, or for a document before 1.7 (only
    /// `periodic`), derived from its syscall as the collector does.
    pub fn looping(&self) -> Option<Looping> {
        let a = self.activity.as_ref()?;
        if let Some(l) = &a.looping {
            return Some(l.clone());
        }
        a.periodic.as_ref()?;
        Some(self.syscall.as_ref().map(Looping::of).unwrap_or_default())
    }
}

/// One look at a thread during the window (since 1.6, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ThreadLook {
    /// Milliseconds since the window's first look.
    pub at_ms: u64,
    /// The state letter of `stat` ("S", "R", "D", ...).
    pub state: String,
    /// The syscall it was in ("poll"), "running", "user" (blocked outside a syscall), or
    /// empty when not readable.
    pub call: String,
    /// CPU time used since the first look, milliseconds.
    pub cpu_ms: f64,
    /// Time since it last ran, milliseconds, when it was not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off_cpu_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_in(syscall: SyscallState, activity: Activity) -> Thread {
        Thread {
            syscall: Some(syscall),
            activity: Some(activity),
            ..Thread::default()
        }
    }

    #[test]
    fn a_loop_is_fields_from_its_call() {
        let sleep = SyscallState {
            name: "clock_nanosleep".into(),
            waits_on: vec![WaitObject::Sleep { ns: 100_000_000 }],
            ..SyscallState::default()
        };
        let l = Looping::of(&sleep);
        assert_eq!(l.period_ms, Some(100.0));
        assert!(!l.timeout);
        let poll = SyscallState {
            name: "poll".into(),
            timeout_ms: Some(2000),
            ..SyscallState::default()
        };
        let p = Looping::of(&poll);
        assert_eq!((p.period_ms, p.timeout), (Some(2000.0), true));
        // Written with the document and read back.
        let t = thread_in(
            sleep.clone(),
            Activity {
                rate_per_s: Some(10.0),
                looping: Some(l.clone()),
                ..Activity::default()
            },
        );
        let json = serde_json::to_value(&t).expect("serializes");
        assert_eq!(json["activity"]["looping"]["period_ms"], 100.0);
        let back: Thread = serde_json::from_value(json).expect("reads");
        assert_eq!(back.looping(), Some(l.clone()));
        // A document before 1.7 has only the words: the fields are derived from the syscall.
        let old = thread_in(
            sleep,
            Activity {
                periodic: Some("clock_nanosleep 100 ms, ~10/s".into()),
                ..Activity::default()
            },
        );
        assert_eq!(old.looping(), Some(l));
        // No loop, no fields.
        let still = thread_in(poll, Activity::default());
        assert_eq!(still.looping(), None);
    }
}
