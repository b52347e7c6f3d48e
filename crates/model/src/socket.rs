//! Sockets, as NETLINK_SOCK_DIAG reports them in the target's network namespace.

use serde::{Deserialize, Serialize};

use crate::Text;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Socket {
    pub inode: u64,
    /// The target's fds that refer to this socket.
    #[serde(default)]
    pub fds: Vec<i32>,
    pub family: SocketFamily,
    pub detail: SocketDetail,
    /// Where the facts came from: "sock_diag", "/proc/net" (fallback), or "none".
    #[serde(default)]
    pub source: String,
    /// Set when no diag dump returned this socket: the likely reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found_reason: Option<String>,
    /// fds that referred to this socket when the fds were listed but to something else (or
    /// nothing) when read again right after the socket dump: the socket was closed or replaced
    /// in between, so these fds no longer mean this connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fds_changed: Vec<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SocketFamily {
    Inet,
    Inet6,
    Unix,
    Netlink,
    Packet,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SocketDetail {
    Tcp(InetSocket),
    Udp(InetSocket),
    Unix(UnixSocket),
    Netlink(NetlinkSocket),
    Packet(PacketSocket),
    /// Not found in any diag dump; see `Socket::not_found_reason`.
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Endpoint {
    /// Textual address, e.g. "10.0.130.71" or "::1".
    pub addr: String,
    pub port: u16,
    /// Service name from /etc/services, e.g. "eforward".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.addr.contains(':') {
            write!(f, "[{}]:{}", self.addr, self.port)
        } else {
            write!(f, "{}:{}", self.addr, self.port)
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct InetSocket {
    /// ss's vocabulary: "ESTAB", "SYN-SENT", "LISTEN", "CLOSE-WAIT", "UNCONN", ...
    pub state: String,
    pub local: Endpoint,
    pub peer: Endpoint,
    /// Bytes queued to read (ESTAB) or accept backlog (LISTEN).
    pub recv_q: u32,
    /// Bytes not yet acknowledged by the peer (ESTAB) or backlog limit (LISTEN).
    pub send_q: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer: Option<SocketTimer>,
    /// Owning uid as the kernel reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_info: Option<Box<TcpInfo>>,
    /// Congestion control, e.g. "cubic".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub congestion: Option<String>,
    /// skmem: receive/send buffer use and limits, as ss prints them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmem_alloc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcvbuf: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wmem_alloc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sndbuf: Option<u32>,
    /// How the socket changed over the sampling window (`--window`): set when the window had
    /// more than one look. The fields above are then from the window's last look, the moment
    /// the threads were last read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Box<ConnectionWindow>>,
    /// The socket at the other end, when the peer is on this host in the same network
    /// namespace (loopback, or an address of this host): its queues and who holds it. Read
    /// once, before the sampling window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_peer: Option<Box<LocalPeer>>,
    /// For a connection: whether a TCP socket of its network namespace listens on its local
    /// port (whichever process holds it: a server's workers often do not), so that it was
    /// accepted rather than opened with connect(). Absent when the namespace's listeners are
    /// not known (the dump failed, or an older hangscope; since 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
}

/// The other end of a TCP connection whose peer is on this host, found with an exact
/// sock_diag lookup of the reversed address pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LocalPeer {
    /// Its inode; 0 when no process holds it yet: a connection the server has not accepted.
    pub inode: u64,
    /// ss's vocabulary, e.g. "ESTAB".
    pub state: String,
    /// Bytes it has received and its process has not read.
    pub recv_q: u32,
    /// Bytes it has sent that this end has not acknowledged.
    pub send_q: u32,
    /// Who holds it, when that could be resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<PeerHolder>,
    /// Why it has no holder, e.g. "not accepted yet".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
    /// For a connection not accepted yet: the socket listening on its port, with its accept
    /// queue as Recv-Q and its backlog as Send-Q, and who holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<Box<LocalPeer>>,
    /// Its struct tcp_info, read with its queues: its byte counters and last-data ages say
    /// what it received, read and sent, from its side (since 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_info: Option<Box<TcpInfo>>,
}

/// A process and fd that hold a socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PeerHolder {
    pub pid: i32,
    pub name: Text,
    pub fd: i32,
    /// What its threads were in, when a thread of the target waits on this connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<PeerThreads>,
    /// The TCP connections it opened itself (ESTAB, from a port it does not listen on), read
    /// with their tcp_info when a thread of the target waits on this connection: where a proxy
    /// forwards the request (since 1.5). At most 8, those whose last data went out closest to
    /// this connection's first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub opened: Vec<Socket>,
}

/// What the threads of the process at the other end were in, at one look after the window:
/// which of them wait on its end of the connection, and where the others are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PeerThreads {
    /// Threads read.
    pub count: u32,
    /// Those that wait on the holder's fd.
    pub on_fd: Vec<PeerThread>,
    /// The calls the others are in, most common first, e.g. "futex ×10", "epoll_wait".
    pub elsewhere: Vec<String>,
    /// Of the others, those not parked on a futex with no owner (a condition variable, an idle
    /// pool's queue), with their calls: where what should answer may be instead, e.g. a main
    /// thread in clock_nanosleep (since 1.5). At most 4.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub busy: Vec<PeerThread>,
    /// The process's state letter, e.g. "S", or "T" when a signal stopped it (since 1.4).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// Its tracer, when one is attached (since 1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracer: Option<crate::Tracer>,
    /// The cgroup freezer holding it (since 1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freezer: Option<crate::Freezer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PeerThread {
    pub tid: i32,
    pub name: Text,
    /// The call as strace shows it, e.g. "read(7, 0x7f.., 4096)".
    pub call: String,
    /// The syscall's name, e.g. "read", "epoll_wait".
    pub syscall: String,
    /// The events it waits for on the fd (poll, epoll), e.g. ["POLLIN"]; empty for a read or
    /// write, whose direction is its name.
    pub events: Vec<String>,
    /// How many fds the call waits on, this one included (since 1.5): 1 for a read, a recv or
    /// a poll on this fd alone; more for an event loop (epoll_wait, poll, select) watching it
    /// among others; 0 when not known (an older document, or an epoll fd whose watch list was
    /// not read).
    #[serde(skip_serializing_if = "crate::is_zero")]
    pub among: u32,
}

/// One TCP or UDP socket over the sampling window: the counters' change between the first and
/// the last dump that returned it (last minus first), read with NETLINK_SOCK_DIAG at the looks
/// of the window. Counters the kernel did not send (an older struct tcp_info, or UDP) are
/// `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ConnectionWindow {
    /// Time between the first and the last dump that returned the socket.
    pub duration_ms: u64,
    /// Dumps that returned the socket: every look of the window, or only the first and the
    /// last when the namespace holds so many sockets that a dump per look would cost too much.
    pub looks: u32,
    /// Of the dumps after the first, those in which data moved since the previous one.
    pub looks_moving: u32,
    /// tcp_info bytes_sent, bytes_acked, bytes_received: change over the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// tcp_info segs_in, segs_out (every segment, pure ACKs and keepalives included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_in: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_out: Option<u32>,
    /// tcp_info total_retrans: retransmitted segments over the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrans: Option<u32>,
    /// tcp_info unacked (segments in flight) at the first and at the last look.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unacked_first: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unacked_last: Option<u32>,
    /// Recv-Q and Send-Q at the first look (the socket's own fields are the last look's).
    pub recv_q_first: u32,
    pub send_q_first: u32,
    /// Whether data arrived / was sent during the window: tcp_info's last_data_recv /
    /// last_data_sent age restarted between the first and the last look.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_data_recv_moved: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_data_sent_moved: Option<bool>,
    /// The state at the first look, when it differs from the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_change: Option<StateChange>,
    /// The socket was in the first dump and not in the last: closed (or in TIME-WAIT, which
    /// has no inode) during the window. The socket's fields are from the last dump that had it.
    pub closed_during_window: bool,
    /// Data moved over the window: bytes (or data segments, or the last-data ages when the
    /// kernel has no byte counters) changed; for UDP, a queue changed.
    pub moving: bool,
    /// Each dump of the window that returned the connection, oldest first, for a timeline
    /// (since 1.6); empty when the target has more than 256 TCP/UDP sockets or the window
    /// dumped only at its first and last look.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<ConnectionLook>,
}

/// A TCP connection at one look of the window, as tcp_info gave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ConnectionLook {
    /// Milliseconds since the window's first dump.
    pub at_ms: u64,
    /// Counters since the connection began (not since the window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    pub unacked: u32,
    pub retrans: u32,
    pub rtt_us: u32,
    /// Age of the last data received, milliseconds.
    pub last_data_recv_ms: u32,
    pub recv_q: u32,
    pub send_q: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct StateChange {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SocketTimer {
    pub kind: TimerKind,
    /// Time to expiry, milliseconds.
    pub expires_ms: u32,
    /// Retransmits or probes sent so far.
    pub retrans: u8,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    #[default]
    Off,
    /// Retransmit timer ("on" in ss).
    On,
    Keepalive,
    TimeWait,
    /// Zero-window probe timer.
    Persist,
    #[serde(other)]
    Unknown,
}

/// struct tcp_info (include/uapi/linux/tcp.h), decoded by length: fields the kernel did not
/// send are `None`. Times are milliseconds unless the name says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TcpInfo {
    /// Length of the attribute as received, in bytes.
    pub len: usize,
    pub state: u8,
    pub ca_state: u8,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub rto_us: u32,
    pub ato_us: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub fackets: u32,
    /// Time since the last data sent, received, and ACK received.
    pub last_data_sent_ms: u32,
    pub last_ack_sent_ms: u32,
    pub last_data_recv_ms: u32,
    pub last_ack_recv_ms: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_rtt_us: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing_rate: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pacing_rate: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_out: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_in: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notsent_bytes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rtt_us: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_in: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_out: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_rate: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_time_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rwnd_limited_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sndbuf_limited_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_ce: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_retrans: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dsack_dups: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reord_seen: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_ooopack: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snd_wnd: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_wnd: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehash: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto_recoveries: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto_time: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct UnixSocket {
    /// "STREAM", "DGRAM", "SEQPACKET".
    pub sock_type: String,
    /// ss's vocabulary: "ESTAB", "LISTEN", "UNCONN", ...
    pub state: String,
    /// Bound path; abstract names start with "@".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    pub recv_q: u32,
    pub send_q: u32,
    /// Inode of the peer socket, 0 when unconnected.
    pub peer_inode: u64,
    /// Who holds the peer socket, when it could be resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Box<UnixPeer>>,
    /// Why a connected socket's peer has no holder, e.g. "held by no process visible here".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_unresolved: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct UnixPeer {
    pub pid: i32,
    pub name: Text,
    pub fd: i32,
    /// The peer's bound path, if any (e.g. "/run/systemd/journal/stdout").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    /// What its threads were in, when a thread of the target waits on this socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<PeerThreads>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct NetlinkSocket {
    /// NETLINK_ROUTE = 0, NETLINK_SOCK_DIAG = 4, ...; the name when known.
    pub protocol: u8,
    pub protocol_name: String,
    pub portid: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PacketSocket {
    pub sock_type: String,
    /// Ethernet protocol number.
    pub protocol: u16,
    pub ifindex: Option<i32>,
}
