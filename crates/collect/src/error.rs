use std::io;

use hangscope_model::{Gap, GapReason};

/// Why a process could not be read at all. Partial failures are gaps, not errors.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("no process with PID {0}")]
    NoSuchProcess(i32),
    #[error("process {0} exited while it was being read")]
    Vanished(i32),
    #[error("cannot read process {pid}: {detail} (run as root)")]
    NotPermitted { pid: i32, detail: String },
    #[error(
        "process {pid} exited while it was watched and its PID was taken by another process \
         ({name:?}, started {later_s:.1} s after it): nothing is reported, as the report would \
         mix the two; run hangscope {pid} again to inspect the new process"
    )]
    Reused {
        pid: i32,
        later_s: f64,
        name: String,
    },
    #[error("{0}")]
    Other(String),
}

/// What kind of failure a read met, in the terms a gap's reason uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// A system call failed with this errno.
    Errno(i32),
    /// Read, but not in the form expected.
    Malformed,
    /// Not there to be read on this system or for this object (no unix socket to ask, ...).
    Unsupported,
    /// The run's deadline passed first.
    Deadline,
    /// Anything else: a helper thread that ended without an answer, a search that found
    /// nothing.
    Other,
}

/// A failed read, with what was read (a path, when it has one), the kind of failure and the
/// words a gap shows: one error type for collect's readers and parsers, as procfs's
/// `ProcError` is, instead of strings a caller would have to search for "EPERM".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ReadError {
    pub kind: ReadErrorKind,
    /// The file or object read, when the failure is about one.
    pub path: Option<String>,
    detail: String,
}

impl ReadError {
    pub fn new(kind: ReadErrorKind, detail: impl Into<String>) -> ReadError {
        ReadError {
            kind,
            path: None,
            detail: detail.into(),
        }
    }

    pub fn malformed(detail: impl Into<String>) -> ReadError {
        ReadError::new(ReadErrorKind::Malformed, detail)
    }

    pub fn unsupported(detail: impl Into<String>) -> ReadError {
        ReadError::new(ReadErrorKind::Unsupported, detail)
    }

    pub fn deadline(detail: impl Into<String>) -> ReadError {
        ReadError::new(ReadErrorKind::Deadline, detail)
    }

    pub fn other(detail: impl Into<String>) -> ReadError {
        ReadError::new(ReadErrorKind::Other, detail)
    }

    /// An I/O error, worded "`context`: `err`".
    pub fn io(context: impl std::fmt::Display, err: &io::Error) -> ReadError {
        ReadError::new(err.kind_of(), format!("{context}: {err}"))
    }

    /// An I/O error reading `path`, worded "`path`: `err`".
    pub fn io_at(path: impl std::fmt::Display, err: &io::Error) -> ReadError {
        ReadError::io(&path, err).at(path.to_string())
    }

    /// An I/O error in its own words.
    pub fn of_io(err: &io::Error) -> ReadError {
        ReadError::new(err.kind_of(), err.to_string())
    }

    /// A failed system call, worded "`context`: `errno`" as nix names it ("EPERM: Operation
    /// not permitted").
    pub fn errno(context: impl std::fmt::Display, errno: nix::errno::Errno) -> ReadError {
        ReadError::new(
            ReadErrorKind::Errno(errno as i32),
            format!("{context}: {errno}"),
        )
    }

    /// The same error, about `path`.
    pub fn at(mut self, path: impl Into<String>) -> ReadError {
        self.path = Some(path.into());
        self
    }

    /// A gap for `what`, with the reason of this error's kind and its words.
    pub(crate) fn gap(&self, what: impl Into<String>) -> Gap {
        let errno = match self.kind {
            ReadErrorKind::Errno(n) => Some(n),
            _ => None,
        };
        Gap {
            errno,
            ..Gap::new(what, reason_of(self), self.detail.clone())
        }
    }
}

/// An error that can say what kind of failure it is, for [`reason_of`].
pub(crate) trait Classify {
    fn kind_of(&self) -> ReadErrorKind;
}

impl Classify for io::Error {
    fn kind_of(&self) -> ReadErrorKind {
        if self.kind() == io::ErrorKind::InvalidData {
            return ReadErrorKind::Malformed;
        }
        match self.raw_os_error() {
            Some(n) => ReadErrorKind::Errno(n),
            None => ReadErrorKind::Other,
        }
    }
}

impl Classify for ReadError {
    fn kind_of(&self) -> ReadErrorKind {
        self.kind
    }
}

/// Classifies a failed read (an I/O error from /proc, a netlink or setns failure, a parse)
/// into a gap reason: the one place that is decided.
pub(crate) fn reason_of(err: &(impl Classify + ?Sized)) -> GapReason {
    match err.kind_of() {
        ReadErrorKind::Malformed => GapReason::Malformed,
        ReadErrorKind::Unsupported => GapReason::Unsupported,
        ReadErrorKind::Deadline => GapReason::Deadline,
        ReadErrorKind::Other => GapReason::Other,
        ReadErrorKind::Errno(libc::EACCES | libc::EPERM) => GapReason::Permission,
        ReadErrorKind::Errno(libc::ENOENT | libc::ESRCH) => GapReason::Vanished,
        ReadErrorKind::Errno(
            libc::EINVAL | libc::EOPNOTSUPP | libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT,
        ) => GapReason::Unsupported,
        // A receive timeout (SO_RCVTIMEO), which the deadline sets.
        ReadErrorKind::Errno(libc::EAGAIN) => GapReason::Deadline,
        ReadErrorKind::Errno(_) => GapReason::Other,
    }
}

/// A gap for a failed read of `what`, with the privilege that would help when it is one.
pub(crate) fn gap_of(what: impl Into<String>, err: &io::Error) -> Gap {
    let reason = reason_of(err);
    let gap = Gap::of_errno(what, reason, err);
    if reason == GapReason::Permission {
        gap.needing("root, or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH over the target")
    } else {
        gap
    }
}

/// A gap for a file the operator named (`--log PATH`): its failures are about that path and
/// this process's own permissions, not the target's /proc.
pub(crate) fn named_file_gap(what: impl Into<String>, path: &str, err: &io::Error) -> Gap {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
            Gap::new(what, GapReason::Other, format!("{path} does not exist"))
        }
        Some(libc::EACCES) | Some(libc::EPERM) => Gap::of_errno(what, GapReason::Permission, err)
            .needing(format!(
                "read permission on {path} and search permission on its directories, or \
                 CAP_DAC_READ_SEARCH"
            )),
        _ => Gap::of_errno(what, reason_of(err), err),
    }
}

/// Per-fd read failures, reported as one gap per kind of failure instead of one line per fd:
/// a process with 20,000 fds and no permission must not bury the report.
#[derive(Debug, Default)]
pub(crate) struct FdFailures {
    items: Vec<(i32, io::Error)>,
}

impl FdFailures {
    pub(crate) fn push(&mut self, fd: i32, err: io::Error) {
        self.items.push((fd, err));
    }

    pub(crate) fn extend(&mut self, other: FdFailures) {
        self.items.extend(other.items);
    }

    /// One gap per reason, "what of N fds of PID (fd 3, 4, 9 …)".
    pub(crate) fn into_gaps(self, what: &str, pid: i32) -> Vec<Gap> {
        let mut by_reason: Vec<(GapReason, Vec<i32>, &io::Error)> = Vec::new();
        for (fd, err) in &self.items {
            let reason = reason_of(err);
            match by_reason.iter_mut().find(|(r, _, _)| *r == reason) {
                Some((_, fds, _)) => fds.push(*fd),
                None => by_reason.push((reason, vec![*fd], err)),
            }
        }
        by_reason
            .into_iter()
            .map(|(reason, fds, err)| {
                let shown: Vec<String> = fds.iter().take(5).map(|f| f.to_string()).collect();
                let more = if fds.len() > 5 { " …" } else { "" };
                let gap = Gap::of_errno(
                    format!(
                        "{what} of {} fds of {pid} (fd {}{more})",
                        fds.len(),
                        shown.join(", ")
                    ),
                    reason,
                    err,
                );
                if reason == GapReason::Permission {
                    gap.needing("root, or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH over the target")
                } else {
                    gap
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_error_keeps_its_path_words_and_kind() {
        let gone = io::Error::from_raw_os_error(libc::ENOENT);
        let e = ReadError::io_at("/proc/42/net/unix", &gone);
        assert_eq!(e.path.as_deref(), Some("/proc/42/net/unix"));
        assert_eq!(e.kind, ReadErrorKind::Errno(libc::ENOENT));
        assert_eq!(e.to_string(), format!("/proc/42/net/unix: {gone}"));
        // The same reason as the io::Error it came from: one reason_of for both.
        assert_eq!(reason_of(&e), reason_of(&gone));
        assert_eq!(reason_of(&e), GapReason::Vanished);
        let g = ReadError::malformed("inet_diag_msg of 3 bytes").gap("sock_diag");
        assert_eq!(
            (g.reason, g.detail.as_str()),
            (GapReason::Malformed, "inet_diag_msg of 3 bytes")
        );
        let bad = io::Error::new(io::ErrorKind::InvalidData, "x");
        assert_eq!(reason_of(&ReadError::of_io(&bad)), GapReason::Malformed);
    }
}
