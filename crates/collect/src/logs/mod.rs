//! Logs: what the process and the kernel wrote, tied to threads and connections.
//!
//! Where logs are found:
//! - regular files the process has open for writing or appending (fdinfo `flags:`, see
//!   proc_pid_fdinfo(5)) whose name or directory says log, and stdout/stderr redirected to a
//!   file; read through /proc/PID/fd/N, which is the exact file the process writes (also in a
//!   container, after a rename, or deleted) — but only on local mounts, since opening a file
//!   on NFS or FUSE can hang, never when a lease is on it, and in a helper process (see
//!   `open`);
//! - the previous rotated file, when the open one is young (little history in it);
//! - paths given with `--log`;
//! - the journal, when stdout/stderr are sockets to journald (journalctl(1));
//! - the kernel's log, /dev/kmsg, for lines about the process (see `kmsg`).
//!
//! Every read is bounded (bytes, lines, time), and what could not be read is a gap or a note.

pub mod civil_time;
pub mod entries;
pub mod glog;
pub mod journal;
pub mod json_lines;
pub mod kmsg;
pub mod link;
pub mod open;
pub mod peers;
pub mod plain;
pub mod tail;
pub mod task_status;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hangscope_model::{Fd, FdKind, Gap, GapReason, LogFormat, LogSource, Snapshot, SocketDetail};

use crate::error::{gap_of, named_file_gap};
use crate::mountinfo::{self, Mounts};
use crate::safe_path::{self, Refused};
use crate::{Options, ProcRoot};
use civil_time::{TimeContext, YearRef, format_offset, year_month_from_file_name, year_month_of};
use open::{Opener, open_path};

/// Bytes read from the end of a log at most.
pub const MAX_TAIL_BYTES: u64 = 256 * 1024;
/// Lines kept from that tail at most.
pub const MAX_LINES: usize = 2000;
/// An open log with fewer entries than this, read whole, is young: its rotated predecessor is
/// read too, since the story usually began there.
const YOUNG_ENTRIES: usize = 100;
/// Names read from a rotated log's directory at most.
const MAX_LISTED: usize = 10_000;
/// Lines asked of journalctl.
const JOURNAL_LINES: usize = 200;
/// Time journalctl gets at most (less when the run's deadline is nearer).
const JOURNAL_LIMIT: Duration = Duration::from_secs(2);
/// The kernel's log.
pub const KMSG: &str = "/dev/kmsg";

/// What the collection read for the logs before their turn: the leases of a /proc/locks read
/// earlier (used while fresh), and the kernel log read from the start of a one-look run.
#[derive(Default)]
pub struct Early {
    pub leases: Option<crate::locks::Leases>,
    pub kmsg: Option<kmsg::Pending>,
}

/// Reads every log of `pid` the snapshot's fds point to, plus `opts.log_paths`, the journal and
/// the kernel's log, and ties entries to the snapshot's threads and sockets.
pub fn read(
    root: &ProcRoot,
    pid: i32,
    snap: &Snapshot,
    mounts: &Mounts,
    opts: &Options,
    early: Early,
    gaps: &mut Vec<Gap>,
) -> Vec<LogSource> {
    let mut sources: Vec<(LogSource, bool)> = Vec::new();
    let opener = Opener::new(root, opts, early.leases);
    for path in &opts.log_paths {
        if let Some(s) = read_given(&opener, path, gaps) {
            sources.push((s, true));
        }
    }
    for f in &snap.fds {
        if opts.deadline.passed() {
            gaps.push(Gap::new(
                format!("log files of {pid} from fd {} on", f.fd),
                GapReason::Deadline,
                "not read before the deadline",
            ));
            break;
        }
        let Some(reason) = log_reason(f) else {
            continue;
        };
        if sources.iter().any(|(s, _)| s.path == f.target) {
            continue;
        }
        let (source, young) = read_fd_log(&opener, root, pid, f, reason, mounts, gaps);
        let dir_ok = source.read_via.is_some();
        let target_pid = snap.process.nspid.last().copied().unwrap_or(pid);
        sources.push((source, true));
        if young
            && dir_ok
            && let Some((rotated, same_process)) =
                read_rotated(&opener, root, pid, target_pid, &f.target, mounts, gaps)
        {
            sources.push((rotated, same_process));
        }
    }
    if let Some(j) = read_journal(root, pid, snap, opts, gaps) {
        sources.push((j, true));
    }

    // In a PID namespace of its own (a container), the TIDs its logs write are that
    // namespace's: each thread's status says which host TID each is.
    let tasks = if snap.process.nspid.len() > 1 {
        task_status::read(root, pid, &opts.deadline, gaps)
    } else {
        task_status::Tasks::of_threads(&snap.threads)
    };
    if let Some(k) = read_kmsg(snap, &tasks, opts, early.kmsg, gaps) {
        sources.push((k, true));
    }
    sources
        .into_iter()
        .map(|(mut s, map_threads)| {
            let none = task_status::Tasks::default();
            link::link(
                &mut s,
                if map_threads { &tasks } else { &none },
                &snap.sockets,
            );
            s
        })
        .collect()
}

/// The UTC offset of local time at `epoch_s` on this host (tm_gmtoff).
fn local_utc_offset(epoch_s: i64) -> Option<i32> {
    let t = epoch_s as libc::time_t;
    // SAFETY: an all-zero tm is valid; localtime_r writes into the tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    ok.then_some(tm.tm_gmtoff as i32)
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Why fd `f` is a log the process writes, or `None`.
pub fn log_reason(f: &Fd) -> Option<String> {
    if !matches!(f.kind, FdKind::Regular | FdKind::File) || !f.target.starts_with('/') {
        return None;
    }
    if ["/dev/", "/proc/", "/sys/"]
        .iter()
        .any(|p| f.target.starts_with(p))
    {
        return None;
    }
    let info = f.info.as_ref()?;
    let acc = info.flags as i32 & libc::O_ACCMODE;
    let append = info.flags as i32 & libc::O_APPEND != 0;
    if !(acc == libc::O_WRONLY || acc == libc::O_RDWR || append) {
        return None;
    }
    let how = if append {
        "open for appending"
    } else {
        "open for writing"
    };
    match f.fd {
        1 => Some(format!("fd 1 (stdout) {how}")),
        2 => Some(format!("fd 2 (stderr) {how}")),
        n if says_log(&f.target) => Some(format!("fd {n} {how}, its name says log")),
        _ => None,
    }
}

/// A path component or name part that is "log", "logs" or "syslog" (any case):
/// "/var/log/x", "zbs-metad.log.20230918-075346.31516", "db/LOG".
pub fn says_log(path: &str) -> bool {
    path.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| {
        ["log", "logs", "syslog"]
            .iter()
            .any(|w| t.eq_ignore_ascii_case(w))
    })
}

pub(crate) fn time_context_for(name: &str, mtime_s: i64) -> (TimeContext, &'static str) {
    let offset = local_utc_offset(mtime_s);
    match year_month_from_file_name(name) {
        Some((year, month)) => (
            TimeContext {
                year_ref: Some(YearRef::Start { year, month }),
                utc_offset_s: offset,
            },
            "file name",
        ),
        None => {
            let (year, month) = year_month_of(mtime_s, offset.unwrap_or(0));
            (
                TimeContext {
                    year_ref: Some(YearRef::End { year, month }),
                    utc_offset_s: offset,
                },
                "file mtime",
            )
        }
    }
}

/// Parses a tail into `source`, dating year-less lines from the file name or mtime.
pub(crate) fn fill(source: &mut LogSource, name: &str, t: &tail::Tail) {
    source.bytes_read = t.bytes_read;
    source.truncated = t.truncated;
    if t.binary {
        source.notes.push("binary content: not a text log".into());
        return;
    }
    let (ctx, year_from) = time_context_for(name, t.mtime_s);
    source.format = entries::detect(&t.text, &ctx);
    let text = if t.truncated {
        entries::skip_orphans(&t.text, source.format, &ctx)
    } else {
        &t.text
    };
    source.entries = entries::parse(text, source.format, &ctx);
    if source.format == LogFormat::Glog {
        source.year = ctx.year_ref.map(YearRef::year);
        source.year_from = Some(year_from.into());
    }
    if source.format != LogFormat::Unknown {
        source.utc_offset = ctx.utc_offset_s.map(format_offset);
    }
    if t.truncated {
        source
            .notes
            .push(format!("last {} of {} bytes read", t.bytes_read, t.size));
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn read_fd_log(
    opener: &Opener,
    root: &ProcRoot,
    pid: i32,
    f: &Fd,
    reason: String,
    mounts: &Mounts,
    gaps: &mut Vec<Gap>,
) -> (LogSource, bool) {
    let mut source = LogSource {
        path: f.target.to_string(),
        fd: Some(f.fd),
        reason,
        ..LogSource::default()
    };
    if f.deleted {
        source
            .notes
            .push("deleted, still open: read through the fd".into());
    }
    let mount = f
        .info
        .as_ref()
        .and_then(|i| i.mnt_id)
        .and_then(|id| mounts.get(id));
    let local = mount.is_some_and(|m| mountinfo::is_local(&m.fs_type));
    if !local || f.kind != FdKind::Regular {
        let why = match mount {
            Some(m) if !mountinfo::is_local(&m.fs_type) => {
                format!(
                    "on {} mount {}: opening it could hang",
                    m.fs_type, m.mount_point
                )
            }
            Some(_) => "not a regular file".to_string(),
            None => "its mount is unknown: opening it could hang".to_string(),
        };
        source.notes.push(format!("not read: {why}"));
        // A FIFO or device named like a log on a local mount is simply not a log to tail; an
        // unknown or network mount is a blind spot worth reporting.
        if !local {
            gaps.push(Gap::new(
                format!("log {} (fd {})", f.target, f.fd),
                GapReason::Unsafe,
                why,
            ));
        }
        return (source, false);
    }
    let via = root.pid(pid).join("fd").join(f.fd.to_string());
    let fdinfo = root.pid(pid).join("fdinfo").join(f.fd.to_string());
    let read = open_path(&via)
        .map_err(open::Refusal::Io)
        .and_then(|file| opener.tail(&file, Some(&fdinfo)));
    match read {
        Ok(t) => {
            source.read_via = Some(via.to_string_lossy().into_owned());
            fill(&mut source, base_name(&f.target), &t);
            let young = !t.truncated && !t.binary && source.entries.len() < YOUNG_ENTRIES;
            (source, young)
        }
        Err(r) => {
            if !matches!(r, open::Refusal::Io(_)) {
                source.notes.push(format!("not read: {}", r.why()));
            }
            gaps.push(r.gap(format!("log {} (fd {})", f.target, f.fd)));
            (source, false)
        }
    }
}

/// The part of a log's name its rotated siblings share: glog's "prog.log." before
/// "DATE-TIME.PID", else the whole name ("app.log" → "app.log.1", "app.log-20230918").
pub(crate) fn rotation_stem(name: &str) -> (String, bool) {
    let parts: Vec<&str> = name.rsplitn(3, '.').collect();
    if parts.len() == 3 {
        let (pid, date) = (parts[0], parts[1]);
        let is_date = date.len() == 15
            && date.as_bytes()[8] == b'-'
            && date.bytes().filter(u8::is_ascii_digit).count() == 14;
        if is_date && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
            return (format!("{}.", parts[2]), true);
        }
    }
    (name.to_string(), false)
}

/// The pid at the end of a glog file name, "zbs-metad.log.20230918-075346.31516" → 31516.
pub(crate) fn glog_pid(name: &str) -> Option<i32> {
    let (_, is_glog) = rotation_stem(name);
    if !is_glog {
        return None;
    }
    name.rsplit('.').next()?.parse().ok()
}

pub(crate) fn is_sibling(stem: &str, glog: bool, current: &str, candidate: &str) -> bool {
    if candidate == current {
        return false;
    }
    if glog {
        return candidate.starts_with(stem) && rotation_stem(candidate).1;
    }
    candidate
        .strip_prefix(stem)
        .is_some_and(|r| r.starts_with('.') || r.starts_with('-') || r.starts_with('_'))
}

fn is_compressed(name: &str) -> bool {
    [".gz", ".xz", ".zst", ".bz2", ".lz4", ".zip", ".z"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// The newest rotated sibling of `path`, looked for through /proc/PID/root (the process's view
/// of the file system). Returns the source and whether it was written by this process.
///
/// The directory is reached by a `safe_path` walk, since the path the fd link shows may now
/// lead elsewhere (a deleted directory replaced by a symlink); its listing is safe on a local
/// mount, but an entry may be a mount point, which is never stat'ed if it is not local.
fn read_rotated(
    opener: &Opener,
    root: &ProcRoot,
    pid: i32,
    target_pid: i32,
    path: &str,
    mounts: &Mounts,
    gaps: &mut Vec<Gap>,
) -> Option<(LogSource, bool)> {
    let (dir, name) = path.rsplit_once('/')?;
    let dir = if dir.is_empty() { "/" } else { dir };
    let what = format!("{dir} (rotated logs)");
    let seen_root = root.pid(pid).join("root");
    let found = open_path(&seen_root)
        .map_err(Refused::Io)
        .and_then(|base| safe_path::resolve(base.as_fd(), dir, mounts));
    let found = match found {
        Ok(f) => f,
        Err(Refused::Io(e)) => {
            gaps.push(gap_of(what, &e));
            return None;
        }
        Err(r) => {
            gaps.push(Gap::new(what, GapReason::Unsafe, r.why("listing")));
            return None;
        }
    };
    if !mounts
        .containing(&found.path)
        .is_some_and(|m| mountinfo::is_local(&m.fs_type))
    {
        return None;
    }
    let listing = match opener.list(&found.fd, MAX_LISTED) {
        Ok(l) => l,
        Err(r) => {
            gaps.push(r.gap(what));
            return None;
        }
    };
    let in_dir = |cand: &str| format!("{}/{cand}", found.path.trim_end_matches('/'));
    let (stem, glog) = rotation_stem(name);
    let mut best: Option<(i64, String, std::os::fd::OwnedFd)> = None;
    let mut compressed = 0usize;
    let mut mount_points = Vec::new();
    for entry in listing {
        let Some(cand) = entry.to_str().map(str::to_string) else {
            continue;
        };
        if !is_sibling(&stem, glog, name, &cand) {
            continue;
        }
        if is_compressed(&cand) {
            compressed += 1;
            continue;
        }
        // A stat of a mount point is a call to the mounted file system: the entry is opened
        // (O_PATH, not followed) only where that is safe, and stat'ed through its fd.
        let entry = match safe_path::open_entry(&found, &cand, mounts) {
            Ok(fd) => fd,
            Err(Refused::Unsafe { at, fs_type }) => {
                mount_points.push(format!("{at} ({fs_type})"));
                continue;
            }
            Err(Refused::Unlisted { at }) => {
                mount_points.push(format!("{at} (a mount not in mountinfo)"));
                continue;
            }
            Err(Refused::Io(_)) => continue,
        };
        // Not followed: glog's "prog.INFO" symlinks and the like are not siblings.
        let Ok(st) = nix::sys::stat::fstat(&entry) else {
            continue;
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            continue;
        }
        let mtime = st.st_mtime;
        if best.as_ref().is_none_or(|(m, _, _)| mtime > *m) {
            best = Some((mtime, cand, entry));
        }
    }
    if !mount_points.is_empty() {
        gaps.push(Gap::new(
            format!("rotated log candidates {}", mount_points.join(", ")),
            GapReason::Unsafe,
            "mount points of file systems that are not known to be local: not stat'ed, since \
             that could hang",
        ));
    }
    let (_, cand, entry) = best?;
    let full = in_dir(&cand);
    let mut source = LogSource {
        path: full.clone(),
        reason: format!("rotated before {path}, which is young"),
        rotated_of: Some(path.to_string()),
        ..LogSource::default()
    };
    if compressed > 0 {
        source
            .notes
            .push(format!("{compressed} older compressed rotations not read"));
    }
    let via = seen_root.join(full.trim_start_matches('/'));
    let read = opener.tail(&entry, None);
    match read {
        Ok(t) => {
            source.read_via = Some(via.to_string_lossy().into_owned());
            fill(&mut source, &cand, &t);
        }
        Err(r) => {
            if !matches!(r, open::Refusal::Io(_)) {
                source.notes.push(format!("not read: {}", r.why()));
            }
            gaps.push(r.gap(format!("rotated log {full}")));
        }
    }
    let same = glog_pid(&cand).is_none_or(|p| p == target_pid || p == pid);
    if !same {
        source.notes.push(format!(
            "written by an earlier process (pid {}): its thread ids are not this process's",
            glog_pid(&cand).unwrap_or(0)
        ));
    }
    Some((source, same))
}

/// A `--log PATH` (in hangscope's own view of the file system), read only on a local mount.
/// The path is walked with `safe_path`: its text alone (a symlink, `a/../mnt`) does not say
/// which mount it ends on.
fn read_given(opener: &Opener, path: &Path, gaps: &mut Vec<Gap>) -> Option<LogSource> {
    let abs: PathBuf = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let text = abs.to_string_lossy().into_owned();
    let own = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|t| Mounts::parse(&t).ok())
        .unwrap_or_default();
    let mut source = LogSource {
        path: text.clone(),
        reason: "given with --log".into(),
        ..LogSource::default()
    };
    let found = open_path(Path::new("/"))
        .map_err(Refused::Io)
        .and_then(|base| safe_path::resolve(base.as_fd(), &text, &own));
    let found = match found {
        Ok(f) => f,
        Err(Refused::Io(e)) => {
            gaps.push(named_file_gap(format!("log {text} (--log)"), &text, &e));
            return Some(source);
        }
        Err(r) => {
            let why = r.why("reading");
            source.notes.push(format!("not read: {why}"));
            gaps.push(Gap::new(format!("log {text}"), GapReason::Unsafe, why));
            return Some(source);
        }
    };
    match own.containing(&found.path) {
        Some(m) if mountinfo::is_local(&m.fs_type) => {}
        other => {
            let why = match other {
                Some(m) => format!(
                    "on {} mount {}: reading it could hang",
                    m.fs_type, m.mount_point
                ),
                None => "its mount is unknown: reading it could hang".into(),
            };
            source.notes.push(format!("not read: {why}"));
            gaps.push(Gap::new(format!("log {text}"), GapReason::Unsafe, why));
            return Some(source);
        }
    }
    match opener.tail(&found.fd, None) {
        Ok(t) => {
            source.read_via = Some(found.path.clone());
            fill(&mut source, base_name(&found.path), &t);
        }
        Err(r) => match &r {
            open::Refusal::Io(e) => {
                gaps.push(named_file_gap(format!("log {text} (--log)"), &text, e))
            }
            _ => {
                source.notes.push(format!("not read: {}", r.why()));
                gaps.push(r.gap(format!("log {text} (--log)")));
            }
        },
    }
    Some(source)
}

/// Whether stdout/stderr lead to journald: certain when the socket's peer is known to be
/// journald's stdout socket, probable when the sockets are unknown and the process runs in a
/// systemd service.
fn journal_reason(root: &ProcRoot, pid: i32, snap: &Snapshot) -> Option<String> {
    let std_sockets: Vec<&Fd> = snap
        .fds
        .iter()
        .filter(|f| matches!(f.fd, 1 | 2) && f.kind == FdKind::Socket)
        .collect();
    if std_sockets.is_empty() {
        return None;
    }
    let fds = std_sockets
        .iter()
        .map(|f| f.fd.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut known = false;
    for f in &std_sockets {
        let Some(s) = f.socket_inode.and_then(|i| snap.socket(i)) else {
            continue;
        };
        if let SocketDetail::Unix(u) = &s.detail {
            known = true;
            let peer = u.peer.as_ref();
            let path = peer
                .and_then(|p| p.path.as_ref())
                .map(|p| p.to_string())
                .unwrap_or_default();
            let name = peer.map(|p| p.name.as_str()).unwrap_or("");
            if path.contains("journal") || name.starts_with("systemd-journal") {
                let by = if path.is_empty() {
                    name.to_string()
                } else {
                    path
                };
                return Some(format!("fd {fds}: unix socket to journald ({by})"));
            }
        } else {
            known = true;
        }
    }
    if known {
        return None;
    }
    // World-readable: unread, the process exited, and the guess is not made.
    let cgroup = root.read_pid(pid, "cgroup").unwrap_or_default();
    let unit = cgroup
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .find(|u| u.ends_with(".service"))?;
    Some(format!(
        "fd {fds}: sockets, and the process runs in {unit}: probably journald"
    ))
}

fn read_journal(
    root: &ProcRoot,
    pid: i32,
    snap: &Snapshot,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) -> Option<LogSource> {
    let reason = journal_reason(root, pid, snap)?;
    let mut source = LogSource {
        path: "journal".into(),
        format: LogFormat::Journal,
        reason,
        ..LogSource::default()
    };
    let cmd = journal::command_line(pid, JOURNAL_LINES);
    let Some(journalctl) = journal::find_journalctl() else {
        source.notes.push(format!(
            "journalctl is not installed here: read it with `{cmd}` where it is"
        ));
        return Some(source);
    };
    let limit = JOURNAL_LIMIT.min(opts.deadline.remaining());
    if limit.is_zero() {
        source
            .notes
            .push(format!("not read before the deadline: `{cmd}`"));
        return Some(source);
    }
    let text = match journal::run(&journalctl, pid, JOURNAL_LINES, limit) {
        journal::Outcome::Output(t) => t,
        journal::Outcome::TimedOut(t) => {
            source.notes.push(format!(
                "journalctl took longer than {} and was stopped",
                hangscope_model::units::duration(limit)
            ));
            t
        }
        journal::Outcome::Failed { detail, io } => {
            // A gap, not only a note: the journal was not read, which is not "it was empty".
            let what = format!("journal of {pid} (`{cmd}`)");
            gaps.push(match io {
                Some(e) => Gap::new(what, crate::error::reason_of(&e), detail.clone()),
                None => Gap::new(what, GapReason::Other, detail.clone()),
            });
            source.notes.push(format!("{detail}; read it with `{cmd}`"));
            return Some(source);
        }
    };
    source.read_via = Some(cmd.clone());
    source.bytes_read = text.len() as u64;
    let now = now_s();
    let offset = local_utc_offset(now);
    let (year, month) = year_month_of(now, offset.unwrap_or(0));
    let ctx = TimeContext {
        year_ref: Some(YearRef::End { year, month }),
        utc_offset_s: offset,
    };
    source.utc_offset = offset.map(format_offset);
    source.entries = entries::parse(&text, LogFormat::Plain, &ctx);
    if source.entries.is_empty() {
        source.notes.push(format!(
            "`{cmd}` printed nothing: the journal may be rotated, or the unit logs under another \
             PID (try journalctl -u UNIT)"
        ));
    }
    Some(source)
}

fn read_kmsg(
    snap: &Snapshot,
    tasks: &task_status::Tasks,
    opts: &Options,
    early: Option<kmsg::Pending>,
    gaps: &mut Vec<Gap>,
) -> Option<LogSource> {
    let read = match early.map_or_else(|| kmsg::read_all(KMSG, &opts.deadline), kmsg::Pending::wait)
    {
        Ok(r) => r,
        Err(e) => {
            let mut gap = gap_of(format!("{KMSG} (kernel log)"), &e);
            if gap.reason == GapReason::Permission {
                gap.needs = Some("root or CAP_SYSLOG (kernel.dmesg_restrict)".into());
            }
            gaps.push(gap);
            return None;
        }
    };
    let mut tids = tasks.host_tids();
    if tids.is_empty() {
        tids = snap.threads.iter().map(|t| t.tid).collect();
    }
    let mut names: Vec<String> = std::iter::once(snap.process.name.to_string())
        .chain(snap.threads.iter().map(|t| t.name.to_string()))
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    let target = kmsg::Target {
        pid: snap.process.pid,
        names,
        tids,
    };
    let clock = kmsg::Clock {
        wall_ms: snap.taken_at_ms,
        monotonic_us: snap.host.monotonic_ns / 1000,
    };
    // The window of interest: since the process started (a second of slack for the clocks).
    let since_us = snap
        .process
        .age_s
        .map(|age| {
            clock
                .monotonic_us
                .saturating_sub((age * 1e6) as u64 + 1_000_000)
        })
        .unwrap_or(0);
    let entries = kmsg::select(&read.records, &target, since_us, &clock);
    let mut source = LogSource {
        path: KMSG.into(),
        format: LogFormat::Kmsg,
        reason: "the kernel's log: lines about the process since it started".into(),
        read_via: Some(KMSG.into()),
        entries,
        ..LogSource::default()
    };
    source.notes.push(format!(
        "{} kernel records read, {} about the process since it started",
        read.records.len(),
        source.entries.len()
    ));
    if read.malformed > 0 {
        source.notes.push(format!(
            "{} records not in the documented layout",
            read.malformed
        ));
    }
    if let Some(cut) = read.cut {
        gaps.push(Gap::new(
            format!("{KMSG} (kernel log), the newest records"),
            GapReason::Deadline,
            cut,
        ));
    }
    Some(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::FdInfo;

    fn fd(n: i32, target: &str, flags: u32) -> Fd {
        let mut f = crate::fd::classify(n, target);
        f.kind = FdKind::Regular;
        f.info = Some(Box::new(FdInfo {
            flags,
            ..FdInfo::default()
        }));
        f
    }

    #[test]
    fn which_fds_are_logs() {
        // Octal flags as fdinfo prints them: 0100001 O_WRONLY|O_LARGEFILE, 02002 O_RDWR|O_APPEND.
        let w = 0o100001;
        assert!(
            log_reason(&fd(
                7,
                "/var/log/zbs/zbs-metad.log.20230919-085454.31516",
                w
            ))
            .is_some()
        );
        assert!(log_reason(&fd(31, "/var/lib/zbs/metad/db/meta.sync/meta/e/LOG", w)).is_some());
        assert!(
            log_reason(&fd(1, "/tmp/nohup.out", 0o2001))
                .unwrap()
                .contains("stdout")
        );
        assert!(
            log_reason(&fd(9, "/srv/app/logs/app.txt", 0o2002))
                .unwrap()
                .contains("appending")
        );
        // Read-only, not a log name, devices, catalogs.
        assert!(log_reason(&fd(3, "/var/log/messages", 0o100000)).is_none());
        assert!(log_reason(&fd(6, "/var/lib/zbs/metad/lock", w)).is_none());
        assert!(log_reason(&fd(8, "/dev/log", w)).is_none());
        assert!(log_reason(&fd(8, "/srv/catalog.db", w)).is_none());
    }

    fn temp_root(name: &str) -> (ProcRoot, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("hangscope-logs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("4242")).unwrap();
        (ProcRoot::new(&dir), dir)
    }

    #[test]
    fn stdout_to_a_service_socket_points_at_the_journal() {
        let (root, dir) = temp_root("journal");
        std::fs::write(
            dir.join("4242/cgroup"),
            "0::/system.slice/zbs-metad.service\n",
        )
        .unwrap();
        let mut snap = Snapshot {
            fds: vec![
                crate::fd::classify(1, "socket:[577351246]"),
                crate::fd::classify(2, "socket:[577351246]"),
            ],
            ..Snapshot::default()
        };
        let why = journal_reason(&root, 4242, &snap).unwrap();
        assert!(why.contains("zbs-metad.service"), "{why}");
        assert!(why.starts_with("fd 1, 2"), "{why}");
        // Known sockets decide: a unix socket whose peer is journald's stdout socket.
        snap.sockets = vec![hangscope_model::Socket {
            inode: 577351246,
            fds: vec![1, 2],
            family: hangscope_model::SocketFamily::Unix,
            detail: SocketDetail::Unix(hangscope_model::UnixSocket {
                peer: Some(Box::new(hangscope_model::UnixPeer {
                    pid: 1,
                    name: "systemd-journal".into(),
                    fd: 40,
                    path: Some("/run/systemd/journal/stdout".into()),
                    threads: None,
                })),
                ..Default::default()
            }),
            source: "sock_diag".into(),
            not_found_reason: None,
            fds_changed: vec![],
        }];
        let why = journal_reason(&root, 4242, &snap).unwrap();
        assert!(why.contains("/run/systemd/journal/stdout"), "{why}");
        // Not a service, sockets unknown: no guess.
        snap.sockets.clear();
        std::fs::write(dir.join("4242/cgroup"), "0::/user.slice/session-1.scope\n").unwrap();
        assert!(journal_reason(&root, 4242, &snap).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_log_on_a_network_mount_is_never_opened() {
        let (root, dir) = temp_root("nfs");
        let mounts = Mounts::parse(
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
             91 27 0:51 / /var/log/zbs rw - nfs4 10.0.0.1:/vol rw\n",
        )
        .unwrap();
        let mut f = fd(
            7,
            "/var/log/zbs/zbs-metad.log.20230919-085454.31516",
            0o100001,
        );
        f.info.as_mut().unwrap().mnt_id = Some(91);
        let mut gaps = Vec::new();
        let reason = log_reason(&f).unwrap();
        let opener = Opener::new(&root, &Options::default(), None);
        let (source, young) = read_fd_log(&opener, &root, 4242, &f, reason, &mounts, &mut gaps);
        assert!(!young);
        assert_eq!(source.read_via, None);
        assert!(
            source.notes[0].contains("nfs4 mount /var/log/zbs"),
            "{:?}",
            source.notes
        );
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].reason, GapReason::Unsafe);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotation_names() {
        let (stem, glog) = rotation_stem("zbs-metad.log.20230919-085454.31516");
        assert_eq!((stem.as_str(), glog), ("zbs-metad.log.", true));
        let cur = "zbs-metad.log.20230919-085454.31516";
        assert!(is_sibling(
            &stem,
            true,
            cur,
            "zbs-metad.log.20230918-075346.31516"
        ));
        assert!(!is_sibling(&stem, true, cur, cur));
        assert!(!is_sibling(&stem, true, cur, "zbs-metad.log.INFO"));
        assert_eq!(glog_pid("zbs-metad.log.20230918-075346.2048"), Some(2048));
        let (stem, glog) = rotation_stem("app.log");
        assert!(!glog);
        assert!(is_sibling(&stem, false, "app.log", "app.log.1"));
        assert!(is_sibling(&stem, false, "app.log", "app.log-20230918"));
        assert!(!is_sibling(&stem, false, "app.log", "app.logger"));
        assert!(is_compressed("app.log.2.gz"));
        assert_eq!(glog_pid("app.log.1"), None);
    }
}
