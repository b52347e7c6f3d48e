//! One TCP or UDP socket of the process, as NETLINK_SOCK_DIAG reported it (sock_diag(7),
//! ss(8)), with the questions every network rule asks of it: which fds hold it, which way it
//! was opened, how much was sent, how to name it.

use hangscope_model::{
    ConnectionWindow, Evidence, InetSocket, Snapshot, Socket, SocketDetail, Subject, TcpInfo,
    TimerKind,
};

use crate::Ctx;
use crate::waiters::Waiter;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// "watched: 0 bytes in, 0 bytes out, 0 retransmits over the 2.0 s window", when the window measured
    /// the bytes (TCP with tcp_info's byte counters, Linux 4.1+).
    pub fn window_evidence(&self) -> Option<Evidence> {
        let w = self.window()?;
        let inn = w.bytes_received?;
        let out = w.bytes_acked.or(w.bytes_sent)?;
        let mut value = format!(
            "{} in, {} out",
            crate::wording::bytes(inn),
            crate::wording::bytes(out)
        );
        if let Some(r) = w.retrans {
            value.push_str(&format!(
                ", {}",
                crate::wording::plural(u64::from(r), "retransmit", "retransmits")
            ));
        }
        if w.recv_q_first != self.inet.recv_q || w.send_q_first != self.inet.send_q {
            value.push_str(&format!(
                ", Recv-Q {} → {}, Send-Q {} → {}",
                w.recv_q_first, self.inet.recv_q, w.send_q_first, self.inet.send_q
            ));
        }
        value.push_str(&format!(
            " over the {} window",
            crate::wording::duration(w.duration_ms)
        ));
        let mut src = format!(
            "sock_diag, {} looks: Δbytes_received:{inn} Δbytes_acked:{}",
            w.looks,
            w.bytes_acked.unwrap_or(0)
        );
        if let (Some(i), Some(o)) = (w.segs_in, w.segs_out) {
            src.push_str(&format!(" Δsegs_in:{i} Δsegs_out:{o}"));
        }
        if let Some(r) = w.retrans {
            src.push_str(&format!(" Δretrans:{r}"));
        }
        if let Some(m) = w.last_data_recv_moved {
            src.push_str(if m {
                " lastrcv:moved"
            } else {
                " lastrcv:still"
            });
        }
        Some(Evidence::new("watched", value, src))
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

    /// ss's timer column, e.g. "timer:(keepalive,325ms,0)".
    pub fn timer_text(&self) -> Option<String> {
        let t = self.inet.timer.as_ref()?;
        let kind = match t.kind {
            TimerKind::Off => return None,
            TimerKind::On => "on",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "timewait",
            TimerKind::Persist => "persist",
            TimerKind::Unknown => "unknown",
        };
        Some(format!("timer:({kind},{}ms,{})", t.expires_ms, t.retrans))
    }

    /// `src` (an "ss: ..." evidence source) with the timer column appended, when there is one.
    pub fn with_timer(&self, mut src: String) -> String {
        if let Some(t) = self.timer_text() {
            src.push(' ');
            src.push_str(&t);
        }
        src
    }

    /// The subject of a finding about this connection, through `waiter` when a thread waits.
    pub fn subject(&self, waiter: Option<&Waiter<'_>>) -> Subject {
        Subject {
            tid: waiter.map(|w| w.thread.tid),
            thread_name: waiter
                .map(|w| w.thread.name.clone())
                .filter(|n| !n.is_empty()),
            fd: waiter.map(|w| w.fd).or(self.fd()),
            socket_inode: Some(self.sock.inode),
            connection: Some(self.label()),
        }
    }

    /// "fd 29" or "a socket" when no fd of the process was matched to it.
    pub fn fd_text(&self) -> String {
        match self.fd() {
            Some(fd) => format!("fd {fd}"),
            None => "a socket".into(),
        }
    }
}
