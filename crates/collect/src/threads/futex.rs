//! futex(2) waits: the address and operation, and for a glibc pthread mutex its owner.
//!
//! glibc's `struct __pthread_mutex_s` (sysdeps/nptl/bits/struct_mutex.h, x86_64 and aarch64)
//! starts `int __lock; unsigned int __count; int __owner;`: the futex word a locker waits on is
//! `__lock`, and the owner's TID sits 8 bytes after it (checked here with a locked
//! PTHREAD_MUTEX_NORMAL). Other futex users (condition variables, Rust's std Mutex) keep
//! something else there, so the value is taken as an owner only when it names a live thread of
//! the process other than the waiter. For the PI operations the kernel defines the word itself:
//! its low 30 bits are the owner's TID (FUTEX_TID_MASK).

use std::collections::{HashMap, HashSet};

use hangscope_model::{SyscallState, Text, Thread, WaitObject};

use super::memory::Memory;
use super::syscall::{Context, clock_now_ns};
use crate::ProcRoot;

const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

fn op_name(cmd: u64) -> &'static str {
    match cmd {
        0 => "FUTEX_WAIT",
        1 => "FUTEX_WAKE",
        2 => "FUTEX_FD",
        3 => "FUTEX_REQUEUE",
        4 => "FUTEX_CMP_REQUEUE",
        5 => "FUTEX_WAKE_OP",
        6 => "FUTEX_LOCK_PI",
        7 => "FUTEX_UNLOCK_PI",
        8 => "FUTEX_TRYLOCK_PI",
        9 => "FUTEX_WAIT_BITSET",
        10 => "FUTEX_WAKE_BITSET",
        11 => "FUTEX_WAIT_REQUEUE_PI",
        12 => "FUTEX_CMP_REQUEUE_PI",
        13 => "FUTEX_LOCK_PI2",
        _ => "FUTEX_?",
    }
}

/// futex(uaddr, op, val, timeout, uaddr2, val3).
pub fn decode_futex(ctx: &Context, a: &[u64; 6], st: &mut SyscallState) {
    let addr = a[0];
    let cmd = a[1] & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let mut op = op_name(cmd).to_string();
    if a[1] & FUTEX_PRIVATE_FLAG != 0 {
        op.push_str("_PRIVATE");
    }
    if a[1] & FUTEX_CLOCK_REALTIME != 0 {
        op.push_str("|FUTEX_CLOCK_REALTIME");
    }
    let pi = matches!(cmd, 6 | 8 | 13);
    // FUTEX_WAIT's timeout is relative; WAIT_BITSET's and the PI ones' are absolute, on
    // CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME (LOCK_PI: always CLOCK_REALTIME).
    let abs_clock = match cmd {
        9 | 11 | 13 if a[1] & FUTEX_CLOCK_REALTIME == 0 => Some(1),
        9 | 11 | 13 | 6 => Some(0),
        _ => None,
    };
    let mut timeout_text = "NULL".to_string();
    if matches!(cmd, 0 | 6 | 9 | 11 | 13) {
        st.timeout_ms = if a[3] == 0 {
            Some(-1)
        } else {
            match ctx.mem.read_i64_pair(a[3]) {
                Ok((s, ns)) => {
                    let mut t = s as i128 * 1_000_000_000 + ns as i128;
                    if let Some(clock) = abs_clock {
                        t -= clock_now_ns(clock) as i128;
                    }
                    timeout_text = format!("{{tv_sec={s}, tv_nsec={ns}}}");
                    Some((t.max(0) / 1_000_000) as i64)
                }
                Err(e) => {
                    st.decode_error = Some(format!("timeout at {:#x}: {e}", a[3]));
                    timeout_text = format!("{:#x}", a[3]);
                    None
                }
            }
        };
    }
    let word = ctx.mem.read(addr, 12);
    let owner_tid = match &word {
        Ok(b) => {
            let lock = super::memory::i32_at(b, 0) as u32;
            let candidate = if pi {
                (lock & FUTEX_TID_MASK) as i32
            } else {
                super::memory::i32_at(b, 8)
            };
            (candidate > 0 && ctx.tids.contains(&candidate)).then_some(candidate)
        }
        Err(e) => {
            if st.decode_error.is_none() {
                st.decode_error = Some(format!("futex word at {addr:#x}: {e}"));
            }
            None
        }
    };
    st.decoded = vec![
        arg("uaddr", format!("{addr:#x}")),
        arg("futex_op", op.clone()),
        arg("val", (a[2] as u32).to_string()),
        arg("timeout", timeout_text),
    ];
    st.summary = format!(
        "futex({addr:#x}, {op}, {}, {})",
        a[2] as u32, st.decoded[3].value
    );
    st.waits_on.push(WaitObject::Futex {
        addr,
        op,
        owner_tid,
        other_waiters: vec![],
        waiters: 1,
        owner_pid: None,
        shared_file: None,
    });
}

/// futex_wait(uaddr, val, mask, flags, timeout, clockid), Linux 6.7+: absolute timeout.
pub fn decode_futex_wait(ctx: &Context, a: &[u64; 6], st: &mut SyscallState) {
    let addr = a[0];
    st.timeout_ms = if a[4] == 0 {
        Some(-1)
    } else {
        ctx.mem.read_i64_pair(a[4]).ok().map(|(s, ns)| {
            let t = s as i128 * 1_000_000_000 + ns as i128 - clock_now_ns(a[5] as i32) as i128;
            (t.max(0) / 1_000_000) as i64
        })
    };
    let owner_tid = ctx
        .mem
        .read(addr, 12)
        .ok()
        .map(|b| super::memory::i32_at(&b, 8))
        .filter(|t| *t > 0 && ctx.tids.contains(t));
    st.summary = format!("futex_wait({addr:#x}, {}, ...)", a[1]);
    st.waits_on.push(WaitObject::Futex {
        addr,
        op: "futex_wait".into(),
        owner_tid,
        other_waiters: vec![],
        waiters: 1,
        owner_pid: None,
        shared_file: None,
    });
}

fn arg(name: &str, value: String) -> hangscope_model::SyscallArg {
    hangscope_model::SyscallArg {
        name: name.into(),
        value,
    }
}

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
    use super::super::memory::FakeMemory;
    use super::super::syscall::{Arch, RawSyscall, decode};
    use super::*;

    #[test]
    fn mutex_owner_at_plus_8() {
        // A locked glibc mutex with waiters: __lock 2, __count 0, __owner 4242.
        let mut m = Vec::new();
        m.extend_from_slice(&2i32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&4242i32.to_ne_bytes());
        let mem = FakeMemory(vec![(0x7f00_0000_1000, m)]);
        let ctx = Context {
            arch: Arch::X86_64,
            mem: &mem,
            fds: &[],
            tids: &[4241, 4242],
        };
        let raw = RawSyscall::Blocked {
            nr: 202,
            args: [0x7f00_0000_1000, 128, 2, 0, 0, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx);
        assert_eq!(
            st.waits_on,
            vec![WaitObject::Futex {
                addr: 0x7f00_0000_1000,
                op: "FUTEX_WAIT_PRIVATE".into(),
                owner_tid: Some(4242),
                other_waiters: vec![],
                waiters: 1,
                owner_pid: None,
                shared_file: None,
            }]
        );
        assert_eq!(st.timeout_ms, Some(-1));
        assert_eq!(
            st.summary,
            "futex(0x7f0000001000, FUTEX_WAIT_PRIVATE, 2, NULL)"
        );
        // A value that is not a thread of the process is not an owner.
        let ctx = Context {
            tids: &[1, 2],
            ..ctx
        };
        let st = decode(&raw, &ctx);
        assert!(matches!(
            st.waits_on[0],
            WaitObject::Futex {
                owner_tid: None,
                ..
            }
        ));
    }

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
