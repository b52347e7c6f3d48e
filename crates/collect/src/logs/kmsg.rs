//! The kernel's log, /dev/kmsg (see Documentation/ABI/testing/dev-kmsg): hung-task warnings
//! naming the process's threads, NFS servers not responding, OOM kills and segfaults of the
//! process, within the process's lifetime.
//!
//! Each read() returns one record, "PRI,SEQ,TS_USEC,FLAGS;message\n" plus " KEY=value"
//! lines; the fd is opened O_NONBLOCK so reading stops at EAGAIN instead of waiting for new
//! messages. Timestamps are microseconds of the kernel's clock since boot. Hand-written: no
//! crate parses this record format.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use hangscope_model::{LogEntry, LogEvent, LogLevel};

use crate::Deadline;

/// Records read at most (the ring buffer holds a few thousand on most machines).
const MAX_RECORDS: usize = 100_000;
/// Entries kept at most (the newest).
const MAX_KEPT: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// syslog priority: facility << 3 | level.
    pub priority: u32,
    pub seq: u64,
    pub ts_us: u64,
    pub message: String,
}

/// One record; `None` when it is not in the documented layout.
pub fn parse_record(text: &str) -> Option<Record> {
    let (prefix, rest) = text.split_once(';')?;
    let mut fields = prefix.split(',');
    let priority = fields.next()?.trim().parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let ts_us = fields.next()?.parse().ok()?;
    // The message is the first line; " KEY=value" dictionary lines follow.
    let message = rest.lines().next().unwrap_or("");
    Some(Record {
        priority,
        seq,
        ts_us,
        message: unescape(message),
    })
}

/// The kernel writes bytes outside printable ASCII as "\xNN".
fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(v) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who the kernel lines must name to be kept.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub pid: i32,
    /// The `comm` of the process and of its threads, as the kernel prints them (`name[pid]`).
    pub names: Vec<String>,
    /// The process's threads, host TIDs (the pid included).
    pub tids: Vec<i32>,
}

impl Target {
    fn has(&self, id: i32) -> bool {
        id == self.pid || self.tids.contains(&id)
    }
}

/// What `message` says about the target, if anything; and the TID it names.
pub fn classify(message: &str, target: &Target) -> Option<(LogEvent, Option<i32>)> {
    // "INFO: task zbs-metad:31576 blocked for more than 120 seconds."
    if let Some(pos) = message.find(" blocked for more than") {
        let before = &message[..pos];
        if let Some(t) = before.rfind("task ") {
            let task = &before[t + 5..];
            if let Some((_, tid)) = task.rsplit_once(':')
                && let Ok(tid) = tid.parse::<i32>()
                && target.has(tid)
            {
                return Some((LogEvent::HungTask, Some(tid)));
            }
        }
    }
    if message.contains("nfs: server ") && message.contains("not responding") {
        return Some((LogEvent::NfsNotResponding, None));
    }
    let named = named_ids(message, &target.names);
    let ours = named.iter().copied().find(|id| target.has(*id));
    let lower = message.to_ascii_lowercase();
    if let Some(id) = ours {
        if lower.contains("killed process")
            || lower.contains("oom-kill")
            || lower.contains("oom_reaper")
        {
            return Some((LogEvent::OomKill, Some(id)));
        }
        if lower.contains("segfault")
            || lower.contains("general protection")
            || lower.contains("trap")
        {
            return Some((LogEvent::Segfault, Some(id)));
        }
        return Some((LogEvent::NamesProcess, Some(id)));
    }
    None
}

/// Ids a kernel line names: "name[123]" (where name is one of `names`, the process's and its
/// threads' comm: a bare "[2]" is as often an array index, e.g. "xstate_offset[2]"),
/// "pid 123", "pid=123", "pid:123", "process 123", "task name:123".
fn named_ids(message: &str, names: &[String]) -> Vec<i32> {
    let mut ids = Vec::new();
    let b = message.as_bytes();
    let number_at = |at: usize| -> Option<i32> {
        let len = b
            .get(at..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if len == 0 || b.get(at + len).is_some_and(u8::is_ascii_alphanumeric) {
            return None;
        }
        message[at..at + len].parse().ok()
    };
    for (i, &c) in b.iter().enumerate() {
        if c == b'['
            && i > 0
            && !b[i - 1].is_ascii_whitespace()
            && names.iter().any(|name| {
                let before = &message[..i];
                let token = before
                    .rsplit(|c: char| c.is_whitespace() || c == '(')
                    .next()
                    .unwrap_or(before);
                !name.is_empty() && token == name
            })
            && let Some(n) = number_at(i + 1)
            && message[i + 1..]
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .starts_with(']')
        {
            ids.push(n);
        }
    }
    for key in ["pid ", "pid=", "pid:", "pid: ", "process "] {
        let mut from = 0;
        while let Some(p) = message[from..].find(key) {
            let at = from + p + key.len();
            if let Some(n) = number_at(at) {
                ids.push(n);
            }
            from = at;
        }
    }
    if let Some(t) = message.find("task ")
        && let Some(colon) = message[t..].find(':')
        && let Some(n) = number_at(t + colon + 1)
    {
        ids.push(n);
    }
    ids
}

fn level_of(priority: u32) -> LogLevel {
    match priority & 7 {
        0..=2 => LogLevel::Fatal,
        3 => LogLevel::Error,
        4 => LogLevel::Warning,
        5 | 6 => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

/// Relates kernel timestamps to wall time: one pair of readings taken together.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub wall_ms: u64,
    pub monotonic_us: u64,
}

impl Clock {
    pub fn wall_ms_of(&self, ts_us: u64) -> i64 {
        self.wall_ms as i64 - (self.monotonic_us as i64 - ts_us as i64) / 1000
    }
}

/// Turns records into kept entries: those naming the target, since `since_us`.
pub fn select(records: &[Record], target: &Target, since_us: u64, clock: &Clock) -> Vec<LogEntry> {
    let mut kept: Vec<LogEntry> = records
        .iter()
        .filter(|r| r.ts_us >= since_us)
        .filter_map(|r| {
            let (event, tid) = classify(&r.message, target)?;
            Some(LogEntry {
                time_text: format!("[{:>5}.{:06}]", r.ts_us / 1_000_000, r.ts_us % 1_000_000),
                time_ms: Some(clock.wall_ms_of(r.ts_us)),
                level: Some(level_of(r.priority)),
                tid,
                message: r.message.clone().into(),
                event: Some(event),
                ..LogEntry::default()
            })
        })
        .collect();
    let skip = kept.len().saturating_sub(MAX_KEPT);
    kept.drain(..skip);
    kept
}

/// Why reading stopped.
#[derive(Debug)]
pub struct Read {
    pub records: Vec<Record>,
    /// Records that did not parse.
    pub malformed: usize,
    /// Stopped by the deadline or the record cap before EAGAIN.
    pub cut: Option<String>,
}

/// /dev/kmsg read on a thread of its own, started with a one-look collection (`--window 0`):
/// a ring buffer of thousands of records is one read() each, a millisecond or more that the
/// other reads hide. The records are those of the start of the look, milliseconds before its
/// end; after a window the log is read at the end, so the window's own records are in it.
pub struct Pending(std::thread::JoinHandle<io::Result<Read>>);

pub fn start(path: &'static str, deadline: Deadline) -> Pending {
    Pending(std::thread::spawn(move || read_all(path, &deadline)))
}

impl Pending {
    pub fn wait(self) -> io::Result<Read> {
        self.0
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the kernel log's reader thread failed")))
    }
}

/// Reads every record currently in the ring buffer, without waiting for new ones.
pub fn read_all(path: &str, deadline: &Deadline) -> io::Result<Read> {
    let c = std::ffi::CString::new(path).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated path and plain flags.
    let raw = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a freshly opened fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut out = Read {
        records: Vec::new(),
        malformed: 0,
        cut: None,
    };
    // A record is at most 8 KiB (CONSOLE_EXT_LOG_MAX and PRINTK_MESSAGE_MAX).
    let mut buf = vec![0u8; 16 * 1024];
    for i in 0..MAX_RECORDS {
        if i % 256 == 0 && deadline.passed() {
            out.cut = Some(format!("deadline passed after {i} records"));
            return Ok(out);
        }
        // SAFETY: reading into a buffer we own, with its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(out),
                // Overwritten before we read it: the next read returns the oldest left.
                Some(libc::EPIPE) | Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
        }
        if n == 0 {
            return Ok(out);
        }
        let text = String::from_utf8_lossy(&buf[..n as usize]);
        match parse_record(&text) {
            Some(r) => out.records.push(r),
            None => out.malformed += 1,
        }
    }
    out.cut = Some(format!("stopped after {MAX_RECORDS} records"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            pid: 31516,
            names: vec!["zbs-metad".into(), "dump_meta".into()],
            tids: vec![31516, 31576],
        }
    }

    #[test]
    fn a_bracketed_number_names_the_process_only_after_its_name() {
        let t = Target {
            pid: 2,
            names: vec!["kthreadd".into()],
            tids: vec![2],
        };
        assert_eq!(
            classify("x86/fpu: xstate_offset[2]:  576, xstate_sizes[2]:  256", &t),
            None
        );
        let t = target();
        assert_eq!(
            classify(
                "dump_meta[31576]: segfault at 0 ip 000055d5 sp 00007ffd error 4 in zbs-metad",
                &t
            ),
            Some((LogEvent::Segfault, Some(31576)))
        );
    }

    #[test]
    fn records() {
        let r = parse_record(
            "6,1234,5017463,-;nfs: server 10.0.0.1 not responding, still trying\n SUBSYSTEM=nfs\n",
        )
        .unwrap();
        assert_eq!(r.priority, 6);
        assert_eq!(r.seq, 1234);
        assert_eq!(r.ts_us, 5_017_463);
        assert_eq!(
            r.message,
            "nfs: server 10.0.0.1 not responding, still trying"
        );
        let r = parse_record("4,2,0,c,caller=T1;tab\\x09here").unwrap();
        assert_eq!(r.message, "tab\there");
        assert!(parse_record("no separator").is_none());
        assert!(parse_record("x,y,z;msg").is_none());
    }

    #[test]
    fn kernel_lines_about_the_target() {
        let t = target();
        let cases = [
            (
                "INFO: task zbs-metad:31576 blocked for more than 120 seconds.",
                Some((LogEvent::HungTask, Some(31576))),
            ),
            (
                "INFO: task other:999 blocked for more than 120 seconds.",
                None,
            ),
            (
                "nfs: server 10.0.0.1 not responding, timed out",
                Some((LogEvent::NfsNotResponding, None)),
            ),
            (
                "Out of memory: Killed process 31516 (zbs-metad) total-vm:1000kB",
                Some((LogEvent::OomKill, Some(31516))),
            ),
            (
                "oom-kill:constraint=CONSTRAINT_NONE,task=zbs-metad,pid=31516,uid=0",
                Some((LogEvent::OomKill, Some(31516))),
            ),
            (
                "zbs-metad[31576]: segfault at 0 ip 00007f sp 00007f error 4 in libc.so",
                Some((LogEvent::Segfault, Some(31576))),
            ),
            (
                "traps: zbs-metad[31516] general protection fault ip:1 sp:2 error:0",
                Some((LogEvent::Segfault, Some(31516))),
            ),
            (
                "task:zbs-metad state:D stack:0 pid:31576 ppid:1 flags:0x0",
                Some((LogEvent::NamesProcess, Some(31576))),
            ),
            ("other[315160]: segfault at 0", None),
            ("eth0: link up 315 Mbps", None),
        ];
        for (msg, want) in cases {
            assert_eq!(classify(msg, &t), want, "{msg}");
        }
    }

    /// Records read from /dev/kmsg on Linux 6.18, framed as "<length>\n<record>" each: boot
    /// lines, two injected by the logs integration test, and two with dictionary lines.
    const RECORDS: &[u8] = include_bytes!("../../../../tests/fixtures/kmsg/records-linux-6.18.bin");

    fn framed(mut b: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(nl) = b.iter().position(|&c| c == b'\n') {
            let len: usize = std::str::from_utf8(&b[..nl]).unwrap().parse().unwrap();
            out.push(String::from_utf8_lossy(&b[nl + 1..nl + 1 + len]).into_owned());
            b = &b[nl + 1 + len..];
        }
        out
    }

    #[test]
    fn recorded_records() {
        let raw = framed(RECORDS);
        assert_eq!(raw.len(), 16);
        let records: Vec<Record> = raw.iter().map(|r| parse_record(r).unwrap()).collect();
        assert_eq!(records[0].seq, 0);
        assert!(records[0].message.starts_with("Linux version 6.18.44"));
        // Dictionary lines are not part of the message.
        let acpi = records.iter().find(|r| r.seq == 193).unwrap();
        assert!(acpi.message.ends_with("HPX-Type3]"), "{}", acpi.message);
        // Only the line naming the target's thread is kept.
        let target = Target {
            pid: 17367,
            names: vec![],
            tids: vec![17367, 17377],
        };
        let clock = Clock {
            wall_ms: 1_700_000_000_000,
            monotonic_us: 1_400_000_000,
        };
        let kept = select(&records, &target, 0, &clock);
        assert_eq!(kept.len(), 1, "{kept:#?}");
        assert_eq!(kept[0].event, Some(LogEvent::HungTask));
        assert_eq!(kept[0].tid, Some(17377));
        assert_eq!(kept[0].level, Some(LogLevel::Warning));
        assert_eq!(kept[0].time_text, "[ 1320.258641]");
    }

    #[test]
    fn window_and_wall_time() {
        let t = target();
        let records = vec![
            Record {
                priority: 3,
                seq: 1,
                ts_us: 1_000_000,
                message: "INFO: task zbs-metad:31576 blocked for more than 120 seconds.".into(),
            },
            Record {
                priority: 3,
                seq: 2,
                ts_us: 9_000_000,
                message: "INFO: task zbs-metad:31576 blocked for more than 240 seconds.".into(),
            },
        ];
        let clock = Clock {
            wall_ms: 1_700_000_010_000,
            monotonic_us: 10_000_000,
        };
        let e = select(&records, &t, 5_000_000, &clock);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].time_text, "[    9.000000]");
        assert_eq!(e[0].time_ms, Some(1_700_000_009_000));
        assert_eq!(e[0].level, Some(LogLevel::Error));
        assert_eq!(e[0].tid, Some(31576));
    }
}
