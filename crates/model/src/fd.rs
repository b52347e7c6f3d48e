//! Open file descriptors: /proc/PID/fd (readlink) and /proc/PID/fdinfo.

use serde::{Deserialize, Serialize};

use crate::Text;

/// One open file descriptor of the target, from /proc/PID/fd and /proc/PID/fdinfo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fd {
    /// The fd number.
    pub fd: i32,
    /// What it refers to, from the link text (and a statx for paths): `regular`, `directory`,
    /// `socket`, `pipe`, `eventpoll`, ... (see `FdKind`).
    pub kind: FdKind,
    /// The readlink target as the kernel printed it, e.g. "/var/log/x.log", `socket:[692518610]`,
    /// `anon_inode:[eventpoll]`. The kernel's " (deleted)" mark is stripped into `deleted`,
    /// except where a statx shows the file still has a link: then it is part of the name.
    pub target: Text,
    /// The file was unlinked: the kernel marked the link " (deleted)" and no statx shows a
    /// remaining link; absent when false.
    #[serde(default, skip_serializing_if = "crate::is_false")]
    pub deleted: bool,
    /// For socket fds: the socket inode, the key into `Snapshot::sockets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_inode: Option<u64>,
    /// For pipe fds: the pipe inode, shared by both ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe_inode: Option<u64>,
    /// For a pipe a thread waits on: the other processes holding it, with the end they hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipe_peers: Vec<PipeEnd>,
    /// The parsed fdinfo; `None` when it was not read (see `Snapshot::gaps`). Boxed, like
    /// `stat`: most fds of a huge target have neither, and an inline one tripled every fd's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Box<FdInfo>>,
    /// Size and device, from a statx that cannot block (local file systems only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<Box<FileStat>>,
    /// Why `stat` is missing for a path fd, e.g. "on nfs4 mount: not stat'ed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat_skipped: Option<String>,
    /// The access mode read from the permission bits of the fd's link in /proc/PID/fd, for a
    /// path fd whose fdinfo was not read (see `Fd::access`; since 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_access: Option<Access>,
    /// The fd now refers to a different object than in an earlier look (reconnects, reopen).
    /// Counts how many times that happened during the window.
    #[serde(default, skip_serializing_if = "crate::is_zero")]
    pub churn: u32,
}

impl Fd {
    /// An fd known only by number, kind and link text; everything else still to be read.
    pub fn new(fd: i32, kind: FdKind, target: impl Into<Text>) -> Fd {
        Fd {
            fd,
            kind,
            target: target.into(),
            deleted: false,
            socket_inode: None,
            pipe_inode: None,
            pipe_peers: Vec::new(),
            info: None,
            stat: None,
            stat_skipped: None,
            link_access: None,
            churn: 0,
        }
    }

    /// How the fd was opened: from fdinfo's flags, else from its link's permission bits.
    pub fn access(&self) -> Option<Access> {
        match &self.info {
            Some(info) => Some(Access::of_flags(info.flags)),
            None => self.link_access,
        }
    }
}

/// An open file description's access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Read,
    Write,
    ReadWrite,
    /// Neither: an O_PATH fd.
    None,
}

impl Access {
    /// From open flags (O_ACCMODE: 0 read, 1 write, 2 read-write; O_PATH: neither).
    pub fn of_flags(flags: u32) -> Access {
        const O_PATH: u32 = 0o10_000_000;
        if flags & O_PATH != 0 {
            return Access::None;
        }
        match flags & 3 {
            0 => Access::Read,
            1 => Access::Write,
            _ => Access::ReadWrite,
        }
    }

    /// lsof's letter for the FD column: none for an O_PATH fd.
    pub fn letter(self) -> Option<char> {
        match self {
            Access::Read => Some('r'),
            Access::Write => Some('w'),
            Access::ReadWrite => Some('u'),
            Access::None => None,
        }
    }

    pub fn writes(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

/// Another process's fd on the same pipe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PipeEnd {
    /// The other process's PID.
    pub pid: i32,
    /// Its `comm`.
    pub name: Text,
    /// Its fd on the pipe.
    pub fd: i32,
    /// "read", "write" or "read-write", from its fdinfo flags; `None` when not readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

/// What an fd refers to. Path fds are typed from a statx where that is safe; `file` means a
/// path whose type was not read (see `Fd::stat_skipped`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    Regular,
    Directory,
    CharDevice,
    BlockDevice,
    Fifo,
    Symlink,
    /// A path whose type was not read.
    File,
    Pipe,
    Socket,
    Eventfd,
    Eventpoll,
    Signalfd,
    Timerfd,
    Inotify,
    Fanotify,
    Pidfd,
    Memfd,
    IoUring,
    Bpf,
    PerfEvent,
    Userfaultfd,
    /// Another anon inode; the name is in `target`.
    AnonInode,
    #[serde(other)]
    Unknown,
}

impl FdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FdKind::Regular => "REG",
            FdKind::Directory => "DIR",
            FdKind::CharDevice => "CHR",
            FdKind::BlockDevice => "BLK",
            FdKind::Fifo => "FIFO",
            FdKind::Symlink => "LINK",
            FdKind::File => "FILE",
            FdKind::Pipe => "PIPE",
            FdKind::Socket => "SOCK",
            FdKind::Eventfd => "eventfd",
            FdKind::Eventpoll => "epoll",
            FdKind::Signalfd => "signalfd",
            FdKind::Timerfd => "timerfd",
            FdKind::Inotify => "inotify",
            FdKind::Fanotify => "fanotify",
            FdKind::Pidfd => "pidfd",
            FdKind::Memfd => "memfd",
            FdKind::IoUring => "io_uring",
            FdKind::Bpf => "bpf",
            FdKind::PerfEvent => "perf_event",
            FdKind::Userfaultfd => "userfaultfd",
            FdKind::AnonInode => "anon",
            FdKind::Unknown => "?",
        }
    }

    /// Files, directories and devices: things with a path.
    pub fn is_path(self) -> bool {
        matches!(
            self,
            FdKind::Regular
                | FdKind::Directory
                | FdKind::CharDevice
                | FdKind::BlockDevice
                | FdKind::Fifo
                | FdKind::Symlink
                | FdKind::File
                | FdKind::Memfd
        )
    }

    pub fn is_anon(self) -> bool {
        !self.is_path() && !matches!(self, FdKind::Pipe | FdKind::Socket | FdKind::Unknown)
    }
}

/// /proc/PID/fdinfo/N, see proc_pid_fdinfo(5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct FdInfo {
    /// File offset (`pos:`).
    pub pos: u64,
    /// Open flags as the kernel printed them (octal, `flags:`).
    pub flags: u32,
    /// `flags` decoded: "O_RDONLY"/"O_WRONLY"/"O_RDWR" first, then O_APPEND, O_NONBLOCK, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags_decoded: Vec<String>,
    /// The mount the file is on (`mnt_id:`, the ID in /proc/PID/mountinfo); absent on kernels
    /// before 3.15.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mnt_id: Option<u64>,
    /// Inode number of the file (`ino:`, since Linux 5.14): matches /proc/locks without a stat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// An eventpoll's watch list (`tfd:` lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub epoll_watches: Vec<EpollWatch>,
    /// An eventfd's counter (`eventfd-count:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eventfd_count: Option<u64>,
    /// A timerfd's settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timerfd: Option<TimerfdSettings>,
    /// A signalfd's mask (`sigmask:`), hex as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigmask: Option<String>,
    /// An inotify's watched inodes (`inotify wd:` lines), as printed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inotify_watches: Vec<String>,
    /// A pidfd's target (`Pid:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pidfd_pid: Option<i32>,
    /// `lock:` lines: the locks held through this open file description, as printed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<String>,
    /// Lines hangscope does not interpret, kept verbatim.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<String>,
}

/// One fd an eventpoll watches: a `tfd:` line of its fdinfo.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct EpollWatch {
    /// The watched fd number in the target.
    pub tfd: i32,
    /// Requested events mask (`events:`), and decoded: EPOLLIN, EPOLLOUT, EPOLLET, ...
    pub events: u32,
    /// `events` as names, e.g. "EPOLLIN", "EPOLLET"; absent when no bit is set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events_decoded: Vec<String>,
    /// The user data word (`data:`), often a pointer or the fd itself.
    pub data: u64,
    /// Inode of the watched file (`ino:`), to spot an fd number reused for another file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
}

/// A timerfd's fdinfo (`clockid:`, `ticks:`, `settime flags:`, `it_value:`, `it_interval:`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TimerfdSettings {
    /// 0 CLOCK_REALTIME, 1 CLOCK_MONOTONIC, 7 CLOCK_BOOTTIME, ...
    pub clockid: i32,
    /// Expirations not read yet (`ticks:`).
    pub ticks: u64,
    /// The flags of its last timerfd_settime (`settime flags:`, printed in octal): 1
    /// TFD_TIMER_ABSTIME, 2 TFD_TIMER_CANCEL_ON_SET.
    pub settime_flags: u32,
    /// Time to next expiry, nanoseconds (0: disarmed).
    pub it_value_ns: u64,
    /// Period, nanoseconds (0: one-shot).
    pub it_interval_ns: u64,
}

/// The few stat fields worth having, read with statx(AT_STATX_DONT_SYNC) on local mounts only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct FileStat {
    /// Size, bytes (stx_size).
    pub size: u64,
    /// "major:minor" of the file system holding the file.
    pub dev: String,
    /// Inode number (stx_ino).
    pub ino: u64,
    /// For devices: "major:minor" of the device itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdev: Option<String>,
    /// Modification time, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime_s: Option<i64>,
    /// File system type of the mount, from mountinfo, e.g. "ext4".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
}
