//! The words of a managed runtime's finding (`rules/managed_runtime.rs`).

use hangscope_model::{Evidence, RuntimeKind, UnavailableReason};

use crate::facts::managed_runtime::{Locked, ManagedRuntime, Seen};
use crate::wording::{duration, plural};
use crate::words::Words;

/// "a JVM (OpenJDK 17.0.15)", "a Go program (go1.19.8)", "CPython 3.11".
/// "a JVM (OpenJDK 17.0.9)", "CPython 3.11": the runtime, with its article in a sentence
/// (`article`), without as a value.
fn what(f: &ManagedRuntime, article: bool) -> String {
    let v = f.version.as_ref().map(|v| v.escaped().into_owned());
    let a = if article { "a " } else { "" };
    match (f.kind, v) {
        (RuntimeKind::Jvm, Some(v)) => format!("{a}JVM (OpenJDK {v})"),
        (RuntimeKind::Go, Some(v)) => format!("{a}Go program ({v})"),
        (RuntimeKind::Cpython, Some(v)) => format!("CPython {v}"),
        (kind, _) => format!("{a}{}", kind.label()),
    }
}

/// What the kernel shows of it, for the summary.
fn kernel_view(f: &ManagedRuntime) -> String {
    let lock = match f.kind {
        RuntimeKind::Jvm => "its locks (Java monitors) are inside the runtime",
        RuntimeKind::Go => "its locks (sync.Mutex) and goroutines are inside the runtime",
        _ => "its locks are inside the interpreter",
    };
    let waits = if f.kernel_waiting == 0 {
        "the kernel shows only its threads' waits".to_string()
    } else if f.kernel_futex == f.kernel_waiting {
        format!(
            "the kernel shows only futex waits ({})",
            plural(u64::from(f.kernel_waiting), "thread", "threads")
        )
    } else {
        format!(
            "the kernel shows only futex waits and other sleeps ({} waiting, {} in a futex)",
            plural(u64::from(f.kernel_waiting), "thread", "threads"),
            f.kernel_futex
        )
    };
    format!("{lock}, {waits}")
}

/// A Java or Python thread's name in quotes, as the runtime's dump prints it; a goroutine as
/// its name is given, "goroutine 6".
fn name_words(kind: RuntimeKind, name: &hangscope_model::Text) -> String {
    if kind == RuntimeKind::Go {
        name.escaped().into_owned()
    } else {
        format!("\"{}\"", name.escaped())
    }
}

fn thread_words(kind: RuntimeKind, t: &Locked) -> String {
    let mut s = name_words(kind, &t.name);
    if let Some(l) = &t.waits_for {
        s.push_str(&format!(" waits for {}", l.escaped()));
    }
    if let Some(h) = &t.held_by {
        s.push_str(&format!(" held by \"{}\"", h.escaped()));
    }
    if let Some(at) = &t.at {
        s.push_str(&format!(" at {}", at.escaped()));
    }
    s
}

fn lock_words(kind: RuntimeKind, threads: &[Locked]) -> String {
    let shown: Vec<String> = threads
        .iter()
        .take(4)
        .map(|t| thread_words(kind, t))
        .collect();
    let more = threads.len().saturating_sub(4);
    if more > 0 {
        format!("{}, and {more} more", shown.join("; "))
    } else {
        shown.join("; ")
    }
}

fn unavailable_next(
    f: &ManagedRuntime,
    reason: UnavailableReason,
    catches: Option<bool>,
) -> String {
    let pid = f.pid;
    match f.kind {
        RuntimeKind::Jvm => match (reason, catches) {
            (UnavailableReason::NoAttachListener, Some(false)) => format!(
                "Do not run jcmd on it: its attach listener starts on SIGQUIT, which this JVM \
                 does not catch (-Xrs?), so SIGQUIT would kill it. Start the JVM with \
                 -XX:+StartAttachListener next time, or read it with `jhsdb jstack --pid {pid}` \
                 (which stops it while it reads)."
            ),
            (UnavailableReason::NoAttachListener, _) => format!(
                "Get its thread dump: `jcmd {pid} Thread.print` (as root or its user), or \
                 `hangscope {pid} --jvm-attach`; either starts the attach listener as jcmd \
                 does, with a trigger file in its /tmp and a SIGQUIT, which this JVM catches \
                 and takes as the request. Then look for \"Found one Java-level deadlock\"."
            ),
            _ => format!(
                "Get its thread dump: `jcmd {pid} Thread.print` (as root or its user) and look \
                 for \"Found one Java-level deadlock\" and BLOCKED threads."
            ),
        },
        RuntimeKind::Go => format!(
            "Expose net/http/pprof (import _ \"net/http/pprof\" and serve it on 127.0.0.1) and \
             run hangscope again, or attach a debugger: `dlv attach {pid}`, then `goroutines \
             -t` (the program is stopped while dlv is attached). Never send it SIGQUIT: a Go \
             program dumps its goroutines and exits."
        ),
        _ => format!(
            "Install py-spy and run `py-spy dump --nonblocking --pid {pid}` (it reads the \
             interpreter's memory without stopping it), then look for threads in acquire()."
        ),
    }
}

/// "futex()", or "futex() in a loop: futex timeout 574 ms, ~1.0/s".
fn kernel_call(t: &Locked) -> Option<String> {
    let sc = t.kernel_syscall.as_deref()?;
    Some(match &t.kernel_loop {
        Some(l) => format!(
            "{sc}() in a loop: {}",
            hangscope_model::units::looping(&l.looping, l.rate_per_s)
        ),
        None => format!("{sc}()"),
    })
}

pub(crate) fn words(f: &ManagedRuntime) -> Words {
    let who = format!("This is {}", what(f, true));
    let mut evidence = vec![Evidence::new(
        "runtime",
        what(f, false),
        f.recognised_by.escaped().into_owned(),
    )];
    if f.kernel_waiting > 0 {
        evidence.push(Evidence::new(
            "kernel view",
            format!(
                "{} waiting in a call for at least 1 s ({} in a futex), the longest {}",
                plural(u64::from(f.kernel_waiting), "thread", "threads"),
                f.kernel_futex,
                duration(f.longest_wait_ms)
            ),
            format!("/proc/{}/task/*/syscall", f.pid),
        ));
    }
    let mut ruled_out = Vec::new();
    let (summary, next_step) = match &f.seen {
        Seen::Deadlock { tool, threads } => {
            for t in threads {
                let kernel = match (kernel_call(t), t.kernel_blocked_ms, t.tid) {
                    (Some(c), Some(ms), Some(tid)) => {
                        format!(
                            "; thread {tid} in the kernel: {c} for at least {}",
                            duration(ms)
                        )
                    }
                    (Some(c), None, Some(tid)) => format!("; thread {tid} in the kernel: {c}"),
                    _ => String::new(),
                };
                evidence.push(Evidence::new(
                    "Java thread",
                    format!("{}, {}{kernel}", thread_words(f.kind, t), t.state.escaped()),
                    tool.escaped().into_owned(),
                ));
            }
            let cycle: Vec<String> = threads
                .iter()
                .map(|t| match &t.held_by {
                    Some(h) => format!(
                        "\"{}\" waits for a lock held by \"{}\"",
                        t.name.escaped(),
                        h.escaped()
                    ),
                    None => format!("\"{}\" waits for a lock", t.name.escaped()),
                })
                .collect();
            (
                format!(
                    "{who}: {}, but its own thread dump found a Java-level deadlock: {}; none \
                     of them can go on.",
                    kernel_view(f),
                    cycle.join(", and ")
                ),
                format!(
                    "Change the code so these threads take the locks in one order (see their \
                     frames: `jcmd {} Thread.print`); a Java monitor deadlock does not end by \
                     itself: restart the JVM to recover.",
                    f.pid
                ),
            )
        }
        Seen::LockWaits {
            tool,
            threads,
            lasted_ms,
            threads_total,
            ..
        } => {
            for t in threads {
                let minutes = t
                    .wait_minutes
                    .map(|m| format!(", {m} min as the runtime counts"))
                    .unwrap_or_default();
                evidence.push(Evidence::new(
                    if f.kind == RuntimeKind::Go {
                        "goroutine"
                    } else {
                        "thread"
                    },
                    format!(
                        "{}, [{}]{minutes}",
                        thread_words(f.kind, t),
                        t.state.escaped()
                    ),
                    tool.escaped().into_owned(),
                ));
            }
            let n = threads.len() as u64;
            let unit = if f.kind == RuntimeKind::Go {
                plural(n, "goroutine", "goroutines")
            } else {
                plural(n, "thread", "threads")
            };
            let lasted = match lasted_ms {
                Some(ms) => format!(" for at least {}", duration(*ms)),
                None => String::new(),
            };
            let lock = if f.kind == RuntimeKind::Go {
                "to lock sync.Mutex"
            } else {
                "for a lock"
            };
            (
                format!(
                    "{who}: {}; its own {} shows {unit} (of {threads_total}) waiting \
                     {lock}{lasted}: {}.",
                    kernel_view(f),
                    if f.kind == RuntimeKind::Go {
                        "goroutine dump (pprof)"
                    } else {
                        "dump"
                    },
                    lock_words(f.kind, threads)
                ),
                match lasted_ms {
                    Some(_) if f.kind == RuntimeKind::Cpython => format!(
                        "Find the thread that holds each of those locks: every thread's frames \
                         ({}) show which one is inside the `with` block or between the \
                         acquire and release; threads waiting for locks each other holds are a \
                         lock-order deadlock, which only a restart ends.",
                        crate::facts::managed_runtime::command(f)
                    ),
                    Some(_) => format!(
                        "Find the goroutine that holds each of those mutexes in the full dump: \
                         {}; goroutines waiting for locks each other holds are a lock-order \
                         deadlock, which only a restart ends.",
                        crate::facts::managed_runtime::command(f)
                    ),
                    None => format!(
                        "Take the dump again ({}): a goroutine or thread still waiting there is \
                         stuck, one gone was contention.",
                        crate::facts::managed_runtime::command(f)
                    ),
                },
            )
        }
        Seen::Nothing {
            tool,
            threads_total,
            ..
        } => {
            ruled_out.push(format!(
                "a lock wait inside the runtime: its own dump ({}) shows none of its {threads_total} \
                 threads waiting for a lock",
                tool.escaped()
            ));
            (
                format!(
                    "{who}: {}; its own dump ({}) shows no deadlock and no thread waiting for a \
                     lock.",
                    kernel_view(f),
                    tool.escaped()
                ),
                String::new(),
            )
        }
        Seen::Unavailable {
            why,
            catches_sigquit,
        } => {
            evidence.push(Evidence::new(
                "runtime's own view",
                format!("not read: {}", why.detail.escaped()),
                "hangscope".to_string(),
            ));
            if let Some(c) = catches_sigquit {
                evidence.push(Evidence::new(
                    "catches SIGQUIT",
                    if *c {
                        "yes"
                    } else {
                        "no (SIGQUIT would kill it)"
                    }
                    .to_string(),
                    format!("/proc/{}/status: SigCgt", f.pid),
                ));
            }
            let missing = match why.reason {
                UnavailableReason::NoAttachListener => {
                    "its attach listener is not running".to_string()
                }
                UnavailableReason::ToolAbsent => "py-spy is not installed".to_string(),
                UnavailableReason::NoEndpoint => {
                    "it serves no pprof endpoint hangscope could reach".to_string()
                }
                UnavailableReason::Disabled => "it was not asked (--no-runtime-tools)".to_string(),
                UnavailableReason::Deadline => "no time was left to ask it".to_string(),
                _ => format!("asking it failed ({})", why.detail.escaped_cut(120)),
            };
            (
                format!(
                    "{who}: {}, so whether a thread is stuck on a lock cannot be told from \
                     the kernel, and the runtime's own view was not read: {missing}.",
                    kernel_view(f)
                ),
                unavailable_next(f, why.reason, *catches_sigquit),
            )
        }
    };
    Words {
        summary,
        evidence,
        ruled_out,
        next_step,
    }
}
