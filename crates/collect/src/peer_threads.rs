//! The other end's threads: when a thread of the target waits on a connection whose other end
//! another local process holds, one look at that process's threads says whether any of them
//! waits on its end (both sides waiting to read is a protocol deadlock) or where they are
//! instead. Read-only like the rest: /proc/PID/task/TID/{stat,syscall} and, for a poll array,
//! process_vm_readv; no window, no stacks.

use std::collections::BTreeMap;

use hangscope_model::{
    CallCount, Fd, Gap, GapReason, LocalPeer, PeerThread, PeerThreads, Snapshot, SocketDetail,
    SyscallState, TcpState, Text, WaitObject,
};

use crate::error::{FdFailures, ReadError, reason_of};
use crate::threads::{memory, syscall, task};
use crate::{Deadline, Options, ProcRoot};

/// Most processes looked at per run: each is a read of all its threads.
const MAX_PROCESSES: usize = 8;
/// Most threads read per process: enough to find the ones on one fd in a large server.
const MAX_THREADS: usize = 1024;
/// Most fds of a process at the other end read for its own connections.
const MAX_FDS: usize = 4096;
/// Looks again at threads caught running, at most this many times, this far apart.
const RUNNING_RELOOKS: usize = 5;
const RELOOK_AFTER: std::time::Duration = std::time::Duration::from_millis(15);
/// Most threads kept with their calls among those not on the fd.
const MAX_BUSY: usize = 4;
/// Most of its own connections kept per process.
const MAX_OPENED: usize = 8;

/// Fills `threads` of the holders of the other ends that threads of the target wait on, and
/// returns what could not be looked at: a holder past `MAX_PROCESSES`, or whose threads could
/// not be read, has no `threads`, and a gap says why.
#[must_use]
pub fn read_for_waits(root: &ProcRoot, pid: i32, snap: &mut Snapshot, opts: &Options) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let waited = crate::threads::fds_waited_on(&snap.threads);
    if waited.is_empty() {
        return gaps;
    }
    // The processes to look at, in the order their sockets come. A collected socket lists
    // every fd of the target that holds it.
    let mut wanted: Vec<i32> = Vec::new();
    for s in &snap.sockets {
        if !s.fds.iter().any(|f| waited.contains(f)) {
            continue;
        }
        let holder = match &s.detail {
            SocketDetail::Unix(u) => u.peer.as_ref().map(|p| p.pid),
            SocketDetail::Tcp(i) => i
                .local_peer
                .as_deref()
                .and_then(LocalPeer::acting_holder)
                .map(|h| h.pid),
            _ => None,
        };
        if let Some(h) = holder.filter(|&h| h != pid && !wanted.contains(&h)) {
            wanted.push(h);
        }
    }
    let mut looks: BTreeMap<i32, Vec<(i32, Text, SyscallState)>> = BTreeMap::new();
    // Whether something outside it holds the other process: a stopped or frozen server is
    // why nothing answers, whatever its threads wait in.
    let mut holds = BTreeMap::new();
    let (looked, skipped) = capped(&wanted);
    gaps.extend(skipped);
    for &p in looked {
        match glance(root, p, &opts.deadline, &mut gaps) {
            Ok(threads) => {
                looks.insert(p, threads);
                holds.insert(p, crate::process::hold(root, p));
            }
            Err(gap) => gaps.push(gap),
        }
    }
    for s in &mut snap.sockets {
        let (holder_pid, holder_fd, slot) = match &mut s.detail {
            SocketDetail::Unix(u) => match u.peer.as_mut() {
                Some(p) => (p.pid, p.fd, &mut p.threads),
                None => continue,
            },
            SocketDetail::Tcp(i) => {
                let Some(p) = i.local_peer.as_deref_mut() else {
                    continue;
                };
                match p.acting_holder_mut() {
                    Some(h) => (h.pid, h.fd, &mut h.threads),
                    None => continue,
                }
            }
            _ => continue,
        };
        if let Some(threads) = looks.get(&holder_pid) {
            let mut seen = on_fd(threads, holder_fd);
            if let Some((state, tracer, freezer)) = holds.get(&holder_pid) {
                seen.state = state.clone().unwrap_or_default();
                seen.tracer = tracer.clone();
                seen.freezer = freezer.clone();
            }
            *slot = Some(seen);
        }
    }
    read_opened(root, snap, &looks, opts, &mut gaps);
    gaps
}

/// The processes looked at, and a gap naming those left out past `MAX_PROCESSES`.
fn capped(wanted: &[i32]) -> (&[i32], Option<Gap>) {
    if wanted.len() <= MAX_PROCESSES {
        return (wanted, None);
    }
    let (looked, left) = wanted.split_at(MAX_PROCESSES);
    let shown: Vec<String> = left.iter().take(8).map(|p| p.to_string()).collect();
    let more = if left.len() > 8 { " …" } else { "" };
    let gap = Gap::new(
        format!(
            "threads of {} more processes at the other ends (PID {}{more})",
            left.len(),
            shown.join(", ")
        ),
        GapReason::Skipped,
        format!(
            "threads of the target wait on connections to {} local processes; the threads of \
             the first {MAX_PROCESSES} are read",
            wanted.len()
        ),
    );
    (looked, Some(gap))
}

/// Fills `opened` of the TCP peers' holders that were looked at: the connections each opened
/// itself, which is where a proxy at the other end forwards the request and waits. Their
/// tcp_info comes from one sock_diag dump in the target's namespace, which the holder of a
/// connection to this host shares. What could not be read is a gap: without it the other end
/// is still named, only not its upstream.
fn read_opened<T>(
    root: &ProcRoot,
    snap: &mut Snapshot,
    looked: &BTreeMap<i32, T>,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) {
    let mut fds_of: BTreeMap<i32, Vec<(i32, u64)>> = BTreeMap::new();
    for s in &snap.sockets {
        if let SocketDetail::Tcp(i) = &s.detail
            && let Some(h) = i.local_peer.as_deref().and_then(LocalPeer::holder)
            && looked.contains_key(&h.pid)
            && !fds_of.contains_key(&h.pid)
        {
            let what = || format!("the connections opened by {} (at the other end)", h.pid);
            match socket_fds(root, h.pid, &opts.deadline) {
                Ok((fds, failures)) => {
                    gaps.extend(failures.into_gaps("the socket links", h.pid));
                    fds_of.insert(h.pid, fds);
                }
                Err(e) => gaps.push(e.gap(what())),
            }
        }
    }
    let inodes: std::collections::HashSet<u64> =
        fds_of.values().flatten().map(|&(_, ino)| ino).collect();
    if inodes.is_empty() || opts.deadline.passed() {
        return;
    }
    let holders: Vec<(i32, Vec<(i32, u64)>)> =
        fds_of.iter().map(|(p, f)| (*p, f.clone())).collect();
    let dumped = match crate::sockets::tcp_of(root, &snap.process, inodes, holders, opts) {
        Ok(d) => d,
        Err(e) => {
            let pids: Vec<String> = fds_of.keys().map(i32::to_string).collect();
            gaps.push(e.gap(format!(
                "the connections opened by {} (at the other end)",
                pids.join(", ")
            )));
            return;
        }
    };
    for s in &mut snap.sockets {
        let SocketDetail::Tcp(i) = &mut s.detail else {
            continue;
        };
        let our_sent = i.tcp_info.as_deref().map(|t| t.last_data_sent_ms);
        let Some(p) = i.local_peer.as_deref_mut() else {
            continue;
        };
        let peer_inode = p.inode;
        let (Some(h), Some(our_sent)) = (p.holder_mut(), our_sent) else {
            continue;
        };
        let Some(fds) = fds_of.get(&h.pid) else {
            continue;
        };
        let fd_of = |ino: u64| fds.iter().find(|f| f.1 == ino).map(|f| f.0);
        let mine: Vec<&hangscope_model::Socket> =
            dumped.iter().filter(|d| fd_of(d.inode).is_some()).collect();
        let listening: Vec<u16> = mine
            .iter()
            .filter_map(|d| match &d.detail {
                SocketDetail::Tcp(t) if t.state == TcpState::Listen => Some(t.local.port),
                _ => None,
            })
            .collect();
        let mut opened: Vec<hangscope_model::Socket> = mine
            .into_iter()
            .filter(|d| d.inode != peer_inode)
            .filter(|d| {
                matches!(&d.detail, SocketDetail::Tcp(t)
                    if t.state == TcpState::Established && !listening.contains(&t.local.port))
            })
            .cloned()
            .collect();
        let sent = |d: &hangscope_model::Socket| match &d.detail {
            SocketDetail::Tcp(t) => t.tcp_info.as_deref().map(|t| t.last_data_sent_ms),
            _ => None,
        };
        opened.sort_by_key(|d| sent(d).map_or(u32::MAX, |ms| ms.abs_diff(our_sent)));
        opened.truncate(MAX_OPENED);
        for d in &mut opened {
            d.fds = fd_of(d.inode).into_iter().collect();
        }
        h.opened = opened;
    }
}

/// The socket fds of process `pid`: (fd, inode), at most `MAX_FDS`, and the fds whose link
/// could not be read (other than closed since the listing); `Err` when the fd directory could
/// not be listed, which says nothing of what the process holds.
fn socket_fds(
    root: &ProcRoot,
    pid: i32,
    deadline: &Deadline,
) -> Result<(Vec<(i32, u64)>, FdFailures), ReadError> {
    let dir = root.pid(pid).join("fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| ReadError::io_at(dir.display(), &e))?;
    let mut out = Vec::new();
    let mut failures = FdFailures::default();
    // An entry that fails to read is an fd closed during the listing.
    for e in entries.flatten().take(MAX_FDS) {
        if deadline.passed() {
            break;
        }
        let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let link = match std::fs::read_link(e.path()) {
            Ok(link) => link,
            Err(e) if task::is_gone(&e) => continue, // closed since the listing
            Err(e) => {
                failures.push(fd, e);
                continue;
            }
        };
        let inode = link
            .to_str()
            .and_then(|l| l.strip_prefix("socket:["))
            .and_then(|l| l.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(inode) = inode {
            out.push((fd, inode));
        }
    }
    Ok((out, failures))
}

/// One look at the threads of `pid`: (tid, name, decoded syscall) each, or why there is none.
/// Threads whose syscall could not be read, and epoll fds whose watch list could not, are gaps
/// in `gaps`: they are not in the look, which must not be read as "no thread waits there".
fn glance(
    root: &ProcRoot,
    pid: i32,
    deadline: &Deadline,
    gaps: &mut Vec<Gap>,
) -> Result<Vec<(i32, Text, SyscallState)>, Gap> {
    let what = || format!("threads of {pid} (at the other end)");
    let dir = root.pid(pid).join("task");
    let tids: Vec<i32> = std::fs::read_dir(&dir)
        .map_err(|e| crate::error::gap_of(what(), &e))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .take(MAX_THREADS)
        .collect();
    let arch = syscall::Arch::host();
    let mut reads = Vec::with_capacity(tids.len());
    for &tid in &tids {
        if deadline.passed() {
            // Half a look would misstate where the threads are.
            return Err(Gap::new(
                what(),
                GapReason::Deadline,
                "not read before the deadline",
            ));
        }
        // None: the thread exited since the listing, and is in no wait.
        if let Some(t) = task::read(root, pid, tid, false) {
            reads.push(t);
        }
    }
    // An event loop that wakes on a timer (Redis every 100 ms) is now and then caught awake,
    // between two waits: look again at a thread caught running, a few times, before saying it
    // is not in its wait.
    for _ in 0..RUNNING_RELOOKS {
        let awake: Vec<usize> = (0..reads.len())
            .filter(|&i| {
                !matches!(
                    &reads[i].syscall,
                    Some(Ok(syscall::RawSyscall::Blocked { .. }))
                )
            })
            .collect();
        if awake.is_empty() || deadline.passed() {
            break;
        }
        std::thread::sleep(RELOOK_AFTER);
        for i in awake {
            if let Some(t) = task::read(root, pid, reads[i].tid, false) {
                reads[i] = t;
            }
        }
    }
    // Epoll instances need their watch lists to tell which fds their waiters wait on.
    let mut fds: Vec<Fd> = Vec::new();
    for t in &reads {
        if let Some(Ok(syscall::RawSyscall::Blocked { nr, args, .. })) = &t.syscall
            && syscall::name(arch, *nr).starts_with("epoll_")
        {
            crate::threads::ensure_fd(root, pid, &mut fds, args[0] as i32, gaps);
        }
    }
    if let Some(gap) = unread_syscalls(pid, &reads) {
        gaps.push(gap);
    }
    let out = reads
        .into_iter()
        .filter_map(|t| {
            let raw = t.syscall.as_ref()?.as_ref().ok()?;
            let mem = memory::LiveMemory { tid: t.tid };
            let ctx = syscall::Context {
                arch,
                mem: &mem,
                fds: &fds,
                tids: &tids,
            };
            Some((t.tid, t.name.clone(), syscall::decode(raw, &ctx)))
        })
        .collect();
    Ok(out)
}

/// One gap for the threads of `pid` whose syscall file could not be read, with the reason of
/// the first.
fn unread_syscalls(pid: i32, reads: &[task::TaskRead]) -> Option<Gap> {
    let failed: Vec<(i32, &ReadError)> = reads
        .iter()
        .filter_map(|t| match &t.syscall {
            Some(Err(e)) => Some((t.tid, e)),
            _ => None,
        })
        .collect();
    let (_, first) = failed.first()?;
    let shown: Vec<String> = failed.iter().take(5).map(|(t, _)| t.to_string()).collect();
    let more = if failed.len() > 5 { " …" } else { "" };
    Some(Gap::new(
        format!(
            "syscalls of {} of {} threads of {pid} (at the other end; TID {}{more})",
            failed.len(),
            reads.len(),
            shown.join(", ")
        ),
        reason_of(*first),
        first.to_string(),
    ))
}

/// Which of `threads` wait on `fd`, and where the others are.
fn on_fd(threads: &[(i32, Text, SyscallState)], fd: i32) -> PeerThreads {
    let mut on = Vec::new();
    let mut busy = Vec::new();
    let mut elsewhere: BTreeMap<&str, u32> = BTreeMap::new();
    for (tid, name, s) in threads {
        let set = s.fd_waits();
        let wait = set.iter().find(|w| w.0 == fd).map(|w| w.1);
        match wait {
            Some(events) if !s.running => on.push(PeerThread {
                tid: *tid,
                name: name.clone(),
                call: if s.summary.is_empty() {
                    s.name.clone()
                } else {
                    s.summary.clone()
                },
                syscall: s.name.clone(),
                events: events.to_vec(),
                among: u32::try_from(set.len()).unwrap_or(u32::MAX),
            }),
            _ => {
                *elsewhere.entry(s.name.as_str()).or_default() += 1;
                // A futex wait with no owner is a thread parked until work comes.
                let parked = s.name.starts_with("futex")
                    && !s.waits_on.iter().any(|w| {
                        matches!(
                            w,
                            WaitObject::Futex {
                                owner_tid: Some(_),
                                ..
                            }
                        )
                    });
                if !parked && busy.len() < MAX_BUSY {
                    busy.push(PeerThread {
                        tid: *tid,
                        name: name.clone(),
                        call: if s.summary.is_empty() {
                            s.name.clone()
                        } else {
                            s.summary.clone()
                        },
                        syscall: s.name.clone(),
                        events: Vec::new(),
                        among: 0,
                    });
                }
            }
        }
    }
    let mut counted: Vec<(&str, u32)> = elsewhere.into_iter().collect();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    PeerThreads {
        count: threads.len() as u32,
        on_fd: on,
        elsewhere: counted
            .into_iter()
            .map(|(name, count)| CallCount {
                syscall: name.to_string(),
                count,
            })
            .collect(),
        busy,
        ..PeerThreads::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(name: &str, waits_on: Vec<WaitObject>) -> SyscallState {
        SyscallState {
            name: name.into(),
            summary: format!("{name}(...)"),
            waits_on,
            ..SyscallState::default()
        }
    }

    fn on(fd: i32, events: &[&str]) -> WaitObject {
        WaitObject::Fd {
            fd,
            events: events.iter().map(|e| e.to_string()).collect(),
            via_epoll: None,
        }
    }

    #[test]
    fn threads_on_the_fd_and_the_calls_of_the_others() {
        let threads = vec![
            (10, Text::from("main"), blocked("futex", vec![])),
            (11, Text::from("worker"), blocked("futex", vec![])),
            (
                12,
                Text::from("io"),
                blocked("epoll_wait", vec![on(7, &["EPOLLIN"])]),
            ),
            (13, Text::from("writer"), blocked("write", vec![on(7, &[])])),
            (14, Text::from("other"), blocked("read", vec![on(9, &[])])),
        ];
        let p = on_fd(&threads, 7);
        assert_eq!(p.count, 5);
        let on: Vec<(i32, &str, &[String])> = p
            .on_fd
            .iter()
            .map(|t| (t.tid, t.syscall.as_str(), t.events.as_slice()))
            .collect();
        assert_eq!(
            on,
            vec![
                (12, "epoll_wait", &["EPOLLIN".to_string()][..]),
                (13, "write", &[][..])
            ]
        );
        let elsewhere: Vec<(&str, u32)> = p
            .elsewhere
            .iter()
            .map(|c| (c.syscall.as_str(), c.count))
            .collect();
        assert_eq!(elsewhere, vec![("futex", 2), ("read", 1)]);
        // Each on its own fd: a set of one.
        assert!(p.on_fd.iter().all(|t| t.among == 1));
        // Parked on futexes with no owner: not busy; the read of another fd is.
        let busy: Vec<i32> = p.busy.iter().map(|t| t.tid).collect();
        assert_eq!(busy, vec![14]);
    }

    #[test]
    fn holders_past_the_cap_are_a_gap_naming_them() {
        let wanted: Vec<i32> = (100..110).collect();
        let (looked, gap) = capped(&wanted);
        assert_eq!(looked, &wanted[..MAX_PROCESSES]);
        let gap = gap.expect("two holders left out");
        assert_eq!(gap.reason, GapReason::Skipped);
        assert_eq!(
            gap.what,
            "threads of 2 more processes at the other ends (PID 108, 109)"
        );
        let (all, none) = capped(&wanted[..MAX_PROCESSES]);
        assert_eq!(all.len(), MAX_PROCESSES);
        assert!(none.is_none());
    }

    fn fake_root(name: &str) -> (std::path::PathBuf, ProcRoot) {
        let dir = std::env::temp_dir().join(format!("hs-peer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (dir.clone(), ProcRoot::new(dir))
    }

    #[test]
    fn an_unlistable_fd_directory_is_an_error_not_no_sockets() {
        let (dir, root) = fake_root("fds");
        std::fs::create_dir_all(dir.join("4242")).unwrap();
        // Not a directory: the listing fails with ENOTDIR (as root too, unlike a mode).
        std::fs::write(dir.join("4242/fd"), b"").unwrap();
        let deadline = Deadline::after(std::time::Duration::from_secs(5));
        let err = socket_fds(&root, 4242, &deadline).expect_err("not listable");
        assert_eq!(err.kind, crate::ReadErrorKind::Errno(libc::ENOTDIR));
        assert_eq!(err.path, Some(format!("{}/4242/fd", dir.display())));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_other_end_s_connections_unread_are_a_gap() {
        let (dir, root) = fake_root("opened");
        let holder = hangscope_model::PeerHolder {
            pid: 4242,
            name: Text::from("proxy"),
            fd: 9,
            threads: None,
            opened: Vec::new(),
        };
        let inet = hangscope_model::InetSocket {
            state: TcpState::Established,
            local_peer: Some(Box::new(LocalPeer {
                inode: 77,
                state: TcpState::Established,
                end: Some(hangscope_model::PeerEnd::Held { holder }),
                ..LocalPeer::default()
            })),
            ..hangscope_model::InetSocket::default()
        };
        let mut snap = Snapshot::default();
        snap.sockets.push(hangscope_model::Socket {
            inode: 76,
            fds: vec![5],
            family: hangscope_model::SocketFamily::Inet,
            detail: SocketDetail::Tcp(inet),
            source: String::new(),
            not_found_reason: None,
            fds_changed: Vec::new(),
        });
        let looked = BTreeMap::from([(4242, ())]);
        let mut gaps = Vec::new();
        // The holder's /proc/4242 is not there: before, an empty fd list, and nothing said.
        read_opened(&root, &mut snap, &looked, &Options::default(), &mut gaps);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(
            gaps[0].what,
            "the connections opened by 4242 (at the other end)"
        );
        assert_eq!(gaps[0].reason, GapReason::Vanished, "{gaps:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn threads_whose_syscall_was_refused_are_a_gap_not_left_out_silently() {
        let refused = |tid| task::TaskRead {
            tid,
            syscall: Some(Err(ReadError::of_io(&std::io::Error::from_raw_os_error(
                libc::EACCES,
            )))),
            ..task::TaskRead::default()
        };
        let fine = task::TaskRead {
            tid: 12,
            syscall: Some(Ok(syscall::RawSyscall::Running)),
            ..task::TaskRead::default()
        };
        let gap = unread_syscalls(7, &[refused(10), refused(11), fine]).expect("a gap");
        assert_eq!(
            gap.what,
            "syscalls of 2 of 3 threads of 7 (at the other end; TID 10, 11)"
        );
        assert_eq!(gap.reason, GapReason::Permission);
        assert!(unread_syscalls(7, &[]).is_none());
    }

    #[test]
    fn an_unreadable_holder_is_a_gap() {
        let root = ProcRoot::default();
        let gap = glance(
            &root,
            i32::MAX,
            &Deadline::after(std::time::Duration::from_secs(5)),
            &mut Vec::new(),
        )
        .expect_err("no such process");
        assert_eq!(gap.reason, GapReason::Vanished, "{gap:?}");
        assert!(gap.what.contains(&i32::MAX.to_string()), "{}", gap.what);
    }

    #[test]
    fn an_epoll_set_counts_its_watch_list_not_the_epoll_fd() {
        let mut ep = blocked("epoll_wait", vec![on(5, &[])]);
        for fd in [3, 6, 7] {
            ep.waits_on.push(WaitObject::Fd {
                fd,
                events: vec!["EPOLLIN".into()],
                via_epoll: Some(5),
            });
        }
        let threads = vec![(10, Text::from("redis-server"), ep)];
        let p = on_fd(&threads, 7);
        assert_eq!(p.on_fd.len(), 1);
        assert_eq!(p.on_fd[0].among, 3);
        // The epoll fd itself is not waited on as a member.
        assert!(on_fd(&threads, 5).on_fd.is_empty());
    }
}
