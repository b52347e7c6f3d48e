//! Connections over the sampling window: the target's TCP and UDP sockets dumped again at the
//! looks of the window (inet_diag over NETLINK_SOCK_DIAG, see sock_diag(7); struct tcp_info in
//! include/uapi/linux/tcp.h), in the target's network namespace, so that
//! - the snapshot's sockets are from the window's last look, the moment its threads are from
//!   (a thread "blocked 2.8 s" and a request "sent 2.7 s ago" are then the same clock), and
//! - each connection says what moved in between: bytes, segments, retransmits, state
//!   (`hangscope_model::ConnectionWindow`).
//!
//! Cost: a dump walks every socket of the namespace, not only the target's: about 25 ms with
//! TCP_INFO for 5,000 sockets. Only the families and protocols the target has are dumped, and
//! replies are filtered by inode before they are parsed. The first look's dump is timed: when it
//! took more than `PER_LOOK_MAX_COST` or walked more than `PER_LOOK_MAX_SOCKETS` sockets, only the
//! first and the last look are dumped (enough for the deltas); otherwise every look is, which
//! also tells in how many looks data moved.
//!
//! The dumps run on one helper thread that entered the target's namespace once
//! (`netns::Helper`), or on the calling thread when the target shares the tool's namespace.
//! Each dump is bounded by the run's deadline; a dump the deadline does not leave room for is
//! skipped, and the window then ends at the last look that was read.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hangscope_model::{
    ConnectionWindow, Gap, GapReason, InetSocket, Process, Socket, SocketDetail, SocketFamily,
    StateChange, TcpState,
};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};

use super::inet_diag::{self, InetEntry};
use super::netns;
use super::sock_diag::SockDiag;
use crate::error::{ReadError, reason_of};
use crate::threads::Look;
use crate::{Deadline, Options, ProcRoot};

/// A first dump slower than this, or walking more sockets than that, makes the window dump only
/// at its first and last look.
pub const PER_LOOK_MAX_COST: Duration = Duration::from_millis(10);
pub const PER_LOOK_MAX_SOCKETS: usize = 2_000;

/// A dump is not started with less time than this left before the deadline.
const MIN_LEFT: Duration = Duration::from_millis(50);

/// Jiffies round tcp_info's last_data ages (10 ms at HZ=100) and the dump is not exactly at the
/// instant recorded for it: an age that restarted by less than this is not counted as movement.
const AGE_SLACK_MS: u64 = 25;

/// What one dump returned.
#[derive(Debug, Default)]
struct InetDump {
    entries: Vec<InetEntry>,
    /// Sockets walked (every socket of the namespace of the dumped kinds).
    walked: usize,
    /// Time the dump took on the thread that ran it (not counting the hand-off to the helper).
    took: Duration,
    /// The dumps that failed, each error naming the dump.
    failures: Vec<ReadError>,
}

enum Runner {
    /// The target shares the tool's namespace.
    Here,
    Netns(netns::Helper),
}

/// One socket as the window saw it: the first look only as far as the window compares it, the
/// last in full (it becomes the snapshot's).
struct Track {
    first: Reading,
    first_state: TcpState,
    first_at: Instant,
    last: InetSocket,
    last_at: Instant,
    /// Index of the last dump that returned it.
    last_dump: u32,
    looks: u32,
    looks_moving: u32,
    /// Every look, for a timeline, when few connections are watched (`SERIES_UP_TO`).
    series: Vec<hangscope_model::ConnectionLook>,
}

/// Up to this many watched connections, each keeps every look (`ConnectionWindow::samples`).
const SERIES_UP_TO: usize = 256;

fn sample_of(s: &InetSocket, at_ms: u64) -> hangscope_model::ConnectionLook {
    let info = s.tcp_info.as_deref();
    hangscope_model::ConnectionLook {
        at_ms,
        bytes_sent: info.and_then(|i| i.bytes_sent),
        bytes_received: info.and_then(|i| i.bytes_received),
        unacked: info.map_or(0, |i| i.unacked),
        retrans: info.map_or(0, |i| i.total_retrans),
        rtt_us: info.map_or(0, |i| i.rtt_us),
        last_data_recv_ms: info.map_or(0, |i| i.last_data_recv_ms),
        recv_q: s.recv_q,
        send_q: s.send_q,
    }
}

/// The per-look sampler; see the module header. Inactive (every call a no-op) with a zero window
/// or when the snapshot has no TCP or UDP socket read from sock_diag.
pub struct ConnWindow {
    runner: Option<Runner>,
    wanted: Arc<HashSet<u64>>,
    /// For a target with few sockets, each one's exact lookup instead of the dump.
    exact: Arc<Vec<super::exact::Own>>,
    kinds: Arc<Vec<(u8, u8)>>,
    deadline: Deadline,
    per_look: bool,
    /// Dumps that completed, counting from 0; the index of the last complete one.
    dumps: u32,
    last_complete: Option<u32>,
    /// The last look's dump was skipped or failed: why.
    last_missing: Option<(GapReason, String)>,
    /// Boxed and sized once: 10,000 tracks of two looks each, rehashed as the map grew, were
    /// the default run's peak memory.
    tracks: HashMap<u64, Box<Track>>,
    gaps: Vec<Gap>,
    /// When the first dump was made: the timelines' zero.
    first_dump_at: Option<Instant>,
}

impl ConnWindow {
    pub fn new(
        root: &ProcRoot,
        pid: i32,
        sockets: &[Socket],
        process: &Process,
        opts: &Options,
    ) -> ConnWindow {
        let mut w = ConnWindow {
            runner: None,
            wanted: Arc::new(HashSet::new()),
            exact: Arc::new(Vec::new()),
            kinds: Arc::new(Vec::new()),
            deadline: opts.deadline,
            per_look: true,
            dumps: 0,
            last_complete: None,
            last_missing: None,
            tracks: HashMap::new(),
            gaps: Vec::new(),
            first_dump_at: None,
        };
        // One look: nothing to sample, so the 10,000 sockets of a huge target are not walked
        // (and their addresses not parsed) for a window that will not be.
        if opts.window.is_zero() || opts.deadline.passed() {
            return w;
        }
        let mut wanted = HashSet::new();
        let mut kinds = Vec::new();
        let mut exact = Vec::new();
        for s in sockets {
            if s.source != super::SOURCE_SOCK_DIAG {
                continue;
            }
            let proto = match s.detail {
                SocketDetail::Tcp(_) => IPPROTO_TCP,
                SocketDetail::Udp(_) => IPPROTO_UDP,
                _ => continue,
            };
            let family = match s.family {
                SocketFamily::Inet => AF_INET,
                SocketFamily::Inet6 => AF_INET6,
                _ => continue,
            };
            wanted.insert(s.inode);
            // Past the exact lookups' limit the window dumps instead: no need to parse more.
            if let SocketDetail::Tcp(i) | SocketDetail::Udp(i) = &s.detail
                && exact.len() <= super::exact::MAX_SOCKETS
                && let Some(own) = super::exact::Own::of(family, proto, i, s.inode)
            {
                exact.push(own);
            }
            if !kinds.contains(&(family, proto)) {
                kinds.push((family, proto));
            }
        }
        if opts.window.is_zero() || wanted.is_empty() || opts.deadline.passed() {
            return w;
        }
        w.tracks.reserve(wanted.len());
        if exact.len() == wanted.len() && exact.len() <= super::exact::MAX_SOCKETS {
            w.exact = Arc::new(exact);
        }
        w.wanted = Arc::new(wanted);
        w.kinds = Arc::new(kinds);
        if process.netns_same_as_tool == Some(true) {
            w.runner = Some(Runner::Here);
            return w;
        }
        let ns_path = root.pid(pid).join("ns/net");
        let started = std::fs::File::open(&ns_path)
            .map_err(|e| ReadError::io_at(ns_path.display(), &e))
            .and_then(|ns| netns::Helper::start(Some(ns), &opts.deadline));
        match started {
            Ok(h) => w.runner = Some(Runner::Netns(h)),
            Err(why) => w.gaps.push(Gap::new(
                "connections over the window",
                reason_of(&why),
                format!("not sampled: the target's network namespace: {why}"),
            )),
        }
        w
    }

    /// Called at every look of the window (after the threads were read).
    pub fn look(&mut self, look: &Look) {
        let Some(runner) = &self.runner else { return };
        if !(look.index == 0 || look.last || self.per_look) {
            return;
        }
        if self.deadline.remaining() < MIN_LEFT {
            if look.last {
                self.last_missing = Some((
                    GapReason::Deadline,
                    "the deadline left no time for the last look's dump".into(),
                ));
            }
            return;
        }
        let timeout = self
            .deadline
            .remaining()
            .clamp(Duration::from_millis(1), super::RECV_TIMEOUT);
        let (wanted, kinds) = (Arc::clone(&self.wanted), Arc::clone(&self.kinds));
        let exact = Arc::clone(&self.exact);
        let started = Instant::now();
        let result = match runner {
            Runner::Here => Ok(look_up_or_dump(&exact, &kinds, &wanted, timeout)),
            Runner::Netns(h) => h.run(&self.deadline, move || {
                look_up_or_dump(&exact, &kinds, &wanted, timeout)
            }),
        };
        let cost = started.elapsed();
        // The moment the dump describes: its middle (it takes a few ms).
        let at = started + cost / 2;
        let d = match result {
            Ok(d) => d,
            Err(why) => {
                if look.last {
                    self.last_missing = Some((reason_of(&why), why.to_string()));
                }
                return;
            }
        };
        if look.index == 0 && !look.last {
            self.per_look = d.took <= PER_LOOK_MAX_COST && d.walked <= PER_LOOK_MAX_SOCKETS;
        }
        self.record(d, at, look.last);
    }

    /// Takes in one dump made at `at`.
    fn record(&mut self, d: InetDump, at: Instant, last: bool) {
        let index = self.dumps;
        self.dumps += 1;
        if let Some(first) = d.failures.first() {
            if last {
                let words: Vec<String> = d.failures.iter().map(ToString::to_string).collect();
                self.last_missing = Some((reason_of(first), words.join("; ")));
            }
        } else {
            self.last_complete = Some(index);
        }
        let zero = *self.first_dump_at.get_or_insert(at);
        let at_ms = at.saturating_duration_since(zero).as_millis() as u64;
        let keep_series = self.per_look && self.wanted.len() <= SERIES_UP_TO;
        for e in d.entries {
            match self.tracks.get_mut(&e.inode) {
                Some(t) => {
                    if keep_series {
                        t.series.push(sample_of(&e.socket, at_ms));
                    }
                    let elapsed = at.saturating_duration_since(t.last_at).as_millis() as u64;
                    if data_moved(&Reading::of(&t.last), &Reading::of(&e.socket), elapsed) {
                        t.looks_moving += 1;
                    }
                    t.last = e.socket;
                    t.last_at = at;
                    t.last_dump = index;
                    t.looks += 1;
                }
                None => {
                    let series = if keep_series {
                        vec![sample_of(&e.socket, at_ms)]
                    } else {
                        Vec::new()
                    };
                    self.tracks.insert(
                        e.inode,
                        Box::new(Track {
                            series,
                            first: Reading::of(&e.socket),
                            first_state: e.socket.state,
                            first_at: at,
                            last: e.socket,
                            last_at: at,
                            last_dump: index,
                            looks: 1,
                            looks_moving: 0,
                        }),
                    );
                }
            }
        }
    }

    /// After the window: every sampled TCP/UDP socket takes its last look's values and its
    /// `window`; what could not be sampled becomes a gap.
    pub fn apply(mut self, sockets: &mut [Socket], gaps: &mut Vec<Gap>) {
        gaps.extend(self.gaps);
        if self.runner.is_none() {
            return;
        }
        if let Some((reason, why)) = self.last_missing {
            let at = if self.dumps > 0 {
                "the sockets are from an earlier look of the window, not the last"
            } else {
                "the sockets are from before the window"
            };
            gaps.push(Gap::new(
                "connections at the window's last look",
                reason,
                format!("{why}: {at}"),
            ));
        }
        if self.dumps == 0 {
            return;
        }
        for s in sockets.iter_mut() {
            if !self.wanted.contains(&s.inode) {
                continue;
            }
            let inet = match &mut s.detail {
                SocketDetail::Tcp(i) | SocketDetail::Udp(i) => i,
                _ => continue,
            };
            // Moved out, not cloned: on a 10,000-connection target a copy of every last look
            // was the run's peak memory.
            let Some(t) = self.tracks.remove(&s.inode) else {
                // Read before the window, in no dump of it: closed before the first look.
                if self.last_complete.is_some() {
                    inet.window = Some(Box::new(ConnectionWindow {
                        closed_during_window: true,
                        ..ConnectionWindow::default()
                    }));
                }
                continue;
            };
            let closed = self.last_complete.is_some_and(|c| c > t.last_dump);
            let duration_ms = t.last_at.saturating_duration_since(t.first_at).as_millis() as u64;
            let mut w = window_between(t.first_state, &t.first, &t.last, duration_ms);
            w.looks = t.looks;
            w.looks_moving = t.looks_moving;
            // Dumped only at the first and last look: two points are no timeline.
            if self.per_look {
                w.samples = t.series;
            }
            w.closed_during_window = closed;
            // Port names, the other end and the listeners were read once, before the window;
            // they stay.
            let (local_service, peer_service) =
                (inet.local.service.take(), inet.peer.service.take());
            let local_peer = inet.local_peer.take();
            let accepted = inet.accepted;
            *inet = t.last;
            inet.local.service = local_service;
            inet.peer.service = peer_service;
            inet.local_peer = local_peer;
            inet.accepted = accepted;
            inet.window = Some(Box::new(w));
        }
    }
}

/// The sockets of `kinds` whose inode is in `wanted`, from one dump in the calling thread's
/// namespace; the first failure when every dump failed.
pub(super) fn dump_entries(
    kinds: &[(u8, u8)],
    wanted: &HashSet<u64>,
    timeout: Duration,
) -> Result<Vec<InetEntry>, ReadError> {
    let d = dump(kinds, wanted, timeout);
    match d.failures.first() {
        Some(why) if d.failures.len() >= kinds.len() => Err(why.clone()),
        _ => Ok(d.entries),
    }
}

/// The sockets by their exact lookups when `exact` has them all, else by [`dump`]: the same
/// sockets either way (a lookup that misses one makes the look a dump).
fn look_up_or_dump(
    exact: &[super::exact::Own],
    kinds: &[(u8, u8)],
    wanted: &HashSet<u64>,
    timeout: Duration,
) -> InetDump {
    if !exact.is_empty() {
        let started = Instant::now();
        if let Ok(entries) = super::exact::look_up_all(exact, timeout) {
            return InetDump {
                walked: entries.len(),
                entries,
                took: started.elapsed(),
                failures: Vec::new(),
            };
        }
    }
    dump(kinds, wanted, timeout)
}

/// Dumps the `kinds` (family, protocol) of the calling thread's namespace, keeping the sockets
/// whose inode is in `wanted`.
fn dump(kinds: &[(u8, u8)], wanted: &HashSet<u64>, timeout: Duration) -> InetDump {
    let started = Instant::now();
    let mut out = InetDump::default();
    let mut nl = match SockDiag::open(timeout) {
        Ok(s) => s,
        Err(e) => {
            out.failures
                .push(ReadError::io("NETLINK_SOCK_DIAG socket", &e));
            return out;
        }
    };
    for &(family, proto) in kinds {
        let (walked, entries) = (&mut out.walked, &mut out.entries);
        let mut each = |m: &[u8]| {
            *walked += 1;
            if !inet_diag::inode_of(m).is_some_and(|i| wanted.contains(&i)) {
                return;
            }
            // A reply that does not parse was reported by the first read already.
            if let Ok(e) = inet_diag::parse(proto, m) {
                entries.push(e);
            }
        };
        match nl.dump_each(&inet_diag::request(family, proto), &mut each) {
            Ok(_) => {}
            Err(e) => out.failures.push(ReadError::io(
                format_args!("inet_diag dump (family {family}, protocol {proto})"),
                &e,
            )),
        }
    }
    out.took = started.elapsed();
    out
}

/// What the window compares between two looks of a connection: its queues and the tcp_info
/// counters (none for UDP, whose dumps carry none). Kept instead of a whole first look, whose
/// copy per connection was a fifth of a 10,000-connection run's memory.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    recv_q: u32,
    send_q: u32,
    counters: Option<Counters>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Counters {
    bytes_received: Option<u64>,
    bytes_acked: Option<u64>,
    bytes_sent: Option<u64>,
    data_segs_in: Option<u32>,
    data_segs_out: Option<u32>,
    segs_in: Option<u32>,
    segs_out: Option<u32>,
    total_retrans: u32,
    unacked: u32,
    last_data_recv_ms: u32,
    last_data_sent_ms: u32,
}

impl Reading {
    fn of(s: &InetSocket) -> Reading {
        Reading {
            recv_q: s.recv_q,
            send_q: s.send_q,
            counters: s.tcp_info.as_deref().map(|i| Counters {
                bytes_received: i.bytes_received,
                bytes_acked: i.bytes_acked,
                bytes_sent: i.bytes_sent,
                data_segs_in: i.data_segs_in,
                data_segs_out: i.data_segs_out,
                segs_in: i.segs_in,
                segs_out: i.segs_out,
                total_retrans: i.total_retrans,
                unacked: i.unacked,
                last_data_recv_ms: i.last_data_recv_ms,
                last_data_sent_ms: i.last_data_sent_ms,
            }),
        }
    }
}

/// Whether data moved between two readings `elapsed_ms` apart: bytes (or data segments, or the
/// last-data ages on kernels without those counters); for UDP, whose dumps carry no counters,
/// a queue that changed.
fn data_moved(a: &Reading, b: &Reading, elapsed_ms: u64) -> bool {
    let (Some(x), Some(y)) = (&a.counters, &b.counters) else {
        return a.recv_q != b.recv_q || a.send_q != b.send_q;
    };
    let grew = |p: Option<u64>, q: Option<u64>| match (p, q) {
        (Some(p), Some(q)) => Some(q != p),
        _ => None,
    };
    let bytes = [
        grew(x.bytes_received, y.bytes_received),
        grew(x.bytes_acked, y.bytes_acked),
        grew(x.bytes_sent, y.bytes_sent),
    ];
    if bytes.iter().any(|b| b.is_some()) {
        return bytes.contains(&Some(true));
    }
    let segs = [
        grew(x.data_segs_in.map(u64::from), y.data_segs_in.map(u64::from)),
        grew(
            x.data_segs_out.map(u64::from),
            y.data_segs_out.map(u64::from),
        ),
    ];
    if segs.iter().any(|s| s.is_some()) {
        return segs.contains(&Some(true));
    }
    age_restarted(x.last_data_recv_ms, y.last_data_recv_ms, elapsed_ms)
        || age_restarted(x.last_data_sent_ms, y.last_data_sent_ms, elapsed_ms)
}

/// An age (ms since an event) read twice `elapsed_ms` apart: without a new event the second is
/// the first plus the elapsed time; smaller means the event happened again in between.
fn age_restarted(first: u32, last: u32, elapsed_ms: u64) -> bool {
    u64::from(last) + AGE_SLACK_MS < u64::from(first) + elapsed_ms
}

/// The change from `first` to `last`, `duration_ms` apart (looks and closing are the caller's).
pub fn window_of(first: &InetSocket, last: &InetSocket, duration_ms: u64) -> ConnectionWindow {
    window_between(first.state, &Reading::of(first), last, duration_ms)
}

fn window_between(
    first_state: TcpState,
    first: &Reading,
    last: &InetSocket,
    duration_ms: u64,
) -> ConnectionWindow {
    let last_reading = Reading::of(last);
    let mut w = ConnectionWindow {
        duration_ms,
        recv_q_first: first.recv_q,
        send_q_first: first.send_q,
        moving: data_moved(first, &last_reading, duration_ms),
        ..ConnectionWindow::default()
    };
    if first_state != last.state {
        w.state_change = Some(StateChange {
            from: first_state,
            to: last.state,
        });
    }
    if let (Some(a), Some(b)) = (&first.counters, &last_reading.counters) {
        let d64 = |p: Option<u64>, q: Option<u64>| Some(q?.saturating_sub(p?));
        // 32-bit counters wrap.
        let d32 = |p: Option<u32>, q: Option<u32>| Some(q?.wrapping_sub(p?));
        w.bytes_sent = d64(a.bytes_sent, b.bytes_sent);
        w.bytes_acked = d64(a.bytes_acked, b.bytes_acked);
        w.bytes_received = d64(a.bytes_received, b.bytes_received);
        w.segs_in = d32(a.segs_in, b.segs_in);
        w.segs_out = d32(a.segs_out, b.segs_out);
        w.retrans = Some(b.total_retrans.wrapping_sub(a.total_retrans));
        w.unacked_first = Some(a.unacked);
        w.unacked_last = Some(b.unacked);
        w.last_data_recv_moved = Some(age_restarted(
            a.last_data_recv_ms,
            b.last_data_recv_ms,
            duration_ms,
        ));
        w.last_data_sent_moved = Some(age_restarted(
            a.last_data_sent_ms,
            b.last_data_sent_ms,
            duration_ms,
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::TcpInfo;

    fn tcp(info: TcpInfo) -> InetSocket {
        InetSocket {
            state: "ESTAB".into(),
            tcp_info: Some(Box::new(info)),
            ..InetSocket::default()
        }
    }

    #[test]
    fn silent_connection_is_idle_and_ages_grow() {
        let a = tcp(TcpInfo {
            bytes_acked: Some(35),
            bytes_received: Some(0),
            bytes_sent: Some(34),
            segs_in: Some(3),
            segs_out: Some(4),
            last_data_sent_ms: 516,
            last_data_recv_ms: 516,
            ..TcpInfo::default()
        });
        let mut b = a.clone();
        if let Some(i) = b.tcp_info.as_mut() {
            i.last_data_sent_ms = 2520;
            i.last_data_recv_ms = 2520;
        }
        let w = window_of(&a, &b, 2004);
        assert!(!w.moving);
        assert_eq!(w.bytes_received, Some(0));
        assert_eq!(w.bytes_acked, Some(0));
        assert_eq!(w.segs_in, Some(0));
        assert_eq!(w.retrans, Some(0));
        assert_eq!(w.last_data_recv_moved, Some(false));
        assert_eq!(w.last_data_sent_moved, Some(false));
        assert_eq!(w.state_change, None);
    }

    #[test]
    fn moving_connection_counts_bytes_and_wrapped_segments() {
        let a = tcp(TcpInfo {
            bytes_acked: Some(1_001),
            bytes_received: Some(1_000),
            segs_in: Some(u32::MAX - 1),
            segs_out: Some(10),
            total_retrans: 2,
            last_data_recv_ms: 3,
            ..TcpInfo::default()
        });
        let mut b = tcp(TcpInfo {
            bytes_acked: Some(9_001),
            bytes_received: Some(9_000),
            segs_in: Some(3),
            segs_out: Some(30),
            total_retrans: 3,
            last_data_recv_ms: 1,
            unacked: 1,
            ..TcpInfo::default()
        });
        b.state = "CLOSE-WAIT".into();
        let w = window_of(&a, &b, 2000);
        assert!(w.moving);
        assert_eq!(w.bytes_received, Some(8_000));
        assert_eq!(w.bytes_acked, Some(8_000));
        assert_eq!(w.segs_in, Some(5));
        assert_eq!(w.segs_out, Some(20));
        assert_eq!(w.retrans, Some(1));
        assert_eq!((w.unacked_first, w.unacked_last), (Some(0), Some(1)));
        assert_eq!(w.last_data_recv_moved, Some(true));
        assert_eq!(
            w.state_change,
            Some(StateChange {
                from: "ESTAB".into(),
                to: "CLOSE-WAIT".into()
            })
        );
    }

    #[test]
    fn old_kernel_without_byte_counters_uses_the_ages() {
        // A 104-byte struct tcp_info (Linux 3.x): no bytes_*, no data_segs_*.
        let a = tcp(TcpInfo {
            last_data_recv_ms: 4000,
            last_data_sent_ms: 4000,
            ..TcpInfo::default()
        });
        let mut b = a.clone();
        if let Some(i) = b.tcp_info.as_mut() {
            i.last_data_recv_ms = 6010;
            i.last_data_sent_ms = 6010;
        }
        let w = window_of(&a, &b, 2000);
        assert!(!w.moving, "aged by the window: nothing moved");
        assert_eq!(w.bytes_received, None);
        if let Some(i) = b.tcp_info.as_mut() {
            i.last_data_recv_ms = 200;
        }
        let w = window_of(&a, &b, 2000);
        assert!(w.moving);
        assert_eq!(w.last_data_recv_moved, Some(true));
        assert_eq!(w.last_data_sent_moved, Some(false));
    }

    fn entry(inode: u64, state: &str, received: u64) -> InetEntry {
        InetEntry {
            inode,
            family: AF_INET,
            protocol: IPPROTO_TCP,
            socket: InetSocket {
                state: state.into(),
                tcp_info: Some(Box::new(TcpInfo {
                    bytes_received: Some(received),
                    bytes_acked: Some(1),
                    ..TcpInfo::default()
                })),
                ..InetSocket::default()
            },
            local_addr: ([127, 0, 0, 1], 40000).into(),
            peer_addr: ([127, 0, 0, 1], 8080).into(),
            undecoded: Vec::new(),
        }
    }

    fn socket(inode: u64) -> Socket {
        let mut s = Socket {
            inode,
            fds: vec![inode as i32],
            family: SocketFamily::Inet,
            detail: SocketDetail::Tcp(entry(inode, "ESTAB", 0).socket),
            source: super::super::SOURCE_SOCK_DIAG.into(),
            not_found_reason: None,
            fds_changed: vec![],
        };
        if let SocketDetail::Tcp(i) = &mut s.detail {
            i.peer.service = Some("eforward".into());
            i.accepted = Some(false);
        }
        s
    }

    fn sampler(inodes: &[u64]) -> ConnWindow {
        ConnWindow {
            runner: Some(Runner::Here),
            wanted: Arc::new(inodes.iter().copied().collect()),
            exact: Arc::new(Vec::new()),
            kinds: Arc::new(vec![(AF_INET, IPPROTO_TCP)]),
            deadline: Deadline::after(Duration::from_secs(5)),
            per_look: true,
            dumps: 0,
            last_complete: None,
            last_missing: None,
            tracks: HashMap::new(),
            gaps: Vec::new(),
            first_dump_at: None,
        }
    }

    fn dump_of(entries: Vec<InetEntry>) -> InetDump {
        InetDump {
            entries,
            ..InetDump::default()
        }
    }

    #[test]
    fn looks_update_sockets_and_mark_the_closed_ones() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 1 moves at every look; 2 is closed by the peer then gone; 3 was gone from the start.
        let mut w = sampler(&[1, 2, 3]);
        w.record(
            dump_of(vec![entry(1, "ESTAB", 0), entry(2, "ESTAB", 5)]),
            at(0),
            false,
        );
        w.record(
            dump_of(vec![entry(1, "ESTAB", 100), entry(2, "CLOSE-WAIT", 5)]),
            at(150),
            false,
        );
        w.record(dump_of(vec![entry(1, "ESTAB", 300)]), at(2000), true);
        let mut sockets = vec![socket(1), socket(2), socket(3)];
        let mut gaps = Vec::new();
        w.apply(&mut sockets, &mut gaps);
        assert!(gaps.is_empty(), "{gaps:?}");
        let inet = |s: &Socket| match &s.detail {
            SocketDetail::Tcp(i) => i.clone(),
            _ => panic!("tcp"),
        };
        let one = inet(&sockets[0]);
        let w1 = one.window.as_ref().expect("window");
        assert_eq!(
            one.tcp_info.as_ref().and_then(|t| t.bytes_received),
            Some(300),
            "last look's values"
        );
        assert_eq!(one.peer.service.as_deref(), Some("eforward"), "names kept");
        assert_eq!(one.accepted, Some(false), "the listeners' answer kept");
        assert_eq!((w1.duration_ms, w1.looks, w1.looks_moving), (2000, 3, 2));
        assert_eq!(w1.bytes_received, Some(300));
        assert!(w1.moving && !w1.closed_during_window);
        // Every look kept, for the page's timeline, timed from the first dump.
        let seen: Vec<(u64, Option<u64>)> = w1
            .samples
            .iter()
            .map(|s| (s.at_ms, s.bytes_received))
            .collect();
        assert_eq!(seen, [(0, Some(0)), (150, Some(100)), (2000, Some(300))]);

        let two = inet(&sockets[1]);
        let w2 = two.window.as_ref().expect("window");
        assert!(w2.closed_during_window, "{w2:?}");
        assert_eq!(two.state.as_str(), "CLOSE-WAIT", "as last seen");
        assert_eq!(w2.duration_ms, 150);
        assert_eq!(
            w2.state_change
                .as_ref()
                .map(|c| (c.from.as_str(), c.to.as_str())),
            Some(("ESTAB", "CLOSE-WAIT"))
        );

        let three = inet(&sockets[2]);
        let w3 = three.window.as_ref().expect("window");
        assert!(w3.closed_during_window);
        assert_eq!(w3.looks, 0);
    }

    #[test]
    fn failed_last_look_keeps_earlier_values_and_says_so() {
        let t0 = Instant::now();
        let mut w = sampler(&[1]);
        w.record(dump_of(vec![entry(1, "ESTAB", 0)]), t0, false);
        let failed = InetDump {
            failures: vec![ReadError::errno(
                "inet_diag dump (family 2, protocol 6)",
                nix::errno::Errno::EINTR,
            )],
            ..InetDump::default()
        };
        w.record(failed, t0 + Duration::from_millis(2000), true);
        let mut sockets = vec![socket(1)];
        let mut gaps = Vec::new();
        w.apply(&mut sockets, &mut gaps);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0].detail.contains("EINTR"), "{gaps:?}");
        assert!(gaps[0].detail.contains("earlier look"), "{gaps:?}");
        let SocketDetail::Tcp(i) = &sockets[0].detail else {
            panic!("tcp")
        };
        let win = i.window.as_ref().expect("window");
        assert!(!win.closed_during_window, "a failed dump proves no closing");
        assert_eq!(win.looks, 1);
    }

    #[test]
    fn zero_window_is_inactive() {
        let opts = Options {
            window: Duration::ZERO,
            ..Options::default()
        };
        let root = ProcRoot::default();
        let w = ConnWindow::new(&root, 1, &[socket(1)], &Process::default(), &opts);
        assert!(w.runner.is_none());
        let mut sockets = vec![socket(1)];
        let mut gaps = Vec::new();
        w.apply(&mut sockets, &mut gaps);
        let SocketDetail::Tcp(i) = &sockets[0].detail else {
            panic!("tcp")
        };
        assert!(i.window.is_none() && gaps.is_empty());
    }

    #[test]
    fn inode_read_before_parsing_matches_the_parser() {
        let path = format!(
            "{}/../../tests/fixtures/netlink/inet_diag_msg-tcp-linux-6.18.hex",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("fixture");
        let hex = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .expect("hex line");
        let msg: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        let parsed = inet_diag::parse(IPPROTO_TCP, &msg).expect("parses");
        assert_eq!(inet_diag::inode_of(&msg), Some(parsed.inode));
        assert_eq!(inet_diag::inode_of(&msg[..40]), None);
    }

    #[test]
    fn udp_moves_only_by_its_queues() {
        let a = InetSocket {
            state: "ESTAB".into(),
            ..InetSocket::default()
        };
        let mut b = a.clone();
        assert!(!window_of(&a, &b, 2000).moving);
        b.recv_q = 768;
        let w = window_of(&a, &b, 2000);
        assert!(w.moving);
        assert_eq!(w.bytes_received, None);
        assert_eq!(w.recv_q_first, 0);
    }
}
