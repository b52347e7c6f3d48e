//! Builders for snapshots in unit tests: sockets, threads and fds as the collectors would
//! record them, plus the seed incident from its notes' numbers.

use hangscope_model::{
    Activity, Endpoint, EpollWatch, Fd, FdInfo, FdKind, InetSocket, LogEntry, LogFormat, LogLevel,
    LogSource, Snapshot, Socket, SocketDetail, SocketFamily, SocketTimer, SyscallState, TcpInfo,
    Thread, TimerKind, UnixPeer, UnixSocket, WaitObject, Window,
};

pub fn base(pid: i32, name: &str) -> Snapshot {
    let mut snap = Snapshot::default();
    snap.process.pid = pid;
    snap.process.name = name.into();
    snap.process.state = "S".into();
    snap.window = Some(Window {
        looks: 5,
        duration_ms: 2000,
    });
    snap
}

/// "10.0.0.1:80" or "[::1]:80".
pub fn endpoint(s: &str) -> Endpoint {
    let (addr, port) = s.rsplit_once(':').unwrap();
    Endpoint {
        addr: addr.trim_start_matches('[').trim_end_matches(']').into(),
        port: port.parse().unwrap(),
        service: None,
    }
}

pub fn tcp(inode: u64, local: &str, peer: &str, state: &str) -> Socket {
    let inet = InetSocket {
        state: state.into(),
        local: endpoint(local),
        peer: endpoint(peer),
        tcp_info: Some(Box::new(TcpInfo {
            len: 232,
            rto_us: 201_000,
            rtt_us: 100,
            snd_mss: 1448,
            bytes_acked: Some(1),
            bytes_received: Some(0),
            snd_wnd: Some(65535),
            ..TcpInfo::default()
        })),
        ..InetSocket::default()
    };
    Socket {
        inode,
        fds: vec![],
        family: if local.starts_with('[') {
            SocketFamily::Inet6
        } else {
            SocketFamily::Inet
        },
        detail: SocketDetail::Tcp(inet),
        source: "sock_diag".into(),
        not_found_reason: None,
        fds_changed: vec![],
    }
}

pub fn udp(inode: u64, local: &str, peer: &str) -> Socket {
    let mut s = tcp(inode, local, peer, "ESTAB");
    let SocketDetail::Tcp(mut inet) = s.detail else {
        unreachable!()
    };
    inet.tcp_info = None;
    s.detail = SocketDetail::Udp(inet);
    s
}

pub fn unix_to(inode: u64, peer_path: &str, peer_name: &str) -> Socket {
    Socket {
        inode,
        fds: vec![],
        family: SocketFamily::Unix,
        detail: SocketDetail::Unix(UnixSocket {
            sock_type: "STREAM".into(),
            state: "ESTAB".into(),
            path: None,
            peer_inode: inode + 1,
            peer: Some(Box::new(UnixPeer {
                pid: 4242,
                name: peer_name.into(),
                fd: 20,
                path: Some(peer_path.into()),
                threads: None,
            })),
            ..UnixSocket::default()
        }),
        source: "sock_diag".into(),
        not_found_reason: None,
        fds_changed: vec![],
    }
}

pub fn inet_of(s: &mut Socket) -> &mut InetSocket {
    match &mut s.detail {
        SocketDetail::Tcp(i) | SocketDetail::Udp(i) => i,
        _ => panic!("not inet"),
    }
}

pub fn info_of(s: &mut Socket) -> &mut TcpInfo {
    inet_of(s).tcp_info.as_mut().unwrap()
}

pub fn timer(s: &mut Socket, kind: TimerKind, expires_ms: u32, retrans: u8) {
    inet_of(s).timer = Some(SocketTimer {
        kind,
        expires_ms,
        retrans,
    });
}

pub fn socket_mut(snap: &mut Snapshot, inode: u64) -> &mut Socket {
    snap.sockets.iter_mut().find(|s| s.inode == inode).unwrap()
}

pub fn socket_info(snap: &mut Snapshot, inode: u64) -> &mut TcpInfo {
    info_of(socket_mut(snap, inode))
}

fn push_fd(snap: &mut Snapshot, fd: Fd) {
    snap.fds.retain(|f| f.fd != fd.fd);
    snap.fds.push(fd);
    snap.fds.sort_by_key(|f| f.fd);
    snap.process.fd_count = snap.fds.len() as u32;
}

fn fd(n: i32, kind: FdKind, target: String) -> Fd {
    Fd::new(n, kind, target)
}

pub fn add_socket(snap: &mut Snapshot, n: i32, mut sock: Socket) {
    let mut f = fd(n, FdKind::Socket, format!("socket:[{}]", sock.inode));
    f.socket_inode = Some(sock.inode);
    push_fd(snap, f);
    sock.fds = vec![n];
    snap.sockets.push(sock);
}

/// An epoll fd `n` watching `watched` for input; returns what the threads collector decodes for
/// a thread in epoll_wait on it: the epoll fd, then each watched fd through it.
pub fn add_epoll(snap: &mut Snapshot, n: i32, watched: &[i32]) -> Vec<WaitObject> {
    let mut f = fd(n, FdKind::Eventpoll, "anon_inode:[eventpoll]".into());
    f.info = Some(Box::new(FdInfo {
        flags: 0o2,
        epoll_watches: watched
            .iter()
            .map(|&tfd| EpollWatch {
                tfd,
                events: 0x19,
                events_decoded: vec!["EPOLLIN".into(), "EPOLLERR".into(), "EPOLLHUP".into()],
                data: tfd as u64,
                ino: None,
            })
            .collect(),
        ..FdInfo::default()
    }));
    push_fd(snap, f);
    std::iter::once(fd_wait(n, &[]))
        .chain(watched.iter().map(|&tfd| WaitObject::Fd {
            fd: tfd,
            events: vec!["EPOLLIN".into(), "EPOLLERR".into(), "EPOLLHUP".into()],
            via_epoll: Some(n),
        }))
        .collect()
}

pub fn fd_wait(fd: i32, events: &[&str]) -> WaitObject {
    WaitObject::Fd {
        fd,
        events: events.iter().map(|e| e.to_string()).collect(),
        via_epoll: None,
    }
}

/// A thread blocked in `syscall` on `waits`, in that wait for at least `blocked_ms`.
pub fn thread(
    tid: i32,
    name: &str,
    syscall: &str,
    waits: Vec<WaitObject>,
    blocked_ms: Option<u64>,
) -> Thread {
    Thread {
        tid,
        name: name.into(),
        state: "S".into(),
        syscall: Some(SyscallState {
            name: syscall.into(),
            waits_on: waits,
            ..SyscallState::default()
        }),
        activity: Some(Activity {
            progressed: blocked_ms.is_none(),
            blocked_at_least_ms: blocked_ms,
            ..Activity::default()
        }),
        ..Thread::default()
    }
}

/// A user stack of these functions, innermost first, as the stacks collector names frames.
pub fn stack_of(functions: &[&str]) -> hangscope_model::UserStack {
    hangscope_model::UserStack {
        frames: functions
            .iter()
            .map(|f| hangscope_model::Frame {
                function: Some((*f).into()),
                ..hangscope_model::Frame::default()
            })
            .collect(),
        ..hangscope_model::UserStack::default()
    }
}

/// A thread in a sleep loop, e.g. a main thread polling a flag every 100 ms.
pub fn sleeper(tid: i32, name: &str, every_ms: u64) -> Thread {
    let mut t = thread(
        tid,
        name,
        "clock_nanosleep",
        vec![WaitObject::Sleep {
            ns: every_ms * 1_000_000,
        }],
        None,
    );
    if let Some(a) = t.activity.as_mut() {
        a.periodic = Some(format!(
            "clock_nanosleep {every_ms} ms, ~{}/s",
            1000 / every_ms.max(1)
        ));
        a.rate_per_s = Some(1000.0 / every_ms.max(1) as f64);
    }
    t
}

fn glog(
    time: &str,
    time_ms: i64,
    level: LogLevel,
    loc: &str,
    msg: &str,
    peers: &[&str],
) -> LogEntry {
    LogEntry {
        time_text: time.into(),
        time_ms: Some(time_ms),
        level: Some(level),
        tid: Some(31576),
        location: Some(loc.into()),
        message: msg.into(),
        peers: peers.iter().map(|p| p.to_string()).collect(),
        malformed: false,
        // As the collector sets it.
        error: hangscope_model::error_name_in(msg),
        ..LogEntry::default()
    }
}

/// The seed incident (zbs-metad), from the numbers in its notes: the dump_meta thread in poll()
/// on fd 29 to 10.0.130.72:10100, which acknowledged a 32-byte request 7.9 s ago and answers
/// keepalives; :2181 to the same host answered 1.2 s ago; :10101 idle; main in a 100 ms loop.
pub fn seed() -> Snapshot {
    let mut snap = base(31516, "zbs-metad");
    snap.process.num_threads = 2;
    snap.process.netns_same_as_tool = Some(true);
    add_socket(
        &mut snap,
        12,
        tcp(577303366, "0.0.0.0:10102", "0.0.0.0:0", "LISTEN"),
    );

    let mut zk = tcp(692518576, "10.0.130.71:36190", "10.0.130.72:2181", "ESTAB");
    let i = info_of(&mut zk);
    i.rtt_us = 822;
    i.bytes_acked = Some(238);
    i.bytes_received = Some(415);
    i.last_data_sent_ms = 1209;
    i.last_data_recv_ms = 1209;
    i.last_ack_recv_ms = 1209;
    i.total_retrans = 2;
    add_socket(&mut snap, 28, zk);

    let mut meta = tcp(692518610, "10.0.130.71:42428", "10.0.130.72:10100", "ESTAB");
    timer(&mut meta, TimerKind::Keepalive, 325, 0);
    let i = info_of(&mut meta);
    i.rtt_us = 88;
    i.bytes_acked = Some(33);
    i.last_data_sent_ms = 7878;
    i.last_data_recv_ms = 7878;
    i.last_ack_recv_ms = 675;
    add_socket(&mut snap, 29, meta);

    let mut side = tcp(692518611, "10.0.130.71:37484", "10.0.130.72:10101", "ESTAB");
    timer(&mut side, TimerKind::Keepalive, 322, 0);
    let i = info_of(&mut side);
    i.rtt_us = 63;
    i.last_data_sent_ms = 7881;
    i.last_data_recv_ms = 7881;
    i.last_ack_recv_ms = 678;
    add_socket(&mut snap, 30, side);

    snap.threads.push(sleeper(31516, "zbs-metad", 100));
    let mut worker = thread(
        31576,
        "dump_meta",
        "poll",
        vec![fd_wait(29, &["POLLIN"])],
        Some(2000),
    );
    if let Some(sc) = worker.syscall.as_mut() {
        sc.timeout_ms = Some(10_000);
        sc.summary = "poll([{fd=29, events=POLLIN}], 1, 10000)".into();
    }
    snap.threads.push(worker);

    let base_ms = 1_694_899_517_037;
    snap.logs.push(LogSource {
        path: "/var/log/zbs/zbs-metad.log".into(),
        fd: Some(7),
        format: LogFormat::Glog,
        bytes_read: 4096,
        reason: "fd 7 open for writing, name contains 'log'".into(),
        entries: vec![
            glog("0917 05:25:17.037914", base_ms, LogLevel::Info, "dump_meta.cc:97",
                "Dump meta from 10.0.130.72:10100", &["10.0.130.72:10100"]),
            glog("0917 05:25:27.038408", base_ms + 10_000, LogLevel::Warning, "dump_meta.cc:104",
                "Fail to dump meta from 10.0.130.72:10100 st:\nTraceback:\n[ETimedOut]: failed to read response header when calling: zbs.meta.MetaService.ListDb",
                &["10.0.130.72:10100"]),
            glog("0917 05:25:27.039075", base_ms + 10_001, LogLevel::Info, "dump_meta.cc:97",
                "Dump meta from 10.0.130.73:10100", &["10.0.130.73:10100"]),
            glog("0917 05:25:37.049017", base_ms + 20_011, LogLevel::Warning, "dump_meta.cc:104",
                "Fail to dump meta from 10.0.130.73:10100 st:\nTraceback:\n[ETimedOut]: failed to read response header when calling: zbs.meta.MetaService.ListDb",
                &["10.0.130.73:10100"]),
            glog("0917 05:25:37.049900", base_ms + 20_012, LogLevel::Info, "dump_meta.cc:97",
                "Dump meta from 10.0.130.72:10100", &["10.0.130.72:10100"]),
        ],
        ..LogSource::default()
    });
    snap
}
