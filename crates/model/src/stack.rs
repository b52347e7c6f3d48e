//! A thread's user-space stack, unwound from a copy of its memory (since 1.6).

use serde::{Deserialize, Serialize};

use crate::Text;

/// How the registers the unwinding started from were obtained.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StackSource {
    /// SP and PC from /proc/PID/task/TID/syscall, the stack copied with process_vm_readv:
    /// the thread was never stopped.
    #[default]
    Syscall,
    /// Registers taken in a brief ptrace stop (`--stacks=stop`).
    Stopped,
}

/// The frames of one thread, innermost first (since 1.6, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct UserStack {
    /// How the registers the walk started from were taken: `syscall` (from the syscall file, the
    /// thread never stopped) or `stopped` (a brief ptrace stop, `--stacks=stop`, since 1.7).
    pub source: StackSource,
    /// The frames, innermost first.
    pub frames: Vec<Frame>,
    /// Why the unwinding stopped before the outermost frame, e.g. "return address 0x... is in
    /// no known module"; `None` when it reached the thread's first function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    /// The frame pointer was not known at the syscall and was guessed from the stack copy to
    /// go on past a frame-pointer frame.
    #[serde(skip_serializing_if = "crate::is_false")]
    pub frame_pointer_guessed: bool,
    /// How long the thread was stopped, microseconds, to PTRACE_DETACH's return: since
    /// PTRACE_INTERRUPT until 1.11; since 1.12 from the last look that found it not yet stopped
    /// (a thread waiting for a CPU enters the stop late, and is not held meanwhile). An upper
    /// bound either way (`--stacks=stop` only; in the schema since 1.6, set since 1.7); absent
    /// for a stack from a copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_us: Option<u64>,
}

/// The managed runtime's side of a thread (since 1.7): what the thread is to the runtime, and
/// the interpreter's own frames where a tool gave them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ThreadRuntime {
    /// "Go", "Java thread", "JVM compiler thread", "JVM internal thread", "Python".
    pub role: Text,
    /// Frames of the native stack in anonymous executable memory (no module): a JVM's
    /// JIT-compiled Java code, which the native unwinding cannot name.
    #[serde(skip_serializing_if = "crate::is_zero")]
    pub jit_frames: u32,
    /// Python: the interpreter's frames from `py-spy dump --nonblocking --json`, innermost
    /// first, e.g. "worker (deadlock.py:5)".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<Text>,
}

/// One frame. Inlined functions come as frames of their own at the same address, the
/// innermost first, with `inlined` set (since 1.6, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Frame {
    /// The address in the target: the PC for the innermost frame, a return address otherwise.
    pub address: u64,
    /// The file mapped there, as /proc/PID/maps names it; `None` for anonymous code (JIT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<Text>,
    /// The address relative to the module's ELF addresses (what addr2line -e MODULE takes).
    pub offset: u64,
    /// The function, demangled; `None` when no symbol covers the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<Text>,
    /// The source file of the code at the address, from the module's DWARF line table; `None`
    /// without debug information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Text>,
    /// The line in `file`, from the same table; `None` without debug information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// This frame is a function inlined into the next one out, at the same address.
    #[serde(skip_serializing_if = "crate::is_false")]
    pub inlined: bool,
    /// Not on the stack: a function that ended in a tail call to the next-inner frame's,
    /// rebuilt from the DWARF call-site records of its caller and of itself (since 1.8). Its
    /// address is the return address of that jump.
    #[serde(skip_serializing_if = "crate::is_false")]
    pub tail_call: bool,
}

impl Frame {
    /// "fetch_reply (client.c:88)", "poll", or "libc.so.6+0x10a3f" without a symbol; the file
    /// by its last component. Escaping is the caller's (these are the target's strings).
    pub fn short(&self) -> String {
        let name = match &self.function {
            Some(f) => f.as_str().to_string(),
            None => {
                let m = self
                    .module
                    .as_ref()
                    .map(|m| m.as_str().rsplit('/').next().unwrap_or("").to_string())
                    .unwrap_or_else(|| "?".into());
                format!("{m}+{:#x}", self.offset)
            }
        };
        let place = match (&self.file, self.line) {
            (Some(f), Some(l)) => {
                let base = f.as_str().rsplit('/').next().unwrap_or("");
                format!("{name} ({base}:{l})")
            }
            _ => name,
        };
        // Not read from the stack: the reader must see it was inferred.
        if self.tail_call {
            format!("{place} [tail call, inferred]")
        } else {
            place
        }
    }
}

/// What a thread waiting in futex() waits for, told by the synchronisation function its
/// stack is in: the futex word alone does not say (a condition variable's word + 8 can hold a
/// thread id as a mutex's owner field does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncWait {
    Mutex,
    Condvar,
    RwLock,
    /// For a thread to end (pthread_join, a Rust JoinHandle).
    Join,
    Semaphore,
    Barrier,
    /// For an unpark (Rust's `thread::park`, what its channels and Once wait in).
    Park,
    /// For a one-time initialisation another thread runs (pthread_once, Rust's Once).
    Once,
}

impl SyncWait {
    /// "a condition variable".
    pub fn what(self) -> &'static str {
        match self {
            SyncWait::Mutex => "a mutex",
            SyncWait::Condvar => "a condition variable",
            SyncWait::RwLock => "a read-write lock",
            SyncWait::Join => "a thread to end",
            SyncWait::Semaphore => "a semaphore",
            SyncWait::Barrier => "a barrier",
            SyncWait::Park => "an unpark",
            SyncWait::Once => "a one-time initialisation",
        }
    }

    /// The primitive a function is part of, by its (demangled) name: glibc's, as its symbols
    /// and DWARF name them (`___pthread_cond_wait`, `__GI___pthread_mutex_lock`,
    /// `__lll_lock_wait`), and Rust std's and parking_lot's. C++'s std::mutex and
    /// std::condition_variable wait inside glibc's.
    pub fn of_function(name: &str) -> Option<SyncWait> {
        let c = name.trim_start_matches('_');
        let c = c.strip_prefix("GI_").unwrap_or(c).trim_start_matches('_');
        // glibc's functions by the start of their names, underscores and `GI_` aside.
        const GLIBC: [(&[&str], SyncWait); 7] = [
            (
                &["pthread_mutex_", "lll_lock", "lll_robust", "lll_mutex"],
                SyncWait::Mutex,
            ),
            (&["pthread_cond_"], SyncWait::Condvar),
            (&["pthread_rwlock_"], SyncWait::RwLock),
            (
                &["pthread_join", "pthread_clockjoin", "pthread_timedjoin"],
                SyncWait::Join,
            ),
            (
                &["sem_wait", "sem_timedwait", "sem_clockwait", "new_sem_wait"],
                SyncWait::Semaphore,
            ),
            (&["pthread_barrier_wait"], SyncWait::Barrier),
            (&["pthread_once"], SyncWait::Once),
        ];
        if let Some(&(_, kind)) = GLIBC
            .iter()
            .find(|(starts, _)| starts.iter().any(|p| c.starts_with(p)))
        {
            return Some(kind);
        }
        if !name.contains("::") {
            return None;
        }
        // Rust: std::sys::sync::mutex::futex::Mutex::lock_contended,
        // parking_lot::raw_mutex::RawMutex::lock_slow, ...::Condvar::wait_optional_timeout.
        if name.contains("Mutex") && name.contains("::lock") {
            Some(SyncWait::Mutex)
        } else if name.contains("Condvar::wait") {
            Some(SyncWait::Condvar)
        } else if name.contains("RwLock") && (name.contains("::read") || name.contains("::write")) {
            Some(SyncWait::RwLock)
        } else if name.contains("Parker::park") || name.contains("thread::park") {
            Some(SyncWait::Park)
        } else if name.contains("Once::call") || name.contains("once::futex::Once") {
            Some(SyncWait::Once)
        } else {
            None
        }
    }
}

/// How far from the syscall the synchronisation function is looked for: it calls the futex
/// wrapper directly or through a helper or two.
const SYNC_FRAMES: usize = 12;

impl UserStack {
    /// The synchronisation primitive the thread waits in, and the frame that says so: the
    /// innermost frame that is one decides (a condition variable's wait re-takes its mutex
    /// inside itself after waking: that thread waits for the mutex).
    pub fn sync_wait(&self) -> Option<(SyncWait, &Frame)> {
        self.frames.iter().take(SYNC_FRAMES).find_map(|f| {
            let kind = SyncWait::of_function(f.function.as_ref()?.as_str())?;
            Some((kind, f))
        })
    }

    /// The frames that say what the code was doing: from the first one outside the C
    /// library's and the dynamic loader's wrappers around the syscall (all of them when
    /// every frame is in those), at most `max`, as [`Frame::short`] gives them.
    pub fn path(&self, max: usize) -> Vec<String> {
        let wrapper = |f: &Frame| {
            f.module.as_ref().is_some_and(|m| {
                let base = m.as_str().rsplit('/').next().unwrap_or("");
                ["libc.so", "libc-", "libpthread", "ld-linux", "libstdc++"]
                    .iter()
                    .any(|p| base.starts_with(p))
            })
        };
        let start = self.frames.iter().position(|f| !wrapper(f)).unwrap_or(0);
        self.frames
            .iter()
            .skip(start)
            .take(max)
            .map(Frame::short)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(module: &str, function: Option<&str>, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            module: Some(module.into()),
            function: function.map(Into::into),
            file: file.map(Into::into),
            line,
            offset: 0x10a3f,
            ..Frame::default()
        }
    }

    #[test]
    fn path_skips_the_syscall_wrappers() {
        let s = UserStack {
            frames: vec![
                frame(
                    "/lib/x86_64-linux-gnu/libc.so.6",
                    Some("__GI___poll"),
                    None,
                    None,
                ),
                frame(
                    "/srv/client",
                    Some("wait_for_socket"),
                    Some("/src/net.c"),
                    Some(12),
                ),
                frame(
                    "/srv/client",
                    Some("fetch_reply"),
                    Some("/src/client.c"),
                    Some(88),
                ),
                frame("/srv/client", None, None, None),
            ],
            ..UserStack::default()
        };
        assert_eq!(
            s.path(3),
            [
                "wait_for_socket (net.c:12)",
                "fetch_reply (client.c:88)",
                "client+0x10a3f"
            ]
        );
        let only_libc = UserStack {
            frames: vec![frame("/lib/libc.so.6", Some("clone3"), None, None)],
            ..UserStack::default()
        };
        assert_eq!(only_libc.path(3), ["clone3"]);
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;

    fn stack(names: &[&str]) -> UserStack {
        UserStack {
            frames: names
                .iter()
                .map(|n| Frame {
                    function: Some((*n).into()),
                    ..Frame::default()
                })
                .collect(),
            ..UserStack::default()
        }
    }

    fn kind(names: &[&str]) -> Option<SyncWait> {
        stack(names).sync_wait().map(|(k, _)| k)
    }

    /// Stacks as gdb and hangscope name them on glibc 2.36 (tests/fixtures/stacks/blocked.c),
    /// Rust std and C++.
    #[test]
    fn the_innermost_synchronisation_function_names_the_wait() {
        let futex = [
            "__futex_abstimed_wait_common64",
            "__futex_abstimed_wait_common",
            "__GI___futex_abstimed_wait_cancelable64",
        ];
        fn with<'a>(futex: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
            futex.iter().chain(rest).copied().collect()
        }
        assert_eq!(
            kind(&with(
                &futex,
                &[
                    "__pthread_cond_wait_common",
                    "___pthread_cond_wait",
                    "wait_for_work"
                ]
            )),
            Some(SyncWait::Condvar)
        );
        assert_eq!(
            kind(&with(&futex, &["__pthread_clockjoin_ex", "main"])),
            Some(SyncWait::Join)
        );
        assert_eq!(
            kind(&[
                "__lll_lock_wait",
                "___pthread_mutex_lock",
                "std::mutex::lock",
                "take"
            ]),
            Some(SyncWait::Mutex)
        );
        // Woken, the condition variable's wait re-takes the mutex: it waits for the mutex.
        assert_eq!(
            kind(&[
                "__lll_lock_wait",
                "__pthread_mutex_cond_lock",
                "___pthread_cond_wait"
            ]),
            Some(SyncWait::Mutex)
        );
        assert_eq!(
            kind(&[
                "std::sys::pal::unix::futex::futex_wait",
                "std::sys::sync::mutex::futex::Mutex::lock_contended",
                "std::sync::poison::mutex::Mutex<T>::lock",
            ]),
            Some(SyncWait::Mutex)
        );
        assert_eq!(
            kind(&[
                "std::sys::pal::unix::futex::futex_wait",
                "std::sys::sync::condvar::futex::Condvar::wait_optional_timeout",
            ]),
            Some(SyncWait::Condvar)
        );
        assert_eq!(
            kind(&["std::sys::sync::rwlock::futex::RwLock::write_contended"]),
            Some(SyncWait::RwLock)
        );
        assert_eq!(
            kind(&["sem_clockwait", "worker"]),
            Some(SyncWait::Semaphore)
        );
        assert_eq!(kind(&with(&futex, &["worker", "start_thread"])), None);
        assert_eq!(kind(&[]), None);
    }
}
