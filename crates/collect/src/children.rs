//! The children a thread waits for in wait4/waitid: the next hop of a wait chain when the
//! process itself is not stuck but waits on one of them (a lock holder running a job).
//!
//! /proc/PID/task/TID/children lists each thread's children (CONFIG_PROC_CHILDREN, since 3.5;
//! el7 kernels have it). Where it is absent, /proc/*/stat's ppid says the same, at the cost of
//! one read per process, bounded by the deadline.

use hangscope_model::{Child, Snapshot, WaitObject};

use crate::error::ReadError;
use crate::{Options, ProcRoot};

/// Fills `snap.process.children` when a thread waits for a child; otherwise reads nothing.
pub fn read_for_waits(root: &ProcRoot, pid: i32, snap: &mut Snapshot, opts: &Options) {
    let waited: Vec<i32> = snap
        .threads
        .iter()
        .filter_map(|t| t.syscall.as_ref())
        .flat_map(|s| &s.waits_on)
        .filter_map(|w| match w {
            WaitObject::Process { pid } => Some(*pid),
            _ => None,
        })
        .collect();
    if waited.is_empty() {
        return;
    }
    let mut pids = match listed_children(root, pid, snap) {
        Some(p) => p,
        None => match scanned_children(root, pid, opts) {
            Ok(p) => p,
            Err(why) => {
                snap.gaps
                    .push(why.gap(format!("the children of process {pid}")));
                return;
            }
        },
    };
    pids.sort_unstable();
    pids.dedup();
    // A wait for one pid, or for a group, only concerns those children.
    let any = waited.contains(&-1);
    snap.process.children = pids
        .into_iter()
        .filter_map(|c| Some((c, crate::process::stat_of(root, c)?)))
        .filter(|(c, stat)| {
            any || waited.contains(c)
                || waited
                    .iter()
                    .any(|&w| w == 0 || (w < -1 && stat.pgrp == -w))
        })
        .map(|(c, stat)| Child {
            pid: c,
            name: root.comm(c).unwrap_or_else(|_| stat.comm.as_str().into()),
            state: stat.state.to_string(),
        })
        .collect();
}

fn listed_children(root: &ProcRoot, pid: i32, snap: &Snapshot) -> Option<Vec<i32>> {
    // Kernels built without CONFIG_PROC_CHILDREN have no such file; this forces the scan that
    // stands in for it, so the tests check both give the same children.
    if std::env::var_os("HANGSCOPE_NO_PROC_CHILDREN").is_some() {
        return None;
    }
    let mut found = None;
    for t in &snap.threads {
        // A thread that exited since the listing has no children to wait for; the file is
        // world-readable, so any other failure means the kernel has no such file.
        let Ok(text) = root.read(format!("{pid}/task/{}/children", t.tid)) else {
            continue;
        };
        found
            .get_or_insert_with(Vec::new)
            .extend(parse_children(&text));
    }
    found
}

/// The file's format: pids separated by spaces.
pub fn parse_children(text: &str) -> impl Iterator<Item = i32> + '_ {
    text.split_ascii_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p: &i32| p > 0)
}

fn scanned_children(root: &ProcRoot, pid: i32, opts: &Options) -> Result<Vec<i32>, ReadError> {
    let dir =
        std::fs::read_dir(root.path()).map_err(|e| ReadError::io_at(root.path().display(), &e))?;
    let mut out = Vec::new();
    // An entry that fails to read is a process gone since the listing: not a child then.
    for entry in dir.flatten() {
        if opts.deadline.passed() {
            return Err(ReadError::deadline(
                "the deadline came while /proc/*/stat was scanned for its children",
            ));
        }
        let Some(c) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if crate::process::stat_of(root, c).is_some_and(|s| s.ppid == pid) {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_children_file_is_pids_and_spaces() {
        assert_eq!(parse_children("812 9001 ").collect::<Vec<_>>(), [812, 9001]);
        assert_eq!(parse_children("").count(), 0);
        assert_eq!(parse_children("x -3 7\n").collect::<Vec<_>>(), [7]);
    }
}
