//! The process itself: /proc/PID/{stat,status,cmdline,exe,limits,ns/net}; see proc_pid_stat(5),
//! proc_pid_status(5).

use std::io;
use std::os::unix::ffi::OsStringExt;

use hangscope_model::{Gap, GapReason, Process, Text};
use procfs_core::process::{Stat, Status};
use procfs_core::{FromBufRead, FromRead};

use crate::error::{ReadError, gap_of, reason_of};
use crate::{CollectError, ProcRoot};

/// Clock ticks per second, for the tick counts in `stat`.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

pub fn parse_stat(text: &str) -> Result<Stat, ReadError> {
    // procfs-core slices between the first '(' and the last ')', and from two bytes past it,
    // without checking (panics on garbage, found by tests/garbage.rs); the kernel always
    // writes "pid (comm) state ...". It trims the line first, so the checks look at the
    // trimmed line too: a ')' followed only by spaces passed an untrimmed check and then
    // panicked (found by fuzz/proc_pid).
    let text = text.trim();
    let well_formed = match (text.find('('), text.rfind(')')) {
        (Some(open), Some(close)) => {
            let pid = &text[..open];
            open < close
                && pid.ends_with(' ')
                && !pid.trim_end().is_empty()
                && pid.trim_end().bytes().all(|b| b.is_ascii_digit())
                && text.get(close + 1..close + 2) == Some(" ")
                && text.len() > close + 2
        }
        _ => false,
    };
    if !well_formed {
        return Err(ReadError::malformed(
            "not a \"pid (comm) state ...\" stat line",
        ));
    }
    Stat::from_read(text.as_bytes()).map_err(|e| ReadError::malformed(e.to_string()))
}

pub fn parse_status(text: &str) -> Result<Status, ReadError> {
    Status::from_buf_read(text.as_bytes()).map_err(|e| ReadError::malformed(e.to_string()))
}

/// Reads the process; the one step whose failure ends the run, since without `stat` there is
/// no process to report on. Also returns its start time (clock ticks after boot, field 22 of
/// stat), which with the PID names one process: see [`check_same`].
pub fn read(
    root: &ProcRoot,
    pid: i32,
    gaps: &mut Vec<Gap>,
) -> Result<(Process, u64), CollectError> {
    let stat_bytes = root
        .read_pid_bytes(pid, "stat")
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => CollectError::NoSuchProcess(pid),
            Some(libc::EACCES) | Some(libc::EPERM) => CollectError::NotPermitted {
                pid,
                detail: e.to_string(),
            },
            _ => CollectError::Other(format!("/proc/{pid}/stat: {e}")),
        })?;
    let stat = parse_stat(&String::from_utf8_lossy(&stat_bytes))
        .map_err(|e| CollectError::Other(format!("/proc/{pid}/stat: malformed: {e}")))?;

    let mut p = Process {
        pid,
        name: crate::proc_root::comm_of_stat(&stat_bytes)
            .unwrap_or_else(|| stat.comm.clone().into()),
        ppid: stat.ppid,
        state: stat.state.to_string(),
        num_threads: stat.num_threads.max(0) as u32,
        // PF_KTHREAD (include/linux/sched.h).
        kernel_thread: stat.flags & 0x0020_0000 != 0,
        ..Process::default()
    };

    p.parent_name = root.comm(p.ppid).ok().filter(|c| !c.is_empty());

    match root.read_pid(pid, "status") {
        Ok(text) => match parse_status(&text) {
            Ok(st) => {
                p.uid = Some(st.ruid);
                p.nspid = st.nspid.unwrap_or_default();
                if st.tracerpid > 0 {
                    p.tracer = Some(tracer(root, st.tracerpid));
                }
            }
            Err(e) => gaps.push(e.gap(format!("/proc/{pid}/status"))),
        },
        Err(e) => gaps.push(gap_of(format!("/proc/{pid}/status"), &e)),
    }

    // A missing cgroup file (no cgroups in this kernel, a recorded tree without one) means no
    // freezer, which is what the report then says.
    if let Ok(text) = root.read_pid(pid, "cgroup") {
        p.freezer = crate::freezer::read(&text, crate::freezer::own_mounts());
    }

    match root.read_pid_bytes(pid, "cmdline") {
        Ok(bytes) => p.cmdline = parse_cmdline(&bytes).collect(),
        Err(e) => gaps.push(gap_of(format!("/proc/{pid}/cmdline"), &e)),
    }

    match std::fs::read_link(root.pid(pid).join("exe")) {
        Ok(path) => p.exe = Some(Text::from_bytes(path.into_os_string().into_vec())),
        // Kernel threads have no exe; that is not worth a gap.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => gaps.push(gap_of(format!("/proc/{pid}/exe"), &e)),
    }

    p.age_s = age_s(root, stat.starttime);

    match root.read_pid(pid, "limits") {
        Ok(text) => p.fd_limit = parse_nofile_soft_limit(&text),
        Err(e) => gaps.push(gap_of(format!("/proc/{pid}/limits"), &e)),
    }

    match netns_inode(root, pid) {
        Ok(ino) => {
            p.netns_inode = Some(ino);
            p.netns_same_as_tool = own_netns_inode().ok().map(|own| own == ino);
            if p.netns_same_as_tool == Some(false) {
                p.netns_name = netns_name(std::path::Path::new(NETNS_DIR), ino);
            }
        }
        Err(e) => gaps.push(gap_of(format!("/proc/{pid}/ns/net"), &e)),
    }
    Ok((p, stat.starttime))
}

/// Seconds since a process started `start_ticks` after boot, as of now.
pub fn age_s(root: &ProcRoot, start_ticks: u64) -> Option<f64> {
    let uptime = root.read("uptime").ok()?;
    let up: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let started = start_ticks as f64 / ticks_per_second() as f64;
    Some((up - started).max(0.0))
}

/// Whether PID `pid` is still the process [`read`] found, started at `start_ticks`: a PID is
/// reused once its process is reaped, and a report that read the new process's threads or fds
/// beside the old one's would describe neither. A process that is gone without a successor
/// is not an error here (the threads' looks report its exit). Two processes share a PID and
/// a start time only if the PID space wraps within one clock tick (10 ms), so no pidfd is
/// needed, and kernels before 5.3 (no pidfd_open) get the same answer.
pub fn check_same(root: &ProcRoot, pid: i32, start_ticks: u64) -> Result<(), CollectError> {
    let Ok(text) = root.read_pid(pid, "stat") else {
        return Ok(());
    };
    let Ok(stat) = parse_stat(&text) else {
        return Ok(());
    };
    if stat.starttime != start_ticks {
        let later = stat.starttime.saturating_sub(start_ticks) as f64 / ticks_per_second() as f64;
        return Err(CollectError::Reused {
            pid,
            later_s: later,
            name: stat.comm,
        });
    }
    Ok(())
}

/// /proc/PID/cmdline: its arguments, NUL-separated, exactly as bytes.
pub fn parse_cmdline(bytes: &[u8]) -> impl Iterator<Item = Text> + '_ {
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(Text::from_bytes)
}

/// Another process's /proc/PID/stat, when it is there and well formed.
pub fn stat_of(root: &ProcRoot, pid: i32) -> Option<Stat> {
    parse_stat(&root.read_pid(pid, "stat").ok()?).ok()
}

/// What may hold another process from running: its state letter, its tracer and its cgroup
/// freezer, for the other end of a connection a thread of the target waits on.
pub fn hold(
    root: &ProcRoot,
    pid: i32,
) -> (
    Option<String>,
    Option<hangscope_model::Tracer>,
    Option<hangscope_model::Freezer>,
) {
    // stat, status and cgroup are readable by anyone: a failure is the process exiting, whose
    // hold is then moot.
    let state = stat_of(root, pid).map(|s| s.state.to_string());
    let tracer = root
        .read_pid(pid, "status")
        .ok()
        .and_then(|t| parse_status(&t).ok())
        .filter(|st| st.tracerpid > 0)
        .map(|st| tracer(root, st.tracerpid));
    let freezer = root
        .read_pid(pid, "cgroup")
        .ok()
        .and_then(|t| crate::freezer::read(&t, crate::freezer::own_mounts()));
    (state, tracer, freezer)
}

/// The tracing process, named when its stat is readable.
fn tracer(root: &ProcRoot, pid: i32) -> hangscope_model::Tracer {
    let stat = stat_of(root, pid);
    hangscope_model::Tracer {
        pid,
        name: root.comm(pid).ok().filter(|c| !c.is_empty()),
        state: stat.map(|s| s.state.to_string()),
    }
}

/// "Max open files  1024  524288  files" → 1024.
pub(crate) fn parse_nofile_soft_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// The inode of a network namespace link, `net:[4026531840]`.
pub fn netns_inode(root: &ProcRoot, pid: i32) -> io::Result<u64> {
    let link = std::fs::read_link(root.pid(pid).join("ns/net"))?;
    parse_ns_link(&link.to_string_lossy())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected ns link"))
}

/// Where `ip netns add` bind-mounts the namespaces it names (ip-netns(8)).
const NETNS_DIR: &str = "/run/netns";
/// Names looked at, at most: a host with thousands of namespaces is not read whole.
const NETNS_NAMES_MAX: usize = 4096;

/// The name under `dir` whose file is the namespace `ino` (a bind mount of an nsfs inode has
/// that inode). The directory is the host's, not the target's, and a tmpfs: nothing blocks.
pub(crate) fn netns_name(dir: &std::path::Path, ino: u64) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .ok()?
        .take(NETNS_NAMES_MAX)
        .flatten()
        .find(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.ino() == ino))
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

pub(crate) fn own_netns_inode() -> io::Result<u64> {
    let link = std::fs::read_link("/proc/self/ns/net")?;
    parse_ns_link(&link.to_string_lossy())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected ns link"))
}

pub(crate) fn parse_ns_link(link: &str) -> Option<u64> {
    let start = link.find('[')? + 1;
    let end = link[start..].find(']')? + start;
    link[start..end].parse().ok()
}

/// True when the error means the process is gone.
pub fn is_vanished(err: &io::Error) -> bool {
    reason_of(err) == GapReason::Vanished
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_comm() {
        // A comm with spaces and parentheses, as bottom's tests use.
        let line = "31516 (zbs (meta) d) S 1 31516 31516 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 24 0 12345 1000000 200 18446744073709551615 1 1 0 0 0 0 0 4096 16386 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "zbs (meta) d");
        assert_eq!(stat.num_threads, 24);
        assert_eq!(stat.state, 'S');
    }

    #[test]
    fn garbage_stat_is_an_error_not_a_panic() {
        assert!(parse_stat("garbage").is_err());
        assert!(parse_stat("1 (x)   \n").is_err());
        assert!(parse_stat("").is_err());
    }

    #[test]
    fn nofile_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 20000                files     \n";
        assert_eq!(parse_nofile_soft_limit(text), Some(1024));
        assert_eq!(parse_nofile_soft_limit("nothing"), None);
    }

    #[test]
    fn ns_link() {
        assert_eq!(parse_ns_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link("net:"), None);
    }
}
