use hangscope_model::{Fd, WaitObject};

use super::super::memory::FakeMemory;
use super::*;

fn ctx<'a>(mem: &'a FakeMemory, fds: &'a [Fd]) -> Context<'a> {
    Context {
        arch: Arch::X86_64,
        mem,
        fds,
        tids: &[],
    }
}

#[test]
fn parses_the_three_forms() {
    assert_eq!(parse("running\n").unwrap(), RawSyscall::Running);
    assert_eq!(
        parse("-1 0x7ffd1000 0x401000\n").unwrap(),
        RawSyscall::NotInSyscall {
            sp: 0x7ffd1000,
            pc: 0x401000
        }
    );
    let r =
        parse("230 0x0 0x0 0x7ffc89a0f380 0x7ffc89a0f3c0 0x0 0x0 0x7ffc89a0f368 0x7f07edc3d503\n")
            .unwrap();
    assert_eq!(
        r.key(),
        Some((230, [0, 0, 0x7ffc89a0f380, 0x7ffc89a0f3c0, 0, 0]))
    );
    assert!(parse("").is_err());
    assert!(parse("7 0x1").is_err());
    assert!(parse("-1 zz").is_err());
    // A malformed line is typed as such, so its gap says "malformed" without reading words.
    assert!(parse("7 0x1").is_err_and(|e| e.kind == crate::error::ReadErrorKind::Malformed));
}

#[test]
fn a_path_argument_is_read_across_a_page_and_kept_exact() {
    // newfstatat(AT_FDCWD, path, ...) with the path's last bytes on the next page, and
    // bytes that are not UTF-8.
    let addr = 0x2000 - 4;
    let mut bytes = b"/mnt/x\xff/file".to_vec();
    bytes.push(0);
    // Memory is mapped in whole pages: the second page is all readable.
    let mut next_page = bytes[4..].to_vec();
    next_page.resize(4096, b'z');
    let mem = FakeMemory(vec![(addr, bytes[..4].to_vec()), (0x2000, next_page)]);
    let raw = RawSyscall::Blocked {
        nr: 262,
        args: [libc::AT_FDCWD as u64, addr, 0, 0, 0, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode(&raw, &ctx(&mem, &[]));
    assert_eq!(st.name, "newfstatat");
    assert_eq!(
        st.path.as_ref().map(|p| p.as_bytes().to_vec()),
        Some(b"/mnt/x\xff/file".to_vec())
    );
    assert_eq!(st.path_dirfd, None);
    assert!(
        st.summary.starts_with("newfstatat(AT_FDCWD, \"/mnt/x"),
        "{}",
        st.summary
    );
    // An unreadable pointer: no path, and the reason.
    let st = decode(&raw, &ctx(&FakeMemory(vec![]), &[]));
    assert_eq!(st.path, None);
    assert!(st.decode_error.is_some());
}

#[test]
fn names_on_both_architectures() {
    assert_eq!(name(Arch::X86_64, 230), "clock_nanosleep");
    assert_eq!(name(Arch::X86_64, 7), "poll");
    assert_eq!(name(Arch::X86_64, 202), "futex");
    assert_eq!(name(Arch::X86_64, 441), "epoll_pwait2");
    assert_eq!(name(Arch::Aarch64, 115), "clock_nanosleep");
    assert_eq!(name(Arch::Aarch64, 73), "ppoll");
    assert_eq!(name(Arch::Aarch64, 98), "futex");
    assert_eq!(name(Arch::Aarch64, 63), "read");
    assert_eq!(name(Arch::Aarch64, 244), "syscall_244");
    assert_eq!(name(Arch::X86_64, -5), "syscall_-5");
    assert_eq!(name(Arch::X86_64, 100_000), "syscall_100000");
}

#[test]
fn poll_reads_the_pollfd_array() {
    // Two pollfds: {29, POLLIN}, {-1, POLLIN} (ignored by poll).
    let mut bytes = Vec::new();
    for (fd, ev) in [(29i32, 1i16), (-1, 1)] {
        bytes.extend_from_slice(&fd.to_ne_bytes());
        bytes.extend_from_slice(&ev.to_ne_bytes());
        bytes.extend_from_slice(&0i16.to_ne_bytes());
    }
    let mem = FakeMemory(vec![(0x1000, bytes)]);
    let raw = RawSyscall::Blocked {
        nr: 7,
        args: [0x1000, 2, 10_000, 0, 0, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode(&raw, &ctx(&mem, &[]));
    assert_eq!(st.name, "poll");
    assert_eq!(st.timeout_ms, Some(10_000));
    assert_eq!(
        st.waits_on,
        vec![WaitObject::Fd {
            fd: 29,
            events: vec!["POLLIN".into()],
            via_epoll: None
        }]
    );
    assert_eq!(
        st.summary,
        "poll([{fd=29, events=POLLIN}, {fd=-1, events=POLLIN}], 2, 10000)"
    );
    assert_eq!(st.decode_error, None);
}

#[test]
fn refused_memory_is_a_decode_error_not_a_failure() {
    let mem = FakeMemory(vec![]);
    let raw = RawSyscall::Blocked {
        nr: 35,
        args: [0x2000, 0, 0, 0, 0, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode(&raw, &ctx(&mem, &[]));
    assert_eq!(st.name, "nanosleep");
    assert!(st.decode_error.as_deref().unwrap_or("").contains("0x2000"));
    assert_eq!(st.summary, "nanosleep(0x2000, 0x0)");
}

#[test]
fn select_reads_fd_sets_and_timeval() {
    let mut set = vec![0u8; 8];
    set[0] = 0b1000_1000; // fds 3 and 7
    let mut tv = Vec::new();
    tv.extend_from_slice(&2i64.to_ne_bytes());
    tv.extend_from_slice(&500_000i64.to_ne_bytes());
    let mem = FakeMemory(vec![(0x100, set), (0x200, tv)]);
    let raw = RawSyscall::Blocked {
        nr: 23,
        args: [8, 0x100, 0, 0, 0x200, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode(&raw, &ctx(&mem, &[]));
    assert_eq!(st.timeout_ms, Some(2500));
    assert_eq!(st.summary, "select(8, [3 7], NULL, NULL, 2500 ms)");
    assert_eq!(st.waits_on.len(), 2);
}

/// Found by fuzz/ (tests/fixtures/fuzz-regressions/syscall/select-timeval-overflow):
/// the timeval is the target's memory, read after the call started.
#[test]
fn select_timeval_of_any_value_is_a_timeout_not_a_panic() {
    let mut tv = Vec::new();
    tv.extend_from_slice(&i64::MAX.to_ne_bytes());
    tv.extend_from_slice(&5i64.to_ne_bytes());
    let mem = FakeMemory(vec![(0x200, tv)]);
    let raw = RawSyscall::Blocked {
        nr: 23,
        args: [0, 0, 0, 0, 0x200, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode(&raw, &ctx(&mem, &[]));
    assert_eq!(st.timeout_ms, Some(i64::MAX));
    assert_eq!(st.decode_error, None);
}

/// Found by fuzz/ (tests/fixtures/fuzz-regressions/syscall/fcntl-range-overflow).
#[test]
fn fcntl_lock_range_past_i64_max_is_shown_not_a_panic() {
    let mut fl = vec![0u8; 32];
    fl[0..2].copy_from_slice(&1i16.to_ne_bytes()); // F_WRLCK
    fl[8..16].copy_from_slice(&(i64::MAX - 1).to_ne_bytes());
    fl[16..24].copy_from_slice(&10i64.to_ne_bytes());
    let mem = FakeMemory(vec![(0x300, fl)]);
    let raw = RawSyscall::Blocked {
        nr: 72,
        args: [4, 7, 0x300, 0, 0, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode(&raw, &ctx(&mem, &[]));
    let op = format!("F_SETLKW F_WRLCK {}-{}", i64::MAX - 1, i64::MAX - 1);
    assert_eq!(st.waits_on, vec![WaitObject::Lock { fd: 4, op }]);
}

#[test]
fn fcntl_setlkw_reads_struct_flock() {
    let mut fl = vec![0u8; 32];
    fl[0..2].copy_from_slice(&1i16.to_ne_bytes()); // F_WRLCK
    fl[8..16].copy_from_slice(&100i64.to_ne_bytes());
    fl[16..24].copy_from_slice(&10i64.to_ne_bytes());
    let mem = FakeMemory(vec![(0x300, fl)]);
    let raw = RawSyscall::Blocked {
        nr: 72,
        args: [4, 7, 0x300, 0, 0, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode(&raw, &ctx(&mem, &[]));
    assert_eq!(
        st.waits_on,
        vec![WaitObject::Lock {
            fd: 4,
            op: "F_SETLKW F_WRLCK 100-109".into()
        }]
    );
}

#[test]
fn epoll_without_fdinfo_says_so() {
    let mem = FakeMemory(vec![]);
    let raw = RawSyscall::Blocked {
        nr: 232,
        args: [5, 0x10, 16, u32::MAX as u64, 0, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode(&raw, &ctx(&mem, &[]));
    assert_eq!(st.timeout_ms, Some(-1));
    assert!(st.decode_error.is_some());
    assert_eq!(st.summary, "epoll_wait(5, 0x10, 16, -1)");
}

/// A clock stopped at the given ns on every id, for absolute timeouts.
struct FixedClock(u64);

impl Clock for FixedClock {
    fn now_ns(&self, _id: i32) -> u64 {
        self.0
    }
}

fn timespec(s: i64, ns: i64) -> Vec<u8> {
    let mut b = s.to_ne_bytes().to_vec();
    b.extend_from_slice(&ns.to_ne_bytes());
    b
}

#[test]
fn an_absolute_sleep_is_the_time_left_on_the_injected_clock() {
    // clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, {105 s, 250 ms}) at 100 s.
    let mem = FakeMemory(vec![(0x1000, timespec(105, 250_000_000))]);
    let raw = RawSyscall::Blocked {
        nr: 230,
        args: [1, 1, 0x1000, 0, 0, 0],
        sp: 0,
        pc: 0,
    };
    let st = decode_with(&raw, &ctx(&mem, &[]), &FixedClock(100_000_000_000));
    assert_eq!(st.timeout_ms, Some(5250));
    assert_eq!(st.waits_on, vec![WaitObject::Sleep { ns: 5_250_000_000 }]);
    // Past its deadline: nothing left, not a negative time.
    let st = decode_with(&raw, &ctx(&mem, &[]), &FixedClock(200_000_000_000));
    assert_eq!(st.timeout_ms, Some(0));
}

#[test]
fn an_absolute_futex_timeout_is_the_time_left_on_the_injected_clock() {
    // futex(addr, FUTEX_WAIT_BITSET_PRIVATE, 0, {50 s, 0}) at 48 s on CLOCK_MONOTONIC; and
    // futex_wait (6.7+), whose timeout is always absolute.
    let mem = FakeMemory(vec![(0x1000, timespec(50, 0)), (0x2000, vec![0; 12])]);
    let clock = FixedClock(48_000_000_000);
    let bitset = RawSyscall::Blocked {
        nr: 202,
        args: [0x2000, 9 | 128, 0, 0x1000, 0, 0xffff_ffff],
        sp: 0,
        pc: 0,
    };
    let st = decode_with(&bitset, &ctx(&mem, &[]), &clock);
    assert_eq!(st.timeout_ms, Some(2000));
    let futex_wait = RawSyscall::Blocked {
        nr: 455,
        args: [0x2000, 0, 0xffff_ffff, 0, 0x1000, 1],
        sp: 0,
        pc: 0,
    };
    let st = decode_with(&futex_wait, &ctx(&mem, &[]), &clock);
    assert_eq!(st.name, "futex_wait");
    assert_eq!(st.timeout_ms, Some(2000));
}
