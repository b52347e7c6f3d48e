//! A process-shared pthread mutex between processes: two mutexes in a file both map, so a
//! thread of one process waits for a mutex a thread of another holds (and, taken in opposite
//! orders, two processes deadlock). Robust mutexes, and with `--pi` priority-inheritance ones
//! (the kernel then keeps the owner's TID in the futex word itself).
//!
//! `--file F` the shared file; `--init` creates it and initialises the mutexes (the first
//! process); `--lock I` takes mutex I and announces `holding I TID`; `--unlock-after-ms MS`
//! then releases it (the healthy twin); `--then J --holders N` waits until N processes hold
//! their first mutex, announces `locking J TID`, takes mutex J and announces `got J TID`.
//! Then the main thread waits in pause().

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{announce, flag, tid};

const SIZE: usize = 4096;
const MUTEXES: usize = 2;
/// Where each mutex sits in the file: one cache line apart.
const STRIDE: usize = 64;
/// The control words: initialised (1 when the mutexes are ready), and how many processes hold
/// their first mutex.
const READY: usize = 1024;
const HOLDERS: usize = 1028;

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    flag(args, name)
        .map(|v| v.parse().map_err(|_| format!("{name}: not a number: {v}")))
        .transpose()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > Duration::from_secs(20) {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

pub(super) fn shared_mutex(args: &[String]) -> Result<(), String> {
    let path = flag(args, "--file").ok_or("give --file FILE")?;
    let init = args.iter().any(|a| a == "--init");
    let pi = args.iter().any(|a| a == "--pi");
    let first: usize = arg(args, "--lock")?.ok_or("give --lock I")?;
    let then: Option<usize> = arg(args, "--then")?;
    let holders: u32 = arg(args, "--holders")?.unwrap_or(1);
    let unlock_after: Option<u64> = arg(args, "--unlock-after-ms")?;
    if first >= MUTEXES || then.is_some_and(|j| j >= MUTEXES) {
        return Err(format!("mutexes are 0..{MUTEXES}"));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(init)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("open {path}: {e}"))?;
    if init {
        file.set_len(SIZE as u64)
            .map_err(|e| format!("truncate {path}: {e}"))?;
    } else {
        wait_for("the shared file", || {
            file.metadata().is_ok_and(|m| m.len() >= SIZE as u64)
        })?;
    }
    // SAFETY: a fresh shared mapping of a file at least SIZE long; it is never unmapped, so
    // the pointers below stay valid for the life of the process.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(format!("mmap: {}", std::io::Error::last_os_error()));
    }
    let base = base.cast::<u8>();
    let mutex = |i: usize| -> *mut libc::pthread_mutex_t {
        // SAFETY: within the mapping (MUTEXES * STRIDE < READY < SIZE), suitably aligned.
        unsafe { base.add(i * STRIDE).cast() }
    };
    // SAFETY: within the mapping, 4-aligned, only used atomically by every process.
    let word = |off: usize| unsafe { &*base.add(off).cast::<std::sync::atomic::AtomicU32>() };
    use std::sync::atomic::Ordering::SeqCst;
    if init {
        // SAFETY: attr is initialised before use and destroyed after; each mutex is
        // initialised once, before any process uses it (READY says when).
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            if pi {
                libc::pthread_mutexattr_setprotocol(&mut attr, libc::PTHREAD_PRIO_INHERIT);
            }
            for i in 0..MUTEXES {
                let rc = libc::pthread_mutex_init(mutex(i), &attr);
                if rc != 0 {
                    return Err(format!("pthread_mutex_init: error {rc}"));
                }
            }
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        word(READY).store(1, SeqCst);
    } else {
        wait_for("the mutexes", || word(READY).load(SeqCst) == 1)?;
    }
    // SAFETY: an initialised process-shared mutex in the mapping.
    let rc = unsafe { libc::pthread_mutex_lock(mutex(first)) };
    if rc != 0 {
        return Err(format!("pthread_mutex_lock {first}: error {rc}"));
    }
    word(HOLDERS).fetch_add(1, SeqCst);
    announce(&format!("holding {first} {}", tid()));
    if let Some(ms) = unlock_after {
        std::thread::sleep(Duration::from_millis(ms));
        // SAFETY: this thread holds it.
        unsafe { libc::pthread_mutex_unlock(mutex(first)) };
        announce(&format!("released {first} {}", tid()));
    }
    if let Some(j) = then {
        wait_for("the other holders", || {
            word(HOLDERS).load(SeqCst) >= holders
        })?;
        announce(&format!("locking {j} {}", tid()));
        // SAFETY: as above. In a cycle this never returns.
        let rc = unsafe { libc::pthread_mutex_lock(mutex(j)) };
        if rc != 0 && rc != libc::EOWNERDEAD {
            return Err(format!("pthread_mutex_lock {j}: error {rc}"));
        }
        announce(&format!("got {j} {}", tid()));
    }
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}
