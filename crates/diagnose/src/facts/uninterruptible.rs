//! The facts of the `uninterruptible` rule (`rules/uninterruptible.rs`): what it found, as data. The rule
//! decides and sets them; `words/uninterruptible.rs` says them.

use hangscope_model::Text;
use serde::Serialize;

use crate::facts::ThreadRef;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct KernelWait {
    pub pid: i32,
    pub thread: ThreadRef,
    /// State D; else S in a file system client's request.
    pub uninterruptible: bool,
    pub stuck_ms: u64,
    /// What its kernel frames say it waits for.
    pub waits_for: WaitsFor,
    /// The syscall it is in, when it is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// The file it waits on, when its syscall names an fd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<WaitedFile>,
    /// /proc/PID/task/TID/wchan, when it names a function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    /// The innermost kernel stack frames (up to 4); empty when the stack was not read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack_top: Vec<String>,
    /// For a FUSE request: the mount and the process serving it, when collect told it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuse: Option<FuseFacts>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FuseFacts {
    pub mount_point: Text,
    pub fs_type: String,
    /// The process holding /dev/fuse for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::facts::Holder>,
    /// How the server was told: "cmdline" or "only_holder".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub matched_by: String,
    /// Processes holding /dev/fuse, when the server could not be told.
    pub holders: Vec<i32>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct WaitedFile {
    pub fd: i32,
    /// The fd's link, e.g. "/mnt/nfs/data.db".
    pub target: Text,
}

/// What a thread the kernel holds waits for, from its kernel frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WaitsFor {
    FuseServer,
    NfsServer,
    SmbServer,
    CephCluster,
    BlockIo,
    FsJournal,
    Kernel,
}
