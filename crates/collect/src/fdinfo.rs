//! /proc/PID/fdinfo/N, see proc_pid_fdinfo(5). Parsed by hand: the procfs crate reads only the
//! fd links, not fdinfo's per-type lines (epoll `tfd:`, `eventfd-count:`, timerfd, `lock:`).

use hangscope_model::{EpollWatch, FdInfo, TimerfdSettings};

/// Parses one fdinfo file. Unknown or malformed lines are kept in `other`, never fatal.
pub fn parse(text: &str) -> FdInfo {
    let mut info = FdInfo::default();
    let mut timer = TimerfdSettings::default();
    let mut is_timer = false;
    for line in text.lines() {
        let (key, value) = match line.split_once(':') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => {
                if !line.trim().is_empty() {
                    info.other.push(line.to_string());
                }
                continue;
            }
        };
        let parsed = match key {
            "pos" => value.parse().map(|v| info.pos = v).is_ok(),
            "flags" => u32::from_str_radix(value, 8)
                .map(|v| info.flags = v)
                .is_ok(),
            "mnt_id" => value.parse().map(|v| info.mnt_id = Some(v)).is_ok(),
            "ino" => value.parse().map(|v| info.ino = Some(v)).is_ok(),
            "tfd" => parse_epoll_watch(line)
                .map(|w| info.epoll_watches.push(w))
                .is_some(),
            // The kernel prints the count in hex (fs/eventfd.c: "%16llx").
            "eventfd-count" => u64::from_str_radix(value, 16)
                .map(|v| info.eventfd_count = Some(v))
                .is_ok(),
            "clockid" => {
                is_timer = true;
                value.parse().map(|v| timer.clockid = v).is_ok()
            }
            "ticks" => value.parse().map(|v| timer.ticks = v).is_ok(),
            "settime flags" => u32::from_str_radix(value, 8)
                .map(|v| timer.settime_flags = v)
                .is_ok(),
            "it_value" => parse_timespec_pair(value)
                .map(|v| timer.it_value_ns = v)
                .is_some(),
            "it_interval" => parse_timespec_pair(value)
                .map(|v| timer.it_interval_ns = v)
                .is_some(),
            "sigmask" => {
                info.sigmask = Some(value.to_string());
                true
            }
            "inotify wd" => {
                info.inotify_watches
                    .push(line.trim_start_matches("inotify ").to_string());
                true
            }
            "Pid" => value.parse().map(|v| info.pidfd_pid = Some(v)).is_ok(),
            "lock" => {
                info.locks.push(value.to_string());
                true
            }
            _ => false,
        };
        if !parsed {
            info.other.push(line.to_string());
        }
    }
    if is_timer {
        info.timerfd = Some(timer);
    }
    info.flags_decoded = decode_open_flags(info.flags);
    info
}

/// "tfd:        6 events:       1d data:                6  pos:0 ino:11 sdev:10"
/// (fs/eventpoll.c: tfd decimal, events and data hex, ino hex).
fn parse_epoll_watch(line: &str) -> Option<EpollWatch> {
    let mut w = EpollWatch::default();
    let mut tokens = line.split_whitespace();
    while let Some(tok) = tokens.next() {
        let (key, inline) = match tok.split_once(':') {
            Some((k, v)) => (k, v),
            None => continue,
        };
        let value = if inline.is_empty() {
            tokens.next()?
        } else {
            inline
        };
        match key {
            "tfd" => w.tfd = value.parse().ok()?,
            "events" => w.events = u32::from_str_radix(value, 16).ok()?,
            "data" => w.data = u64::from_str_radix(value, 16).ok()?,
            "ino" => w.ino = u64::from_str_radix(value, 16).ok(),
            _ => {}
        }
    }
    w.events_decoded = decode_epoll_events(w.events);
    Some(w)
}

/// "(4, 999560659)" → nanoseconds.
fn parse_timespec_pair(value: &str) -> Option<u64> {
    let inner = value.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (s, ns) = inner.split_once(',')?;
    let s: u64 = s.trim().parse().ok()?;
    let ns: u64 = ns.trim().parse().ok()?;
    Some(s.saturating_mul(1_000_000_000).saturating_add(ns))
}

/// The kernel sets O_LARGEFILE on every open of a 64-bit process, though libc defines it as 0
/// there; its bit is architecture-specific (asm-generic/fcntl.h vs arch/arm64).
#[cfg(target_arch = "aarch64")]
const KERNEL_O_LARGEFILE: i32 = 0o400000;
#[cfg(not(target_arch = "aarch64"))]
const KERNEL_O_LARGEFILE: i32 = 0o100000;

/// Open flags in the reader's words. Values come from libc, so they are right for the
/// architecture hangscope was built for, which is the target's.
pub fn decode_open_flags(flags: u32) -> Vec<String> {
    let flags = flags as i32;
    let mut out = vec![
        match flags & libc::O_ACCMODE {
            libc::O_RDONLY => "O_RDONLY",
            libc::O_WRONLY => "O_WRONLY",
            _ => "O_RDWR",
        }
        .to_string(),
    ];
    const NAMED: &[(i32, &str)] = &[
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_DSYNC, "O_DSYNC"),
        (libc::O_ASYNC, "O_ASYNC"),
        (libc::O_DIRECT, "O_DIRECT"),
        (KERNEL_O_LARGEFILE, "O_LARGEFILE"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_NOATIME, "O_NOATIME"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        (libc::O_PATH, "O_PATH"),
    ];
    // O_SYNC includes O_DSYNC's bit; name it once.
    let mut rest = flags;
    if flags & libc::O_SYNC == libc::O_SYNC {
        out.push("O_SYNC".to_string());
        rest &= !libc::O_SYNC;
    }
    for &(bit, name) in NAMED {
        if rest & bit == bit && bit != 0 {
            out.push(name.to_string());
        }
    }
    out
}

pub fn decode_epoll_events(events: u32) -> Vec<String> {
    const NAMED: &[(u32, &str)] = &[
        (libc::EPOLLIN as u32, "EPOLLIN"),
        (libc::EPOLLPRI as u32, "EPOLLPRI"),
        (libc::EPOLLOUT as u32, "EPOLLOUT"),
        (libc::EPOLLERR as u32, "EPOLLERR"),
        (libc::EPOLLHUP as u32, "EPOLLHUP"),
        (libc::EPOLLRDNORM as u32, "EPOLLRDNORM"),
        (libc::EPOLLRDBAND as u32, "EPOLLRDBAND"),
        (libc::EPOLLWRNORM as u32, "EPOLLWRNORM"),
        (libc::EPOLLWRBAND as u32, "EPOLLWRBAND"),
        (libc::EPOLLMSG as u32, "EPOLLMSG"),
        (libc::EPOLLRDHUP as u32, "EPOLLRDHUP"),
        (libc::EPOLLEXCLUSIVE as u32, "EPOLLEXCLUSIVE"),
        (libc::EPOLLWAKEUP as u32, "EPOLLWAKEUP"),
        (libc::EPOLLONESHOT as u32, "EPOLLONESHOT"),
        (libc::EPOLLET as u32, "EPOLLET"),
    ];
    NAMED
        .iter()
        .filter(|(bit, _)| events & bit != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::Access;

    #[test]
    fn epoll_watch_line() {
        let w = parse_epoll_watch(
            "tfd:        8 events: 80000019 data:                8  pos:0 ino:11f9 sdev:9",
        )
        .unwrap();
        assert_eq!(w.tfd, 8);
        assert_eq!(w.events, 0x8000_0019);
        assert_eq!(w.data, 8);
        assert_eq!(w.ino, Some(0x11f9));
        assert_eq!(
            w.events_decoded,
            ["EPOLLIN", "EPOLLERR", "EPOLLHUP", "EPOLLET"]
        );
    }

    #[test]
    fn flags_of_an_append_log() {
        // 02102001 on x86_64: O_WRONLY|O_APPEND|O_LARGEFILE|O_CLOEXEC
        let d = decode_open_flags(0o2102001);
        assert_eq!(d, ["O_WRONLY", "O_APPEND", "O_LARGEFILE", "O_CLOEXEC"]);
        assert_eq!(Access::of_flags(0o2102001).letter(), Some('w'));
        assert_eq!(Access::of_flags(0o2).letter(), Some('u'));
    }

    #[test]
    fn garbage_is_kept_not_fatal() {
        let info = parse("pos:\tnot-a-number\nflags:\t0999\nwhatever\n\u{0}\u{1}:::\ntfd: x");
        assert_eq!(info.pos, 0);
        assert!(info.other.len() >= 4, "{:?}", info.other);
    }
}
