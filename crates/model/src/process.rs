use serde::{Deserialize, Serialize};

use crate::Text;

/// The machine the snapshot was taken on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Host {
    /// The host's name, `uname -n` (nodename); empty when unreadable.
    pub hostname: String,
    /// `uname -r`, e.g. "6.18.44".
    pub kernel: String,
    /// "x86_64", "aarch64", ...
    pub arch: String,
    /// CLOCK_MONOTONIC at collection start, in nanoseconds; the clock of `sched`'s exec_start.
    pub monotonic_ns: u64,
}

/// The target process (thread group).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Process {
    /// The target's process ID, as hangscope's PID namespace numbers it.
    pub pid: i32,
    /// `comm`, at most 15 bytes.
    pub name: Text,
    /// The arguments, from /proc/PID/cmdline (NUL-separated); empty for a kernel thread, a zombie
    /// or when unreadable.
    pub cmdline: Vec<Text>,
    /// readlink of /proc/PID/exe.
    pub exe: Option<Text>,
    /// The parent's PID, from /proc/PID/stat.
    pub ppid: i32,
    /// The parent's `comm`, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_name: Option<Text>,
    /// One letter from /proc/PID/stat: R S D T t Z X I.
    pub state: String,
    /// The real user ID, from `Uid` in /proc/PID/status; `None` when unreadable.
    pub uid: Option<u32>,
    /// The number of threads, from /proc/PID/stat (may exceed `threads` when the deadline cut the
    /// listing).
    pub num_threads: u32,
    /// A kernel thread (no user space, no fds, no system calls).
    #[serde(skip_serializing_if = "crate::is_false")]
    pub kernel_thread: bool,
    /// Seconds since the process started.
    pub age_s: Option<f64>,
    /// Inode of /proc/PID/ns/net; equal to the tool's own when `netns_is_host`.
    pub netns_inode: Option<u64>,
    /// Whether the target shares hangscope's network namespace.
    pub netns_same_as_tool: Option<bool>,
    /// The name `ip netns` knows the target's network namespace by (a bind mount under
    /// /run/netns of the same inode), when it has one (since 1.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns_name: Option<String>,
    /// PIDs of the process in each nested PID namespace, outermost first (NSpid).
    pub nspid: Vec<i32>,
    /// Number of open fds (may exceed `Snapshot::fds` when the deadline cut the listing).
    pub fd_count: u32,
    /// The soft RLIMIT_NOFILE, when readable.
    pub fd_limit: Option<u64>,
    /// The process that traces it (ptrace: a debugger, strace), from `TracerPid` in
    /// /proc/PID/status (since 1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracer: Option<Tracer>,
    /// The cgroup freezer holding it, when its cgroup is frozen or freezing (since 1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freezer: Option<Freezer>,
    /// The children a thread waits for (wait4, waitid); read only when one does (since 1.5).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Child>,
    /// The managed runtime it runs in (JVM, Go, CPython), when recognised (since 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
}

/// A child process, as its parent's wait sees it (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Child {
    /// The child's PID.
    pub pid: i32,
    /// The child's `comm`.
    pub name: Text,
    /// Its state letter: R S D T t Z.
    pub state: String,
}

/// A process attached with ptrace to another (since 1.4, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Tracer {
    /// Its PID, `TracerPid` from the traced process's /proc/PID/status.
    pub pid: i32,
    /// Its `comm`, when readable, e.g. "gdb".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Its state letter, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A cgroup freezer that holds the process: cgroup v2's `cgroup.freeze`, or v1's freezer
/// controller (`freezer.state`), as el7 hosts have it (since 1.4, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Freezer {
    /// 2 for the unified hierarchy, 1 for the v1 freezer controller.
    pub version: u8,
    /// The process's cgroup, as /proc/PID/cgroup names it, e.g. "/batch/job-7".
    pub cgroup: String,
    /// Frozen, or still freezing (a task has not stopped yet).
    pub frozen: bool,
    /// The files whose setting freezes it, nearest cgroup first: write 0 to a v2
    /// `cgroup.freeze`, THAWED to a v1 `freezer.state`, to let it run.
    pub set_in: Vec<String>,
}

/// The managed runtime a process runs in, whose locks and threads the kernel does not see: a
/// JVM's monitors, Go's goroutines and sync.Mutex, CPython's GIL and threading locks all wait
/// in futexes (or an epoll) with timeouts, so kernel state alone shows only sleeping threads
/// (since 1.5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Runtime {
    /// Which runtime: `jvm`, `go`, `cpython`, or `other` for one this reader does not know.
    pub kind: RuntimeKind,
    /// "17.0.15" (JVM), "go1.19.8" (Go), "3.11" (CPython), when it could be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Text>,
    /// What it was recognised by, e.g. "/proc/PID/maps: /usr/lib/jvm/.../libjvm.so".
    pub recognised_by: Text,
    /// Go: the main module's path from the build info, e.g. "example.com/server".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<Text>,
    /// Whether the process catches SIGQUIT (`SigCgt` in /proc/PID/status): a JVM does unless
    /// started with -Xrs, and then SIGQUIT (which starts its attach listener) would kill it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catches_sigquit: Option<bool>,
    /// The runtime's own view of its threads, when it was asked for and answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<RuntimeView>,
    /// Why there is no view: the tool is absent, not allowed, or did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<ViewUnavailable>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// A Java virtual machine (HotSpot: libjvm.so).
    Jvm,
    /// A Go program (its executable carries Go build info).
    Go,
    /// The CPython interpreter.
    Cpython,
    #[serde(other)]
    #[default]
    Other,
}

impl RuntimeKind {
    pub fn label(self) -> &'static str {
        match self {
            RuntimeKind::Jvm => "JVM",
            RuntimeKind::Go => "Go program",
            RuntimeKind::Cpython => "CPython interpreter",
            RuntimeKind::Other => "managed runtime",
        }
    }
}

/// What the runtime said about its own threads (a thread dump, a goroutine profile; since
/// 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RuntimeView {
    /// How it was asked, as a person would do it, e.g. "jcmd 4242 Thread.print (HotSpot
    /// attach API, /proc/4242/root/tmp/.java_pid4242)".
    pub tool: Text,
    /// The command alone, to run it again, e.g. "jcmd 4242 Thread.print" (since 1.10; a
    /// document before has it from `tool`'s words).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// How long the answer took, milliseconds.
    pub took_ms: u64,
    /// Deadlocks the runtime itself found (HotSpot's "Found one Java-level deadlock").
    pub deadlocks: Vec<RuntimeDeadlock>,
    /// The threads (goroutines) that wait on a lock, and those the kernel showed waiting
    /// (matched by native thread id); at most 64.
    pub threads: Vec<RuntimeThread>,
    /// How many threads (goroutines) the dump listed in all.
    pub threads_total: u32,
    /// Go: the time between two goroutine dumps, over the sampling window; a goroutine in
    /// the same wait in both has waited at least this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub between_dumps_ms: Option<u64>,
}

/// One cycle of threads each waiting for a lock the next holds (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RuntimeDeadlock {
    /// The cycle, one link per waiting thread, in the runtime's order.
    pub links: Vec<DeadlockLink>,
}

/// "Thread-1" waits to lock monitor 0x7f.. (object 0x.., a java.lang.Object), held by
/// "Thread-0" (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct DeadlockLink {
    /// The waiting thread, by the name the runtime gives it.
    pub thread: Text,
    /// The lock, as the runtime names it.
    pub waits_for: Text,
    /// The thread holding `waits_for`, by the name the runtime gives it.
    pub held_by: Text,
}

/// A thread (or goroutine) as the runtime describes it (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RuntimeThread {
    /// The thread's name ("worker-1"), or "goroutine 18".
    pub name: Text,
    /// The native thread id (HotSpot's nid), as the target's PID namespace numbers it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// "BLOCKED (on object monitor)", "semacquire", "sync.Mutex.Lock".
    pub state: Text,
    /// The lock it waits for, e.g. "<0x000000062ac3e8b0> (a java.lang.Object)" or
    /// "sync.(*Mutex).Lock".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<Text>,
    /// Go: how long the goroutine has waited, as the runtime counts it (whole minutes, shown
    /// from one minute on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_minutes: Option<u64>,
    /// Go: in the same wait in two dumps `between_dumps_ms` apart.
    #[serde(skip_serializing_if = "crate::is_false")]
    pub same_in_both_dumps: bool,
    /// The innermost frames of its own code (at most 4), e.g. "Deadlock.lambda$main$1
    /// (Deadlock.java:21)", "main.worker (/tmp/x/main.go:17)".
    pub frames: Vec<Text>,
}

/// Why the runtime's own view is missing (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ViewUnavailable {
    /// Why, as a kind: `disabled`, `no_attach_listener`, `no_endpoint`, `tool_absent`, `timed_out`,
    /// `deadline` or `failed`.
    pub reason: UnavailableReason,
    /// The error or explanation, e.g. "/proc/4242/root/tmp/.java_pid4242 does not exist".
    pub detail: Text,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableReason {
    /// Not asked: `--no-runtime-tools`, or a replayed snapshot.
    Disabled,
    /// The JVM's attach listener is not running (no socket), and starting it takes a SIGQUIT.
    NoAttachListener,
    /// No pprof endpoint answered on the process's own listeners (or it has none).
    NoEndpoint,
    /// The tool is not installed (py-spy).
    ToolAbsent,
    /// Asked, and the answer did not come in time.
    TimedOut,
    /// No time was left before the run's deadline.
    Deadline,
    /// Asked, and it failed or answered something else.
    #[serde(other)]
    #[default]
    Failed,
}
