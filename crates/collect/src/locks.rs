//! File locks: /proc/locks (proc_locks(5)) joined to the target's fds through fdinfo.
//!
//! Parsed by hand: procfs-core's reader drops the "->" marker that tells a blocked request
//! from a held lock, and that marker is the whole point here. Facts checked on this kernel:
//! /proc/locks names processes, not threads; OFD locks show pid -1, and their holder is found
//! only through the `lock:` lines of fdinfo; fdinfo's `ino:` matches a lock to an fd without a
//! stat. The ordinal in fdinfo's `lock:` lines is not /proc/locks' id, so matching is by inode
//! and class.

use std::collections::HashMap;

use hangscope_model::{Fd, FileLock, Gap, GapReason, LockAccess, LockClass};

use crate::ProcRoot;
use crate::error::gap_of;

/// One line of /proc/locks (or of a `lock:` line in fdinfo).
pub fn parse_line(line: &str) -> Option<FileLock> {
    let mut it = line.split_whitespace();
    let id: u64 = it.next()?.strip_suffix(':')?.parse().ok()?;
    let mut class_tok = it.next()?;
    let waiting = class_tok == "->";
    if waiting {
        class_tok = it.next()?;
    }
    let class = match class_tok {
        "POSIX" => LockClass::Posix,
        "FLOCK" => LockClass::Flock,
        "OFDLCK" => LockClass::Ofd,
        "LEASE" => LockClass::Lease,
        "DELEG" => LockClass::Delegation,
        _ => LockClass::Other,
    };
    let mode = it.next()?.to_string();
    let access = match it.next()? {
        "READ" => LockAccess::Read,
        "WRITE" => LockAccess::Write,
        "UNLCK" | "NONE" => LockAccess::None,
        _ => LockAccess::Other,
    };
    let pid: i32 = it.next()?.parse().ok()?;
    let mut dev_ino = it.next()?.rsplitn(2, ':');
    let inode: u64 = dev_ino.next()?.parse().ok()?;
    let dev = dev_ino.next()?.to_string();
    let start: u64 = it.next()?.parse().ok()?;
    let end = match it.next()? {
        "EOF" => None,
        n => Some(n.parse().ok()?),
    };
    Some(FileLock {
        id,
        class,
        access,
        mode,
        pid: (pid > 0).then_some(pid),
        dev,
        inode,
        start,
        end,
        waiting,
        fd: None,
        holder_pid: None,
        path: None,
    })
}

/// Parses all of /proc/locks, counting lines it could not read.
pub fn parse_all(text: &str) -> (Vec<FileLock>, usize) {
    let mut bad = 0;
    let locks = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let parsed = parse_line(l);
            bad += usize::from(parsed.is_none());
            parsed
        })
        .collect();
    (locks, bad)
}

/// The locks that involve process `pid`: held through its fds, requested by it, or requested by
/// others against locks it holds.
pub fn join(pid: i32, all: &[FileLock], fds: &[Fd]) -> Vec<FileLock> {
    let mut fds_by_ino: HashMap<u64, Vec<&Fd>> = HashMap::new();
    for f in fds {
        let ino = f
            .info
            .as_ref()
            .and_then(|i| i.ino)
            .or(f.stat.as_ref().map(|s| s.ino));
        if let (Some(ino), true) = (ino, f.kind.is_path()) {
            fds_by_ino.entry(ino).or_default().push(f);
        }
    }
    // Locks held through an open file description show in that fd's fdinfo.
    let held_via_fdinfo = |l: &FileLock| -> Option<i32> {
        fds_by_ino.get(&l.inode)?.iter().find_map(|f| {
            let info = f.info.as_ref()?;
            info.locks
                .iter()
                .filter_map(|s| parse_line(&format!("0: {}", strip_ordinal(s))))
                .any(|fl| fl.class == l.class && fl.inode == l.inode && !fl.waiting)
                .then_some(f.fd)
        })
    };

    let holders: HashMap<u64, &FileLock> = all
        .iter()
        .filter(|l| !l.waiting)
        .map(|l| (l.id, l))
        .collect();
    let mut ours_held: Vec<u64> = Vec::new();
    let mut out = Vec::new();
    for l in all.iter().filter(|l| !l.waiting) {
        let fd = held_via_fdinfo(l);
        let posix_ours = l.pid == Some(pid);
        if fd.is_some() || posix_ours {
            let mut l = l.clone();
            l.fd = fd.or_else(|| first_fd(&fds_by_ino, l.inode));
            l.path = l.fd.and_then(|n| path_of(fds, n));
            ours_held.push(l.id);
            out.push(l);
        }
    }
    for l in all.iter().filter(|l| l.waiting) {
        let ours = l.pid == Some(pid);
        if !ours && !ours_held.contains(&l.id) {
            continue;
        }
        let mut l = l.clone();
        l.holder_pid = holders.get(&l.id).and_then(|h| h.pid);
        if ours {
            l.fd = first_fd(&fds_by_ino, l.inode);
            l.path = l.fd.and_then(|n| path_of(fds, n));
        }
        out.push(l);
    }
    out
}

fn strip_ordinal(s: &str) -> &str {
    s.split_once(':').map(|(_, rest)| rest.trim()).unwrap_or(s)
}

fn first_fd(fds_by_ino: &HashMap<u64, Vec<&Fd>>, ino: u64) -> Option<i32> {
    fds_by_ino.get(&ino)?.first().map(|f| f.fd)
}

fn path_of(fds: &[Fd], fd: i32) -> Option<hangscope_model::Text> {
    fds.iter().find(|f| f.fd == fd).map(|f| f.target.clone())
}

/// /proc/locks being read on its own thread. The kernel takes a lock for that read whose
/// writer side waits for an RCU grace period (file_rwsem), measured here at 10–20 ms of pure
/// waiting; started first, it is ready by the time the fds are.
pub struct PendingLocks(std::thread::JoinHandle<std::io::Result<String>>);

pub fn start(root: &ProcRoot) -> PendingLocks {
    let path = root.path().join("locks");
    PendingLocks(std::thread::spawn(move || {
        std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned())
    }))
}

/// /proc/locks as read, before it is joined to the fds.
pub struct LockTable(std::io::Result<(Vec<FileLock>, usize)>);

/// Waits for the read started by [`start`] and parses it.
pub fn wait(pending: PendingLocks) -> LockTable {
    let text = pending
        .0
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the reader thread failed")));
    LockTable(text.map(|t| parse_all(&t)))
}

impl LockTable {
    /// Whether a lock may be held through an fd of `pid`, so that its files need their fdinfo
    /// read to be matched: a lock /proc/locks names it (or its parent) for; an OFD lock, whose
    /// owner is never named; or a lock named for a process that is gone, as a flock taken
    /// before a daemon forked away from the process that took it.
    pub fn may_involve(&self, root: &ProcRoot, pid: i32, ppid: i32) -> bool {
        self.0.as_ref().is_ok_and(|(all, _)| {
            all.iter().any(|l| match l.pid {
                None => true,
                Some(p) => p == pid || p == ppid || !root.pid(p).exists(),
            })
        })
    }

    /// The locks that involve `pid`, joined to its fds.
    pub fn join(self, pid: i32, fds: &[Fd], gaps: &mut Vec<Gap>) -> Vec<FileLock> {
        match self.0 {
            Ok((all, bad)) => {
                if bad > 0 {
                    gaps.push(Gap::new(
                        format!("{bad} lines of /proc/locks"),
                        GapReason::Malformed,
                        "lines not in the documented format were left out",
                    ));
                }
                join(pid, &all, fds)
            }
            Err(e) => {
                gaps.push(gap_of("/proc/locks", &e));
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fd::classify;
    use hangscope_model::FdInfo;

    #[test]
    fn a_lock_may_involve_the_target_its_parent_the_gone_or_anyone_for_ofd() {
        let root = std::env::temp_dir().join(format!("hs-locks-{}", std::process::id()));
        for live in ["100", "200", "300"] {
            std::fs::create_dir_all(root.join(live)).unwrap();
        }
        let root = ProcRoot::new(&root);
        let table = |text: &str| LockTable(Ok(parse_all(text)));
        let other = "1: FLOCK  ADVISORY  WRITE 300 fe:00:11 0 EOF\n";
        assert!(!table(other).may_involve(&root, 100, 200));
        let ours = "1: POSIX  ADVISORY  WRITE 100 fe:00:11 0 EOF\n";
        assert!(table(ours).may_involve(&root, 100, 200));
        let parents = "1: FLOCK  ADVISORY  WRITE 200 fe:00:11 0 EOF\n";
        assert!(table(parents).may_involve(&root, 100, 200));
        let gone = "1: FLOCK  ADVISORY  WRITE 999 fe:00:11 0 EOF\n";
        assert!(table(gone).may_involve(&root, 100, 200));
        let ofd = "1: OFDLCK ADVISORY  READ  -1 00:2c:77 100 199\n";
        assert!(table(ofd).may_involve(&root, 100, 200));
        assert!(!LockTable(Err(std::io::Error::other("x"))).may_involve(&root, 100, 200));
        let _ = std::fs::remove_dir_all(root.path());
    }

    #[test]
    fn parses_held_waiting_and_ofd() {
        let text = "1: POSIX  ADVISORY  WRITE 2216 fe:00:10010802 0 EOF\n\
                    1: -> POSIX  ADVISORY  WRITE 2300 fe:00:10010802 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 2216 fe:00:10010801 0 EOF\n\
                    3: OFDLCK ADVISORY  READ  -1 00:2c:77 100 199\n\
                    garbage line\n";
        let (locks, bad) = parse_all(text);
        assert_eq!(bad, 1);
        assert_eq!(locks.len(), 4);
        assert!(locks[1].waiting);
        assert_eq!(locks[1].pid, Some(2300));
        assert_eq!(locks[3].class, LockClass::Ofd);
        assert_eq!(locks[3].pid, None);
        assert_eq!(locks[3].end, Some(199));
        assert_eq!(locks[3].dev, "00:2c");
    }

    #[test]
    fn joins_waiter_to_holder_and_fd() {
        let text = "1: POSIX  ADVISORY  WRITE 2216 fe:00:10010802 0 EOF\n\
                    1: -> POSIX  ADVISORY  WRITE 2300 fe:00:10010802 0 EOF\n";
        let (all, _) = parse_all(text);
        let mut f = classify(5, "/tmp/plock");
        f.info = Some(Box::new(FdInfo {
            ino: Some(10010802),
            ..FdInfo::default()
        }));
        // The waiter's view: process 2300 waits on 2216 through its fd 5.
        let mine = join(2300, &all, std::slice::from_ref(&f));
        assert_eq!(mine.len(), 1);
        assert!(mine[0].waiting);
        assert_eq!(mine[0].holder_pid, Some(2216));
        assert_eq!(mine[0].fd, Some(5));
        assert_eq!(mine[0].path.as_deref(), Some("/tmp/plock"));
        // The holder's view: it holds the lock through fd 5 and sees the waiter.
        let held = join(2216, &all, &[f]);
        assert_eq!(held.len(), 2);
        assert!(!held[0].waiting && held[0].fd == Some(5));
        assert!(held[1].waiting && held[1].pid == Some(2300));
    }

    #[test]
    fn ofd_holder_found_through_fdinfo() {
        let (all, _) = parse_all("7: OFDLCK ADVISORY  WRITE -1 00:2c:77 0 EOF\n");
        let mut f = classify(9, "/data/db.lock");
        f.info = Some(Box::new(FdInfo {
            ino: Some(77),
            locks: vec!["1: OFDLCK ADVISORY  WRITE -1 00:2c:77 0 EOF".into()],
            ..FdInfo::default()
        }));
        let mine = join(4242, &all, &[f]);
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].fd, Some(9));
        assert_eq!(mine[0].pid, None);
    }
}
