//! Sockets, as NETLINK_SOCK_DIAG reports them in the target's network namespace.

use serde::{Deserialize, Serialize};

use crate::Text;

/// A socket the target holds, as the diag dump of its network namespace gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Socket {
    /// The socket's inode, as the target's fds link to it (`socket:[INODE]`).
    pub inode: u64,
    /// The target's fds that refer to this socket.
    #[serde(default)]
    pub fds: Vec<i32>,
    /// The address family: `inet`, `inet6`, `unix`, `netlink`, `packet`, or `other`.
    pub family: SocketFamily,
    /// What the diag dump said of it, by `type`: `tcp`, `udp`, `unix`, `netlink`, `packet`, or
    /// `unknown` when no dump returned it.
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

/// What is known of a socket, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SocketDetail {
    /// A TCP socket, from NETLINK_SOCK_DIAG (or /proc/net/tcp, tcp6 as fallback).
    Tcp(InetSocket),
    /// A UDP socket, from NETLINK_SOCK_DIAG (or /proc/net/udp, udp6 as fallback).
    Udp(InetSocket),
    /// A unix socket, from NETLINK_SOCK_DIAG (or /proc/net/unix as fallback).
    Unix(UnixSocket),
    /// A netlink socket, from NETLINK_SOCK_DIAG (no fallback).
    Netlink(NetlinkSocket),
    /// A packet socket, from NETLINK_SOCK_DIAG (no fallback).
    Packet(PacketSocket),
    /// Not found in any diag dump; see `Socket::not_found_reason`.
    Unknown,
}

/// One end of an inet socket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Endpoint {
    /// Textual address, e.g. "10.0.130.71" or "::1".
    pub addr: String,
    /// The port, in host byte order; 0 for none (an unbound or unconnected end).
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

/// A socket's state in ss's vocabulary (the kernel's TCP_* numbers, which UDP and UNIX sockets
/// use too): serialized as ss prints it, e.g. "ESTAB", so documents before 1.6, where it was a
/// plain string, load unchanged. A name this version does not know reads as `UNKNOWN`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum TcpState {
    #[serde(rename = "ESTAB")]
    Established,
    #[serde(rename = "SYN-SENT")]
    SynSent,
    #[serde(rename = "SYN-RECV")]
    SynRecv,
    #[serde(rename = "FIN-WAIT-1")]
    FinWait1,
    #[serde(rename = "FIN-WAIT-2")]
    FinWait2,
    #[serde(rename = "TIME-WAIT")]
    TimeWait,
    /// TCP_CLOSE: a socket neither listening nor connected (UDP's usual state).
    #[serde(rename = "UNCONN")]
    Unconnected,
    #[serde(rename = "CLOSE-WAIT")]
    CloseWait,
    #[serde(rename = "LAST-ACK")]
    LastAck,
    #[serde(rename = "LISTEN")]
    Listen,
    #[serde(rename = "CLOSING")]
    Closing,
    /// A request socket: a connection whose handshake the listener has not completed.
    #[serde(rename = "NEW-SYN-RECV")]
    NewSynRecv,
    #[default]
    #[serde(rename = "UNKNOWN", other)]
    Unknown,
}

impl TcpState {
    /// From the kernel's number (include/net/tcp_states.h).
    pub fn from_kernel(n: u8) -> TcpState {
        match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Unconnected,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            _ => TcpState::Unknown,
        }
    }

    /// ss's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Unconnected => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW-SYN-RECV",
            TcpState::Unknown => "UNKNOWN",
        }
    }

    /// A connection the kernel completed or is completing at this end, which a listener may
    /// still hold in its accept queue.
    pub fn in_accept_queue(self) -> bool {
        // CLOSE-WAIT too: the client may close before the server accepts.
        matches!(
            self,
            TcpState::Established | TcpState::SynRecv | TcpState::NewSynRecv | TcpState::CloseWait
        )
    }
}

impl std::fmt::Display for TcpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ss's name to the state, for tests and fixtures written as text.
impl From<&str> for TcpState {
    fn from(s: &str) -> TcpState {
        (1..=12)
            .map(TcpState::from_kernel)
            .find(|t| t.as_str() == s)
            .unwrap_or_default()
    }
}

/// A TCP or UDP socket: its state, ends, queues, timer and tcp_info, as `ss -tuie` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct InetSocket {
    /// ss's vocabulary: "ESTAB", "SYN-SENT", "LISTEN", "CLOSE-WAIT", "UNCONN", ... (a string
    /// before 1.6, the same names: see `TcpState`).
    pub state: TcpState,
    /// This end's address and port.
    pub local: Endpoint,
    /// The other end's address and port; "0.0.0.0" (or "::") and 0 when not connected.
    pub peer: Endpoint,
    /// Bytes queued to read (ESTAB) or accept backlog (LISTEN).
    pub recv_q: u32,
    /// Bytes not yet acknowledged by the peer (ESTAB) or backlog limit (LISTEN).
    pub send_q: u32,
    /// The socket's pending timer (retransmit, keepalive, zero-window probe, TIME-WAIT), as ss's
    /// `timer:` shows it; absent when none runs or the dump did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer: Option<SocketTimer>,
    /// Owning uid as the kernel reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The kernel's struct tcp_info for a TCP socket (INET_DIAG_INFO); absent for UDP, a listener
    /// whose dump had none, or the /proc/net fallback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_info: Option<Box<TcpInfo>>,
    /// Congestion control, e.g. "cubic".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub congestion: Option<String>,
    /// skmem `r`: bytes of the receive buffer in use (as ss prints skmem).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmem_alloc: Option<u32>,
    /// skmem `rb`: the receive buffer's limit, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcvbuf: Option<u32>,
    /// skmem `t`: bytes of the send buffer in use (sent and not acknowledged, or not sent yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wmem_alloc: Option<u32>,
    /// skmem `tb`: the send buffer's limit, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sndbuf: Option<u32>,
    /// How the socket changed over the sampling window (`--window`): set when the window had
    /// more than one look. The fields above are then from the window's last look, the moment
    /// the threads were last read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Box<ConnectionWindow>>,
    /// The socket at the other end, when the peer is on this host in the same network
    /// namespace (loopback, or an address of this host): its queues and who holds it. Read
    /// once, before the sampling window (since 1.2).
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
/// sock_diag lookup of the reversed address pair (since 1.2, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, from = "LocalPeerRead")]
pub struct LocalPeer {
    /// Its inode; 0 when no process holds it yet: a connection the server has not accepted.
    pub inode: u64,
    /// ss's vocabulary, e.g. "ESTAB".
    pub state: TcpState,
    /// Bytes it has received and its process has not read.
    pub recv_q: u32,
    /// Bytes it has sent that this end has not acknowledged.
    pub send_q: u32,
    /// Who holds it, or why nobody does (since 1.6; before, `holder`, `unresolved` and
    /// `listener`, which still load). Absent when that was not looked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<PeerEnd>,
    /// Its struct tcp_info, read with its queues: its byte counters and last-data ages say
    /// what it received, read and sent, from its side (since 1.5). Since 1.11 absent when the
    /// other end is one of the process's own sockets: its tcp_info and queues are then that
    /// socket's, in `sockets` by `inode`, read at the same look as this end's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_info: Option<Box<TcpInfo>>,
}

/// Who holds the socket at the other end of a connection to this host (since 1.6, with its
/// fields).
// One per local peer, which `InetSocket` already boxes: the unboxed holder costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PeerEnd {
    /// A process holds it.
    Held {
        /// The process and fd that hold it.
        holder: PeerHolder,
    },
    /// No process holds it yet: the kernel completed (or is completing) the connection and it
    /// waits in the accept queue of the socket listening on its port. `listener` is that socket
    /// (its accept queue as Recv-Q, its backlog as Send-Q, and its own `end`), when found.
    NotAccepted {
        /// The socket listening on its port, when found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listener: Option<Box<LocalPeer>>,
    },
    /// No process visible here holds it.
    Unheld {
        /// Why, in words, e.g. "held by no process (TIME-WAIT)".
        reason: String,
    },
}

impl LocalPeer {
    /// Who holds it: `None` when nobody was looked for.
    pub fn holder(&self) -> Option<&PeerHolder> {
        match &self.end {
            Some(PeerEnd::Held { holder }) => Some(holder),
            _ => None,
        }
    }

    pub fn holder_mut(&mut self) -> Option<&mut PeerHolder> {
        match &mut self.end {
            Some(PeerEnd::Held { holder }) => Some(holder),
            _ => None,
        }
    }

    /// The process that should act on the connection: its holder, or for one not accepted
    /// yet, the listener's.
    pub fn acting_holder(&self) -> Option<&PeerHolder> {
        self.holder()
            .or_else(|| self.listener().and_then(LocalPeer::holder))
    }

    pub fn acting_holder_mut(&mut self) -> Option<&mut PeerHolder> {
        match &mut self.end {
            Some(PeerEnd::Held { holder }) => Some(holder),
            Some(PeerEnd::NotAccepted { listener: Some(l) }) => l.holder_mut(),
            _ => None,
        }
    }

    /// The listener that has not accepted it yet, when it is one such and the listener was
    /// found.
    pub fn listener(&self) -> Option<&LocalPeer> {
        match &self.end {
            Some(PeerEnd::NotAccepted { listener }) => listener.as_deref(),
            _ => None,
        }
    }

    /// Whether a socket with this inode and state, held by nobody, is a connection waiting to
    /// be accepted: the one place that is decided.
    pub fn waits_to_be_accepted(inode: u64, state: TcpState) -> bool {
        inode == 0 && state.in_accept_queue()
    }
}

/// A local peer as it is read: documents before 1.6 had `holder`, `unresolved` and `listener`
/// instead of `end`, and are read into it. The schema describes this, what a reader accepts.
#[derive(Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct LocalPeerRead {
    /// Its inode; 0 when no process holds it yet: a connection the server has not accepted.
    inode: u64,
    /// ss's vocabulary, e.g. "ESTAB".
    state: TcpState,
    /// Bytes it has received and its process has not read.
    recv_q: u32,
    /// Bytes it has sent that this end has not acknowledged.
    send_q: u32,
    /// Who holds it, or why nobody does (since 1.6). Absent when that was not looked for.
    end: Option<PeerEnd>,
    /// Its struct tcp_info, read with its queues: its byte counters and last-data ages say
    /// what it received, read and sent, from its side (since 1.5). Since 1.11 absent when the
    /// other end is one of the process's own sockets: its tcp_info and queues are then that
    /// socket's, in `sockets` by `inode`, read at the same look as this end's.
    tcp_info: Option<Box<TcpInfo>>,
    /// Before 1.6: who holds it.
    holder: Option<PeerHolder>,
    /// Before 1.6: why it has no holder, in words.
    unresolved: Option<String>,
    /// Before 1.6: for a connection not accepted yet, the socket listening on its port.
    listener: Option<Box<LocalPeer>>,
}

impl From<LocalPeerRead> for LocalPeer {
    fn from(r: LocalPeerRead) -> LocalPeer {
        let end = r.end.or_else(|| {
            if LocalPeer::waits_to_be_accepted(r.inode, r.state) {
                return Some(PeerEnd::NotAccepted {
                    listener: r.listener,
                });
            }
            match (r.holder, r.unresolved) {
                (Some(holder), _) => Some(PeerEnd::Held { holder }),
                (None, Some(reason)) => Some(PeerEnd::Unheld { reason }),
                (None, None) => None,
            }
        });
        LocalPeer {
            inode: r.inode,
            state: r.state,
            recv_q: r.recv_q,
            send_q: r.send_q,
            end,
            tcp_info: r.tcp_info,
        }
    }
}

/// A process and fd that hold a socket (since 1.2, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PeerHolder {
    /// The holding process's PID.
    pub pid: i32,
    /// The holding process's `comm`.
    pub name: Text,
    /// The fd by which it holds the socket.
    pub fd: i32,
    /// What its threads were in, when a thread of the target waits on this connection
    /// (since 1.2).
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
/// which of them wait on its end of the connection, and where the others are (since 1.2, with its
/// fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PeerThreads {
    /// Threads read.
    pub count: u32,
    /// Those that wait on the holder's fd.
    pub on_fd: Vec<PeerThread>,
    /// The calls the others are in, most common first, each with how many threads are in it,
    /// e.g. `{"syscall": "futex", "count": 10}` (since 1.7; before, strings such as
    /// "futex ×10" or "epoll_wait", which still load).
    pub elsewhere: Vec<CallCount>,
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

/// A system call and how many threads are in it (since 1.7, with its fields; before, one string
/// such as "futex ×10").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(from = "CallCountRead")]
pub struct CallCount {
    /// The syscall's name, e.g. "futex".
    pub syscall: String,
    /// Threads in it.
    pub count: u32,
}

/// A call count as it is read: before 1.7, one string, the name and " ×N" when more than one.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum CallCountRead {
    Typed {
        /// The syscall's name, e.g. "futex".
        syscall: String,
        /// Threads in it; 1 when absent.
        #[serde(default = "one")]
        count: u32,
    },
    Words(String),
}

/// Reads the pre-1.7 words, "futex ×10" or "read".
impl From<&str> for CallCount {
    fn from(words: &str) -> CallCount {
        CallCountRead::Words(words.to_string()).into()
    }
}

fn one() -> u32 {
    1
}

impl From<CallCountRead> for CallCount {
    fn from(r: CallCountRead) -> CallCount {
        match r {
            CallCountRead::Typed { syscall, count } => CallCount { syscall, count },
            CallCountRead::Words(w) => {
                match w
                    .rsplit_once(" ×")
                    .map(|(name, n)| (name, n.parse::<u32>()))
                {
                    Some((name, Ok(count))) => CallCount {
                        syscall: name.to_string(),
                        count,
                    },
                    _ => CallCount {
                        syscall: w,
                        count: 1,
                    },
                }
            }
        }
    }
}

/// A thread of the process at the other end, and the call it is in (since 1.2, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PeerThread {
    /// The thread's TID.
    pub tid: i32,
    /// The thread's `comm`.
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
    /// tcp_info bytes_sent: change over the window, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// tcp_info bytes_acked: change over the window, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    /// tcp_info bytes_received: change over the window, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// tcp_info segs_in: change over the window, segments, pure ACKs and keepalives included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_in: Option<u32>,
    /// tcp_info segs_out: change over the window, segments, pure ACKs and keepalives included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_out: Option<u32>,
    /// tcp_info total_retrans: retransmitted segments over the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrans: Option<u32>,
    /// tcp_info unacked (segments in flight) at the first look.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unacked_first: Option<u32>,
    /// tcp_info unacked at the last look, segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unacked_last: Option<u32>,
    /// Recv-Q at the first look, bytes (the socket's own fields are the last look's).
    pub recv_q_first: u32,
    /// Send-Q at the first look, bytes.
    pub send_q_first: u32,
    /// Whether data arrived during the window: tcp_info's last_data_recv age restarted between the
    /// first and the last look.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_data_recv_moved: Option<bool>,
    /// Whether data was sent during the window: tcp_info's last_data_sent age restarted between the
    /// first and the last look.
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

/// A TCP connection at one look of the window, as tcp_info gave it (since 1.6, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ConnectionLook {
    /// Milliseconds since the window's first dump.
    pub at_ms: u64,
    /// tcp_info bytes_sent since the connection began (not since the window), bytes; absent when
    /// the kernel's tcp_info has no byte counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// tcp_info bytes_received since the connection began, bytes; absent when the kernel's tcp_info
    /// has no byte counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// tcp_info unacked: segments sent and not acknowledged.
    pub unacked: u32,
    /// tcp_info total_retrans since the connection began, segments.
    pub retrans: u32,
    /// tcp_info rtt: the smoothed round-trip time, microseconds.
    pub rtt_us: u32,
    /// Age of the last data received, milliseconds.
    pub last_data_recv_ms: u32,
    /// Recv-Q: bytes received and not read by the process.
    pub recv_q: u32,
    /// Send-Q: bytes not yet acknowledged by the peer.
    pub send_q: u32,
}

/// A socket's state changing over the sampling window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct StateChange {
    /// The state at the window's first look.
    pub from: TcpState,
    /// The state at its last look.
    pub to: TcpState,
}

/// A socket's pending timer, from the diag dump (ss's `timer:(KIND,EXPIRES,RETRANS)`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SocketTimer {
    /// Which timer: `off`, `on` (retransmit), `keepalive`, `time_wait`, `persist` (zero-window
    /// probe), or `unknown`.
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
    /// tcpi_state: the kernel's TCP_* state number (1 ESTABLISHED ... 10 LISTEN, 12 NEW_SYN_RECV).
    pub state: u8,
    /// tcpi_ca_state: the congestion-avoidance state (0 Open, 1 Disorder, 2 CWR, 3 Recovery, 4
    /// Loss).
    pub ca_state: u8,
    /// tcpi_retransmits: consecutive retransmission timeouts not yet recovered from.
    pub retransmits: u8,
    /// tcpi_probes: zero-window or keepalive probes sent and not answered.
    pub probes: u8,
    /// tcpi_backoff: the retransmission timeout's exponential backoff (how many times it doubled).
    pub backoff: u8,
    /// tcpi_options: TCPI_OPT_* bits (1 timestamps, 2 SACK, 4 window scaling, 8 ECN, 16 ECN seen,
    /// 32 SYN data).
    pub options: u8,
    /// tcpi_snd_wscale: the peer's window scale shift.
    pub snd_wscale: u8,
    /// tcpi_rcv_wscale: this end's window scale shift.
    pub rcv_wscale: u8,
    /// tcpi_rto: the retransmission timeout, microseconds.
    pub rto_us: u32,
    /// tcpi_ato: the delayed-ACK timeout, microseconds.
    pub ato_us: u32,
    /// tcpi_snd_mss: the send maximum segment size, bytes.
    pub snd_mss: u32,
    /// tcpi_rcv_mss: the receive maximum segment size as estimated, bytes.
    pub rcv_mss: u32,
    /// tcpi_unacked: segments sent and not acknowledged (in flight; for a listener, its accept
    /// queue's length).
    pub unacked: u32,
    /// tcpi_sacked: segments selectively acknowledged (for a listener: its accept backlog limit).
    pub sacked: u32,
    /// tcpi_lost: segments taken as lost.
    pub lost: u32,
    /// tcpi_retrans: segments retransmitted and not acknowledged yet.
    pub retrans: u32,
    /// tcpi_fackets: forward-acknowledged segments (always 0 on current kernels).
    pub fackets: u32,
    /// tcpi_last_data_sent: time since the last data sent, milliseconds.
    pub last_data_sent_ms: u32,
    /// tcpi_last_ack_sent: time since the last ACK sent, milliseconds (the kernel leaves it 0).
    pub last_ack_sent_ms: u32,
    /// tcpi_last_data_recv: time since the last data received, milliseconds.
    pub last_data_recv_ms: u32,
    /// tcpi_last_ack_recv: time since the last ACK received, milliseconds.
    pub last_ack_recv_ms: u32,
    /// tcpi_pmtu: the path MTU, bytes.
    pub pmtu: u32,
    /// tcpi_rcv_ssthresh: the receive window's slow-start threshold (the window it may offer),
    /// bytes.
    pub rcv_ssthresh: u32,
    /// tcpi_rtt: the smoothed round-trip time, microseconds.
    pub rtt_us: u32,
    /// tcpi_rttvar: the round-trip time's variation, microseconds.
    pub rttvar_us: u32,
    /// tcpi_snd_ssthresh: the slow-start threshold, segments.
    pub snd_ssthresh: u32,
    /// tcpi_snd_cwnd: the congestion window, segments.
    pub snd_cwnd: u32,
    /// tcpi_advmss: the maximum segment size advertised to the peer, bytes.
    pub advmss: u32,
    /// tcpi_reordering: the reordering the sender tolerates before taking a segment as lost,
    /// segments.
    pub reordering: u32,
    /// tcpi_rcv_rtt: the round-trip time as the receiver estimates it, microseconds.
    pub rcv_rtt_us: u32,
    /// tcpi_rcv_space: the receive buffer space the receiver aims for, bytes.
    pub rcv_space: u32,
    /// tcpi_total_retrans: segments retransmitted over the connection's life.
    pub total_retrans: u32,
    /// tcpi_pacing_rate: the pacing rate, bytes per second (kernel 3.15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing_rate: Option<u64>,
    /// tcpi_max_pacing_rate: the pacing rate's cap (SO_MAX_PACING_RATE), bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pacing_rate: Option<u64>,
    /// tcpi_bytes_acked: bytes sent and acknowledged over the connection's life (kernel 4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    /// tcpi_bytes_received: bytes received over the connection's life (kernel 4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// tcpi_segs_out: segments sent, pure ACKs and retransmissions included (kernel 4.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_out: Option<u32>,
    /// tcpi_segs_in: segments received, pure ACKs included (kernel 4.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_in: Option<u32>,
    /// tcpi_notsent_bytes: bytes written by the process and not sent yet (kernel 4.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notsent_bytes: Option<u32>,
    /// tcpi_min_rtt: the lowest round-trip time seen, microseconds (kernel 4.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rtt_us: Option<u32>,
    /// tcpi_data_segs_in: segments received that carried data (kernel 4.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_in: Option<u32>,
    /// tcpi_data_segs_out: segments sent that carried data (kernel 4.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_out: Option<u32>,
    /// tcpi_delivery_rate: the recent delivery rate, bytes per second (kernel 4.9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_rate: Option<u64>,
    /// tcpi_busy_time: time with data in flight, microseconds (kernel 4.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_time_us: Option<u64>,
    /// tcpi_rwnd_limited: time the peer's receive window limited sending, microseconds (kernel
    /// 4.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rwnd_limited_us: Option<u64>,
    /// tcpi_sndbuf_limited: time the send buffer limited sending, microseconds (kernel 4.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sndbuf_limited_us: Option<u64>,
    /// tcpi_delivered: segments delivered to the peer, retransmissions included (kernel 4.18).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u32>,
    /// tcpi_delivered_ce: of those, segments the peer echoed as ECN congestion-experienced (kernel
    /// 4.18).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_ce: Option<u32>,
    /// tcpi_bytes_sent: bytes sent, retransmissions included (kernel 4.19).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// tcpi_bytes_retrans: bytes retransmitted (kernel 4.19).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_retrans: Option<u64>,
    /// tcpi_dsack_dups: segments the peer reported received twice (D-SACK; kernel 4.19).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dsack_dups: Option<u32>,
    /// tcpi_reord_seen: reorderings seen (kernel 4.19).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reord_seen: Option<u32>,
    /// tcpi_rcv_ooopack: segments received out of order (kernel 5.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_ooopack: Option<u32>,
    /// tcpi_snd_wnd: the peer's advertised receive window, bytes (kernel 5.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snd_wnd: Option<u32>,
    /// tcpi_rcv_wnd: the receive window this end advertises, bytes (kernel 6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_wnd: Option<u32>,
    /// tcpi_rehash: times the connection's path was rehashed after a suspected failure (kernel
    /// 6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehash: Option<u32>,
    /// tcpi_total_rto: retransmission timeouts over the connection's life (kernel 6.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto: Option<u16>,
    /// tcpi_total_rto_recoveries: recoveries from a retransmission timeout (kernel 6.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto_recoveries: Option<u16>,
    /// tcpi_total_rto_time: time spent recovering from retransmission timeouts, milliseconds
    /// (kernel 6.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto_time: Option<u32>,
}

/// A unix socket, as `ss -x` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct UnixSocket {
    /// "STREAM", "DGRAM", "SEQPACKET".
    pub sock_type: String,
    /// ss's vocabulary: "ESTAB", "LISTEN", "UNCONN", ...
    pub state: TcpState,
    /// Bound path; abstract names start with "@".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    /// Recv-Q: for a stream socket, bytes queued to read; for a listener, connections waiting to be
    /// accepted.
    pub recv_q: u32,
    /// Send-Q: for a stream socket, bytes sent and not read by the peer; for a listener, its
    /// backlog limit.
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

/// The process holding the other end of a connected unix socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct UnixPeer {
    /// The holder's PID.
    pub pid: i32,
    /// The holder's `comm`.
    pub name: Text,
    /// The fd by which it holds the peer socket.
    pub fd: i32,
    /// The peer's bound path, if any (e.g. "/run/systemd/journal/stdout").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    /// What its threads were in, when a thread of the target waits on this socket (since
    /// 1.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<PeerThreads>,
}

/// A netlink socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct NetlinkSocket {
    /// NETLINK_ROUTE = 0, NETLINK_SOCK_DIAG = 4, ...; the name when known.
    pub protocol: u8,
    /// The protocol's name, e.g. "route", "sock_diag", "generic"; "protocol N" for one not known.
    pub protocol_name: String,
    /// Its port ID (nl_pid): the kernel's, or the process's own address on the bus.
    pub portid: u32,
}

/// A packet (AF_PACKET) socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PacketSocket {
    /// The socket type, e.g. "RAW" or "DGRAM".
    pub sock_type: String,
    /// Ethernet protocol number.
    pub protocol: u16,
    /// The interface it is bound to, by index (PACKET_DIAG_INFO); `None` when bound to none (all
    /// interfaces) or not reported.
    pub ifindex: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_written_and_read_as_ss_names_it() {
        for n in 0..=13u8 {
            let s = TcpState::from_kernel(n);
            let json = serde_json::to_value(s).expect("serializes");
            assert_eq!(json, serde_json::Value::String(s.as_str().into()));
            assert_eq!(serde_json::from_value::<TcpState>(json).expect("reads"), s);
            assert_eq!(TcpState::from(s.as_str()), s);
        }
        // A document before 1.6 had a plain string; one from a newer kernel, a name not known.
        let old: InetSocket =
            serde_json::from_str(r#"{"state": "CLOSE-WAIT"}"#).expect("a 1.5 socket");
        assert_eq!(old.state, TcpState::CloseWait);
        let newer: InetSocket =
            serde_json::from_str(r#"{"state": "BOUND-INACTIVE"}"#).expect("an unknown name");
        assert_eq!(newer.state, TcpState::Unknown);
    }

    #[test]
    fn calls_elsewhere_of_before_1_7_load_as_counts() {
        let t: PeerThreads = serde_json::from_str(
            r#"{"count": 13, "elsewhere": ["futex ×10", "epoll_wait", "read ×2"]}"#,
        )
        .expect("a 1.6 peer's threads");
        let counts: Vec<(&str, u32)> = t
            .elsewhere
            .iter()
            .map(|c| (c.syscall.as_str(), c.count))
            .collect();
        assert_eq!(counts, vec![("futex", 10), ("epoll_wait", 1), ("read", 2)]);
        let json = serde_json::to_value(&t).expect("serializes");
        assert_eq!(
            json["elsewhere"][0],
            serde_json::json!({"syscall": "futex", "count": 10})
        );
        assert_eq!(
            serde_json::from_value::<PeerThreads>(json).expect("reads"),
            t
        );
    }

    #[test]
    fn a_local_peer_of_before_1_6_loads_as_its_end() {
        let read = |json: &str| -> LocalPeer { serde_json::from_str(json).expect("a 1.5 peer") };
        let held = read(r#"{"inode": 7, "state": "ESTAB", "holder": {"pid": 42, "fd": 3}}"#);
        assert_eq!(held.holder().map(|h| h.pid), Some(42));
        let waiting = read(
            r#"{"inode": 0, "state": "ESTAB", "unresolved": "not accepted yet: ...",
                "listener": {"inode": 9, "state": "LISTEN", "holder": {"pid": 43, "fd": 4}}}"#,
        );
        let listener = waiting.listener().expect("the listener");
        assert_eq!(listener.holder().map(|h| h.pid), Some(43));
        let gone = read(
            r#"{"inode": 0, "state": "TIME-WAIT", "unresolved": "held by no process (TIME-WAIT)"}"#,
        );
        assert_eq!(
            gone.end,
            Some(PeerEnd::Unheld {
                reason: "held by no process (TIME-WAIT)".into()
            })
        );
        // Written back, only `end`: the old fields are not kept twice.
        let json = serde_json::to_value(&waiting).expect("serializes");
        assert_eq!(json["end"]["kind"], "not_accepted");
        assert_eq!(json["end"]["listener"]["end"]["holder"]["pid"], 43);
        assert!(json.get("listener").is_none() && json.get("unresolved").is_none());
        assert_eq!(
            serde_json::from_value::<LocalPeer>(json).expect("reads"),
            waiting
        );
    }
}
