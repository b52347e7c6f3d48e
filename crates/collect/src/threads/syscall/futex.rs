//! futex(2) waits: the address and operation, and for a glibc pthread mutex its owner.
//!
//! glibc's `struct __pthread_mutex_s` (sysdeps/nptl/bits/struct_mutex.h, x86_64 and aarch64)
//! starts `int __lock; unsigned int __count; int __owner;`: the futex word a locker waits on is
//! `__lock`, and the owner's TID sits 8 bytes after it (checked here with a locked
//! PTHREAD_MUTEX_NORMAL). Other futex users (condition variables, Rust's std Mutex) keep
//! something else there, so the value is taken as an owner only when it names a live thread of
//! the process other than the waiter. For the PI operations the kernel defines the word itself:
//! its low 30 bits are the owner's TID (FUTEX_TID_MASK).

use hangscope_model::{SyscallState, WaitObject};

use super::super::memory;
use super::clock::Clock;
use super::context::Context;

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
pub fn decode_futex(ctx: &Context, clock: &dyn Clock, a: &[u64; 6], st: &mut SyscallState) {
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
                    if let Some(id) = abs_clock {
                        t -= clock.now_ns(id) as i128;
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
            let lock = memory::i32_at(b, 0) as u32;
            let candidate = if pi {
                (lock & FUTEX_TID_MASK) as i32
            } else {
                memory::i32_at(b, 8)
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
pub fn decode_futex_wait(ctx: &Context, clock: &dyn Clock, a: &[u64; 6], st: &mut SyscallState) {
    let addr = a[0];
    st.timeout_ms = if a[4] == 0 {
        Some(-1)
    } else {
        match ctx.mem.read_i64_pair(a[4]) {
            Ok((s, ns)) => {
                let now = clock.now_ns(a[5] as i32) as i128;
                let t = s as i128 * 1_000_000_000 + ns as i128 - now;
                Some((t.max(0) / 1_000_000) as i64)
            }
            // Unknown, not infinite: say why, as futex() does.
            Err(e) => {
                st.decode_error = Some(format!("timeout at {:#x}: {e}", a[4]));
                None
            }
        }
    };
    let owner_tid = match ctx.mem.read(addr, 12) {
        Ok(b) => Some(memory::i32_at(&b, 8)).filter(|t| *t > 0 && ctx.tids.contains(t)),
        Err(e) => {
            if st.decode_error.is_none() {
                st.decode_error = Some(format!("futex word at {addr:#x}: {e}"));
            }
            None
        }
    };
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

#[cfg(test)]
mod tests {
    use super::super::{Arch, RawSyscall, decode};
    use super::memory::FakeMemory;
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
    fn futex_wait_says_what_it_could_not_read() {
        // futex_wait(addr, 0, mask, 0, timeout, CLOCK_MONOTONIC) with nothing readable: the
        // timeout is unknown (not infinite) and the reason is kept, as for futex().
        let mem = FakeMemory(vec![]);
        let ctx = Context {
            arch: Arch::X86_64,
            mem: &mem,
            fds: &[],
            tids: &[1],
        };
        let raw = RawSyscall::Blocked {
            nr: 455,
            args: [0x7f00_0000_1000, 0, 0xffff_ffff, 0, 0x7f00_0000_2000, 1],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx);
        assert_eq!(st.timeout_ms, None);
        let why = st.decode_error.expect("the read error");
        assert!(why.starts_with("timeout at 0x7f0000002000"), "{why}");
        // Without a timeout, the futex word's failure is the one kept.
        let raw = RawSyscall::Blocked {
            nr: 455,
            args: [0x7f00_0000_1000, 0, 0xffff_ffff, 0, 0, 1],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx);
        assert_eq!(st.timeout_ms, Some(-1));
        let why = st.decode_error.expect("the read error");
        assert!(why.starts_with("futex word at 0x7f0000001000"), "{why}");
    }
}
