//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): one per parser family, each
//! taking raw bytes the way collection gets them (text through a lossy UTF-8 conversion, as the
//! readers do) and running every parser of the family on them, as collection would chain them.
//! Not an API: it exists so the parsers can stay private to the crate.
//!
//! Every function must return normally on any input: a panic is a bug in a parser, since all of
//! these bytes come from the target or from a kernel that may not be the one the parsers were
//! written against.

use std::hint::black_box;

use hangscope_model::{Endpoint, Fd, InetSocket, LogSource, Socket, SocketDetail, SocketFamily};

use crate::logs::civil_time::{TimeContext, YearRef};
use crate::logs::{self, glog, json_lines, kmsg, link, peers, plain, tail};
use crate::sockets::{
    inet_diag, netlink_diag, packet_diag, proc_net, services, sock_diag, tcp_info, unix_diag,
};
use crate::threads::memory::{MAX_READ, Memory};
use crate::threads::{sched, syscall, task};
use crate::{fd, fdinfo, locks, mountinfo, process};

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// The first line, and the bytes after it.
fn first_line(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (text(&data[..i]), &data[i + 1..]),
        None => (text(data), &[]),
    }
}

/// A readlink of /proc/PID/fd/N (first line) and that fd's fdinfo (the rest).
pub fn fd(data: &[u8]) {
    let (link, rest) = first_line(data);
    let mut f = fd::classify(7, &link);
    f.info = Some(Box::new(fdinfo::parse(&text(rest))));
    black_box(logs::log_reason(&f));
    black_box(f);
}

/// /proc/locks, joined to two fds whose fdinfo is the same text (so its `lock:` and `ino:`
/// lines take part, as a holder's fdinfo would).
pub fn locks(data: &[u8]) {
    let t = text(data);
    let (all, bad) = locks::parse_all(&t);
    let info = fdinfo::parse(&t);
    let fds: Vec<Fd> = [(3, "/var/lib/app.lock"), (4, "/memfd:x (deleted)")]
        .into_iter()
        .map(|(n, link)| {
            let mut f = fd::classify(n, link);
            f.info = Some(Box::new(info.clone()));
            f
        })
        .collect();
    let pids = [1, all.first().and_then(|l| l.pid).unwrap_or(-1)];
    for pid in pids {
        black_box(locks::join(pid, &all, &fds));
    }
    black_box((all, bad));
}

/// /proc/PID/mountinfo, and the lookups collection makes in it.
pub fn mountinfo(data: &[u8]) {
    let t = text(data);
    let Ok(m) = mountinfo::Mounts::parse(&t) else {
        return;
    };
    let points = m.not_local_points();
    for p in &points {
        black_box(m.containing(p));
        black_box(mountinfo::is_under("/var/log/app.log", p));
    }
    black_box(m.containing("/var/log/app.log"));
    black_box(m.get(1));
}

/// The per-process and per-thread files: stat, status, limits, the ns link, stack, sched; each
/// parser gets the whole input.
pub fn proc_pid(data: &[u8]) {
    let t = text(data);
    black_box(process::parse_stat(&t).ok());
    black_box(process::parse_status(&t).ok());
    black_box(process::parse_nofile_soft_limit(&t));
    black_box(process::parse_ns_link(&t));
    black_box(task::parse_stack(&t));
    black_box(sched::parse(&t));
    black_box(logs::task_status::Tasks::from_statuses(&[(5, t)]));
}

/// The target's memory as decoding sees it: any address outside the user half faults, the
/// rest reads the input over and over (so a pollfd array or fd set has the fuzzer's content).
struct InputMemory<'a>(&'a [u8]);

impl Memory for InputMemory<'_> {
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, crate::error::ReadError> {
        if addr == 0 || addr >= 1 << 47 || self.0.is_empty() {
            return Err(crate::error::ReadError::new(
                crate::error::ReadErrorKind::Errno(libc::EFAULT),
                format!("EFAULT at {addr:#x}"),
            ));
        }
        if len > MAX_READ {
            return Err(crate::error::ReadError::other(format!("{len} bytes")));
        }
        let start = (addr % self.0.len() as u64) as usize;
        Ok(self
            .0
            .iter()
            .cycle()
            .skip(start)
            .take(len)
            .copied()
            .collect())
    }
}

/// /proc/PID/task/TID/syscall (first line), decoded for both architectures with the rest of
/// the input as the target's memory and as the fdinfo of an epoll fd.
pub fn syscall(data: &[u8]) {
    let (line, mem) = first_line(data);
    let Ok(raw) = syscall::parse(&line) else {
        return;
    };
    let mut epoll = fd::classify(4, "anon_inode:[eventpoll]");
    epoll.info = Some(Box::new(fdinfo::parse(&text(mem))));
    let fds = [
        fd::classify(0, "/dev/null"),
        epoll,
        fd::classify(5, "pipe:[9]"),
    ];
    let memory = InputMemory(mem);
    for arch in [syscall::Arch::X86_64, syscall::Arch::Aarch64] {
        let ctx = syscall::Context {
            arch,
            mem: &memory,
            fds: &fds,
            tids: &[100, 101, 4242],
        };
        black_box(syscall::decode(&raw, &ctx));
    }
}

/// /proc/PID/net/{tcp,tcp6,udp,udp6,unix}.
pub fn proc_net(data: &[u8]) {
    let t = text(data);
    black_box(proc_net::parse_tcp(&t).ok());
    black_box(proc_net::parse_udp(&t).ok());
    black_box(proc_net::parse_unix(&t).ok());
}

fn diag_body(m: &[u8]) {
    black_box(inet_diag::inode_of(m));
    black_box(inet_diag::parse(6, m).ok());
    black_box(inet_diag::parse(17, m).ok());
    black_box(unix_diag::parse(m).ok());
    black_box(netlink_diag::parse(m).ok());
    black_box(packet_diag::parse(m).ok());
}

/// A NETLINK_SOCK_DIAG receive: framed as a batch of netlink messages (the sequence number is
/// the first message's, so the replies are taken), each body parsed as every family's reply;
/// and the whole input as one reply body and as a tcp_info attribute.
pub fn sock_diag(data: &[u8]) {
    let seq = data
        .get(8..12)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    let mut interrupted = false;
    black_box(sock_diag::walk_batch(data, seq, &mut interrupted, &mut diag_body).ok());
    diag_body(data);
    black_box(tcp_info::decode(data));
}

/// /etc/services.
pub fn services(data: &[u8]) {
    let s = services::Services::parse(&text(data));
    for port in [22, 80, 2181, 10100] {
        black_box(s.name(port, "tcp"));
    }
}

/// A log file: its name (first line, the target chooses it), its mtime in epoch seconds
/// (second line; the target can set it), and its bytes (the rest), read as a tail that was
/// cut or not; then what collection does with a tail, and each line alone through each
/// format's parser.
pub fn logs(data: &[u8]) {
    let (name, rest) = first_line(data);
    let (mtime, content) = first_line(rest);
    let mtime_s = mtime.trim().parse().unwrap_or(1_700_000_000);

    let (stem, glog) = logs::rotation_stem(&name);
    black_box(logs::glog_pid(&name));
    black_box(logs::is_sibling(&stem, glog, &name, &format!("{name}.1")));
    black_box(logs::says_log(&name));

    let mut tasks = logs::task_status::Tasks::default();
    tasks.by_written.insert(61, (31576, "dump_meta".into()));
    tasks.by_host.insert(31576, "dump_meta".into());
    let peer = Socket {
        inode: 9,
        fds: vec![29],
        family: SocketFamily::Inet,
        detail: SocketDetail::Tcp(InetSocket {
            state: "ESTAB".into(),
            peer: Endpoint {
                addr: "10.0.130.72".into(),
                port: 10100,
                service: None,
            },
            ..InetSocket::default()
        }),
        source: "sock_diag".into(),
        not_found_reason: None,
        fds_changed: vec![],
    };
    for cut in [false, true] {
        let raw = tail::RawTail {
            bytes: content.to_vec(),
            start: u64::from(cut),
            size: content.len() as u64 + u64::from(cut),
            mtime_s,
        };
        let t = tail::Tail::from_raw(raw, logs::MAX_LINES);
        let mut source = LogSource::default();
        logs::fill(&mut source, &name, &t);
        link::link(&mut source, &tasks, std::slice::from_ref(&peer));
        black_box(source);
    }

    let (ctx, _) = logs::time_context_for(&name, mtime_s);
    let contexts = [
        ctx,
        TimeContext::default(),
        TimeContext {
            year_ref: Some(YearRef::Start {
                year: 2023,
                month: 12,
            }),
            utc_offset_s: Some(8 * 3600),
        },
    ];
    let body = text(content);
    for ctx in &contexts {
        for line in body.lines().take(64) {
            black_box(glog::parse_line(line, ctx));
            black_box(plain::parse_line(line, ctx));
            black_box(json_lines::parse_line(line, ctx));
            black_box(peers::extract(line));
        }
    }
}

/// /dev/kmsg records, one per NUL-separated part (a read returns one record), selected for a
/// target as collection does.
pub fn kmsg(data: &[u8]) {
    let records: Vec<kmsg::Record> = data
        .split(|&b| b == 0)
        .filter_map(|r| kmsg::parse_record(&text(r)))
        .collect();
    let target = kmsg::Target {
        pid: 31516,
        names: vec!["zbs-metad".into(), "dump_meta".into()],
        tids: vec![31516, 31576],
    };
    let clock = kmsg::Clock {
        wall_ms: 1_700_000_000_000,
        monotonic_us: 1_400_000_000,
    };
    black_box(kmsg::select(&records, &target, 0, &clock));
}

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The entry point of each target, by its name in fuzz/fuzz_targets.
pub const TARGETS: &[(&str, Target)] = &[
    ("fd", fd),
    ("locks", locks),
    ("mountinfo", mountinfo),
    ("proc_pid", proc_pid),
    ("syscall", syscall),
    ("proc_net", proc_net),
    ("sock_diag", sock_diag),
    ("services", services),
    ("logs", logs),
    ("kmsg", kmsg),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input a fuzz target once crashed on, kept in tests/fixtures/fuzz-regressions/TARGET/,
    /// runs through its target again (each also has a unit test beside the parser it broke).
    #[test]
    fn kept_crash_inputs_run_through_their_targets() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/fuzz-regressions"
        );
        let mut ran = 0;
        for (name, target) in TARGETS {
            let Ok(entries) = std::fs::read_dir(format!("{dir}/{name}")) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                // A panic here names the input.
                eprintln!("{name}: {}", path.display());
                target(&data);
                ran += 1;
            }
        }
        assert!(ran > 0, "no inputs under {dir}");
    }
}
