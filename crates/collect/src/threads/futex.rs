//! Threads waiting on the same futex: within one process, and a process-shared mutex's owner
//! in another process.
//!
//! Where the owner's TID sits in the futex word is described in `syscall/futex.rs`.

use std::collections::{HashMap, HashSet};

use hangscope_model::{Text, Thread, WaitObject};

use super::memory::Memory;
use crate::ProcRoot;

const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// Other waiters listed per thread at most; a pool of 1,000 threads on one lock would
/// otherwise make the JSON grow with the square of the pool.
pub const MAX_OTHER_WAITERS: usize = 32;

/// Fills `other_waiters` and `waiters` of every futex wait: threads of the same process waiting
/// on the same address (private futexes are keyed by address within one address space).
pub fn join_waiters(threads: &mut [hangscope_model::Thread]) {
    let mut by_addr: HashMap<u64, Vec<i32>> = HashMap::new();
    for t in threads.iter() {
        for w in t.syscall.iter().flat_map(|s| s.waits_on.iter()) {
            if let WaitObject::Futex { addr, .. } = w {
                by_addr.entry(*addr).or_default().push(t.tid);
            }
        }
    }
    for t in threads.iter_mut() {
        let tid = t.tid;
        let Some(s) = t.syscall.as_mut() else {
            continue;
        };
        for w in s.waits_on.iter_mut() {
            if let WaitObject::Futex {
                addr,
                other_waiters,
                waiters,
                ..
            } = w
            {
                let all = by_addr.get(addr).map(Vec::as_slice).unwrap_or_default();
                *waiters = all.len() as u32;
                *other_waiters = all
                    .iter()
                    .filter(|other| **other != tid)
                    .take(MAX_OTHER_WAITERS)
                    .copied()
                    .collect();
            }
        }
    }
}

/// The thread a locked mutex word names as its owner: for the PI operations the word's low
/// 30 bits (the kernel's format), for the others glibc's `__owner` 8 bytes after it.
fn word_owner(word: &[u8], pi: bool) -> Option<i32> {
    if word.len() < 12 {
        return None;
    }
    let candidate = if pi {
        (super::memory::i32_at(word, 0) as u32 & FUTEX_TID_MASK) as i32
    } else {
        super::memory::i32_at(word, 8)
    };
    (candidate > 0).then_some(candidate)
}

/// A process-shared mutex's owner in another process: threads of different processes can only
/// share a futex word through a shared mapping of one file (a file in /dev/shm, a memfd, shared
/// anonymous memory inherited over fork), so a TID read from the word counts as the owner only
/// when that thread's process maps the same file, at the same offset, shared. A private futex
/// (FUTEX_PRIVATE_FLAG) is keyed by the waiter's own address space and is never looked at here.
///
/// A TID in the word is in the PID namespace of the processes sharing it; hangscope's /proc
/// numbers are its own namespace's, so the owner is looked up only when the target, the owner
/// and hangscope share one. In a container seen from the host the word's TID names another
/// task: left unresolved rather than guessed.
pub fn resolve_shared_owners(root: &ProcRoot, pid: i32, threads: &mut [Thread]) {
    let own: HashSet<i32> = threads.iter().map(|t| t.tid).collect();
    let mut maps: Option<Option<String>> = None;
    for t in threads.iter_mut() {
        let tid = t.tid;
        let Some(s) = t.syscall.as_mut() else {
            continue;
        };
        for w in s.waits_on.iter_mut() {
            let WaitObject::Futex {
                addr,
                op,
                owner_tid,
                owner_pid,
                shared_file,
                ..
            } = w
            else {
                continue;
            };
            if owner_tid.is_some() || !op.starts_with("FUTEX_") || op.contains("_PRIVATE") {
                continue;
            }
            let pi = op.contains("LOCK_PI");
            let mem = super::memory::LiveMemory { tid };
            let Some(candidate) = mem
                .read(*addr, 12)
                .ok()
                .and_then(|word| word_owner(&word, pi))
                .filter(|c| !own.contains(c))
            else {
                continue;
            };
            let target_maps = maps.get_or_insert_with(|| root.read_pid(pid, "maps").ok());
            let Some(target_maps) = target_maps.as_deref() else {
                continue;
            };
            if let Some((owner, file)) = owner_elsewhere(root, pid, target_maps, *addr, candidate) {
                *owner_tid = Some(candidate);
                *owner_pid = Some(owner);
                *shared_file = Some(file);
            }
        }
    }
}

/// The process of thread `tid` and the file it shares with `pid` at `addr`, when it maps it.
fn owner_elsewhere(
    root: &ProcRoot,
    pid: i32,
    target_maps: &str,
    addr: u64,
    tid: i32,
) -> Option<(i32, Text)> {
    let here = target_maps
        .lines()
        .filter_map(Mapping::parse)
        .find(|m| m.start <= addr && addr < m.end)?;
    if !here.shared || here.inode == 0 {
        return None;
    }
    let file_offset = here.offset + (addr - here.start);
    // The owner is named only when every read agrees; a failed one leaves it unnamed, which
    // the futex's own decoding (its address and word) still reports.
    let pidns = |dir: std::path::PathBuf| std::fs::read_link(dir.join("ns/pid")).ok();
    let target_ns = pidns(root.pid(pid))?;
    if pidns(root.path().join("self")).as_ref() != Some(&target_ns) {
        return None;
    }
    let status = root.read_pid(tid, "status").ok()?;
    let tgid: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()?;
    if tgid == pid || tgid <= 0 || pidns(root.pid(tgid)).as_ref() != Some(&target_ns) {
        return None;
    }
    let owner_maps = root.read_pid(tgid, "maps").ok()?;
    let maps_it = owner_maps.lines().filter_map(Mapping::parse).any(|m| {
        m.shared
            && m.dev == here.dev
            && m.inode == here.inode
            && m.offset <= file_offset
            && file_offset < m.offset + (m.end - m.start)
    });
    maps_it.then(|| (tgid, Text::from(here.path.to_string())))
}

/// The parts of a /proc/PID/maps line that say what is mapped, and how.
struct Mapping<'a> {
    start: u64,
    end: u64,
    shared: bool,
    offset: u64,
    dev: &'a str,
    inode: u64,
    path: &'a str,
}

impl<'a> Mapping<'a> {
    /// "7f00-7f01 rw-s 00000000 00:1a 1234    /dev/shm/x": the kernel separates the first five
    /// fields by one space and pads before the path.
    fn parse(line: &'a str) -> Option<Mapping<'a>> {
        let mut f = line.splitn(6, ' ');
        let (start, end) = f.next()?.split_once('-')?;
        let perms = f.next()?;
        let offset = f.next()?;
        let dev = f.next()?;
        let inode = f.next()?;
        Some(Mapping {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            shared: perms.as_bytes().get(3) == Some(&b's'),
            offset: u64::from_str_radix(offset, 16).ok()?,
            dev,
            inode: inode.parse().ok()?,
            path: f.next().unwrap_or("").trim_start(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_mapping_line() {
        let m = Mapping::parse(
            "7f1c2a400000-7f1c2a401000 rw-s 00001000 00:1a 4711                       /dev/shm/ledger",
        )
        .expect("parses");
        assert_eq!(
            (m.start, m.end, m.offset),
            (0x7f1c_2a40_0000, 0x7f1c_2a40_1000, 0x1000)
        );
        assert!(m.shared);
        assert_eq!((m.dev, m.inode, m.path), ("00:1a", 4711, "/dev/shm/ledger"));
        let anon = Mapping::parse("55d0-55d1 rw-p 00000000 00:00 0 ").expect("parses");
        assert!(!anon.shared);
        assert_eq!(anon.path, "");
        assert!(Mapping::parse("garbage").is_none());
    }

    #[test]
    fn the_owner_in_the_word() {
        // PI: the kernel's word, owner TID | FUTEX_WAITERS.
        let mut w = (4242u32 | 0x8000_0000).to_ne_bytes().to_vec();
        w.extend_from_slice(&[0; 8]);
        assert_eq!(word_owner(&w, true), Some(4242));
        // glibc's __owner, 8 bytes in.
        let mut w = 2i32.to_ne_bytes().to_vec();
        w.extend_from_slice(&0u32.to_ne_bytes());
        w.extend_from_slice(&77i32.to_ne_bytes());
        assert_eq!(word_owner(&w, false), Some(77));
        assert_eq!(word_owner(&w[..8], false), None);
    }
}
