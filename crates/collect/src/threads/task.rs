//! One thread's files under /proc/PID/task/TID (proc_pid_task(5)): `stat` (procfs-core's
//! `Stat`), `sched`, `syscall` (procfs-core's `Syscall`), `status` (`Status`) where `sched` is
//! missing, and on a full look `wchan` and `stack`.
//!
//! Files are opened relative to the thread's directory fd (openat), so a look at 1,000 threads
//! resolves /proc/PID/task/TID once per thread instead of once per file.

use crate::error::ReadError;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use super::sched::{self, Sched};
use super::syscall::{self, RawSyscall};
use crate::ProcRoot;
use crate::process::{parse_stat, parse_status, ticks_per_second};

/// What one read of a thread returned.
#[derive(Debug, Default)]
pub struct TaskRead {
    pub tid: i32,
    pub name: hangscope_model::Text,
    pub state: char,
    pub utime_ms: u64,
    pub stime_ms: u64,
    pub last_cpu: Option<i32>,
    pub voluntary: Option<u64>,
    pub involuntary: Option<u64>,
    pub sched: Option<Sched>,
    /// The syscall file, or why it could not be read.
    pub syscall: Option<Result<RawSyscall, ReadError>>,
    pub wchan: Option<String>,
    /// The kernel stack, or the error (kept to name the reason once for all threads).
    pub stack: Option<Result<Vec<String>, io::Error>>,
    /// CLOCK_MONOTONIC when the thread was read, ns.
    pub mono_ns: u64,
    /// Errors other than the thread vanishing: (file, error).
    pub errors: Vec<(&'static str, io::Error)>,
}

impl TaskRead {
    /// CPU time in ms: sched's nanosecond sum when present, else stat's ticks.
    pub fn cpu_ms(&self) -> f64 {
        self.sched
            .and_then(|s| s.sum_exec_runtime_ms)
            .unwrap_or((self.utime_ms + self.stime_ms) as f64)
    }
}

fn read_at(dir: &OwnedFd, name: &str, buf: &mut Vec<u8>) -> io::Result<String> {
    let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(io::Error::from)?;
    buf.clear();
    File::from(fd).read_to_end(buf)?;
    Ok(String::from_utf8_lossy(buf).into_owned())
}

pub fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// Reads a thread. `None` when it exited before its `stat` could be read; a thread whose
/// directory or `stat` could not be read for another reason, or whose `stat` did not parse, is
/// kept with state '?' and the error, so it is reported rather than taken for exited.
pub fn read(root: &ProcRoot, pid: i32, tid: i32, full: bool) -> Option<TaskRead> {
    let path = root.task(pid, tid);
    let mut t = TaskRead {
        tid,
        state: '?',
        mono_ns: crate::monotonic_ns(),
        ..TaskRead::default()
    };
    let unreadable = |mut t: TaskRead, file: &'static str, e: io::Error| {
        t.name = tid.to_string().into();
        t.errors.push((file, e));
        Some(t)
    };
    let dir: OwnedFd = match File::open(&path) {
        Ok(f) => f.into(),
        Err(e) if is_gone(&e) => return None,
        Err(e) => return unreadable(t, "task directory", e),
    };
    let mut buf = Vec::with_capacity(2048);
    let stat_text = match read_at(&dir, "stat", &mut buf) {
        Ok(text) => text,
        Err(e) if is_gone(&e) => return None,
        Err(e) => return unreadable(t, "stat", e),
    };
    let stat = match parse_stat(&stat_text) {
        Ok(stat) => stat,
        Err(why) => return unreadable(t, "stat", io::Error::new(io::ErrorKind::InvalidData, why)),
    };
    // `buf` still holds the bytes: the name is kept exactly, not as the lossy text.
    let name = crate::proc_root::comm_of_stat(&buf);
    let tick_ms = 1000 / ticks_per_second().max(1);
    t.name = name.unwrap_or_else(|| stat.comm.clone().into());
    t.state = stat.state;
    t.utime_ms = stat.utime * tick_ms;
    t.stime_ms = stat.stime * tick_ms;
    t.last_cpu = stat.processor;

    match read_at(&dir, "sched", &mut buf) {
        Ok(text) => t.sched = Some(sched::parse(&text)),
        Err(e) if is_gone(&e) => return None,
        Err(e) => t.errors.push(("sched", e)),
    }
    // The context switch counts are in `sched` too (the same task counters); `status` is the
    // costlier file to generate, so it is read only where `sched` does not have them
    // (CONFIG_SCHED_DEBUG off).
    let sched_counts = t
        .sched
        .and_then(|s| s.nr_voluntary_switches.zip(s.nr_involuntary_switches));
    if let Some((vol, invol)) = sched_counts {
        t.voluntary = Some(vol);
        t.involuntary = Some(invol);
    } else {
        match read_at(&dir, "status", &mut buf) {
            Ok(text) => {
                if let Ok(st) = parse_status(&text) {
                    t.voluntary = st.voluntary_ctxt_switches;
                    t.involuntary = st.nonvoluntary_ctxt_switches;
                }
            }
            Err(e) if is_gone(&e) => return None,
            Err(e) => t.errors.push(("status", e)),
        }
    }
    match read_at(&dir, "syscall", &mut buf) {
        Ok(text) => t.syscall = Some(syscall::parse(&text)),
        Err(e) if is_gone(&e) => return None,
        Err(e) => {
            t.syscall = Some(Err(ReadError::of_io(&e)));
            t.errors.push(("syscall", e));
        }
    }
    if full {
        match read_at(&dir, "wchan", &mut buf) {
            // "0" means not sleeping in the kernel (or hidden by kptr_restrict).
            Ok(text) => {
                let w = text.trim();
                if !w.is_empty() && w != "0" {
                    t.wchan = Some(w.to_string());
                }
            }
            Err(e) if is_gone(&e) => return None,
            Err(e) => t.errors.push(("wchan", e)),
        }
        t.stack = Some(read_at(&dir, "stack", &mut buf).map(|text| parse_stack(&text)));
    }
    Some(t)
}

/// `[<0>] hrtimer_nanosleep+0x74/0xf0` lines → "hrtimer_nanosleep+0x74/0xf0".
pub fn parse_stack(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match l.split_once("] ") {
            Some((_, f)) => f.trim().to_string(),
            None => l.trim().to_string(),
        })
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_lines() {
        let text = "[<0>] hrtimer_nanosleep+0x74/0xf0\n[<0>] common_nsleep+0x30/0x60\n\n";
        assert_eq!(
            parse_stack(text),
            ["hrtimer_nanosleep+0x74/0xf0", "common_nsleep+0x30/0x60"]
        );
    }

    #[test]
    fn a_malformed_stat_is_kept_as_an_error_not_taken_for_an_exit() {
        let root = std::env::temp_dir().join(format!("hangscope-task-{}", std::process::id()));
        let task = root.join("7/task/8");
        std::fs::create_dir_all(&task).expect("fixture dir");
        std::fs::write(
            task.join("stat"),
            "8 garbage without the comm's parentheses\n",
        )
        .expect("fixture stat");
        let proc = ProcRoot::new(&root);
        let t = read(&proc, 7, 8, false).expect("kept, not taken for exited");
        let got = t
            .errors
            .iter()
            .map(|(f, e)| (*f, e.kind()))
            .collect::<Vec<_>>();
        std::fs::remove_dir_all(&root).expect("fixture removed");
        assert_eq!(got, [("stat", io::ErrorKind::InvalidData)]);
        assert_eq!(t.state, '?');
        // One that is gone is still simply not there.
        assert!(read(&proc, 7, 9, false).is_none());
    }
}
