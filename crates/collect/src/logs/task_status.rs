//! /proc/PID/task/TID/status (proc_pid_status(5)): each thread's name and NSpid, so the TIDs a
//! log line names — written inside the process's PID namespace when it runs in a container —
//! map to the host TIDs of the snapshot's threads.

use std::collections::HashMap;

use hangscope_model::{Gap, GapReason};

use crate::error::gap_of;
use crate::process::parse_status;
use crate::{Deadline, ProcRoot};

/// The process's live threads.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    /// TID as the process sees it (innermost NSpid) → (host TID, name).
    pub by_written: HashMap<i32, (i32, String)>,
    /// Host TID → name.
    pub by_host: HashMap<i32, String>,
}

impl Tasks {
    /// Builds the maps from (host TID, status text) pairs; pure, for tests on recorded files.
    pub fn from_statuses(statuses: &[(i32, String)]) -> Tasks {
        let mut t = Tasks::default();
        for (host, text) in statuses {
            let Ok(st) = parse_status(text) else {
                continue;
            };
            let written = st
                .nspid
                .as_ref()
                .and_then(|ns| ns.last().copied())
                .unwrap_or(*host);
            t.by_written.insert(written, (*host, st.name.clone()));
            t.by_host.insert(*host, st.name);
        }
        t
    }

    /// The threads of a process in this PID namespace, as the look read them: the TIDs its
    /// logs write are the host's, so no status file is read (one per thread: 6 ms of a
    /// 100-thread target's run).
    pub fn of_threads(threads: &[hangscope_model::Thread]) -> Tasks {
        let mut t = Tasks::default();
        for th in threads {
            let name = th.name.to_string();
            t.by_written.insert(th.tid, (th.tid, name.clone()));
            t.by_host.insert(th.tid, name);
        }
        t
    }

    pub fn host_tids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.by_host.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// Reads every thread's status, stopping at the deadline.
pub fn read(root: &ProcRoot, pid: i32, deadline: &Deadline, gaps: &mut Vec<Gap>) -> Tasks {
    let dir = root.pid(pid).join("task");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            gaps.push(gap_of(format!("/proc/{pid}/task (for log thread ids)"), &e));
            return Tasks::default();
        }
    };
    let mut statuses = Vec::new();
    for entry in entries.flatten() {
        if deadline.passed() {
            gaps.push(Gap::new(
                format!("thread names of {pid} for its log lines"),
                GapReason::Deadline,
                format!("read {} threads before the deadline", statuses.len()),
            ));
            break;
        }
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // A thread that exits between the listing and the read is simply not mapped.
        if let Ok(text) = root.read(format!("{pid}/task/{tid}/status")) {
            statuses.push((tid, text));
        }
    }
    Tasks::from_statuses(&statuses)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on Linux 6.18: `sleep` started by `unshare -p -f`, NSpid "32053\t2".
    const IN_PIDNS: &str =
        include_str!("../../../../tests/fixtures/proc/status-linux-6.18/thread-in-pid-namespace");
    const ON_HOST: &str =
        include_str!("../../../../tests/fixtures/proc/status-linux-6.18/thread-on-host");

    #[test]
    fn threads_on_the_host_map_to_themselves_as_their_status_files_would() {
        let host_pid: i32 = ON_HOST
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("Pid");
        let name = ON_HOST
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .map(str::trim)
            .expect("Name");
        let thread = hangscope_model::Thread {
            tid: host_pid,
            name: name.into(),
            ..hangscope_model::Thread::default()
        };
        let read = Tasks::from_statuses(&[(host_pid, ON_HOST.to_string())]);
        let from_look = Tasks::of_threads(&[thread]);
        assert_eq!(from_look.by_written, read.by_written);
        assert_eq!(from_look.by_host, read.by_host);
    }

    #[test]
    fn namespaced_tids_map_to_host_tids() {
        let t = Tasks::from_statuses(&[(32053, IN_PIDNS.to_string()), (1, "garbage".into())]);
        assert_eq!(t.by_written.get(&2), Some(&(32053, "sleep".to_string())));
        assert_eq!(t.by_host.get(&32053).map(String::as_str), Some("sleep"));
        assert_eq!(t.host_tids(), vec![32053]);
        let host_pid: i32 = ON_HOST
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        let host = Tasks::from_statuses(&[(host_pid, ON_HOST.to_string())]);
        assert_eq!(host.by_written.get(&host_pid).map(|v| v.0), Some(host_pid));
    }
}
