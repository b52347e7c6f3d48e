//! Managed runtime: the process runs in a JVM, Go or CPython, whose locks are words in its own
//! memory. A thread waiting for a Java monitor, a goroutine waiting for a sync.Mutex, a Python
//! thread in `Lock.acquire` all look to the kernel like an idle thread in a futex (or an
//! epoll), so no kernel-side rule can tell a deadlock from an idle pool. This rule says so and
//! reports what the runtime itself said (collect's `runtime`): a deadlock HotSpot found, or
//! goroutines that stayed in `sync.(*Mutex).Lock` across two dumps (or for minutes, as Go
//! counts) are causes; a view that shows nothing stuck is context; no view at all is a
//! warning that says how to get one. Words in `words/managed_runtime.rs`.

use hangscope_model::{
    Cause, Next, RuntimeKind, RuntimeThread, Severity, Subject, Text, UnavailableReason,
    ViewUnavailable,
};

use crate::Ctx;
use crate::facts::managed_runtime::{KernelLoop, Locked, ManagedRuntime, Seen};
use crate::facts::{Facts, RuleFacts};

pub(crate) fn find(ctx: &Ctx<'_>, found: &[Facts]) -> Option<ManagedRuntime> {
    let snap = ctx.snap;
    let rt = snap.process.runtime.as_ref()?;
    if rt.kind == RuntimeKind::Other {
        return None;
    }
    // Waiting: in a call and not spinning, blocked for a second or re-entering a timed wait
    // (HotSpot's monitor waits time out and retry, ~1/s).
    let waiting: Vec<_> = snap
        .threads
        .iter()
        .filter_map(|t| {
            let sc = t.syscall.as_ref().filter(|s| !s.running && s.nr >= 0)?;
            let Some(a) = t.activity.as_ref() else {
                return Some((sc.name.as_str(), 0));
            };
            let ms = a.blocked_at_least_ms.unwrap_or(0);
            (!a.busy && (ms >= crate::STUCK_MS || t.looping().is_some()))
                .then_some((sc.name.as_str(), ms))
        })
        .collect();
    let kernel_waiting = waiting.len() as u32;
    let kernel_futex = waiting.iter().filter(|(n, _)| *n == "futex").count() as u32;
    let longest_wait_ms = waiting.iter().map(|(_, ms)| *ms).max().unwrap_or(0);
    let kernel_of = |tid: Option<i32>| {
        let t = snap.thread(tid?)?;
        let sc = t.syscall.as_ref().filter(|s| !s.running)?;
        let a = t.activity.as_ref();
        let looping = t
            .looping()
            .zip(a.and_then(|a| a.rate_per_s))
            .map(|(looping, rate_per_s)| KernelLoop {
                looping,
                rate_per_s,
            });
        Some((
            sc.name.clone(),
            looping,
            a.and_then(|a| a.blocked_at_least_ms),
        ))
    };
    let locked = |t: &RuntimeThread, held_by: Option<Text>, waits_for: Option<Text>| {
        let k = kernel_of(t.tid);
        Locked {
            name: t.name.clone(),
            state: t.state.clone(),
            waits_for: waits_for.or_else(|| t.waiting_for.clone()),
            held_by,
            at: t.frames.first().cloned(),
            wait_minutes: t.wait_minutes,
            tid: t.tid,
            kernel_syscall: k.as_ref().map(|(c, _, _)| c.clone()),
            kernel_loop: k.as_ref().and_then(|(_, l, _)| l.clone()),
            kernel_blocked_ms: k.and_then(|(_, _, ms)| ms),
        }
    };
    let seen = match (&rt.view, &rt.unavailable) {
        (Some(v), _) if !v.deadlocks.is_empty() => Seen::Deadlock {
            tool: v.tool.clone(),
            threads: v
                .deadlocks
                .iter()
                .flat_map(|d| &d.links)
                .map(|l| {
                    let own = v.threads.iter().find(|t| t.name == l.thread);
                    let base = own.cloned().unwrap_or_else(|| RuntimeThread {
                        name: l.thread.clone(),
                        ..RuntimeThread::default()
                    });
                    locked(&base, Some(l.held_by.clone()), Some(l.waits_for.clone()))
                })
                .collect(),
        },
        (Some(v), _) if rt.kind == RuntimeKind::Cpython && !python_lock_waits(snap).is_empty() => {
            let waits = python_lock_waits(snap);
            // The kernel's count, for threads it shows in the same futex wait all along.
            let lasted_ms = waits
                .iter()
                .map(|t| kernel_of(t.tid).and_then(|(_, _, ms)| ms))
                .min()
                .flatten();
            Seen::LockWaits {
                tool: v.tool.clone(),
                command: v.command.clone(),
                threads: waits.iter().map(|t| locked(t, None, None)).collect(),
                lasted_ms,
                threads_total: v.threads_total,
            }
        }
        (Some(v), _) => {
            let waits: Vec<&RuntimeThread> = v
                .threads
                .iter()
                .filter(|t| t.waiting_for.is_some())
                .collect();
            if waits.is_empty() {
                Seen::Nothing {
                    tool: v.tool.clone(),
                    command: v.command.clone(),
                    threads_total: v.threads_total,
                }
            } else {
                let by_minutes = waits.iter().all(|t| t.wait_minutes.is_some_and(|m| m >= 1));
                let by_dumps = v
                    .between_dumps_ms
                    .filter(|ms| *ms >= crate::STUCK_MS)
                    .filter(|_| waits.iter().all(|t| t.same_in_both_dumps));
                let lasted_ms = match (by_dumps, by_minutes) {
                    (Some(ms), _) => Some(ms),
                    (None, true) => waits
                        .iter()
                        .filter_map(|t| t.wait_minutes)
                        .min()
                        .map(|m| m * 60_000),
                    (None, false) => None,
                };
                Seen::LockWaits {
                    tool: v.tool.clone(),
                    command: v.command.clone(),
                    threads: waits.iter().map(|t| locked(t, None, None)).collect(),
                    lasted_ms,
                    threads_total: v.threads_total,
                }
            }
        }
        (None, Some(why)) => Seen::Unavailable {
            why: why.clone(),
            catches_sigquit: rt.catches_sigquit,
        },
        (None, None) => Seen::Unavailable {
            why: ViewUnavailable {
                reason: UnavailableReason::Disabled,
                detail: "not asked".into(),
            },
            catches_sigquit: rt.catches_sigquit,
        },
    };
    let other_finding = !found.is_empty();
    Some(ManagedRuntime {
        pid: snap.process.pid,
        kind: rt.kind,
        version: rt.version.clone(),
        recognised_by: rt.recognised_by.clone(),
        kernel_waiting,
        kernel_futex,
        longest_wait_ms,
        seen,
        other_finding,
    })
}

/// The native functions of CPython that take a `threading.Lock` or `RLock` (`with lock:` in
/// 3.11 calls them straight from the bytecode, so no Python frame of its own shows the wait).
const PYTHON_LOCK_ACQUIRE: [&str; 3] = [
    "lock_PyThread_acquire_lock",
    "rlock_acquire",
    "PyThread_acquire_lock_timed",
];

/// Python modules whose waits are waits by design: a Condition, Event, Semaphore or Barrier
/// (threading.py), Thread.join (its tstate lock), a queue's get or put. Their own lock is the
/// waiter lock of a condition, taken to sleep, not a lock another thread holds.
const PYTHON_WAITING_MODULES: [&str; 2] = ["threading.py", "queue.py"];

/// Threads of a CPython process blocked in a futex, not moving, whose native stack is in a
/// lock acquire called from the program's own code (the innermost interpreter frame, from
/// py-spy, is not in the standard waiting modules): each waits for a lock another thread
/// holds. Without the native stack (`--stacks off`) nothing is claimed.
fn python_lock_waits(snap: &hangscope_model::Snapshot) -> Vec<RuntimeThread> {
    snap.threads
        .iter()
        .filter_map(|t| {
            let sc = t.syscall.as_ref().filter(|s| !s.running)?;
            let a = t.activity.as_ref()?;
            if sc.name != "futex" || a.busy || a.progressed {
                return None;
            }
            let native = t.user_stack.as_ref()?;
            let acquire = native.frames.iter().find_map(|f| {
                let name = f.function.as_ref()?.as_str();
                PYTHON_LOCK_ACQUIRE.contains(&name).then_some(name)
            })?;
            let frames = &t.runtime.as_ref()?.frames;
            let at = frames.first()?;
            if PYTHON_WAITING_MODULES
                .iter()
                .any(|m| at.as_str().contains(&format!("({m}:")))
            {
                return None;
            }
            Some(RuntimeThread {
                name: t.name.clone(),
                tid: Some(t.tid),
                state: "idle".into(),
                waiting_for: Some(
                    if acquire == "rlock_acquire" {
                        "a threading.RLock"
                    } else {
                        "a threading.Lock"
                    }
                    .into(),
                ),
                frames: frames.clone(),
                ..RuntimeThread::default()
            })
        })
        .collect()
}

impl RuleFacts for ManagedRuntime {
    const RULE: &'static str = "managed_runtime";

    fn cause(&self) -> Cause {
        match &self.seen {
            Seen::Deadlock { .. } => Cause::Deadlock,
            Seen::LockWaits { .. } if self.proven() => Cause::LockWait,
            _ => Cause::Other,
        }
    }

    fn severity(&self) -> Severity {
        if self.proven() {
            Severity::Cause
        } else if self.other_finding || matches!(self.seen, Seen::Nothing { .. }) {
            Severity::Info
        } else if self.kernel_futex > 0 || matches!(self.seen, Seen::LockWaits { .. }) {
            // Threads wait in futexes, which is where the runtime's locks wait, and the runtime
            // was not heard: only it can tell a lock wait from an idle thread. A process only
            // sleeping or polling has no lock to wait for.
            Severity::Warning
        } else {
            Severity::Info
        }
    }

    fn stuck_ms(&self) -> u64 {
        match &self.seen {
            Seen::Deadlock { threads, .. } => threads
                .iter()
                .filter_map(|t| t.kernel_blocked_ms)
                .max()
                .unwrap_or(self.longest_wait_ms)
                .max(crate::STUCK_MS),
            Seen::LockWaits { lasted_ms, .. } => lasted_ms.unwrap_or(0),
            _ => 0,
        }
    }

    fn subject(&self) -> Subject {
        match self.first_locked() {
            Some(t) if self.proven() => Subject {
                tid: t.tid,
                thread_name: Some(t.name.clone()),
                ..Subject::default()
            },
            _ => Subject::default(),
        }
    }

    fn next(&self) -> Option<Next> {
        Some(Next::command(crate::facts::managed_runtime::command(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{
        DeadlockLink, Runtime, RuntimeDeadlock, RuntimeView, Snapshot, WaitObject,
    };

    fn futex() -> Vec<WaitObject> {
        vec![WaitObject::Futex {
            addr: 0x7f00,
            op: "FUTEX_WAIT_PRIVATE".into(),
            owner_tid: None,
            other_waiters: vec![],
            waiters: 1,
            owner_pid: None,
            shared_file: None,
        }]
    }

    fn jvm(view: Option<RuntimeView>, unavailable: Option<ViewUnavailable>) -> Snapshot {
        let mut snap = base(4000, "java");
        snap.threads = vec![
            thread(4000, "java", "futex", futex(), Some(9_000)),
            thread(4013, "left-worker", "futex", futex(), Some(8_000)),
            thread(4014, "right-worker", "futex", futex(), Some(8_000)),
        ];
        snap.process.runtime = Some(Runtime {
            kind: RuntimeKind::Jvm,
            version: Some("17.0.15".into()),
            recognised_by: "/proc/4000/maps: /usr/lib/jvm/java-17/lib/server/libjvm.so".into(),
            catches_sigquit: Some(true),
            view,
            unavailable,
            ..Runtime::default()
        });
        snap
    }

    fn findings(snap: &Snapshot) -> Vec<hangscope_model::Finding> {
        find(&Ctx::new(snap), &[])
            .iter()
            .map(crate::words::finding)
            .collect()
    }

    fn blocked(name: &str, tid: i32, lock: &str) -> RuntimeThread {
        RuntimeThread {
            name: name.into(),
            tid: Some(tid),
            state: "BLOCKED (on object monitor)".into(),
            waiting_for: Some(lock.into()),
            frames: vec![format!("Bank.{name}(Bank.java:12)").into()],
            ..RuntimeThread::default()
        }
    }

    fn deadlock_view() -> RuntimeView {
        RuntimeView {
            tool: "jcmd 4000 Thread.print".into(),
            deadlocks: vec![RuntimeDeadlock {
                links: vec![
                    DeadlockLink {
                        thread: "left-worker".into(),
                        waits_for: "monitor 0x1 (object 0xa, a java.lang.Object)".into(),
                        held_by: "right-worker".into(),
                    },
                    DeadlockLink {
                        thread: "right-worker".into(),
                        waits_for: "monitor 0x2 (object 0xb, a java.lang.Object)".into(),
                        held_by: "left-worker".into(),
                    },
                ],
            }],
            threads: vec![
                blocked("left-worker", 4013, "<0xb>"),
                blocked("right-worker", 4014, "<0xa>"),
            ],
            threads_total: 3,
            ..RuntimeView::default()
        }
    }

    #[test]
    fn a_deadlock_the_jvm_found_is_the_cause_with_both_threads() {
        let f = &findings(&jvm(Some(deadlock_view()), None))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.cause, Cause::Deadlock);
        assert!(
            f.summary.starts_with(
                "This is a JVM (OpenJDK 17.0.15): its locks (Java monitors) are inside the \
                 runtime, the kernel shows only futex waits (3 threads), but its own thread \
                 dump found a Java-level deadlock: \"left-worker\" waits for a lock held by \
                 \"right-worker\""
            ),
            "{}",
            f.summary
        );
        assert_eq!(f.subject.tid, Some(4013));
        assert_eq!(f.stuck_ms, Some(8_000));
        assert!(
            f.evidence
                .iter()
                .any(|e| e.value.contains("thread 4014 in the kernel: futex()")),
            "{:?}",
            f.evidence
        );
        assert_eq!(f.facts["seen"]["threads"][1]["held_by"], "left-worker");
    }

    /// The kernel's side of a Java thread is kept as its parts (the call, its loop and rate)
    /// and worded apart: the loop reads as the loop rule says it.
    #[test]
    fn a_java_thread_looping_in_the_kernel_keeps_its_call_and_loop_as_facts() {
        let mut snap = jvm(Some(deadlock_view()), None);
        let a = snap.threads[1].activity.as_mut().unwrap();
        a.looping = Some(hangscope_model::Looping {
            syscall: "futex".into(),
            period_ms: Some(574.0),
            timeout: true,
        });
        a.rate_per_s = Some(1.0);
        let f = &findings(&snap)[0];
        let left = &f.facts["seen"]["threads"][0];
        assert_eq!(left["tid"], 4013);
        assert_eq!(left["kernel_syscall"], "futex");
        assert_eq!(left["kernel_loop"]["period_ms"], 574.0);
        assert_eq!(left["kernel_loop"]["timeout"], true);
        assert_eq!(left["kernel_loop"]["rate_per_s"], 1.0);
        assert!(
            f.evidence.iter().any(|e| e.value.contains(
                "thread 4013 in the kernel: futex() in a loop: futex timeout 574 ms, ~1/s for at \
                 least 8.0 s"
            )),
            "{:?}",
            f.evidence
        );
        let right = &f.facts["seen"]["threads"][1];
        assert_eq!(right["kernel_syscall"], "futex");
        assert!(right.get("kernel_loop").is_none(), "{right:#}");
    }

    #[test]
    fn no_attach_listener_is_a_warning_and_a_jvm_that_ignores_sigquit_is_not_sent_to_jcmd() {
        let why = ViewUnavailable {
            reason: UnavailableReason::NoAttachListener,
            detail: "/proc/4000/root/tmp/.java_pid4000 does not exist".into(),
        };
        let f = &findings(&jvm(None, Some(why.clone())))[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary.contains("its attach listener is not running"),
            "{}",
            f.summary
        );
        assert!(f.next_step.contains("--jvm-attach"), "{}", f.next_step);
        let mut snap = jvm(None, Some(why));
        if let Some(rt) = snap.process.runtime.as_mut() {
            rt.catches_sigquit = Some(false);
        }
        let f = &findings(&snap)[0];
        assert!(
            f.next_step.starts_with("Do not run jcmd on it"),
            "{}",
            f.next_step
        );
        assert!(
            f.next_step.contains("SIGQUIT would kill it"),
            "{}",
            f.next_step
        );
    }

    #[test]
    fn another_finding_makes_it_context() {
        let mut snap = jvm(
            None,
            Some(ViewUnavailable {
                reason: UnavailableReason::Disabled,
                detail: "not asked".into(),
            }),
        );
        assert_eq!(findings(&snap)[0].severity, Severity::Warning);
        snap.process.state = "T".into();
        let ctx = Ctx::new(&snap);
        let found: Vec<Facts> = crate::rules::stopped::find(&ctx)
            .into_iter()
            .map(Facts::Stopped)
            .collect();
        assert_eq!(found.len(), 1);
        let f = find(&ctx, &found).map(|f| crate::words::finding(&f));
        assert_eq!(f.map(|f| f.severity), Some(Severity::Info));
        // Context explains the waits too: a tracer that lets it run, as gdb (which embeds
        // libpython) waiting for its child is explained by child_wait.
        snap.process.state = "S".into();
        snap.process.tracer = Some(hangscope_model::Tracer {
            pid: 4300,
            name: Some("strace".into()),
            state: Some("S".into()),
        });
        let ctx = Ctx::new(&snap);
        let found: Vec<Facts> = crate::rules::stopped::find(&ctx)
            .into_iter()
            .map(Facts::Stopped)
            .collect();
        assert_eq!(found[0].severity(), Severity::Info);
        let f = find(&ctx, &found).map(|f| crate::words::finding(&f));
        assert_eq!(f.map(|f| f.severity), Some(Severity::Info));
    }

    fn go(between: Option<u64>, same: bool) -> Snapshot {
        let mut snap = base(5000, "server");
        snap.threads = vec![
            thread(5000, "server", "futex", futex(), Some(3_000)),
            thread(5001, "server", "epoll_pwait", vec![], Some(3_000)),
        ];
        let g = |id: u32| RuntimeThread {
            name: format!("goroutine {id}").into(),
            state: "semacquire".into(),
            waiting_for: Some("sync.(*Mutex).Lock".into()),
            same_in_both_dumps: same,
            frames: vec!["main.transfer (/src/main.go:17)".into()],
            ..RuntimeThread::default()
        };
        snap.process.runtime = Some(Runtime {
            kind: RuntimeKind::Go,
            version: Some("go1.19.8".into()),
            recognised_by: "/proc/5000/exe: .go.buildinfo".into(),
            view: Some(RuntimeView {
                tool: "curl 'http://127.0.0.1:6060/debug/pprof/goroutine?debug=2' (net/http/pprof)"
                    .into(),
                command: "curl 'http://127.0.0.1:6060/debug/pprof/goroutine?debug=2'".into(),
                threads: vec![g(6), g(7)],
                threads_total: 5,
                between_dumps_ms: between,
                ..RuntimeView::default()
            }),
            ..Runtime::default()
        });
        snap
    }

    #[test]
    fn goroutines_in_the_same_lock_wait_across_two_dumps_are_the_cause() {
        let f = &findings(&go(Some(2_100), true))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.cause, Cause::LockWait);
        assert!(
            f.summary.contains(
                "its own goroutine dump (pprof) shows 2 goroutines (of 5) waiting to lock \
                 sync.Mutex for at least 2.1 s: goroutine 6 waits for sync.(*Mutex).Lock at \
                 main.transfer (/src/main.go:17)"
            ),
            "{}",
            f.summary
        );
        assert!(
            f.next_step
                .contains("curl 'http://127.0.0.1:6060/debug/pprof/goroutine?debug=2'"),
            "{}",
            f.next_step
        );
        // One dump, or a goroutine that moved between them: contention, not a proof.
        assert_eq!(findings(&go(None, false))[0].severity, Severity::Warning);
        assert_eq!(
            findings(&go(Some(2_100), false))[0].severity,
            Severity::Warning
        );
        // Go's own count of minutes proves it with one dump.
        let mut snap = go(None, false);
        if let Some(v) = snap.process.runtime.as_mut().and_then(|r| r.view.as_mut()) {
            v.threads.iter_mut().for_each(|t| t.wait_minutes = Some(5));
        }
        let f = &findings(&snap)[0];
        assert_eq!(f.severity, Severity::Cause);
        assert!(
            f.summary.contains("for at least 5 min 0 s"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_sleeping_interpreter_without_its_view_is_only_context() {
        let mut snap = base(6000, "python3");
        snap.threads = vec![thread(
            6000,
            "python3",
            "clock_nanosleep",
            vec![WaitObject::Sleep {
                ns: 600_000_000_000,
            }],
            Some(5_000),
        )];
        snap.process.runtime = Some(Runtime {
            kind: RuntimeKind::Cpython,
            version: Some("3.11".into()),
            recognised_by: "/proc/6000/exe: /usr/bin/python3.11".into(),
            unavailable: Some(ViewUnavailable {
                reason: UnavailableReason::ToolAbsent,
                detail: "py-spy is not installed".into(),
            }),
            ..Runtime::default()
        });
        assert_eq!(findings(&snap)[0].severity, Severity::Info);
        snap.threads[0] = thread(6000, "python3", "futex", futex(), Some(5_000));
        let f = &findings(&snap)[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary.starts_with("This is CPython 3.11:"),
            "{}",
            f.summary
        );
        assert!(
            f.next_step.contains("py-spy dump --nonblocking --pid 6000"),
            "{}",
            f.next_step
        );
    }

    /// Two Python threads in `with lock:`, each in a futex inside CPython's lock acquire, as
    /// py-spy and the native stacks show them; the same threads in a Condition's wait
    /// (queue.get, Event.wait) are idle by design.
    fn python(at: &str) -> Snapshot {
        let mut snap = base(7000, "python3");
        let lock_stack = |tid: i32, at: &str| {
            let mut t = thread(tid, "python3", "futex", futex(), Some(6_000));
            t.user_stack = Some(stack_of(&[
                "PyThread_acquire_lock_timed",
                "acquire_timed",
                "lock_PyThread_acquire_lock",
            ]));
            t.runtime = Some(hangscope_model::ThreadRuntime {
                role: "Python".into(),
                frames: vec![at.into(), "Thread.run (threading.py:982)".into()],
                ..hangscope_model::ThreadRuntime::default()
            });
            t
        };
        snap.threads = vec![lock_stack(7001, at), lock_stack(7002, at)];
        snap.process.runtime = Some(Runtime {
            kind: RuntimeKind::Cpython,
            version: Some("3.11".into()),
            recognised_by: "/proc/7000/exe: /usr/bin/python3.11".into(),
            view: Some(RuntimeView {
                tool: "py-spy dump --nonblocking --json --pid 7000".into(),
                command: "py-spy dump --nonblocking --json --pid 7000".into(),
                threads_total: 3,
                ..RuntimeView::default()
            }),
            ..Runtime::default()
        });
        snap
    }

    #[test]
    fn python_threads_in_a_lock_acquire_from_their_own_code_are_a_lock_wait() {
        let f = &findings(&python("take (deadlock.py:7)"))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.cause, Cause::LockWait);
        assert!(
            f.summary
                .contains("waits for a threading.Lock at take (deadlock.py:7)"),
            "{}",
            f.summary
        );
        assert!(
            f.next_step.contains("inside the `with` block"),
            "{}",
            f.next_step
        );
        // The twin: the same native wait under threading.py's Condition.wait is idle.
        let f = &findings(&python("Condition.wait (threading.py:320)"))[0];
        assert_ne!(f.severity, Severity::Cause, "{}", f.summary);
        // Without the native stack nothing is claimed from py-spy's frames alone.
        let mut snap = python("take (deadlock.py:7)");
        snap.threads.iter_mut().for_each(|t| t.user_stack = None);
        assert_ne!(findings(&snap)[0].severity, Severity::Cause);
    }
}
