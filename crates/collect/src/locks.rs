//! File locks: /proc/locks (proc_locks(5)) joined to the target's fds through fdinfo.
//!
//! Parsed by hand: procfs-core's reader drops the "->" marker that tells a blocked request
//! from a held lock, and that marker is the whole point here. Facts checked on this kernel:
//! /proc/locks names processes, not threads; OFD locks show pid -1, and their holder is found
//! only through the `lock:` lines of fdinfo; fdinfo's `ino:` matches a lock to an fd without a
//! stat. The ordinal in fdinfo's `lock:` lines is not /proc/locks' id, so matching is by inode
//! and class.

use std::collections::HashMap;

use hangscope_model::{Fd, FileLock, Gap, GapReason, LockAccess, LockClass, Text};

use crate::error::gap_of;
use crate::{Deadline, ProcRoot, holders};

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
        other_owner: false,
        owner_name: None,
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

/// Most locks of other owners kept: a file shared by many processes (a database, a tdb) may
/// carry thousands of byte-range locks, and a retry loop is told by the first few.
const MAX_OTHERS: usize = 256;

/// The locks that involve process `pid`: held through its fds, requested by it, requested by
/// others against locks it holds, and held by other owners on files it has open (what a loop
/// that retries a lock without blocking keeps failing on; such a request leaves no "->" line).
/// Returns how many locks of other owners were left out beyond [`MAX_OTHERS`].
pub fn join(pid: i32, all: &[FileLock], fds: &[Fd]) -> (Vec<FileLock>, usize) {
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
    // Locks held through an open file description show in that fd's fdinfo, in the same
    // format as /proc/locks: the same lock has the same class, access, pid and range there. A
    // match on the inode alone would take another process's lock on a file this one also
    // locks for its own.
    let held_via_fdinfo = |l: &FileLock| -> Option<i32> {
        fds_by_ino.get(&l.inode)?.iter().find_map(|f| {
            let info = f.info.as_ref()?;
            info.locks
                .iter()
                .filter_map(|s| parse_line(&format!("0: {}", strip_ordinal(s))))
                .any(|fl| same_lock(&fl, l) && !fl.waiting)
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
    let mut others = Vec::new();
    let mut left_out = 0;
    for l in all.iter().filter(|l| !l.waiting) {
        // A POSIX lock belongs to the process /proc/locks names; only an unnamed one (another
        // PID namespace's) is looked for in the fdinfo.
        let fd = match (l.class, l.pid) {
            (LockClass::Posix, Some(p)) if p != pid => None,
            _ => held_via_fdinfo(l),
        };
        if fd.is_some() || l.pid == Some(pid) {
            let mut l = l.clone();
            l.fd = fd.or_else(|| first_fd(&fds_by_ino, l.inode, &l.dev));
            l.path = l.fd.and_then(|n| path_of(fds, n));
            ours_held.push(l.id);
            out.push(l);
        } else if let Some(n) = first_fd(&fds_by_ino, l.inode, &l.dev) {
            if others.len() >= MAX_OTHERS {
                left_out += 1;
                continue;
            }
            let mut l = l.clone();
            l.fd = Some(n);
            l.path = path_of(fds, n);
            l.other_owner = true;
            others.push(l);
        }
    }
    for l in all.iter().filter(|l| l.waiting) {
        // An OFD request is listed with pid -1 too: one on a file the target has open may be
        // its own, and is kept; a thread blocked in F_OFD_SETLKW on that fd tells.
        let maybe_ours = l.pid.is_none()
            && l.class == LockClass::Ofd
            && first_fd(&fds_by_ino, l.inode, &l.dev).is_some();
        let ours = l.pid == Some(pid) || maybe_ours;
        if !ours && !ours_held.contains(&l.id) {
            continue;
        }
        let mut l = l.clone();
        l.holder_pid = holders
            .get(&l.id)
            .and_then(|h| h.pid)
            .or_else(|| ours_held.contains(&l.id).then_some(pid));
        // A lease breaker ("-> LEASE BREAKER … <none>:0", an open() waiting for a lease to be
        // given up) names no file: it is the blocker's.
        if l.inode == 0
            && let Some(h) = holders.get(&l.id)
        {
            l.inode = h.inode;
            l.dev = h.dev.clone();
        }
        if ours {
            l.fd = first_fd(&fds_by_ino, l.inode, &l.dev);
            l.path = l.fd.and_then(|n| path_of(fds, n));
        }
        out.push(l);
    }
    out.append(&mut others);
    (out, left_out)
}

/// The same lock in /proc/locks and in an fdinfo `lock:` line (whose ordinal differs).
fn same_lock(a: &FileLock, b: &FileLock) -> bool {
    (a.class, a.access, a.pid, a.inode, a.start, a.end)
        == (b.class, b.access, b.pid, b.inode, b.start, b.end)
}

/// Whether /proc/locks' device ("fe:00", hex) is statx's ("254:0", decimal). Unknown on
/// either side counts as the same: the inode alone matched before the device was compared.
fn same_dev(locks_hex: &str, stat_dec: &str) -> bool {
    let parse = |s: &str, radix: u32| -> Option<(u32, u32)> {
        let (ma, mi) = s.split_once(':')?;
        Some((
            u32::from_str_radix(ma, radix).ok()?,
            u32::from_str_radix(mi, radix).ok()?,
        ))
    };
    match (parse(locks_hex, 16), parse(stat_dec, 10)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn strip_ordinal(s: &str) -> &str {
    s.split_once(':').map(|(_, rest)| rest.trim()).unwrap_or(s)
}

/// The first fd on the inode, on the same device when the fd's statx says which.
fn first_fd(fds_by_ino: &HashMap<u64, Vec<&Fd>>, ino: u64, dev: &str) -> Option<i32> {
    fds_by_ino
        .get(&ino)?
        .iter()
        .find(|f| f.stat.as_ref().is_none_or(|s| same_dev(dev, &s.dev)))
        .map(|f| f.fd)
}

fn path_of(fds: &[Fd], fd: i32) -> Option<hangscope_model::Text> {
    fds.iter().find(|f| f.fd == fd).map(|f| f.target.clone())
}

/// /proc/locks being read on its own thread. The kernel takes a lock for that read whose
/// writer side waits for an RCU grace period (file_rwsem), measured here at 10–20 ms of pure
/// waiting; started first, it is ready by the time the fds are.
pub struct PendingLocks(std::thread::JoinHandle<(std::io::Result<String>, std::time::Instant)>);

/// The leases a reader of the target's files must not break: a read of /proc/locks under way,
/// or the leases of one done.
pub enum LeaseRead {
    Pending(PendingLocks),
    Done(Leases),
}

pub fn start(root: &ProcRoot) -> PendingLocks {
    let path = root.path().join("locks");
    PendingLocks(std::thread::spawn(move || {
        let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned());
        (text, std::time::Instant::now())
    }))
}

/// Which files of a huge fd table need their fdinfo to be matched to a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockScope {
    None,
    Every,
    /// The files with these inode numbers (sorted), on whatever device.
    OfInodes(Vec<u64>),
}

/// /proc/locks as read, before it is joined to the fds.
pub struct LockTable(std::io::Result<(Vec<FileLock>, usize)>, std::time::Instant);

/// Waits for the read started by [`start`] and parses it.
pub fn wait(pending: PendingLocks) -> LockTable {
    let (text, at) = pending.0.join().unwrap_or_else(|_| {
        (
            Err(std::io::Error::other("the reader thread failed")),
            std::time::Instant::now(),
        )
    });
    LockTable(text.map(|t| parse_all(&t)), at)
}

/// The leases and delegations of /proc/locks as of one read: a log is not opened where one is
/// held (`logs::open`).
#[derive(Debug, Clone)]
pub struct Leases {
    pub leases: Vec<FileLock>,
    pub read_at: std::time::Instant,
}

impl Leases {
    pub fn of(all: &[FileLock], read_at: std::time::Instant) -> Leases {
        Leases {
            leases: all
                .iter()
                .filter(|l| matches!(l.class, LockClass::Lease | LockClass::Delegation))
                .cloned()
                .collect(),
            read_at,
        }
    }
}

impl LockTable {
    /// The table's leases, when it could be read.
    pub fn leases(&self) -> Option<Leases> {
        self.0.as_ref().ok().map(|(all, _)| Leases::of(all, self.1))
    }

    /// Why the table could not be read.
    pub fn error(&self) -> Option<&std::io::Error> {
        self.0.as_ref().err()
    }

    /// Which of `pid`'s files may hold a lock through their fd, so that they need their
    /// fdinfo read to be matched: every file for a lock /proc/locks names it (or its parent)
    /// for, and for an OFD lock or one whose owner is outside our PID namespace, neither
    /// named. For a lock named for a process that is gone (a flock taken before a daemon
    /// forked away from the process that took it), only the files with that lock's inode:
    /// leftover flocks of exited processes are common on a busy host, and each one made a
    /// 9,000-file target read every file's fdinfo.
    pub fn scope(&self, root: &ProcRoot, pid: i32, ppid: i32) -> LockScope {
        let Ok((all, _)) = self.0.as_ref() else {
            return LockScope::None;
        };
        let mut inodes: Vec<u64> = Vec::new();
        for l in all {
            match l.pid {
                None => return LockScope::Every,
                Some(p) if p == pid || p == ppid => return LockScope::Every,
                Some(p) if root.pid(p).exists() => {}
                Some(_) => inodes.push(l.inode),
            }
        }
        inodes.sort_unstable();
        inodes.dedup();
        if inodes.is_empty() {
            LockScope::None
        } else {
            LockScope::OfInodes(inodes)
        }
    }

    /// The locks that involve `pid`, joined to its fds; the other owners' named.
    pub fn join(
        self,
        root: &ProcRoot,
        pid: i32,
        fds: &[Fd],
        deadline: &Deadline,
        gaps: &mut Vec<Gap>,
    ) -> Vec<FileLock> {
        match self.0 {
            Ok((all, bad)) => {
                if bad > 0 {
                    gaps.push(Gap::new(
                        format!("{bad} lines of /proc/locks"),
                        GapReason::Malformed,
                        "lines not in the documented format were left out",
                    ));
                }
                let (mut locks, left_out) = join(pid, &all, fds);
                ofd_holders(root, pid, &all, &mut locks, deadline, gaps);
                if left_out > 0 {
                    gaps.push(Gap::new(
                        format!("{left_out} locks other processes hold on files it has open"),
                        GapReason::Skipped,
                        format!("only the first {MAX_OTHERS} are kept"),
                    ));
                }
                name_owners(root, &mut locks);
                locks
            }
            Err(e) => {
                gaps.push(gap_of("/proc/locks", &e));
                Vec::new()
            }
        }
    }
}

/// Holders looked at for one OFD lock: each is one read of a small fdinfo file.
const MAX_OFD_CANDIDATES: usize = 256;

/// The process holding an OFD lock that a request of the target waits behind. /proc/locks names
/// no process for an OFD lock (pid -1): the lock belongs to an open file description, and it
/// shows only in the fdinfo `lock:` lines of the fds sharing it. So the processes with the file
/// open are found by their fd links (readlink only, as for pipes), and the one whose fdinfo
/// lists that very lock on that inode holds it. Only run when such a request exists.
fn ofd_holders(
    root: &ProcRoot,
    pid: i32,
    all: &[FileLock],
    locks: &mut [FileLock],
    deadline: &Deadline,
    gaps: &mut Vec<Gap>,
) {
    for l in locks.iter_mut().filter(|l| {
        l.waiting && l.class == LockClass::Ofd && l.holder_pid.is_none() && l.path.is_some()
    }) {
        let Some(held) = all.iter().find(|h| h.id == l.id && !h.waiting) else {
            continue;
        };
        let Some(path) = l
            .path
            .as_ref()
            .filter(|p| p.is_utf8() && p.starts_with('/'))
        else {
            continue;
        };
        let scan = holders::scan_link(root, path.as_str(), deadline);
        let candidates = scan.holders.get(&0).map(Vec::as_slice).unwrap_or_default();
        l.holder_pid = candidates
            .iter()
            .filter(|h| h.pid != pid)
            .take(MAX_OFD_CANDIDATES)
            .find(|h| fdinfo_holds(root, h.pid, h.fd, held))
            .map(|h| h.pid);
        if l.holder_pid.is_none() && scan.cut_by_deadline {
            gaps.push(Gap::new(
                format!("the holder of the OFD lock on {}", path.as_str()),
                GapReason::Deadline,
                "the search of other processes' fds was cut short",
            ));
        }
    }
}

/// Whether fd `fd` of `pid` holds `lock`: its fdinfo names the same inode and lists the lock.
fn fdinfo_holds(root: &ProcRoot, pid: i32, fd: i32, lock: &FileLock) -> bool {
    // Unreadable: closed since, or not ours to read; either way not shown to hold it, and the
    // lock keeps its pid from /proc/locks.
    let Ok(info) = std::fs::read_to_string(root.pid(pid).join(format!("fdinfo/{fd}"))) else {
        return false;
    };
    let ino = info
        .lines()
        .find_map(|l| l.strip_prefix("ino:"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    ino == Some(lock.inode)
        && info
            .lines()
            .filter_map(|l| l.strip_prefix("lock:"))
            .filter_map(|l| parse_line(&format!("0: {}", strip_ordinal(l.trim_start()))))
            .any(|fl| same_lock(&fl, lock) && !fl.waiting)
}

/// Most processes named: each is one read of a small file.
const MAX_NAMED: usize = 16;

/// The comm of the processes that hold other owners' locks, so that a finding can say who.
fn name_owners(root: &ProcRoot, locks: &mut [FileLock]) {
    let mut names: HashMap<i32, Option<Text>> = HashMap::new();
    for l in locks.iter_mut().filter(|l| l.other_owner) {
        let Some(p) = l.pid else { continue };
        if !names.contains_key(&p) && names.len() >= MAX_NAMED {
            continue;
        }
        l.owner_name = names
            .entry(p)
            .or_insert_with(|| {
                // comm is world-readable: unread, the owner exited; the pid still names it.
                let bytes = std::fs::read(root.pid(p).join("comm")).ok()?;
                let name = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                Some(Text::from_bytes(name.to_vec()))
            })
            .clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fd::classify;
    use hangscope_model::FdInfo;

    #[test]
    fn a_lock_may_involve_the_target_its_parent_or_anyone_for_ofd_the_gone_their_files() {
        let root = std::env::temp_dir().join(format!("hs-locks-{}", std::process::id()));
        for live in ["100", "200", "300"] {
            std::fs::create_dir_all(root.join(live)).unwrap();
        }
        let root = ProcRoot::new(&root);
        let table = |text: &str| LockTable(Ok(parse_all(text)), std::time::Instant::now());
        let scope = |text: &str| table(text).scope(&root, 100, 200);
        let other = "1: FLOCK  ADVISORY  WRITE 300 fe:00:11 0 EOF\n";
        assert_eq!(scope(other), LockScope::None);
        let ours = "1: POSIX  ADVISORY  WRITE 100 fe:00:11 0 EOF\n";
        assert_eq!(scope(ours), LockScope::Every);
        let parents = "1: FLOCK  ADVISORY  WRITE 200 fe:00:11 0 EOF\n";
        assert_eq!(scope(parents), LockScope::Every);
        let gone = "1: FLOCK  ADVISORY  WRITE 999 fe:00:11 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 998 fe:00:12 0 EOF\n\
                    3: FLOCK  ADVISORY  WRITE 997 00:2c:13 0 EOF\n";
        assert_eq!(scope(gone), LockScope::OfInodes(vec![11, 12, 13]));
        let ofd = "1: OFDLCK ADVISORY  READ  -1 00:2c:77 100 199\n";
        assert_eq!(scope(ofd), LockScope::Every);
        // One that names the target wins over the gone ones' devices.
        let and_ours = format!("{gone}4: POSIX  ADVISORY  WRITE 100 fe:01:1 0 EOF\n");
        assert_eq!(scope(&and_ours), LockScope::Every);
        assert_eq!(
            LockTable(Err(std::io::Error::other("x")), std::time::Instant::now())
                .scope(&root, 100, 200),
            LockScope::None
        );
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
        let (mine, _) = join(2300, &all, std::slice::from_ref(&f));
        assert_eq!(mine.len(), 2);
        assert!(mine[0].waiting);
        assert_eq!(mine[0].holder_pid, Some(2216));
        assert_eq!(mine[0].fd, Some(5));
        assert_eq!(mine[0].path.as_deref(), Some("/tmp/plock"));
        assert!(mine[1].other_owner && mine[1].pid == Some(2216));
        // The holder's view: it holds the lock through fd 5 and sees the waiter.
        let (held, _) = join(2216, &all, &[f]);
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
        let (mine, _) = join(4242, &all, &[f]);
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].fd, Some(9));
        assert_eq!(mine[0].pid, None);
    }

    #[test]
    fn an_ofd_request_on_a_file_it_has_open_is_kept_with_its_fd() {
        // Both lines say pid -1: the waiting request on a file the target has open is kept
        // (its thread in F_OFD_SETLKW on that fd tells whose it is), the lock it waits behind
        // is another description's, whose holder is looked for in other processes' fdinfo.
        let (all, _) = parse_all(
            "7: OFDLCK ADVISORY  WRITE -1 00:2c:77 0 EOF\n\
             7: -> OFDLCK ADVISORY  WRITE -1 00:2c:77 0 EOF\n",
        );
        let f = file(3, "/data/image.lock", 77, "00:2c", &[]);
        let (mine, _) = join(4242, &all, &[f]);
        let req = mine
            .iter()
            .find(|l| l.waiting)
            .expect("the request is kept");
        assert_eq!((req.fd, req.holder_pid), (Some(3), None));
        // Not on a file it has open: not its request.
        let other = file(3, "/data/other", 78, "00:2c", &[]);
        assert!(join(4242, &all, &[other]).0.iter().all(|l| !l.waiting));
        // Held through its own other fd: it waits for itself.
        let own = file(
            5,
            "/data/image.lock",
            77,
            "00:2c",
            &["1: OFDLCK ADVISORY  WRITE -1 00:2c:77 0 EOF"],
        );
        let f = file(3, "/data/image.lock", 77, "00:2c", &[]);
        let (mine, _) = join(4242, &all, &[own, f]);
        let req = mine
            .iter()
            .find(|l| l.waiting)
            .expect("the request is kept");
        assert_eq!(req.holder_pid, Some(4242));
    }

    fn file(fd: i32, path: &str, ino: u64, dev: &str, locks: &[&str]) -> Fd {
        let mut f = classify(fd, path);
        f.info = Some(Box::new(FdInfo {
            ino: Some(ino),
            locks: locks.iter().map(|l| l.to_string()).collect(),
            ..FdInfo::default()
        }));
        f.stat = Some(Box::new(hangscope_model::FileStat {
            dev: dev.into(),
            ino,
            ..Default::default()
        }));
        f
    }

    /// SQLite's writer at PENDING, retrying EXCLUSIVE with F_SETLK: it holds its own locks on
    /// the database and a reader holds a READ lock on the same file. Measured with sqlite3
    /// 3.40 on Linux 6.18.
    const SQLITE_PENDING: &str = "\
        1: POSIX  ADVISORY  WRITE 1091 fe:00:10035247 1073741824 1073741825\n\
        2: POSIX  ADVISORY  READ 1091 fe:00:10035247 1073741826 1073742335\n\
        3: POSIX  ADVISORY  READ 1039 fe:00:10035247 1073741826 1073742335\n\
        4: POSIX  ADVISORY  WRITE 1200 fe:00:555 0 EOF\n";

    #[test]
    fn locks_of_others_on_files_it_has_open_are_kept_and_named_as_others() {
        let (all, _) = parse_all(SQLITE_PENDING);
        // Its fdinfo lists its own two locks on the inode, in the same format.
        let db = file(
            3,
            "/data/app.db",
            10035247,
            "254:0",
            &[
                "1: POSIX  ADVISORY  WRITE 1091 fe:00:10035247 1073741824 1073741825",
                "2: POSIX  ADVISORY  READ 1091 fe:00:10035247 1073741826 1073742335",
            ],
        );
        let (locks, left_out) = join(1091, &all, &[db]);
        assert_eq!(left_out, 0);
        let ours: Vec<u64> = locks
            .iter()
            .filter(|l| !l.other_owner)
            .map(|l| l.id)
            .collect();
        assert_eq!(ours, [1, 2]);
        let others: Vec<&FileLock> = locks.iter().filter(|l| l.other_owner).collect();
        assert_eq!(
            others.len(),
            1,
            "the reader's lock, not the lock on a file it has not open"
        );
        assert_eq!(
            (others[0].id, others[0].pid, others[0].fd),
            (3, Some(1039), Some(3))
        );
        assert_eq!(others[0].path.as_deref(), Some("/data/app.db"));
        // The reader's view: the writer's two locks are another owner's.
        let reader = file(5, "/data/app.db", 10035247, "254:0", &[]);
        let (locks, _) = join(1039, &all, &[reader]);
        let others: Vec<u64> = locks
            .iter()
            .filter(|l| l.other_owner)
            .map(|l| l.id)
            .collect();
        assert_eq!(others, [1, 2]);
    }

    #[test]
    fn a_lock_on_the_same_inode_of_another_device_is_not_on_its_file() {
        let (all, _) = parse_all("1: POSIX  ADVISORY  WRITE 1200 fe:00:555 0 EOF\n");
        let elsewhere = file(3, "/mnt/other", 555, "0:44", &[]);
        assert!(join(1, &all, &[elsewhere]).0.is_empty());
        let here = file(3, "/srv/db", 555, "254:0", &[]);
        assert_eq!(join(1, &all, &[here]).0.len(), 1);
    }

    #[test]
    fn locks_of_others_are_kept_up_to_a_bound() {
        let text: String = (0..MAX_OTHERS + 5)
            .map(|i| format!("{}: POSIX  ADVISORY  READ 900 fe:00:77 {i} {i}\n", i + 1))
            .collect();
        let (all, _) = parse_all(&text);
        let (locks, left_out) = join(1, &all, &[file(3, "/tdb", 77, "254:0", &[])]);
        assert_eq!((locks.len(), left_out), (MAX_OTHERS, 5));
    }

    #[test]
    fn owners_are_named_from_their_comm() {
        let dir = std::env::temp_dir().join(format!("hs-lockname-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("1039")).unwrap();
        std::fs::write(dir.join("1039/comm"), "sqlite3\n").unwrap();
        let root = ProcRoot::new(&dir);
        let (all, _) = parse_all(SQLITE_PENDING);
        let reader = file(5, "/data/app.db", 10035247, "254:0", &[]);
        let mut gaps = Vec::new();
        let deadline = Deadline::after(std::time::Duration::from_secs(5));
        let locks = LockTable(Ok((all, 0)), std::time::Instant::now()).join(
            &root,
            4000,
            &[reader],
            &deadline,
            &mut gaps,
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(gaps.is_empty(), "{gaps:?}");
        // 1091 has no comm here (gone): named by nobody, still listed.
        let names: Vec<(Option<i32>, Option<String>)> = locks
            .iter()
            .map(|l| (l.pid, l.owner_name.as_ref().map(|n| n.to_string())))
            .collect();
        assert_eq!(
            names,
            [
                (Some(1091), None),
                (Some(1091), None),
                (Some(1039), Some("sqlite3".into()))
            ]
        );
    }
}
