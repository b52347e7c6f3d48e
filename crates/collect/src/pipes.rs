//! The other ends of the pipes threads wait on: which process holds each, and which end
//! (/proc/PID/fd links, fdinfo flags; proc_pid_fdinfo(5)). A thread blocked reading a pipe waits
//! for whoever holds its write end — often a child process — and that is where to look next.

use std::collections::{HashMap, HashSet};

use hangscope_model::{Access, Gap, GapReason, PipeEnd, Snapshot};

use crate::holders::{self, Kind};
use crate::{Options, ProcRoot, fdinfo};

/// Fills `Fd::pipe_peers` for the pipes a thread of `pid` waits on.
pub fn read_peers(root: &ProcRoot, pid: i32, snap: &mut Snapshot, opts: &Options) {
    let waited = crate::threads::fds_waited_on(&snap.threads);
    let wanted: HashSet<u64> = snap
        .fds
        .iter()
        .filter(|f| waited.contains(&f.fd))
        .filter_map(|f| f.pipe_inode)
        .collect();
    if wanted.is_empty() {
        return;
    }
    let scan = holders::scan(root, Kind::Pipe, &wanted, pid, &opts.deadline);
    let mut names = holders::Names::default();
    let mut ends: HashMap<u64, Vec<PipeEnd>> = HashMap::new();
    for (ino, holders) in &scan.holders {
        for h in holders.iter().filter(|h| h.pid != pid) {
            let name = names.of(root, h.pid);
            let access = root
                .read(format!("{}/fdinfo/{}", h.pid, h.fd))
                .ok()
                .map(|text| access_of(fdinfo::parse(&text).flags).to_string());
            ends.entry(*ino).or_default().push(PipeEnd {
                pid: h.pid,
                name,
                fd: h.fd,
                access,
            });
        }
    }
    for f in snap.fds.iter_mut() {
        if let Some(list) = f.pipe_inode.and_then(|ino| ends.get(&ino)) {
            f.pipe_peers = list.clone();
        }
    }
    if scan.cut_by_deadline {
        snap.gaps.push(Gap::new(
            "other ends of waited-on pipes",
            GapReason::Deadline,
            format!(
                "the search of other processes' fds stopped at the deadline after {} processes",
                scan.processes
            ),
        ));
    }
    if scan.unreadable > 0 {
        snap.gaps.push(
            Gap::new(
                format!("fds of {} processes", scan.unreadable),
                GapReason::Permission,
                "not searched for the other ends of waited-on pipes",
            )
            .needing("root, or CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE (another user's fd table)"),
        );
    }
}

fn access_of(flags: u32) -> &'static str {
    match Access::of_flags(flags) {
        Access::Read | Access::None => "read",
        Access::Write => "write",
        Access::ReadWrite => "read-write",
    }
}
