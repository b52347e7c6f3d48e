//! Who else holds an object: a UNIX socket's peer (the inode from unix_diag), a pipe's other
//! end — looked up in every process's /proc/PID/fd by link text (`socket:[N]`, `pipe:[N]`),
//! readlink only, never a stat; see proc_pid_fd(5).
//!
//! The scan is system-wide and bounded by the deadline; it stops early once every inode has a
//! holder other than the target. So that a small target's search does not pay for a huge
//! neighbour, processes are read in order of likelihood: first the target's family (parent,
//! children, siblings, ancestors: a pipe or socket pair is shared by fork), which usually
//! ends the search before /proc is even listed; then, for a socket, those in the target's
//! network namespace first (a socket stays in the namespace it was made in; another
//! namespace's processes are read only if a holder is still missing); and in each group the
//! processes with at most `SMALL_TABLE` fds before the larger ones (the count is the size
//! `stat` gives /proc/PID/fd, Linux 6.2+; older kernels give 0, which keeps PID order). That
//! count also says which processes hold no fd at all (kernel threads, half of a small host's
//! processes), which are not read: where the kernel does not count (this process's own table,
//! never empty, has size 0), every process is read. The target's own fds are not read again:
//! the caller has them. An object held by no visible
//! process (another PID namespace, closed, or only in flight in an SCM_RIGHTS message) is
//! reported as not visible.

use std::collections::{HashMap, HashSet};

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use hangscope_model::Text;

use crate::{Deadline, ProcRoot};

/// The kind of object, by the prefix of its fd link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Socket,
    Pipe,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Socket => "socket:[",
            Kind::Pipe => "pipe:[",
        }
    }
}

/// One fd that refers to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub fd: i32,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub holders: HashMap<u64, Vec<Holder>>,
    pub processes: usize,
    /// Processes whose fd directory could not be read (permission, gone).
    pub unreadable: usize,
    pub cut_by_deadline: bool,
}

/// Finds the holders of `wanted` inodes of `kind` among all processes. `target` is the inspected
/// process, whose own holdings do not end the search early.
pub fn scan(
    root: &ProcRoot,
    kind: Kind,
    wanted: &HashSet<u64>,
    target: i32,
    deadline: &Deadline,
) -> Scan {
    if wanted.is_empty() {
        return Scan::default();
    }
    let netns = match kind {
        Kind::Socket => netns_of(root, target),
        Kind::Pipe => None,
    };
    walk(
        root,
        deadline,
        target,
        &family(root, target),
        netns.as_deref(),
        |holders, pid, fd, link| {
            let ino = link
                .strip_prefix(kind.prefix())
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(ino) = ino.filter(|i| wanted.contains(i)) {
                holders.entry(ino).or_default().push(Holder { pid, fd });
            }
        },
        |holders| {
            wanted.iter().all(|ino| {
                holders
                    .get(ino)
                    .is_some_and(|h| h.iter().any(|h| h.pid != target))
            })
        },
    )
}

/// Every fd of every process whose link is exactly `link` (e.g. "/dev/fuse"), keyed under 0.
pub fn scan_link(root: &ProcRoot, link: &str, deadline: &Deadline) -> Scan {
    walk(
        root,
        deadline,
        0,
        &[],
        None,
        |holders, pid, fd, l| {
            if l == link {
                holders.entry(0).or_default().push(Holder { pid, fd });
            }
        },
        |_| false,
    )
}

/// An fd table larger than this is read after the smaller ones.
const SMALL_TABLE: u64 = 1024;

/// "net:[4026531833]", the link /proc/PID/ns/net names its namespace by.
fn netns_of(root: &ProcRoot, pid: i32) -> Option<String> {
    std::fs::read_link(root.pid(pid).join("ns/net"))
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// Whether the size `stat` gives a /proc/PID/fd directory is its number of open fds (Linux
/// 6.2+): this process's own table is never empty, and older kernels give 0 for every table.
fn sizes_count_fds(root: &ProcRoot) -> bool {
    std::fs::metadata(root.path().join("self/fd")).is_ok_and(|m| m.len() > 0)
}

/// The order to read processes in (see the module header): `netns` first when given, small
/// fd tables before large ones, then PID. `skip` (the target) is left out, and so are the
/// processes known to hold no fd, which are returned as a count.
fn reading_order(
    root: &ProcRoot,
    mut pids: Vec<i32>,
    skip: i32,
    netns: Option<&str>,
) -> (Vec<i32>, usize) {
    pids.retain(|&p| p != skip);
    let counted = sizes_count_fds(root);
    let mut empty = 0;
    let mut keyed: Vec<(u8, i32)> = pids
        .into_iter()
        .filter_map(|pid| {
            let size = std::fs::metadata(root.pid(pid).join("fd")).map(|m| m.len());
            if counted && matches!(size, Ok(0)) {
                empty += 1;
                return None;
            }
            let elsewhere = netns.is_some_and(|ns| netns_of(root, pid).as_deref() != Some(ns));
            let big = size.is_ok_and(|n| n > SMALL_TABLE);
            Some(((u8::from(elsewhere) << 1) | u8::from(big), pid))
        })
        .collect();
    keyed.sort_unstable();
    (keyed.into_iter().map(|(_, pid)| pid).collect(), empty)
}

/// Reads every process's fd links once, `first` (in that order) and then the others in
/// [`reading_order`], until `done` or the deadline. When `first` is enough, /proc is not even
/// listed.
fn walk(
    root: &ProcRoot,
    deadline: &Deadline,
    skip: i32,
    first: &[i32],
    netns: Option<&str>,
    mut on_link: impl FnMut(&mut HashMap<u64, Vec<Holder>>, i32, i32, &str),
    done: impl Fn(&HashMap<u64, Vec<Holder>>) -> bool,
) -> Scan {
    let mut out = Scan::default();
    let mut read = |out: &mut Scan, pid: i32| -> bool {
        if deadline.passed() {
            out.cut_by_deadline = true;
            return true;
        }
        out.processes += 1;
        let Ok(mut dir) = Dir::open(
            &root.pid(pid).join("fd"),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        ) else {
            out.unreadable += 1;
            return false;
        };
        let dirfd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        // SAFETY: `dir` owns the fd and outlives every use of this borrow in this call.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(dirfd) };
        for entry in dir.iter().flatten() {
            let name = entry.file_name();
            let Some(fd) = name.to_str().ok().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            // Closed since the listing (the directory opened, so its links are readable).
            let Ok(link) = nix::fcntl::readlinkat(borrowed, name) else {
                continue;
            };
            on_link(&mut out.holders, pid, fd, &link.to_string_lossy());
        }
        done(&out.holders)
    };
    // A family member with a huge table waits its turn among the big ones, as in
    // [`reading_order`]: a small target's search must not pay for a huge sibling.
    let counted = !first.is_empty() && sizes_count_fds(root);
    let first: Vec<i32> = first
        .iter()
        .copied()
        .filter(|&pid| {
            !counted
                || std::fs::metadata(root.pid(pid).join("fd")).is_ok_and(|m| m.len() <= SMALL_TABLE)
        })
        .collect();
    for &pid in &first {
        if read(&mut out, pid) {
            return out;
        }
    }
    // /proc itself unreadable: no process is visible, which `processes` (0) says.
    let Ok(entries) = std::fs::read_dir(root.path()) else {
        return out;
    };
    let pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| !first.contains(p))
        .collect();
    let (order, empty) = reading_order(root, pids, skip, netns);
    // Read as holding nothing.
    out.processes += empty;
    for pid in order {
        if read(&mut out, pid) {
            break;
        }
    }
    out
}

/// How many generations up the family goes.
const ANCESTORS: usize = 4;
/// How many of a family member's threads are asked for their children.
const FAMILY_TASKS: usize = 256;

/// The target's family, nearest first: its parent, its children, its siblings, then the
/// parent's ancestors (not init). A pipe is shared by fork, and so is a socket pair: the
/// other end is nearly always held here, and read first it ends the search before a busy
/// host's thousands of processes are listed. Only the order changes: the others are read
/// after, when a holder is still missing.
fn family(root: &ProcRoot, target: i32) -> Vec<i32> {
    let ppid = |pid: i32| crate::process::stat_of(root, pid).map(|s| s.ppid);
    // Each thread lists the children it forked (CONFIG_PROC_CHILDREN).
    let children = |pid: i32| -> Vec<i32> {
        let tids: Vec<String> = std::fs::read_dir(root.pid(pid).join("task"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .take(FAMILY_TASKS)
                    .collect()
            })
            .unwrap_or_default();
        tids.iter()
            .filter_map(|tid| root.read(format!("{pid}/task/{tid}/children")).ok())
            .flat_map(|c| crate::children::parse_children(&c).collect::<Vec<i32>>())
            .collect()
    };
    let mut out: Vec<i32> = Vec::new();
    let add = |pid: i32, out: &mut Vec<i32>| {
        if pid > 1 && pid != target && !out.contains(&pid) {
            out.push(pid);
        }
    };
    let parent = ppid(target);
    if let Some(p) = parent {
        add(p, &mut out);
    }
    for c in children(target) {
        add(c, &mut out);
    }
    if let Some(p) = parent.filter(|&p| p > 1) {
        for c in children(p) {
            add(c, &mut out);
        }
        let mut up = p;
        for _ in 0..ANCESTORS {
            match ppid(up) {
                Some(a) if a > 1 => {
                    add(a, &mut out);
                    up = a;
                }
                _ => break,
            }
        }
    }
    out
}

/// Process names (`comm`) by PID, each read once.
#[derive(Debug, Default)]
pub struct Names(HashMap<i32, Text>);

impl Names {
    pub fn of(&mut self, root: &ProcRoot, pid: i32) -> Text {
        self.0
            .entry(pid)
            .or_insert_with(|| root.comm(pid).unwrap_or_default())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::process::{Command, Stdio};

    use super::*;

    /// A child reading a pipe whose write end this test holds: its parent is the holder,
    /// found by reading one process's fds, not the host's in PID order.
    #[test]
    fn a_pipe_s_other_end_in_the_parent_is_found_without_listing_the_host() {
        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        let ino = nix::sys::stat::fstat(&write_end).expect("fstat").st_ino;
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::from(read_end))
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let wanted: HashSet<u64> = [ino].into_iter().collect();
        let found = scan(
            &ProcRoot::default(),
            Kind::Pipe,
            &wanted,
            child.id() as i32,
            &Deadline::after(std::time::Duration::from_secs(10)),
        );
        let _ = child.kill();
        let _ = child.wait();
        let me = std::process::id() as i32;
        let holders = found.holders.get(&ino).cloned().unwrap_or_default();
        assert!(
            holders.contains(&Holder {
                pid: me,
                fd: write_end.as_raw_fd()
            }),
            "{holders:?}"
        );
        assert_eq!(found.processes, 1, "read more than the parent: {found:?}");
    }

    #[test]
    fn the_family_is_the_parent_then_children_then_siblings() {
        let root = ProcRoot::default();
        let me = std::process::id() as i32;
        let mut child = Command::new("sleep")
            .arg("30")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let kid = child.id() as i32;
        let of_child = family(&root, kid);
        let of_me = family(&root, me);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(of_child.first(), Some(&me), "{of_child:?}");
        assert!(!of_child.contains(&kid));
        assert!(of_me.contains(&kid), "{of_me:?}");
        assert!(!of_me.contains(&1));
    }
}
