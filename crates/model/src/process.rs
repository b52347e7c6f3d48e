use serde::{Deserialize, Serialize};

use crate::Text;

/// The machine the snapshot was taken on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Host {
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
    pub pid: i32,
    /// `comm`, at most 15 bytes.
    pub name: Text,
    pub cmdline: Vec<Text>,
    /// readlink of /proc/PID/exe.
    pub exe: Option<Text>,
    pub ppid: i32,
    /// The parent's `comm`, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_name: Option<Text>,
    /// One letter from /proc/PID/stat: R S D T t Z X I.
    pub state: String,
    pub uid: Option<u32>,
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
}

/// A child process, as its parent's wait sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Child {
    pub pid: i32,
    pub name: Text,
    /// Its state letter: R S D T t Z.
    pub state: String,
}

/// A process attached with ptrace to another.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Tracer {
    pub pid: i32,
    /// Its `comm`, when readable, e.g. "gdb".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Its state letter, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A cgroup freezer that holds the process: cgroup v2's `cgroup.freeze`, or v1's freezer
/// controller (`freezer.state`), as el7 hosts have it.
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
