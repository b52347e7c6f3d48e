//! /proc/PID/fd: every open fd, typed from its link text, with fdinfo where it carries
//! information and a statx only where it cannot block; see proc_pid_fd(5).
//!
//! Cost model (19,000 fds here): readlink of every fd ~70 ms, fdinfo of every fd ~100 ms. So
//! fdinfo is read for anonymous inodes, pipes and path fds, and not for sockets, whose facts
//! come from sock_diag instead; skipped fdinfo is one gap, not one per fd.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use hangscope_model::{Fd, FdKind, FileStat, Gap, GapReason};
use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{FdFailures, gap_of};
use crate::mountinfo::{self, Mounts};
use crate::{Options, ProcRoot, fdinfo};

/// How often the listing loop looks at the clock.
const DEADLINE_CHECK_EVERY: usize = 256;

/// Lists and reads every fd of `pid`, sorted by number.
pub fn read_all(
    root: &ProcRoot,
    pid: i32,
    mounts: &Mounts,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) -> Vec<Fd> {
    let dir_path = root.pid(pid).join("fd");
    let mut dir = match Dir::open(
        &dir_path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    ) {
        Ok(d) => d,
        Err(e) => {
            gaps.push(gap_of(format!("/proc/{pid}/fd"), &std::io::Error::from(e)));
            return Vec::new();
        }
    };
    let dirfd = dir.as_raw_fd();
    // SAFETY: `dir` owns the fd and outlives every use of this borrow in this function.
    let dir_borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(dirfd) };
    let mut fds = Vec::new();
    let mut vanished = 0usize;
    let mut unreadable = FdFailures::default();
    let mut cut_by_deadline = false;
    for (i, entry) in dir.iter().enumerate() {
        if i % DEADLINE_CHECK_EVERY == 0 && opts.deadline.passed() {
            cut_by_deadline = true;
            break;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                gaps.push(gap_of(format!("/proc/{pid}/fd"), &std::io::Error::from(e)));
                break;
            }
        };
        let name = entry.file_name();
        let Some(num) = name.to_str().ok().and_then(|s| s.parse::<i32>().ok()) else {
            continue; // "." and ".."
        };
        match nix::fcntl::readlinkat(dir_borrowed, name) {
            Ok(target) => fds.push(classify(num, &target.to_string_lossy())),
            // Closed between the listing and the readlink.
            Err(nix::errno::Errno::ENOENT) => vanished += 1,
            // Listed but unreadable (e.g. EACCES under an LSM): keep the number, say why once.
            Err(e) => {
                fds.push(classify(num, ""));
                unreadable.push(num, std::io::Error::from(e));
            }
        }
    }
    gaps.extend(unreadable.into_gaps("readlink", pid));
    fds.sort_by_key(|f| f.fd);
    if cut_by_deadline {
        gaps.push(Gap::new(
            format!("fds of {pid} after the first {}", fds.len()),
            GapReason::Deadline,
            "the fd listing was cut short by the deadline",
        ));
    }
    if vanished > 0 {
        gaps.push(Gap::new(
            format!("{vanished} fds of {pid}"),
            GapReason::Vanished,
            "closed while they were being listed",
        ));
    }
    read_details(root, pid, dirfd, &mut fds, mounts, opts, gaps);
    fds
}

/// Types an fd from its link text alone, which never touches the file.
pub fn classify(fd: i32, link: &str) -> Fd {
    let (target, deleted) = match link.strip_suffix(" (deleted)") {
        Some(t) => (t, true),
        None => (link, false),
    };
    let mut out = Fd {
        fd,
        kind: FdKind::Unknown,
        target: target.to_string(),
        deleted,
        socket_inode: None,
        pipe_inode: None,
        info: None,
        stat: None,
        stat_skipped: None,
        churn: 0,
    };
    if let Some(ino) = bracketed(target, "socket:") {
        out.kind = FdKind::Socket;
        out.socket_inode = Some(ino);
    } else if let Some(ino) = bracketed(target, "pipe:") {
        out.kind = FdKind::Pipe;
        out.pipe_inode = Some(ino);
    } else if let Some(anon) = target.strip_prefix("anon_inode:") {
        let name = anon.trim_start_matches('[').trim_end_matches(']');
        out.kind = match name {
            "eventfd" => FdKind::Eventfd,
            "eventpoll" => FdKind::Eventpoll,
            "signalfd" => FdKind::Signalfd,
            "timerfd" => FdKind::Timerfd,
            "inotify" => FdKind::Inotify,
            "fanotify" => FdKind::Fanotify,
            "pidfd" => FdKind::Pidfd,
            "io_uring" => FdKind::IoUring,
            "perf_event" => FdKind::PerfEvent,
            "userfaultfd" => FdKind::Userfaultfd,
            n if n.starts_with("bpf") => FdKind::Bpf,
            _ => FdKind::AnonInode,
        };
    } else if target.starts_with("pidfd:") {
        // Since Linux 6.9 pidfds live on pidfs and read "pidfd:[ino]".
        out.kind = FdKind::Pidfd;
    } else if target.starts_with("/memfd:") {
        out.kind = FdKind::Memfd;
    } else if target.starts_with('/') {
        out.kind = FdKind::File;
    } else if target.contains(":[") {
        // Namespace fds ("net:[4026531840]") and other pseudo files.
        out.kind = FdKind::AnonInode;
    }
    out
}

fn bracketed(target: &str, prefix: &str) -> Option<u64> {
    target
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn wants_fdinfo(kind: FdKind, all: bool) -> bool {
    all || !matches!(kind, FdKind::Socket)
}

fn read_details(
    root: &ProcRoot,
    pid: i32,
    dirfd: RawFd,
    fds: &mut [Fd],
    mounts: &Mounts,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) {
    let mut skipped = 0usize;
    let mut vanished = 0usize;
    let mut cut_at: Option<i32> = None;
    let mut unsafe_mounts: Vec<String> = Vec::new();
    let mut failed = FdFailures::default();
    for (i, f) in fds.iter_mut().enumerate() {
        if i % DEADLINE_CHECK_EVERY == 0 && opts.deadline.passed() {
            cut_at = Some(f.fd);
            break;
        }
        if f.target.is_empty() {
            continue; // its readlink already failed and is reported
        }
        if !wants_fdinfo(f.kind, opts.all_fdinfo) {
            skipped += 1;
            continue;
        }
        match root.read(format!("{pid}/fdinfo/{}", f.fd)) {
            Ok(text) => f.info = Some(fdinfo::parse(&text)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                vanished += 1;
                continue;
            }
            Err(e) => {
                failed.push(f.fd, e);
                continue;
            }
        }
        if f.kind == FdKind::File {
            type_path_fd(dirfd, f, mounts, &mut unsafe_mounts);
        }
    }
    gaps.extend(failed.into_gaps("fdinfo", pid));
    if skipped > 0 {
        gaps.push(Gap::new(
            format!("fdinfo of {skipped} socket fds"),
            GapReason::Skipped,
            "socket facts come from sock_diag; --all-fdinfo reads these too",
        ));
    }
    if vanished > 0 {
        gaps.push(Gap::new(
            format!("fdinfo of {vanished} fds"),
            GapReason::Vanished,
            "closed between the listing and the read",
        ));
    }
    if let Some(fd) = cut_at {
        gaps.push(Gap::new(
            format!("fdinfo and types of fds from {fd} on"),
            GapReason::Deadline,
            "not read before the deadline",
        ));
    }
    unsafe_mounts.sort();
    unsafe_mounts.dedup();
    for m in unsafe_mounts {
        gaps.push(Gap::new(
            format!("type and size of files on {m}"),
            GapReason::Unsafe,
            "not stat'ed: a network or FUSE mount can hang a stat",
        ));
    }
}

/// Types a path fd with statx(AT_STATX_DONT_SYNC), but only when its mount is local.
fn type_path_fd(dirfd: RawFd, f: &mut Fd, mounts: &Mounts, unsafe_mounts: &mut Vec<String>) {
    let Some(mnt_id) = f.info.as_ref().and_then(|i| i.mnt_id) else {
        f.stat_skipped = Some("mount unknown: not stat'ed".into());
        return;
    };
    let Some(mount) = mounts.get(mnt_id) else {
        f.stat_skipped = Some(format!("mount {mnt_id} not in mountinfo: not stat'ed"));
        return;
    };
    if !mountinfo::is_local(&mount.fs_type) {
        f.stat_skipped = Some(format!(
            "on {} mount {}: not stat'ed",
            mount.fs_type, mount.mount_point
        ));
        unsafe_mounts.push(format!("{} ({})", mount.mount_point, mount.fs_type));
        return;
    }
    match statx_fd(dirfd, f.fd) {
        Ok(st) => {
            f.kind = kind_of_mode(st.stx_mode as u32);
            f.stat = Some(FileStat {
                size: st.stx_size,
                dev: format!("{}:{}", st.stx_dev_major, st.stx_dev_minor),
                ino: st.stx_ino,
                rdev: matches!(f.kind, FdKind::CharDevice | FdKind::BlockDevice)
                    .then(|| format!("{}:{}", st.stx_rdev_major, st.stx_rdev_minor)),
                mtime_s: Some(st.stx_mtime.tv_sec),
                fstype: Some(mount.fs_type.clone()),
            });
        }
        Err(e) => f.stat_skipped = Some(format!("statx failed: {e}")),
    }
}

fn kind_of_mode(mode: u32) -> FdKind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => FdKind::Regular,
        libc::S_IFDIR => FdKind::Directory,
        libc::S_IFCHR => FdKind::CharDevice,
        libc::S_IFBLK => FdKind::BlockDevice,
        libc::S_IFIFO => FdKind::Fifo,
        libc::S_IFLNK => FdKind::Symlink,
        libc::S_IFSOCK => FdKind::Socket,
        _ => FdKind::File,
    }
}

/// statx through the fd's magic link in /proc/PID/fd, without forcing a sync with the server.
fn statx_fd(dirfd: RawFd, fd: i32) -> std::io::Result<libc::statx> {
    let name = CString::new(fd.to_string()).map_err(std::io::Error::other)?;
    // SAFETY: an all-zero statx is a valid value of a plain C struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_TYPE | libc::STATX_SIZE | libc::STATX_INO | libc::STATX_MTIME;
    // SAFETY: valid dirfd, NUL-terminated name, and a pointer to a live statx.
    let rc = unsafe {
        libc::statx(
            dirfd,
            name.as_ptr(),
            libc::AT_STATX_DONT_SYNC,
            mask,
            &mut st,
        )
    };
    if rc == 0 {
        Ok(st)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_link_texts() {
        let cases = [
            ("socket:[692518610]", FdKind::Socket),
            ("pipe:[692518572]", FdKind::Pipe),
            ("anon_inode:[eventfd]", FdKind::Eventfd),
            ("anon_inode:[eventpoll]", FdKind::Eventpoll),
            ("anon_inode:inotify", FdKind::Inotify),
            ("anon_inode:[timerfd]", FdKind::Timerfd),
            ("anon_inode:[pidfd]", FdKind::Pidfd),
            ("anon_inode:bpf-map", FdKind::Bpf),
            ("anon_inode:[io_uring]", FdKind::IoUring),
            ("/memfd:hello (deleted)", FdKind::Memfd),
            ("/var/log/zbs/zbs-metad.log", FdKind::File),
            ("net:[4026531840]", FdKind::AnonInode),
            ("", FdKind::Unknown),
        ];
        for (link, kind) in cases {
            assert_eq!(classify(3, link).kind, kind, "{link}");
        }
        let s = classify(29, "socket:[692518610]");
        assert_eq!(s.socket_inode, Some(692518610));
        let d = classify(4, "/tmp/x (deleted)");
        assert!(d.deleted);
        assert_eq!(d.target, "/tmp/x");
    }
}
