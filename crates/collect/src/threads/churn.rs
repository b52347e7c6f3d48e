//! Fd churn: an fd number that refers to a different socket in a later look (a reconnect loop
//! closing and reopening the same number). Only socket fds are read again, with readlink(2) on
//! /proc/PID/fd/N, which never touches the socket itself.

use std::collections::HashMap;

use hangscope_model::{Fd, FdKind, Gap, GapReason};

use crate::ProcRoot;

/// Socket fds followed at most; beyond that the churn of the rest is not measured.
pub const MAX_TRACKED: usize = 4096;

pub struct FdChurn {
    /// fd → socket inode in the previous look (`None`: closed, or not a socket, then).
    last: HashMap<i32, Option<u64>>,
    counts: HashMap<i32, u32>,
    untracked: usize,
}

impl FdChurn {
    pub fn new(fds: &[Fd]) -> Self {
        let sockets: Vec<&Fd> = fds.iter().filter(|f| f.kind == FdKind::Socket).collect();
        FdChurn {
            last: sockets
                .iter()
                .take(MAX_TRACKED)
                .map(|f| (f.fd, f.socket_inode))
                .collect(),
            counts: HashMap::new(),
            untracked: sockets.len().saturating_sub(MAX_TRACKED),
        }
    }

    /// Reads the tracked fds' links again and counts changes.
    pub fn take(&mut self, root: &ProcRoot, pid: i32) {
        let dir = root.pid(pid).join("fd");
        for (fd, last) in self.last.iter_mut() {
            let now = std::fs::read_link(dir.join(fd.to_string()))
                .ok()
                .and_then(|l| socket_inode(&l.to_string_lossy()));
            if now.is_some() && now != *last {
                *self.counts.entry(*fd).or_default() += 1;
            }
            *last = now;
        }
    }

    /// Writes the counts into the fd table.
    pub fn apply(&self, fds: &mut [Fd], gaps: &mut Vec<Gap>) {
        for f in fds.iter_mut() {
            if let Some(&n) = self.counts.get(&f.fd) {
                f.churn = n;
            }
        }
        if self.untracked > 0 {
            gaps.push(Gap::new(
                format!("churn of {} socket fds", self.untracked),
                GapReason::Skipped,
                format!("only the first {MAX_TRACKED} socket fds are followed over the window"),
            ));
        }
    }
}

fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}
