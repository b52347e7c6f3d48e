//! Threads of one process waiting on the same futex.

use std::collections::HashMap;

use hangscope_model::WaitObject;

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
