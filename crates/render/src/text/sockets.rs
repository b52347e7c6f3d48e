//! The SOCKETS section: one line per socket in ss's vocabulary, grouped by the host at the
//! other end; the TCP_INFO detail under each TCP line when verbose (always in JSON).

use std::fmt::Write;

use hangscope_model::{
    Endpoint, InetSocket, LocalPeer, PeerEnd, Snapshot, Socket, SocketDetail, SocketTimer, TcpInfo,
    TcpState, TimerKind,
};

use super::Style;
use crate::table::Table;

/// Where a socket is listed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Connected to this host (address as printed).
    Peer(String),
    Listening,
    Unix,
    Other,
    NotFound,
}

impl Group {
    fn title(&self) -> String {
        match self {
            Group::Peer(h) => format!("to {h}"),
            Group::Listening => "listening or unconnected".into(),
            Group::Unix => "unix".into(),
            Group::Other => "netlink and packet".into(),
            Group::NotFound => "not found in any socket table".into(),
        }
    }
}

fn group_of(s: &Socket) -> Group {
    match &s.detail {
        SocketDetail::Tcp(i) | SocketDetail::Udp(i) => {
            if i.peer.port == 0 || i.state == TcpState::Listen {
                Group::Listening
            } else {
                Group::Peer(i.peer.addr.clone())
            }
        }
        SocketDetail::Unix(_) => Group::Unix,
        SocketDetail::Netlink(_) | SocketDetail::Packet(_) => Group::Other,
        SocketDetail::Unknown => Group::NotFound,
    }
}

pub(super) fn sockets(out: &mut String, snap: &Snapshot, st: &Style, verbose: bool) {
    if snap.sockets.is_empty() {
        return;
    }
    // Groups in order of first appearance (sockets are sorted by fd), peers first.
    let mut groups: Vec<(Group, Vec<&Socket>)> = Vec::new();
    for s in &snap.sockets {
        let g = group_of(s);
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(s),
            None => groups.push((g, vec![s])),
        }
    }
    groups.sort_by_key(|(g, _)| match g {
        Group::Peer(_) => 0,
        Group::Listening => 1,
        Group::Unix => 2,
        Group::Other => 3,
        Group::NotFound => 4,
    });
    let _ = writeln!(out, "{}", st.bold("SOCKETS"));
    let notable = super::notable_fds(snap);
    for (g, list) in groups {
        let _ = writeln!(out, "  {}", st.bold(&st.show(&g.title())));
        let (list, rest) = if verbose {
            (list, Vec::new())
        } else {
            cap(list, &notable)
        };
        let mut t = Table::new(&[
            "FD", "NETID", "STATE", "RECV-Q", "SEND-Q", "LOCAL", "PEER", "DETAIL",
        ])
        .right(3)
        .right(4);
        // Verbose TCP_INFO lines go under the row they belong to: the group's rows are
        // aligned as one table, then the detail lines are interleaved.
        let mut pending: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for s in list {
            // Names and paths are escaped where they are put in, the rest (kernel words) with
            // the cell.
            let row: Vec<String> = row(s, st).iter().map(|c| st.show(c)).collect();
            let mut info = Vec::new();
            if verbose {
                info.extend(tcp_detail(s));
                info.extend(window_detail(s));
            }
            pending.push((row, info));
        }
        if pending.iter().any(|(_, i)| !i.is_empty()) {
            // Align all rows of the group together, then interleave the detail lines.
            for (r, _) in &pending {
                t.push(r.clone());
            }
            let rendered = t.render(4, st.header());
            let mut lines = rendered.lines();
            if let Some(h) = lines.next() {
                let _ = writeln!(out, "{h}");
            }
            for ((_, info), line) in pending.iter().zip(lines) {
                let _ = writeln!(out, "{line}");
                for i in info {
                    let _ = writeln!(out, "{}", st.dim(&format!("{:6}{}", "", st.show(i))));
                }
            }
        } else {
            for (r, _) in pending {
                t.push(r);
            }
            out.push_str(&t.render(4, st.header()));
        }
        if !rest.is_empty() {
            let _ = writeln!(out, "    {}", st.dim(&st.show(&summarise(&rest))));
        }
    }
    out.push('\n');
}

/// Rows shown per group before the rest is summarised (all with -v).
const MAX_ROWS: usize = 30;

/// Keeps what a reader must see — sockets a thread waits on, queues that are not empty, states
/// other than the common ESTAB / LISTEN / UNCONN, sockets not found — then fills up to
/// `MAX_ROWS` in fd order.
fn cap<'a>(
    list: Vec<&'a Socket>,
    notable: &std::collections::HashSet<i32>,
) -> (Vec<&'a Socket>, Vec<&'a Socket>) {
    let must = |s: &&Socket| {
        s.fds.iter().any(|fd| notable.contains(fd))
            || !s.fds_changed.is_empty()
            || match &s.detail {
                SocketDetail::Tcp(i) | SocketDetail::Udp(i) => {
                    ((i.recv_q > 0 || i.send_q > 0) && i.state != TcpState::Listen)
                        || !matches!(
                            i.state,
                            TcpState::Established | TcpState::Listen | TcpState::Unconnected
                        )
                }
                SocketDetail::Unix(u) => u.recv_q > 0 || u.send_q > 0,
                SocketDetail::Unknown => true,
                _ => false,
            }
    };
    super::keep_rows(list, MAX_ROWS, must)
}

/// "… 970 more: 970 ESTAB, most to :38803 (485) (-v shows all)".
fn summarise(rest: &[&Socket]) -> String {
    let mut states: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut ports: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();
    for s in rest {
        let state = match &s.detail {
            SocketDetail::Tcp(i) | SocketDetail::Udp(i) => {
                *ports.entry(i.peer.port).or_default() += 1;
                i.state.to_string()
            }
            SocketDetail::Unix(u) => u.state.to_string(),
            _ => "other".into(),
        };
        *states.entry(state).or_default() += 1;
    }
    let mut by_state: Vec<(String, usize)> = states.into_iter().collect();
    by_state.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let states: Vec<String> = by_state.iter().map(|(st, n)| format!("{n} {st}")).collect();
    let top_port = ports
        .into_iter()
        .filter(|(p, _)| *p != 0)
        .max_by_key(|(_, n)| *n)
        .filter(|(_, n)| *n > 1)
        .map(|(p, n)| format!(", most to :{p} ({n})"))
        .unwrap_or_default();
    format!(
        "… {} more: {}{top_port} (-v shows all)",
        rest.len(),
        states.join(", ")
    )
}

fn row(s: &Socket, st: &Style) -> Vec<String> {
    let fds = s
        .fds
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut notes = Vec::new();
    if !s.fds_changed.is_empty() {
        let f: Vec<String> = s.fds_changed.iter().map(|f| f.to_string()).collect();
        notes.push(format!("fd {} changed since listed", f.join(",")));
    }
    if s.source == "/proc/net" {
        notes.push("from /proc/net".into());
    }
    let mut r = match &s.detail {
        SocketDetail::Tcp(i) => inet_row("tcp", i, st),
        SocketDetail::Udp(i) => inet_row("udp", i, st),
        SocketDetail::Unix(u) => {
            let netid = match u.sock_type.as_str() {
                "STREAM" => "u_str",
                "DGRAM" => "u_dgr",
                "SEQPACKET" => "u_seq",
                _ => "u_???",
            };
            let peer = match (&u.peer, &u.peer_unresolved) {
                (Some(p), _) => {
                    let mut s = format!("pid {} ({}) fd {}", p.pid, st.show(&p.name), p.fd);
                    if let Some(path) = &p.path {
                        s.push_str(&format!(" {}", st.show(path)));
                    }
                    s
                }
                (None, Some(_)) => format!("socket:[{}] ?", u.peer_inode),
                (None, None) => "*".into(),
            };
            if let Some(why) = &u.peer_unresolved {
                notes.push(why.clone());
            }
            vec![
                netid.into(),
                u.state.to_string(),
                u.recv_q.to_string(),
                u.send_q.to_string(),
                u.path
                    .as_ref()
                    .map(|p| st.show(p))
                    .unwrap_or_else(|| "*".into()),
                peer,
                String::new(),
            ]
        }
        SocketDetail::Netlink(n) => vec![
            "nl".into(),
            "UNCONN".into(),
            String::new(),
            String::new(),
            format!("{}:{}", n.protocol_name, n.portid),
            "*".into(),
            String::new(),
        ],
        SocketDetail::Packet(p) => vec![
            match p.sock_type.as_str() {
                "DGRAM" => "p_dgr",
                _ => "p_raw",
            }
            .into(),
            "UNCONN".into(),
            String::new(),
            String::new(),
            format!(
                "proto 0x{:04x}{}",
                p.protocol,
                p.ifindex
                    .map(|i| format!(" ifindex {i}"))
                    .unwrap_or_default()
            ),
            "*".into(),
            String::new(),
        ],
        SocketDetail::Unknown => {
            if let Some(why) = &s.not_found_reason {
                notes.push(why.clone());
            }
            vec![
                "?".into(),
                "-".into(),
                String::new(),
                String::new(),
                format!("socket:[{}]", s.inode),
                String::new(),
                String::new(),
            ]
        }
    };
    if let Some(last) = r.last_mut() {
        let mut d = std::mem::take(last);
        for n in notes {
            if !d.is_empty() {
                d.push_str("  ");
            }
            d.push_str(&format!("[{n}]"));
        }
        *last = d;
    }
    let mut full = vec![fds];
    full.append(&mut r);
    full
}

fn inet_row(netid: &str, i: &InetSocket, st: &Style) -> Vec<String> {
    let peer = if i.peer.port == 0 {
        "*".to_string()
    } else {
        endpoint(&i.peer)
    };
    let mut detail: Vec<String> = i.timer.as_ref().map(timer).into_iter().collect();
    detail.extend(i.local_peer.as_deref().map(|p| other_end(p, st)));
    detail.extend(window_note(netid, i));
    vec![
        netid.into(),
        i.state.to_string(),
        i.recv_q.to_string(),
        i.send_q.to_string(),
        endpoint(&i.local),
        peer,
        detail.join("  "),
    ]
}

/// The other end on this host, as the unix rows name theirs: "peer pid 4242 (metad) fd 7",
/// with what it has not read, or why it has no holder.
fn other_end(p: &LocalPeer, st: &Style) -> String {
    let name = |h: &hangscope_model::PeerHolder| st.show(&h.name);
    match &p.end {
        Some(PeerEnd::Held { holder: h }) if p.state == TcpState::Listen => format!(
            "listener pid {} ({}) fd {} queue {}/{}",
            h.pid,
            name(h),
            h.fd,
            p.recv_q,
            p.send_q
        ),
        Some(PeerEnd::Held { holder: h }) if p.recv_q > 0 => format!(
            "peer pid {} ({}) fd {} Recv-Q {}",
            h.pid,
            name(h),
            h.fd,
            p.recv_q
        ),
        Some(PeerEnd::Held { holder: h }) => {
            format!("peer pid {} ({}) fd {}", h.pid, name(h), h.fd)
        }
        Some(PeerEnd::NotAccepted { .. }) => "peer not accepted yet".into(),
        Some(PeerEnd::Unheld { .. }) | None => format!("peer socket:[{}] ?", p.inode),
    }
}

/// The connection over the sampling window, in a few words: "+0 B in, +34 B out over 2.0 s",
/// "idle 2.0 s", "closed during the window", "ESTAB→CLOSE-WAIT". Nothing for listeners and
/// unconnected sockets, nor for a UDP socket whose queues did not move (its dumps carry no
/// counters, so "idle" could not be told from "not measured").
fn window_note(netid: &str, i: &InetSocket) -> Option<String> {
    let w = i.window.as_ref()?;
    if w.closed_during_window {
        return Some("closed during the window".into());
    }
    if i.state == TcpState::Listen || (i.peer.port == 0 && w.state_change.is_none()) {
        return None;
    }
    let dur = crate::human_ms(w.duration_ms as f64);
    let mut parts = Vec::new();
    if let Some(c) = &w.state_change {
        parts.push(format!("{}→{}", c.from, c.to));
    }
    let out = w.bytes_sent.or(w.bytes_acked);
    match (w.bytes_received, out) {
        (Some(r), Some(o)) if r > 0 || o > 0 => parts.push(format!(
            "+{} in, +{} out over {dur}",
            crate::human_bytes(r),
            crate::human_bytes(o)
        )),
        _ if w.moving => parts.push(format!("moving over {dur}")),
        _ if netid == "tcp" => parts.push(format!("idle {dur}")),
        _ => {}
    }
    if let Some(r) = w.retrans.filter(|&r| r > 0) {
        parts.push(format!("{r} retrans"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The window's deltas, verbose: `window 2.0 s, 15 looks, moving in 14: bytes_sent:+34 ...`.
fn window_detail(s: &Socket) -> Option<String> {
    let (SocketDetail::Tcp(i) | SocketDetail::Udp(i)) = &s.detail else {
        return None;
    };
    let w = i.window.as_ref()?;
    let mut head = format!(
        "window {}, {} looks, moving in {}",
        crate::human_ms(w.duration_ms as f64),
        w.looks,
        w.looks_moving
    );
    if w.closed_during_window {
        head.push_str(", closed during it");
    }
    let mut d: Vec<String> = Vec::new();
    let mut delta = |name: &str, v: Option<u64>| {
        if let Some(v) = v {
            d.push(format!("{name}:+{v}"));
        }
    };
    delta("bytes_sent", w.bytes_sent);
    delta("bytes_acked", w.bytes_acked);
    delta("bytes_received", w.bytes_received);
    delta("segs_out", w.segs_out.map(u64::from));
    delta("segs_in", w.segs_in.map(u64::from));
    delta("retrans", w.retrans.map(u64::from));
    if let (Some(a), Some(b)) = (w.unacked_first, w.unacked_last) {
        d.push(format!("unacked:{a}→{b}"));
    }
    let moved = |m: bool| if m { "moved" } else { "still" };
    if let Some(m) = w.last_data_recv_moved {
        d.push(format!("lastrcv:{}", moved(m)));
    }
    if let Some(m) = w.last_data_sent_moved {
        d.push(format!("lastsnd:{}", moved(m)));
    }
    d.push(format!("Recv-Q:{}→{}", w.recv_q_first, i.recv_q));
    d.push(format!("Send-Q:{}→{}", w.send_q_first, i.send_q));
    if let Some(c) = &w.state_change {
        d.push(format!("state:{}→{}", c.from, c.to));
    }
    Some(format!("{head}: {}", d.join(" ")))
}

/// `127.0.0.1:2181 (eforward)`, as lsof names a well-known port.
fn endpoint(e: &Endpoint) -> String {
    match &e.service {
        Some(name) => format!("{e} ({name})"),
        None => e.to_string(),
    }
}

/// ss's timer column: `timer:(keepalive,325ms,0)`.
fn timer(t: &SocketTimer) -> String {
    let kind = match t.kind {
        TimerKind::Off => "off",
        TimerKind::On => "on",
        TimerKind::Keepalive => "keepalive",
        TimerKind::TimeWait => "timewait",
        TimerKind::Persist => "persist",
        TimerKind::Unknown => "unknown",
    };
    format!("timer:({kind},{},{})", ss_time(t.expires_ms), t.retrans)
}

/// ss's time format: 325ms, 2.1sec, 3min5sec.
fn ss_time(ms: u32) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}sec", f64::from(ms) / 1000.0)
    } else {
        format!("{}min{}sec", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A rate in bytes per second as ss prints it in bits: 32.8Gbps, 1.2Mbps, 800bps.
fn bits_per_s(bytes_per_s: u64) -> String {
    let b = bytes_per_s as f64 * 8.0;
    if b >= 1e9 {
        format!("{:.1}Gbps", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1}Mbps", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1}Kbps", b / 1e3)
    } else {
        format!("{b:.0}bps")
    }
}

/// The TCP_INFO line, in `ss -ti` words.
fn tcp_detail(s: &Socket) -> Option<String> {
    let SocketDetail::Tcp(i) = &s.detail else {
        return None;
    };
    if i.state == TcpState::Listen {
        return None; // a listener's tcp_info is all zeros but the backlog
    }
    let t: &TcpInfo = i.tcp_info.as_ref()?;
    let ms = |us: u32| {
        let v = f64::from(us) / 1000.0;
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v}")
        }
    };
    let mut w: Vec<String> = Vec::new();
    if let Some(c) = &i.congestion {
        w.push(c.clone());
    }
    w.push(format!("rtt:{}/{}", ms(t.rtt_us), ms(t.rttvar_us)));
    w.push(format!("rto:{}", ms(t.rto_us)));
    if t.ato_us > 0 {
        w.push(format!("ato:{}", ms(t.ato_us)));
    }
    if t.backoff > 0 {
        w.push(format!("backoff:{}", t.backoff));
    }
    w.push(format!("mss:{}", t.snd_mss));
    w.push(format!("cwnd:{}", t.snd_cwnd));
    if t.snd_ssthresh < 0xFFFF {
        w.push(format!("ssthresh:{}", t.snd_ssthresh));
    }
    let mut opt64 = |name: &str, v: Option<u64>| {
        if let Some(v) = v {
            w.push(format!("{name}:{v}"));
        }
    };
    opt64("bytes_sent", t.bytes_sent);
    opt64("bytes_retrans", t.bytes_retrans.filter(|&v| v > 0));
    opt64("bytes_acked", t.bytes_acked);
    opt64("bytes_received", t.bytes_received);
    if let (Some(o), Some(i)) = (t.segs_out, t.segs_in) {
        w.push(format!("segs_out:{o} segs_in:{i}"));
    }
    w.push(format!("lastsnd:{}", t.last_data_sent_ms));
    w.push(format!("lastrcv:{}", t.last_data_recv_ms));
    w.push(format!("lastack:{}", t.last_ack_recv_ms));
    w.push(format!("unacked:{}", t.unacked));
    w.push(format!("retrans:{}/{}", t.retransmits, t.total_retrans));
    if t.lost > 0 {
        w.push(format!("lost:{}", t.lost));
    }
    if let Some(r) = t.delivery_rate {
        w.push(format!("delivery_rate:{}", bits_per_s(r)));
    }
    let mut opt_us = |name: &str, v: Option<u64>| {
        if let Some(v) = v.filter(|&v| v > 0) {
            w.push(format!("{name}:{}ms", v / 1000));
        }
    };
    opt_us("busy", t.busy_time_us);
    opt_us("rwnd_limited", t.rwnd_limited_us);
    opt_us("sndbuf_limited", t.sndbuf_limited_us);
    w.push(format!("rcv_space:{}", t.rcv_space));
    if let Some(v) = t.snd_wnd {
        w.push(format!("snd_wnd:{v}"));
    }
    if let Some(v) = t.rcv_wnd {
        w.push(format!("rcv_wnd:{v}"));
    }
    if let (Some(r), Some(rb), Some(t_), Some(tb)) =
        (i.rmem_alloc, i.rcvbuf, i.wmem_alloc, i.sndbuf)
    {
        w.push(format!("skmem:(r{r},rb{rb},t{t_},tb{tb})"));
    }
    w.push(format!("tcp_info:{}B", t.len));
    Some(w.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{SocketFamily, UnixPeer, UnixSocket};

    fn tcp(fd: i32, state: &str, local: (&str, u16), peer: (&str, u16)) -> Socket {
        Socket {
            inode: 1000 + fd as u64,
            fds: vec![fd],
            family: SocketFamily::Inet,
            detail: SocketDetail::Tcp(InetSocket {
                state: state.into(),
                local: Endpoint {
                    addr: local.0.into(),
                    port: local.1,
                    service: None,
                },
                peer: Endpoint {
                    addr: peer.0.into(),
                    port: peer.1,
                    service: None,
                },
                ..InetSocket::default()
            }),
            source: "sock_diag".into(),
            not_found_reason: None,
            fds_changed: vec![],
        }
    }

    #[test]
    fn a_long_group_is_capped_but_keeps_queues_and_odd_states() {
        let mut snap = Snapshot::default();
        for fd in 10..110 {
            snap.sockets.push(tcp(
                fd,
                "ESTAB",
                ("10.0.0.1", 40000 + fd as u16),
                ("10.0.0.2", 10100),
            ));
        }
        if let SocketDetail::Tcp(i) = &mut snap.sockets[80].detail {
            i.recv_q = 4096;
        }
        if let SocketDetail::Tcp(i) = &mut snap.sockets[90].detail {
            i.state = "CLOSE-WAIT".into();
        }
        let mut out = String::new();
        sockets(&mut out, &snap, &Style::plain(), false);
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with("90 ") && l.contains(" 4096 ")),
            "{out}"
        );
        assert!(out.contains("CLOSE-WAIT"), "{out}");
        assert!(
            out.contains("… 70 more: 70 ESTAB, most to :10100 (70) (-v shows all)"),
            "{out}"
        );
        let mut all = String::new();
        sockets(&mut all, &snap, &Style::plain(), true);
        assert!(
            !all.contains("more:") && all.lines().any(|l| l.trim_start().starts_with("109 ")),
            "{all}"
        );
    }

    #[test]
    fn groups_by_peer_in_ss_words() {
        let mut snap = Snapshot::default();
        let mut a = tcp(12, "ESTAB", ("10.0.130.70", 53412), ("10.0.130.71", 2181));
        if let SocketDetail::Tcp(i) = &mut a.detail {
            i.peer.service = Some("eforward".into());
            i.send_q = 0;
            i.timer = Some(SocketTimer {
                kind: TimerKind::Keepalive,
                expires_ms: 325,
                retrans: 0,
            });
            i.tcp_info = Some(Box::new(TcpInfo {
                len: 200,
                rtt_us: 250,
                rttvar_us: 125,
                bytes_acked: Some(61),
                bytes_received: Some(0),
                ..TcpInfo::default()
            }));
        }
        let l = tcp(3, "LISTEN", ("0.0.0.0", 8080), ("0.0.0.0", 0));
        let u = Socket {
            inode: 77,
            fds: vec![5],
            family: SocketFamily::Unix,
            detail: SocketDetail::Unix(UnixSocket {
                sock_type: "STREAM".into(),
                state: "ESTAB".into(),
                peer_inode: 78,
                peer: Some(Box::new(UnixPeer {
                    pid: 4321,
                    name: "child".into(),
                    fd: 4,
                    path: None,
                    threads: None,
                })),
                ..UnixSocket::default()
            }),
            source: "sock_diag".into(),
            not_found_reason: None,
            fds_changed: vec![],
        };
        let unknown = Socket {
            inode: 99,
            fds: vec![9],
            family: SocketFamily::Other,
            detail: SocketDetail::Unknown,
            source: "none".into(),
            not_found_reason: Some("not yet bound".into()),
            fds_changed: vec![],
        };
        snap.sockets = vec![l, u, unknown, a];
        let st = Style::plain();
        let mut out = String::new();
        sockets(&mut out, &snap, &st, false);
        let to = out.find("  to 10.0.130.71").expect("peer group");
        let listen = out
            .find("  listening or unconnected")
            .expect("listen group");
        assert!(to < listen, "{out}");
        assert!(
            out.contains(
                "12  tcp    ESTAB       0       0  10.0.130.70:53412  10.0.130.71:2181 (eforward)  timer:(keepalive,325ms,0)"
            ),
            "{out}"
        );
        assert!(out.contains("0.0.0.0:8080  *"), "{out}");
        assert!(out.contains("pid 4321 (child) fd 4"), "{out}");
        assert!(out.contains("socket:[99]"), "{out}");
        assert!(out.contains("[not yet bound]"), "{out}");
        assert!(!out.contains("rtt:"), "TCP_INFO only when verbose: {out}");

        let mut v = String::new();
        sockets(&mut v, &snap, &st, true);
        assert!(v.contains("rtt:0.25/0.125"), "{v}");
        assert!(v.contains("bytes_acked:61 bytes_received:0"), "{v}");
        assert!(
            !v.contains("bytes_sent"),
            "absent on a 200-byte tcp_info: {v}"
        );
        assert!(v.contains("tcp_info:200B"), "{v}");
    }

    #[test]
    fn the_other_end_on_this_host_is_named_in_the_row() {
        use hangscope_model::PeerHolder;
        let with = |fd: i32, peer: LocalPeer| {
            let mut s = tcp(
                fd,
                "ESTAB",
                ("127.0.0.1", 40000),
                ("127.0.0.1", 9000 + fd as u16),
            );
            if let SocketDetail::Tcp(i) = &mut s.detail {
                i.local_peer = Some(Box::new(peer));
            }
            s
        };
        let holder = PeerHolder {
            pid: 4242,
            name: "metad".into(),
            fd: 7,
            threads: None,
            opened: vec![],
        };
        let snap = Snapshot {
            sockets: vec![
                with(
                    3,
                    LocalPeer {
                        inode: 70,
                        state: "ESTAB".into(),
                        end: Some(hangscope_model::PeerEnd::Held {
                            holder: holder.clone(),
                        }),
                        ..LocalPeer::default()
                    },
                ),
                with(
                    4,
                    LocalPeer {
                        inode: 71,
                        state: "ESTAB".into(),
                        recv_q: 512,
                        end: Some(hangscope_model::PeerEnd::Held { holder }),
                        ..LocalPeer::default()
                    },
                ),
                with(
                    5,
                    LocalPeer {
                        state: "ESTAB".into(),
                        end: Some(hangscope_model::PeerEnd::NotAccepted { listener: None }),
                        ..LocalPeer::default()
                    },
                ),
            ],
            ..Snapshot::default()
        };
        let mut out = String::new();
        sockets(&mut out, &snap, &Style::plain(), false);
        let line = |fd: &str| {
            out.lines()
                .find(|l| l.trim_start().starts_with(fd))
                .unwrap_or_default()
                .to_string()
        };
        assert!(line("3 ").ends_with("peer pid 4242 (metad) fd 7"), "{out}");
        assert!(
            line("4 ").ends_with("peer pid 4242 (metad) fd 7 Recv-Q 512"),
            "{out}"
        );
        assert!(line("5 ").ends_with("peer not accepted yet"), "{out}");
    }

    #[test]
    fn window_per_connection() {
        use hangscope_model::{ConnectionWindow, StateChange};
        let with = |fd: i32, w: ConnectionWindow| {
            let mut s = tcp(
                fd,
                "ESTAB",
                ("127.0.0.1", 40000 + fd as u16),
                ("127.0.0.1", 9000),
            );
            if let SocketDetail::Tcp(i) = &mut s.detail {
                i.tcp_info = Some(Box::default());
                i.window = Some(Box::new(w));
            }
            s
        };
        let silent = with(
            4,
            ConnectionWindow {
                duration_ms: 2004,
                looks: 15,
                bytes_sent: Some(0),
                bytes_acked: Some(0),
                bytes_received: Some(0),
                segs_in: Some(0),
                segs_out: Some(0),
                retrans: Some(0),
                unacked_first: Some(0),
                unacked_last: Some(0),
                last_data_recv_moved: Some(false),
                last_data_sent_moved: Some(false),
                ..ConnectionWindow::default()
            },
        );
        let busy = with(
            5,
            ConnectionWindow {
                duration_ms: 2000,
                looks: 15,
                looks_moving: 14,
                bytes_sent: Some(34),
                bytes_received: Some(2048),
                retrans: Some(2),
                moving: true,
                ..ConnectionWindow::default()
            },
        );
        let closing = with(
            6,
            ConnectionWindow {
                duration_ms: 2000,
                looks: 2,
                state_change: Some(StateChange {
                    from: "ESTAB".into(),
                    to: "CLOSE-WAIT".into(),
                }),
                ..ConnectionWindow::default()
            },
        );
        let closed = with(
            7,
            ConnectionWindow {
                closed_during_window: true,
                ..ConnectionWindow::default()
            },
        );
        let snap = Snapshot {
            sockets: vec![silent, busy, closing, closed],
            ..Snapshot::default()
        };
        let st = Style::plain();
        let mut out = String::new();
        sockets(&mut out, &snap, &st, false);
        assert!(out.contains("127.0.0.1:9000  idle 2.0 s"), "{out}");
        assert!(
            out.contains("+2.0 KiB in, +34 B out over 2.0 s, 2 retrans"),
            "{out}"
        );
        assert!(out.contains("ESTAB→CLOSE-WAIT, idle 2.0 s"), "{out}");
        assert!(out.contains("closed during the window"), "{out}");
        assert!(!out.contains("looks"), "deltas only when verbose: {out}");

        let mut v = String::new();
        sockets(&mut v, &snap, &st, true);
        assert!(
            v.contains(
                "window 2.0 s, 15 looks, moving in 0: bytes_sent:+0 bytes_acked:+0 \
                 bytes_received:+0 segs_out:+0 segs_in:+0 retrans:+0 unacked:0→0 lastrcv:still \
                 lastsnd:still Recv-Q:0→0 Send-Q:0→0"
            ),
            "{v}"
        );
        assert!(
            v.contains("window 2.0 s, 15 looks, moving in 14: bytes_sent:+34"),
            "{v}"
        );
        assert!(v.contains("state:ESTAB→CLOSE-WAIT"), "{v}");
    }

    #[test]
    fn ss_times() {
        assert_eq!(ss_time(325), "325ms");
        assert_eq!(ss_time(2100), "2.1sec");
        assert_eq!(ss_time(185_000), "3min5sec");
        assert_eq!(bits_per_s(4_096_000_000), "32.8Gbps");
        assert_eq!(bits_per_s(100), "800bps");
    }
}
