//! /proc/PID/fd: every open fd, typed from its link text, with fdinfo where it carries
//! information and a statx only where it cannot block; see proc_pid_fd(5).
//!
//! Cost model, measured here on 19,000 fds (9,000 files, 10,000 sockets): readlink of every fd
//! 45–60 ms, fdinfo of the files 45–60 ms, their statx 25 ms, an lstat of every fd's link
//! 26 ms. So fdinfo is read for anonymous inodes, pipes and path fds, and not for sockets, whose
//! facts come from sock_diag instead. On a target with more than [`EVERY_FILE_UPTO`] files
//! open, only the files a diagnosis uses get fdinfo and statx: fds 0–2, deleted files, files
//! named like logs, files on network or FUSE mounts (fdinfo only), every file when the target
//! may hold a file lock (for one named for a process that is gone, only the files with its
//! inode), and later the ones a thread waits on. The others get their access
//! mode from the permission bits of their link, which proc sets from the open mode. Skipped
//! reads are one gap, not one per fd.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use hangscope_model::{Access, Fd, FdKind, FileStat, Gap, GapReason, GapTopic, Text};
use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{FdFailures, gap_of};
use crate::locks::LockScope;
use crate::mountinfo::{self, Mounts};
use crate::{Options, ProcRoot, fdinfo};

/// How often the reading loop looks at the clock.
const DEADLINE_CHECK_EVERY: usize = 256;
/// Below this many fds a second thread costs more than it saves.
const PARALLEL_FROM: usize = 2048;
/// Up to this many files open, every one gets fdinfo and statx (about 8 ms per 1,000).
pub const EVERY_FILE_UPTO: usize = 1024;

/// Lists and reads every fd of `pid`, sorted by number.
///
/// The fd numbers are 0..N-1 for a dense table of N fds, else they come from a listing. Then
/// two passes, each on up to two threads over halves of the list: readlink of every fd, then
/// fdinfo and statx where they are read. `between` runs between the two with the linked fds,
/// so the socket dump can filter its replies by inode; it says which files need their fdinfo
/// (to be matched to a file lock). Reads are relative to directory fds opened once, so
/// the kernel does not walk /proc/PID/... again for every fd.
pub fn read_all(
    root: &ProcRoot,
    pid: i32,
    mounts: &Mounts,
    opts: &Options,
    gaps: &mut Vec<Gap>,
    between: impl FnOnce(&[Fd]) -> LockScope,
) -> Vec<Fd> {
    let open_dir = |name: &str| {
        nix::fcntl::open(
            &root.pid(pid).join(name),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)
    };
    let fd_dir = match open_dir("fd") {
        Ok(d) => d,
        Err(e) => {
            gaps.push(gap_of(format!("/proc/{pid}/fd"), &e).about(GapTopic::FdTable));
            return Vec::new();
        }
    };
    let fdinfo_dir = match open_dir("fdinfo") {
        Ok(d) => Some(d),
        Err(e) => {
            gaps.push(gap_of(format!("/proc/{pid}/fdinfo"), &e));
            None
        }
    };
    // A dense table (fds 0..N-1, the common case) is read without listing it first.
    let open_count = open_fd_count(&fd_dir);
    let nums = match open_count {
        Some(n) => (0..n as i32).collect(),
        None => match list_numbers(&fd_dir, 0) {
            Ok(n) => n,
            Err(e) => {
                gaps.push(gap_of(format!("/proc/{pid}/fd"), &e).about(GapTopic::FdTable));
                return Vec::new();
            }
        },
    };

    let not_local = mounts.not_local_points();
    let workers = if nums.len() >= PARALLEL_FROM {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
    } else {
        1
    };
    let mut reader = ChunkReader {
        fd_dir: fd_dir.as_fd(),
        fdinfo_dir: fdinfo_dir.as_ref().map(|d| d.as_fd()),
        mounts,
        opts,
        every_file: true,
        every_pipe: true,
        not_local: &not_local,
        lock_inodes: &[],
    };

    // Pass 1: the links, which say which fds are sockets.
    let mut total = Chunk::default();
    let chunk_len = nums.len().div_ceil(workers).max(1);
    let mut parts: Vec<&[i32]> = nums.chunks(chunk_len).collect();
    let guessed = open_count.is_some();
    for part in on_threads(&mut parts, pid, gaps, |c| reader.links(c, guessed)) {
        total.merge(part);
    }
    // Holes below N mean as many fds at N or above, and numbers the deadline left untried
    // may or may not be open: a listing from the lowest of them settles both. It stays in
    // proc and is quick, so even past the deadline every open fd keeps its number.
    if let Some(n) = open_count {
        let n = n as i32;
        let untried = std::mem::take(&mut total.untried);
        let tried = n as usize - untried.iter().map(|r| r.len()).sum::<usize>();
        let from = untried.iter().map(|r| r.start).min();
        let holes = total.fds.len() < tried;
        if let Some(from) = from.or(holes.then_some(n)) {
            match list_numbers(&fd_dir, from) {
                Ok(listed) => {
                    let (cut, above): (Vec<i32>, Vec<i32>) = listed
                        .into_iter()
                        .filter(|&m| m >= n || untried.iter().any(|r| r.contains(&m)))
                        .partition(|&m| m < n);
                    for m in cut {
                        total.fds.push(classify(m, ""));
                        total.cut_by_deadline.push(m);
                    }
                    total.merge(reader.links(&mut above.as_slice(), false));
                }
                Err(e) => gaps.push(gap_of(format!("/proc/{pid}/fd"), &e).about(GapTopic::FdTable)),
            }
        }
    }
    let mut fds = std::mem::take(&mut total.fds);
    fds.sort_by_key(|f| f.fd);
    let (files_locked, lock_inodes) = match between(&fds) {
        LockScope::None => (false, Vec::new()),
        LockScope::Every => (true, Vec::new()),
        // A file is told local by its path's mount, which holds when the target sees the
        // mounts and the root as hangscope does; else every file's fdinfo, as for `Every`.
        LockScope::OfInodes(inodes) if same_view(root, pid) => (false, inodes),
        LockScope::OfInodes(_) => (true, Vec::new()),
    };
    let files = fds.iter().filter(|f| f.kind == FdKind::File).count();
    reader.every_file = opts.all_fdinfo || files_locked || files <= EVERY_FILE_UPTO;
    reader.lock_inodes = &lock_inodes;
    let pipes = fds.iter().filter(|f| f.kind == FdKind::Pipe).count();
    reader.every_pipe = opts.all_fdinfo || pipes <= EVERY_FILE_UPTO;

    // Pass 2: fdinfo and types, while whatever `between` started runs beside it.
    let chunk_len = fds.len().div_ceil(workers).max(1);
    let mut parts: Vec<&mut [Fd]> = fds.chunks_mut(chunk_len).collect();
    for part in on_threads(&mut parts, pid, gaps, |c| reader.details(c)) {
        total.merge(part);
    }
    total.report(pid, gaps);
    fds
}

/// Runs `work` on each part, the first on this thread and the others on their own.
fn on_threads<P: Send, F: Fn(&mut P) -> Chunk + Sync>(
    parts: &mut [P],
    pid: i32,
    gaps: &mut Vec<Gap>,
    work: F,
) -> Vec<Chunk> {
    std::thread::scope(|scope| {
        let (first, rest) = match parts.split_first_mut() {
            Some(split) => split,
            None => return Vec::new(),
        };
        let work = &work;
        let handles: Vec<_> = rest
            .iter_mut()
            .map(|p| scope.spawn(move || work(p)))
            .collect();
        let mut out = vec![work(first)];
        for h in handles {
            // A reader thread only panics on a bug; its fds are then missing, and said so.
            match h.join() {
                Ok(c) => out.push(c),
                Err(_) => gaps.push(Gap::new(
                    format!("part of the fds of {pid}"),
                    GapReason::Other,
                    "a reader thread failed",
                )),
            }
        }
        out
    })
}

/// The number of open fds: since Linux 6.2 the size of /proc/PID/fd says it (0 before). Only
/// on procfs: a recorded tree's directory has a size of its own.
fn open_fd_count(fd_dir: &OwnedFd) -> Option<usize> {
    let fs = nix::sys::statfs::fstatfs(fd_dir).ok()?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return None;
    }
    let st = nix::sys::stat::fstat(fd_dir).ok()?;
    let n = i32::try_from(st.st_size).ok().filter(|&n| n > 0)?;
    usize::try_from(n).ok()
}

/// The fd numbers in /proc/PID/fd from `from` up. The directory's offset is the fd number
/// plus 2 (after "." and ".."), so a listing can start anywhere.
fn list_numbers(fd_dir: &OwnedFd, from: i32) -> std::io::Result<Vec<i32>> {
    let dir_fd = nix::fcntl::openat(
        fd_dir.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    if from > 0 {
        nix::unistd::lseek(&dir_fd, i64::from(from) + 2, nix::unistd::Whence::SeekSet)?;
    }
    let mut dir = Dir::from_fd(dir_fd)?;
    let mut nums = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().ok().and_then(|s| s.parse().ok()) {
            nums.push(n);
        }
    }
    nums.sort_unstable();
    Ok(nums)
}

#[derive(Clone, Copy)]
struct ChunkReader<'a> {
    fd_dir: BorrowedFd<'a>,
    fdinfo_dir: Option<BorrowedFd<'a>>,
    mounts: &'a Mounts,
    opts: &'a Options,
    /// fdinfo and statx for every file, not only those a diagnosis uses.
    every_file: bool,
    /// fdinfo for every pipe: on a target with thousands, only stdio and the waited-on ones
    /// (the threads pass reads those) need more than their access mode.
    every_pipe: bool,
    /// Mount points of network, FUSE and other not-local file systems: files under them are
    /// where a hang may be, so they are always read (fdinfo only; never a statx).
    not_local: &'a [&'a str],
    /// Inodes (sorted) of locks named for processes that are gone: a file with one of them
    /// may hold that lock (see `LockTable::scope`), so it gets its fdinfo.
    lock_inodes: &'a [u64],
}

/// What one reader thread found, merged afterwards into one list and one set of gaps.
#[derive(Default)]
struct Chunk {
    fds: Vec<Fd>,
    vanished: usize,
    unreadable: FdFailures,
    fdinfo_failed: FdFailures,
    fdinfo_vanished: usize,
    fdinfo_skipped: usize,
    /// Read-only files of a huge target, known by their access mode only.
    files_skipped: usize,
    /// Pipes of a target with more than `EVERY_FILE_UPTO`, known by their access mode only.
    pipes_skipped: usize,
    cut_by_deadline: Vec<i32>,
    /// In a table read without a listing, the fd numbers not tried before the deadline.
    untried: Vec<std::ops::Range<i32>>,
    /// fds listed but whose fdinfo and type were not read before the deadline.
    details_cut: usize,
    unsafe_mounts: Vec<String>,
}

impl Chunk {
    fn merge(&mut self, other: Chunk) {
        self.fds.extend(other.fds);
        self.vanished += other.vanished;
        self.unreadable.extend(other.unreadable);
        self.fdinfo_failed.extend(other.fdinfo_failed);
        self.fdinfo_vanished += other.fdinfo_vanished;
        self.fdinfo_skipped += other.fdinfo_skipped;
        self.files_skipped += other.files_skipped;
        self.pipes_skipped += other.pipes_skipped;
        self.cut_by_deadline.extend(other.cut_by_deadline);
        self.untried.extend(other.untried);
        self.details_cut += other.details_cut;
        self.unsafe_mounts.extend(other.unsafe_mounts);
    }

    fn report(&mut self, pid: i32, gaps: &mut Vec<Gap>) {
        gaps.extend(std::mem::take(&mut self.unreadable).into_gaps("readlink", pid));
        gaps.extend(std::mem::take(&mut self.fdinfo_failed).into_gaps("fdinfo", pid));
        if self.vanished > 0 {
            gaps.push(Gap::new(
                format!("{} fds of {pid}", self.vanished),
                GapReason::Vanished,
                "closed while they were being listed",
            ));
        }
        if self.fdinfo_vanished > 0 {
            gaps.push(Gap::new(
                format!("fdinfo of {} fds", self.fdinfo_vanished),
                GapReason::Vanished,
                "closed between the listing and the read",
            ));
        }
        if self.fdinfo_skipped > 0 {
            gaps.push(Gap::new(
                format!("fdinfo of {} socket fds", self.fdinfo_skipped),
                GapReason::Skipped,
                "socket facts come from sock_diag; --all-fdinfo reads these too",
            ));
        }
        if self.pipes_skipped > 0 {
            gaps.push(Gap::new(
                format!("fdinfo of {} pipes", self.pipes_skipped),
                GapReason::Skipped,
                format!(
                    "more than {EVERY_FILE_UPTO} pipes open: read for fds 0-2 and the pipes \
                     threads wait on; the others' access mode is from their link; \
                     --all-fdinfo reads every one"
                ),
            ));
        }
        if self.files_skipped > 0 {
            gaps.push(Gap::new(
                format!("fdinfo and size of {} files", self.files_skipped),
                GapReason::Skipped,
                format!(
                    "more than {EVERY_FILE_UPTO} files open: read for fds 0-2 and for files \
                     deleted, named like logs, on network or FUSE mounts, locked or waited on; \
                     --all-fdinfo reads every one"
                ),
            ));
        }
        if !self.cut_by_deadline.is_empty() {
            self.cut_by_deadline.sort_unstable();
            gaps.push(Gap::new(
                format!(
                    "{} fds of {pid} from fd {}",
                    self.cut_by_deadline.len(),
                    self.cut_by_deadline[0]
                ),
                GapReason::Deadline,
                "listed by number only: not read before the deadline",
            ));
        }
        if self.details_cut > 0 {
            gaps.push(Gap::new(
                format!("fdinfo and types of {} fds of {pid}", self.details_cut),
                GapReason::Deadline,
                "listed with their targets, not read further before the deadline",
            ));
        }
        self.unsafe_mounts.sort();
        self.unsafe_mounts.dedup();
        for m in &self.unsafe_mounts {
            gaps.push(Gap::new(
                format!("type and size of files on {m}"),
                GapReason::Unsafe,
                "not stat'ed: a network or FUSE mount can hang a stat",
            ));
        }
    }
}

impl ChunkReader<'_> {
    /// readlink of each fd: its kind and target. `guessed`: the numbers were not listed, so
    /// a missing one is a hole in the table, not an fd closed meanwhile.
    fn links(&self, nums: &mut &[i32], guessed: bool) -> Chunk {
        let nums: &[i32] = nums;
        let mut out = Chunk::default();
        let mut link = [0u8; LINK_MAX];
        for (i, &n) in nums.iter().enumerate() {
            if i % DEADLINE_CHECK_EVERY == 0 && self.opts.deadline.passed() {
                if guessed {
                    // Numbers not listed are not known to be open: read_all lists them.
                    let end = nums.last().map_or(n, |&last| last + 1);
                    out.untried.push(n..end);
                    break;
                }
                for &rest in &nums[i..] {
                    out.fds.push(classify(rest, ""));
                    out.cut_by_deadline.push(rest);
                }
                break;
            }
            match read_link(self.fd_dir, n, &mut link) {
                Ok(target) => out.fds.push(classify_bytes(n, target)),
                // Closed between the listing and the readlink.
                Err(nix::errno::Errno::ENOENT) => out.vanished += usize::from(!guessed),
                // Listed but unreadable (e.g. EACCES under an LSM): keep the number.
                Err(e) => {
                    out.unreadable.push(n, e.into());
                    out.fds.push(classify(n, ""));
                }
            }
        }
        out
    }

    /// Whether a diagnosis uses a file's fdinfo and size even on a huge target: stdio, deleted
    /// files (the space they hold), logs (where hangscope reads, and how they are written), and
    /// files on mounts that are not local (where a hang may be).
    fn worth_details(&self, f: &Fd) -> bool {
        f.fd <= 2
            || f.deleted
            || crate::logs::says_log(&f.target)
            || self
                .not_local
                .iter()
                .any(|mp| mountinfo::is_under(&f.target, mp))
    }

    /// Whether a file may hold one of the gone owners' locks: its inode is one of theirs, by a
    /// statx (from the inode cache, `AT_STATX_DONT_SYNC`) where its path's mount is local and
    /// not stacked (an overlay's inode need not be the one /proc/locks names); any file where
    /// that cannot be told. One statx instead of an fdinfo read and a statx per file.
    fn may_hold_lock(&self, f: &Fd) -> bool {
        if self.lock_inodes.is_empty() {
            return false;
        }
        match self.mounts.containing(&f.target) {
            Some(m) if mountinfo::is_local(&m.fs_type) && m.fs_type != "overlay" => {
                match statx_fd(self.fd_dir.as_raw_fd(), f.fd) {
                    Ok(st) => self.lock_inodes.binary_search(&st.stx_ino).is_ok(),
                    // Closed meanwhile: the fdinfo read will say so.
                    Err(_) => true,
                }
            }
            _ => true,
        }
    }

    /// fdinfo where it carries information, and the type of path fds where that is safe.
    fn details(&self, fds: &mut &mut [Fd]) -> Chunk {
        let mut out = Chunk::default();
        let mut buf = Vec::with_capacity(4096);
        let mut cut = false;
        for (i, f) in fds.iter_mut().enumerate() {
            if cut || (i % DEADLINE_CHECK_EVERY == 0 && self.opts.deadline.passed()) {
                cut = true;
                out.details_cut += 1;
                continue;
            }
            if f.target.is_empty() {
                continue; // its readlink failed or was cut; already reported
            }
            let skipped_file = f.kind == FdKind::File
                && !self.every_file
                && !self.worth_details(f)
                && !self.may_hold_lock(f);
            let skipped_pipe = f.kind == FdKind::Pipe && !self.every_pipe && f.fd > 2;
            if skipped_file || skipped_pipe {
                match link_access(self.fd_dir, f.fd) {
                    Ok(access) => f.link_access = Some(access),
                    Err(nix::errno::Errno::ENOENT) => {
                        out.fdinfo_vanished += 1;
                        continue;
                    }
                    Err(e) => out.fdinfo_failed.push(f.fd, e.into()),
                }
                if skipped_file {
                    out.files_skipped += 1;
                } else {
                    out.pipes_skipped += 1;
                }
                continue;
            }
            if let Some(dir) = self.fdinfo_dir {
                if wants_fdinfo(f.kind, self.opts.all_fdinfo) {
                    match read_small(dir, FdName::new(f.fd).as_cstr(), &mut buf) {
                        Ok(text) => f.info = Some(Box::new(fdinfo::parse(text))),
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                            out.fdinfo_vanished += 1
                        }
                        Err(e) => out.fdinfo_failed.push(f.fd, e),
                    }
                } else {
                    out.fdinfo_skipped += 1;
                }
            }
            if f.kind == FdKind::File {
                type_path_fd(
                    self.fd_dir.as_raw_fd(),
                    f,
                    self.mounts,
                    &mut out.unsafe_mounts,
                );
            }
        }
        out
    }
}

/// Longest link text read; the kernel fails longer paths with ENAMETOOLONG.
const LINK_MAX: usize = libc::PATH_MAX as usize;

/// readlink of fd `fd` into `buf`, without an allocation per fd.
fn read_link<'b>(dir: BorrowedFd, fd: i32, buf: &'b mut [u8; LINK_MAX]) -> nix::Result<&'b [u8]> {
    let name = FdName::new(fd);
    // SAFETY: valid dirfd, NUL-terminated name, and a buffer of the length passed.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_cstr().as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| nix::errno::Errno::last())?;
    Ok(buf.get(..n).unwrap_or_default())
}

/// Reads a small generated file relative to `dir` with one open and as few reads as it takes.
fn read_small<'b>(
    dir: BorrowedFd,
    name: &std::ffi::CStr,
    buf: &'b mut Vec<u8>,
) -> std::io::Result<&'b str> {
    let fd = nix::fcntl::openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = nix::unistd::read(&fd, &mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        // seq_file hands out whole records; a short read means the file is done.
        if n < chunk.len() {
            break;
        }
    }
    Ok(std::str::from_utf8(buf).unwrap_or(""))
}

/// What proc appends to the link of an fd whose file's name was removed.
const DELETED_MARK: &str = " (deleted)";

/// `classify` for a link as read: a path need not be UTF-8, and its bytes are kept exactly.
pub fn classify_bytes(fd: i32, link: &[u8]) -> Fd {
    match std::str::from_utf8(link) {
        Ok(text) => classify(fd, text),
        Err(_) => {
            // Only a path can be invalid UTF-8; the kernel's own link texts are ASCII.
            let mut out = classify(fd, &String::from_utf8_lossy(link));
            let bare = link.strip_suffix(DELETED_MARK.as_bytes());
            out.target = Text::from_bytes(bare.filter(|_| out.deleted).unwrap_or(link));
            out
        }
    }
}

/// Types an fd from its link text alone, which never touches the file. A link ending in
/// " (deleted)" is taken as deleted until a statx, where one is safe, says otherwise.
pub fn classify(fd: i32, link: &str) -> Fd {
    let (target, deleted) = match link.strip_suffix(DELETED_MARK) {
        Some(t) => (t, true),
        None => (link, false),
    };
    let mut out = Fd::new(fd, FdKind::Unknown, target);
    out.deleted = deleted;
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

/// The access mode of fd `fd` from its link's permission bits: proc sets S_IRUSR for a file
/// open for reading and S_IWUSR for one open for writing. The lstat stays in proc; it never
/// reaches the file's own file system.
fn link_access(fd_dir: BorrowedFd, fd: i32) -> nix::Result<Access> {
    let st = nix::sys::stat::fstatat(
        fd_dir,
        FdName::new(fd).as_cstr(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    let read = st.st_mode & libc::S_IRUSR != 0;
    let write = st.st_mode & libc::S_IWUSR != 0;
    Ok(match (read, write) {
        (true, true) => Access::ReadWrite,
        (true, false) => Access::Read,
        (false, true) => Access::Write,
        (false, false) => Access::None,
    })
}

/// An fd number as a NUL-terminated name, on the stack: readlink, lstat, fdinfo and statx of a
/// huge table each need one per fd.
struct FdName {
    buf: [u8; 12],
    start: usize,
}

impl FdName {
    fn new(fd: i32) -> FdName {
        let mut buf = [0u8; 12];
        let mut end = buf.len() - 1; // the last byte stays NUL
        let mut n = fd.unsigned_abs();
        loop {
            end -= 1;
            buf[end] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if fd < 0 {
            end -= 1;
            buf[end] = b'-';
        }
        FdName { buf, start: end }
    }

    fn as_cstr(&self) -> &std::ffi::CStr {
        // The digits hold no NUL and the last byte is one.
        std::ffi::CStr::from_bytes_with_nul(&self.buf[self.start..]).unwrap_or_default()
    }
}

fn wants_fdinfo(kind: FdKind, all: bool) -> bool {
    all || !matches!(kind, FdKind::Socket)
}

/// Whether the target sees the same mounts and root as hangscope, so that its fds' link text
/// (written from hangscope's root) is a path in its mountinfo (written from its own).
fn same_view(root: &ProcRoot, pid: i32) -> bool {
    let link = |p: std::path::PathBuf| std::fs::read_link(p).ok();
    let theirs = link(root.pid(pid).join("ns/mnt"));
    theirs.is_some()
        && theirs == link(root.path().join("self/ns/mnt"))
        && link(root.pid(pid).join("root")).is_some_and(|r| r == std::path::Path::new("/"))
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
            // The kernel appends " (deleted)" to the link of a file whose name was removed,
            // and a file may also be named "x (deleted)": only the first has no link left.
            // (A file that lost the name it was opened by but keeps another hard link is
            // shown with the kernel's mark and not as deleted: it holds no space that closing
            // it would free.)
            if f.deleted && st.stx_nlink > 0 {
                f.target.push_str(DELETED_MARK);
                f.deleted = false;
            }
            f.stat = Some(Box::new(FileStat {
                size: st.stx_size,
                dev: format!("{}:{}", st.stx_dev_major, st.stx_dev_minor),
                ino: st.stx_ino,
                rdev: matches!(f.kind, FdKind::CharDevice | FdKind::BlockDevice)
                    .then(|| format!("{}:{}", st.stx_rdev_major, st.stx_rdev_minor)),
                mtime_s: Some(st.stx_mtime.tv_sec),
                fstype: Some(mount.fs_type.clone()),
            }));
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
    let name = FdName::new(fd);
    // SAFETY: an all-zero statx is a valid value of a plain C struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_TYPE
        | libc::STATX_SIZE
        | libc::STATX_INO
        | libc::STATX_MTIME
        | libc::STATX_NLINK;
    // SAFETY: valid dirfd, NUL-terminated name, and a pointer to a live statx.
    let rc = unsafe {
        libc::statx(
            dirfd,
            name.as_cstr().as_ptr(),
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
    fn fd_names_are_decimal_and_nul_terminated() {
        for n in [0, 7, 10, 19005, i32::MAX, -1, i32::MIN + 1] {
            assert_eq!(FdName::new(n).as_cstr().to_str().unwrap(), n.to_string());
        }
    }

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

    #[test]
    fn a_link_that_is_not_utf8_keeps_its_bytes() {
        let m = classify_bytes(5, b"/memfd:a\xff\x1b (deleted)");
        assert_eq!(m.kind, FdKind::Memfd);
        assert!(m.deleted);
        assert_eq!(m.target.as_bytes(), b"/memfd:a\xff\x1b");
        let f = classify_bytes(6, b"/tmp/\xfe");
        assert_eq!(
            (f.kind, f.target.as_bytes()),
            (FdKind::File, &b"/tmp/\xfe"[..])
        );
        assert!(classify_bytes(7, b"/tmp/ok").target.is_utf8());
    }
}
