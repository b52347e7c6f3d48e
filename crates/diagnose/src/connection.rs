//! One TCP or UDP socket of the process, as NETLINK_SOCK_DIAG reported it (sock_diag(7),
//! ss(8)), with the questions every network rule asks of it: which fds hold it, which way it
//! was opened, how much was sent, how to name it.

use hangscope_model::{
    ConnectionWindow, InetSocket, Snapshot, Socket, SocketDetail, TcpInfo, TimerKind,
};

use crate::Ctx;

/// Linux's default ip_local_port_range starts here; a peer port at or above it on a socket whose
/// own port is below it is most likely a client that connected to us.
const EPHEMERAL_START: u16 = 32768;

/// The process's fds that hold `sock`: as sock_diag matched them, or else by the fds' inodes.
pub(crate) fn socket_fds(snap: &Snapshot, sock: &Socket) -> Vec<i32> {
    if !sock.fds.is_empty() {
        return sock.fds.clone();
    }
    snap.fds
        .iter()
        .filter(|f| f.socket_inode == Some(sock.inode))
        .map(|f| f.fd)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

#[derive(Clone)]
pub(crate) struct Conn<'a> {
    pub sock: &'a Socket,
    pub inet: &'a InetSocket,
    pub proto: Proto,
    /// The process's fds that hold the socket.
    pub fds: Vec<i32>,
}

impl<'a> Conn<'a> {
    /// Every TCP and UDP socket of the snapshot, built once per diagnosis (see `Ctx::conns`).
    pub fn build(snap: &'a Snapshot) -> Vec<Conn<'a>> {
        snap.sockets
            .iter()
            .filter_map(|sock| {
                let (inet, proto) = match &sock.detail {
                    SocketDetail::Tcp(i) => (i, Proto::Tcp),
                    SocketDetail::Udp(i) => (i, Proto::Udp),
                    _ => return None,
                };
                Some(Conn {
                    sock,
                    inet,
                    proto,
                    fds: socket_fds(snap, sock),
                })
            })
            .collect()
    }

    /// Every TCP and UDP socket.
    pub fn all<'c>(ctx: &'c Ctx<'a>) -> impl Iterator<Item = &'c Conn<'a>> {
        ctx.conns.iter()
    }

    pub fn tcp<'c>(ctx: &'c Ctx<'a>) -> impl Iterator<Item = &'c Conn<'a>> {
        ctx.conns.iter().filter(|c| c.proto == Proto::Tcp)
    }

    pub fn state(&self) -> &str {
        &self.inet.state
    }

    pub fn info(&self) -> Option<&'a TcpInfo> {
        self.inet.tcp_info.as_deref()
    }

    pub fn fd(&self) -> Option<i32> {
        self.fds.first().copied()
    }

    /// "10.0.130.72:10100".
    pub fn peer(&self) -> String {
        self.inet.peer.to_string()
    }

    /// "TCP 10.0.130.71:42428 -> 10.0.130.72:10100".
    pub fn label(&self) -> String {
        let proto = match self.proto {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        };
        format!("{proto} {} -> {}", self.inet.local, self.inet.peer)
    }

    /// How the connection changed over the sampling window; `None` with a zero window (one
    /// look) or when it closed during the window (its counters then stop short).
    pub fn window(&self) -> Option<&'a ConnectionWindow> {
        self.inet
            .window
            .as_deref()
            .filter(|w| !w.closed_during_window && w.looks >= 2)
    }

    /// Payload bytes the peer acknowledged. tcp_info's bytes_acked (since Linux 4.1) counts the
    /// SYN too: ss shows bytes_acked:1 on a connection that never sent data.
    pub fn bytes_sent(&self) -> Option<u64> {
        self.info()?.bytes_acked.map(|b| b.saturating_sub(1))
    }

    /// Whether the connection was accepted from our listening socket rather than opened by us.
    /// A server owes its clients answers, not the other way round, so "sent and nothing back"
    /// means something only on connections the process opened.
    pub fn is_inbound(&self, ctx: &Ctx<'_>) -> bool {
        let local = self.inet.local.port;
        ctx.listen_ports.contains(&local)
            || (local < EPHEMERAL_START && self.inet.peer.port >= EPHEMERAL_START)
    }

    pub fn timer_is(&self, kind: TimerKind) -> bool {
        self.inet.timer.as_ref().is_some_and(|t| t.kind == kind)
    }
}
