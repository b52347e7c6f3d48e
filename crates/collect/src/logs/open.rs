//! Opening a log without changing its writer or hanging on it.
//!
//! The file comes as an `O_PATH` fd (a link in /proc/PID/fd, or the end of a `safe_path`
//! walk), which opens nothing: no lease is broken, no fanotify permission event is raised, no
//! file system is called. Then:
//! - a file with a lease on it is not opened: an open breaks a write lease (and a read lease
//!   if for writing), which sends its holder SIGIO and makes it give the lease up. For a file
//!   the target has open, the lease an open could break shows in that fd's fdinfo (see
//!   `lease_in_fdinfo`), read just before the open; for another file (rotated, `--log`), and
//!   where the fdinfo cannot tell, /proc/locks (`LEASE` or `DELEG` on its dev:ino) says;
//! - the real open and the reads (of a file, or of a directory's names) run in a helper
//!   process (`crate::isolate`) that is abandoned after a time limit: a fanotify
//!   `FAN_OPEN_PERM` listener that never answers, or a disk that stopped, would otherwise hold
//!   hangscope in the kernel. A stat raises no fanotify event and, on a local mount, answers
//!   from the inode cache, so stats stay in this process.
//!
//! A lease taken between the look at fdinfo or /proc/locks and the open is not seen. Each read of
//! /proc/locks waits for an RCU grace period (10–20 ms of waiting, see `locks::start`), so the
//! table the collection read at its start is used when it is at most [`LEASES_FRESH`] old (a
//! run with `--window 0`); after a sampling window it is read again. Either way the window is
//! milliseconds.

use std::cell::OnceCell;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hangscope_model::{FileLock, Gap, GapReason, LockAccess, LockClass};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::tail::Tail;
use super::{MAX_LINES, MAX_TAIL_BYTES};
use crate::error::gap_of;
use crate::isolate::{self, Outcome};
use crate::{Deadline, Options, ProcRoot};

/// Time one file's open and read get at most (less when the deadline is nearer): a local
/// file's tail takes milliseconds.
pub const TAIL_LIMIT: Duration = Duration::from_secs(1);

/// The oldest table of leases the opener trusts rather than reading /proc/locks again.
pub const LEASES_FRESH: Duration = Duration::from_millis(250);

pub struct Opener {
    locks_path: PathBuf,
    reader: Option<PathBuf>,
    deadline: Deadline,
    /// Leases and delegations in /proc/locks, read at the first file.
    leases: OnceCell<Vec<FileLock>>,
}

#[derive(Debug)]
pub enum Refusal {
    /// A lease is on the file: what /proc/locks says of it.
    Leased(String),
    /// The helper did not answer within this time.
    TimedOut(Duration),
    Deadline,
    Io(io::Error),
}

impl Refusal {
    /// Why the file was not read, for the log's notes.
    pub fn why(&self) -> String {
        match self {
            Refusal::Leased(l) => format!(
                "a file lease is held on it ({l}): opening it could break the lease and signal \
                 its holder, so it is not opened"
            ),
            Refusal::TimedOut(d) => format!(
                "no answer within {}: an open or read of it blocked: a fanotify permission \
                 listener or a hung file system; the reading process was abandoned",
                hangscope_model::units::duration(*d)
            ),
            Refusal::Deadline => "not read before the deadline".into(),
            Refusal::Io(e) => e.to_string(),
        }
    }

    pub fn gap(&self, what: String) -> Gap {
        match self {
            // It did block: "unsafe to read" says more than a deadline the run has not reached.
            Refusal::Leased(_) | Refusal::TimedOut(_) => {
                Gap::new(what, GapReason::Unsafe, self.why())
            }
            Refusal::Deadline => Gap::new(what, GapReason::Deadline, self.why()),
            Refusal::Io(e) => gap_of(what, e),
        }
    }
}

impl Opener {
    /// `early`: the leases of a /proc/locks read earlier in the collection, used if fresh.
    pub fn new(root: &ProcRoot, opts: &Options, early: Option<crate::locks::Leases>) -> Opener {
        let leases = OnceCell::new();
        if let Some(e) = early.filter(|e| e.read_at.elapsed() <= LEASES_FRESH) {
            let _ = leases.set(e.leases);
        }
        Opener {
            locks_path: root.path().join("locks"),
            reader: opts.reader.clone(),
            deadline: opts.deadline,
            leases,
        }
    }

    /// The bounded tail of the regular file behind the `O_PATH` fd `file`; `fdinfo`, when
    /// the file is one the target has open, is that fd's fdinfo (see [`lease_in_fdinfo`]).
    pub fn tail(&self, file: &OwnedFd, fdinfo: Option<&Path>) -> Result<Tail, Refusal> {
        let st = nix::sys::stat::fstat(file).map_err(|e| Refusal::Io(e.into()))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Refusal::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let dev = format!(
            "{:02x}:{:02x}",
            libc::major(st.st_dev),
            libc::minor(st.st_dev)
        );
        let lease = match fdinfo.and_then(|p| lease_in_fdinfo(p, st.st_ino)) {
            Some(lease) => lease,
            None => self
                .leases()
                .iter()
                .find(|l| l.inode == st.st_ino && l.dev == dev)
                .cloned(),
        };
        if let Some(l) = lease {
            return Err(Refusal::Leased(describe(&l)));
        }
        let limit = TAIL_LIMIT.min(self.deadline.remaining());
        if limit.is_zero() {
            return Err(Refusal::Deadline);
        }
        match isolate::read_tail(self.reader.as_deref(), file.as_fd(), MAX_TAIL_BYTES, limit) {
            Outcome::Done(raw) => Ok(Tail::from_raw(raw, MAX_LINES)),
            Outcome::Failed(e) => Err(Refusal::Io(e)),
            Outcome::TimedOut(d) => Err(Refusal::TimedOut(d)),
        }
    }

    /// At most `max_entries` names in the directory behind the `O_PATH` fd `dir`: its open
    /// can wait on a fanotify listener too.
    pub fn list(&self, dir: &OwnedFd, max_entries: usize) -> Result<Vec<OsString>, Refusal> {
        let limit = TAIL_LIMIT.min(self.deadline.remaining());
        if limit.is_zero() {
            return Err(Refusal::Deadline);
        }
        match isolate::list_dir(self.reader.as_deref(), dir.as_fd(), max_entries, limit) {
            Outcome::Done(names) => Ok(names),
            Outcome::Failed(e) => Err(Refusal::Io(e)),
            Outcome::TimedOut(d) => Err(Refusal::TimedOut(d)),
        }
    }

    fn leases(&self) -> &[FileLock] {
        self.leases.get_or_init(|| {
            // Unreadable, it hides nothing that an open could not already have found: the
            // files are read as before.
            let text = std::fs::read(&self.locks_path).unwrap_or_default();
            let (all, _) = crate::locks::parse_all(&String::from_utf8_lossy(&text));
            crate::locks::Leases::of(&all, std::time::Instant::now()).leases
        })
    }
}

/// The lease an open of a file the target has open could break, from that fd's fdinfo, read
/// just before the open; `None` when the fdinfo cannot tell, and /proc/locks must.
///
/// An open for reading breaks only a write lease (fcntl(2)), and a write lease is granted only
/// to the one open file description of its file (the kernel's check_conflicting_open): while
/// the target has the file open, one that an open could break is held through the target's
/// own description, and its fdinfo's `lock:` lines (Linux 3.14+) list it, as they list every
/// lease and delegation taken through it. The fdinfo is trusted only when its `ino:` line
/// (Linux 5.14+) names the file opened, so the fd was not replaced in between; else, and with
/// [`crate::locks_need::ENV`] set, /proc/locks answers.
fn lease_in_fdinfo(fdinfo: &Path, ino: u64) -> Option<Option<FileLock>> {
    if crate::locks_need::forced() {
        return None;
    }
    let text = std::fs::read_to_string(fdinfo).ok()?;
    let same = text
        .lines()
        .find_map(|l| l.strip_prefix("ino:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        == Some(ino);
    if !same {
        return None;
    }
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix("lock:"))
            .filter_map(|l| crate::locks::parse_line(l.trim()))
            .find(|l| matches!(l.class, LockClass::Lease | LockClass::Delegation)),
    )
}

fn describe(l: &FileLock) -> String {
    let class = if l.class == LockClass::Delegation {
        "DELEG"
    } else {
        "LEASE"
    };
    let access = match l.access {
        LockAccess::Read => "READ",
        LockAccess::Write => "WRITE",
        LockAccess::None => "UNLCK",
        LockAccess::Other => "?",
    };
    let by = l.pid.map(|p| format!(" by pid {p}")).unwrap_or_default();
    format!("{class} {} {access}{by}", l.mode)
}

/// An `O_PATH` fd of `path`, following its links (the magic ones of /proc/PID/fd included):
/// opens nothing, so it breaks no lease and raises no fanotify event.
pub fn open_path(path: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(Into::into)
}
