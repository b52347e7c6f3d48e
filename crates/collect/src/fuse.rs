//! The server behind a FUSE request a thread waits on: the mount the request is for, and the
//! process that holds /dev/fuse for it.
//!
//! The kernel does not say which /dev/fuse fd serves which mount (fdinfo of /dev/fuse has no
//! connection id), so the server is matched the way an operator would: the holder whose
//! command line names the mount point (sshfs, rclone, s3fs, a python fusepy daemon all take
//! it as an argument), else the only process on the host that holds /dev/fuse. Neither match
//! leaves the server unnamed and every holder listed. Everything here is readlink and /proc
//! reads: nothing touches the mount.

use hangscope_model::{FuseMount, FuseServer, Gap, GapReason, Snapshot, Text, Thread, WaitObject};

use crate::mountinfo::Mounts;
use crate::{Options, ProcRoot, holders};

/// Frames of a FUSE client request waiting for its answer; a daemon's own read of /dev/fuse
/// (`fuse_dev_*`) is not one.
fn waits_on_fuse(t: &Thread) -> bool {
    t.wchan
        .iter()
        .chain(t.stack.iter().flatten())
        .any(|f| f.contains("fuse") && !f.starts_with("fuse_dev_"))
}

/// Fills `snap.fuse` when a thread waits on a FUSE request.
pub fn read_for_waits(
    root: &ProcRoot,
    pid: i32,
    snap: &mut Snapshot,
    mounts: &Mounts,
    opts: &Options,
) {
    let waiting: Vec<(i32, Option<String>)> = snap
        .threads
        .iter()
        .filter(|t| waits_on_fuse(t))
        .map(|t| (t.tid, waited_path(root, pid, snap, t)))
        .collect();
    if waiting.is_empty() {
        return;
    }
    let fuse_mounts = mounts.of_type_prefix("fuse");
    let scan = holders::scan_link(root, "/dev/fuse", &opts.deadline);
    if scan.cut_by_deadline {
        snap.gaps.push(Gap::new(
            "the holders of /dev/fuse",
            GapReason::Deadline,
            format!(
                "the deadline came after {} processes; a FUSE server may be among the rest",
                scan.processes
            ),
        ));
    }
    let holders: Vec<FuseServer> = scan
        .holders
        .get(&0)
        .into_iter()
        .flatten()
        .map(|h| FuseServer {
            pid: h.pid,
            name: root.comm(h.pid).unwrap_or_default(),
            fd: h.fd,
            cmdline: cmdline(root, h.pid),
        })
        .collect();
    let mut out: Vec<FuseMount> = Vec::new();
    for (tid, path) in waiting {
        // The mount the path lies on; with no path, the only FUSE mount there is.
        let mount = match &path {
            Some(p) => mounts
                .containing(p)
                .filter(|m| m.fs_type.starts_with("fuse")),
            None => None,
        }
        .or(match fuse_mounts.as_slice() {
            [one] => Some(*one),
            _ => None,
        });
        let Some(mount) = mount else { continue };
        if let Some(m) = out
            .iter_mut()
            .find(|m| m.mount_point.as_str() == mount.mount_point)
        {
            m.tids.push(tid);
            continue;
        }
        let (server, matched_by) = match_server(&holders, &mount.mount_point);
        out.push(FuseMount {
            mount_point: mount.mount_point.as_str().into(),
            fs_type: mount.fs_type.clone(),
            source: mount.source.clone(),
            tids: vec![tid],
            path: path.map(Text::from),
            holders: holders.clone(),
            server,
            matched_by,
        });
    }
    snap.fuse = out;
}

/// The holder that serves `mount_point`, and how it was told.
fn match_server(holders: &[FuseServer], mount_point: &str) -> (Option<i32>, String) {
    let point = mount_point.trim_end_matches('/');
    let naming: Vec<&FuseServer> = holders
        .iter()
        .filter(|h| {
            h.cmdline
                .iter()
                .any(|a| a.as_str().trim_end_matches('/') == point)
        })
        .collect();
    let mut pids: Vec<i32> = naming.iter().map(|h| h.pid).collect();
    pids.dedup();
    if let [one] = pids.as_slice() {
        return (Some(*one), "cmdline".into());
    }
    let mut all: Vec<i32> = holders.iter().map(|h| h.pid).collect();
    all.dedup();
    match all.as_slice() {
        [one] => (Some(*one), "only_holder".into()),
        _ => (None, String::new()),
    }
}

/// The path the thread's call names, absolute: relative paths are taken from the cwd or
/// directory fd link (readlink: no stat of anything on the mount).
fn waited_path(root: &ProcRoot, pid: i32, snap: &Snapshot, t: &Thread) -> Option<String> {
    let s = t.syscall.as_ref()?;
    if let Some(path) = &s.path {
        let p = path.as_str();
        if p.starts_with('/') {
            return Some(p.to_string());
        }
        let base = match s.path_dirfd {
            Some(fd) => snap.fd(fd).map(|f| f.target.as_str().to_string())?,
            None => std::fs::read_link(root.pid(pid).join("cwd"))
                .ok()?
                .to_string_lossy()
                .into_owned(),
        };
        return Some(format!("{}/{p}", base.trim_end_matches('/')));
    }
    s.waits_on.iter().find_map(|w| match w {
        WaitObject::Fd { fd, .. } => snap
            .fd(*fd)
            .map(|f| f.target.as_str().to_string())
            .filter(|t| t.starts_with('/')),
        _ => None,
    })
}

fn cmdline(root: &ProcRoot, pid: i32) -> Vec<Text> {
    root.read_pid_bytes(pid, "cmdline")
        .map(|b| crate::process::parse_cmdline(&b).take(64).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: i32, args: &[&str]) -> FuseServer {
        FuseServer {
            pid,
            name: "x".into(),
            fd: 3,
            cmdline: args.iter().map(|a| Text::from(*a)).collect(),
        }
    }

    #[test]
    fn the_server_is_the_holder_that_names_the_mount_point() {
        let holders = [
            holder(10, &["sshfs", "host:/", "/mnt/a"]),
            holder(20, &["python3", "fs.py", "/mnt/b/"]),
        ];
        assert_eq!(
            match_server(&holders, "/mnt/b"),
            (Some(20), "cmdline".into())
        );
        // No holder names it, and there are two: none is named.
        assert_eq!(match_server(&holders, "/mnt/c"), (None, String::new()));
        // One holder on the host: that one, said so.
        assert_eq!(
            match_server(&holders[..1], "/mnt/c"),
            (Some(10), "only_holder".into())
        );
    }
}
