//! Clocks named, and read for absolute timeouts.

pub fn clock_name(id: i32) -> String {
    match id {
        0 => "CLOCK_REALTIME".into(),
        1 => "CLOCK_MONOTONIC".into(),
        2 => "CLOCK_PROCESS_CPUTIME_ID".into(),
        3 => "CLOCK_THREAD_CPUTIME_ID".into(),
        4 => "CLOCK_MONOTONIC_RAW".into(),
        5 => "CLOCK_REALTIME_COARSE".into(),
        6 => "CLOCK_MONOTONIC_COARSE".into(),
        7 => "CLOCK_BOOTTIME".into(),
        11 => "CLOCK_TAI".into(),
        n => n.to_string(),
    }
}

/// The time now on a clock id, to turn an absolute timeout into the time left. Injected into
/// decoding so that conversion is tested against a fixed time, not the test machine's uptime.
pub trait Clock {
    fn now_ns(&self, id: i32) -> u64;
}

/// The host's clocks, which are the target's: it runs on the same kernel.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self, id: i32) -> u64 {
        clock_now_ns(id)
    }
}

/// The current time on a clock, for absolute timeouts. CPU-time clocks read as 0.
pub fn clock_now_ns(id: i32) -> u64 {
    let clock = match id {
        0 | 5 | 8 => nix::time::ClockId::CLOCK_REALTIME,
        7 | 9 => nix::time::ClockId::CLOCK_BOOTTIME,
        1 | 4 | 6 => nix::time::ClockId::CLOCK_MONOTONIC,
        _ => return 0,
    };
    nix::time::clock_gettime(clock)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}
