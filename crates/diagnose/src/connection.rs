//! One TCP or UDP socket of the process, as NETLINK_SOCK_DIAG reported it (sock_diag(7),
//! ss(8)), with the questions every network rule asks of it: which fds hold it, which way it
//! was opened, how much was sent, how to name it.

use hangscope_model::{
    ConnectionWindow, InetSocket, LocalPeer, Snapshot, Socket, SocketDetail, TcpInfo, TimerKind,
};
use hangscope_model::{PortRange, TcpState};
use serde::Serialize;

use crate::Ctx;

/// The longest a receiver holds back the ACK of data it has nothing to answer with: Linux's
/// TCP_DELACK_MAX is 200 ms, RFC 1122 allows 500. A keepalive's ACK comes a keepalive time
/// (1 s at the least) after the last data, so it is not taken for one.
const DELAYED_ACK_MAX_MS: u32 = 500;

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

    pub fn state(&self) -> TcpState {
        self.inet.state
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
    /// Decided by the namespace's listeners when they are known (a forked worker holds none of
    /// its own, and a server may listen in the ephemeral range); else by the process's own
    /// listeners and, last, by the port numbers.
    pub fn is_inbound(&self, ctx: &Ctx<'_>) -> bool {
        if let Some(accepted) = self.inet.accepted {
            return accepted;
        }
        // A peer port in the ephemeral range on a socket whose own port is below it is most
        // likely a client that connected to us. Only a guess, for when the namespace's
        // listeners are not known.
        let first = ctx
            .snap
            .ephemeral_ports
            .unwrap_or(PortRange::LINUX_DEFAULT)
            .first;
        let local = self.inet.local.port;
        ctx.listen_ports.contains(&local) || (local < first && self.inet.peer.port >= first)
    }

    pub fn timer_is(&self, kind: TimerKind) -> bool {
        self.inet.timer.as_ref().is_some_and(|t| t.kind == kind)
    }

    /// Who sent the last data on the connection, and what told; `None` when nothing does.
    pub fn last_word(&self, ctx: &Ctx<'_>) -> Option<LastWord> {
        let peer = self
            .inet
            .local_peer
            .as_deref()
            .and_then(|p| OtherSide::of(ctx, p));
        last_word(self.info()?, peer, !self.is_inbound(ctx))
    }
}

/// The other end of a connection on this host, as `last_word` reads it: its queues and its
/// tcp_info.
#[derive(Clone, Copy)]
pub(crate) struct OtherSide<'a> {
    pub recv_q: u32,
    pub send_q: u32,
    pub info: &'a TcpInfo,
}

impl<'a> OtherSide<'a> {
    /// From the local peer as read; when the process holds that end itself, from its own
    /// socket, which the collector does not copy into the peer.
    pub fn of<'c: 'a>(ctx: &Ctx<'c>, p: &'a LocalPeer) -> Option<Self> {
        if let Some(info) = p.tcp_info.as_deref() {
            return Some(OtherSide {
                recv_q: p.recv_q,
                send_q: p.send_q,
                info,
            });
        }
        let own = ctx.inet_by_inode(p.inode)?;
        Some(OtherSide {
            recv_q: own.recv_q,
            send_q: own.send_q,
            info: own.tcp_info.as_deref()?,
        })
    }
}

/// Which end of a connection sent the last data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Speaker {
    /// This process's end: it waits for an answer, or it answered.
    Us,
    Peer,
}

/// What told who spoke last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TurnBy {
    /// tcp_info's last_data_sent and last_data_recv differ.
    Ages,
    /// They are the same millisecond and one way carried no data at all: connect() and accept()
    /// stamp both, so only the other way spoke.
    OneWay,
    /// They are the same millisecond, and an ACK with no data came `ack_after_ms` after them:
    /// the end that sent it had received the last data and nothing to send with it (a delayed
    /// ACK). A reply would have carried that ACK.
    BareAck,
}

/// Who spoke last on a connection, as a rule reads it (`Conn::last_word`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct LastWord {
    pub speaker: Speaker,
    pub by: TurnBy,
    /// Read from the other end's tcp_info (the peer is on this host), which has seen the same
    /// bytes: this end's own said nothing.
    pub other_end: bool,
    /// For `bare_ack`: how long after the last data the ACK came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_after_ms: Option<u32>,
    /// The ages read, at the end read (tcp_info last_data_sent, last_data_recv, last_ack_recv).
    pub sent_ms: u32,
    pub recv_ms: u32,
    pub ack_ms: u32,
}

/// Payload bytes the other end acknowledged. The end that opened the connection counts its SYN
/// in bytes_acked; an accepted one does not (its socket is made when the SYN-ACK is already
/// acknowledged): measured 108 and 415 on the two ends of a psql connection that sent 107 and
/// 415 bytes.
fn payload_acked(i: &TcpInfo, opened: bool) -> Option<u64> {
    i.bytes_acked.map(|b| b.saturating_sub(u64::from(opened)))
}

/// One end's view: who spoke last as its own tcp_info tells it, with `Us` meaning that end,
/// which `opened` the connection or accepted it.
fn own_view(i: &TcpInfo, opened: bool) -> Option<LastWord> {
    let word = |speaker, by, ack_after_ms| {
        Some(LastWord {
            speaker,
            by,
            other_end: false,
            ack_after_ms,
            sent_ms: i.last_data_sent_ms,
            recv_ms: i.last_data_recv_ms,
            ack_ms: i.last_ack_recv_ms,
        })
    };
    let (sent, recv) = (i.last_data_sent_ms, i.last_data_recv_ms);
    if sent != recv {
        // Ages: the smaller is the more recent.
        return word(
            if sent < recv {
                Speaker::Us
            } else {
                Speaker::Peer
            },
            TurnBy::Ages,
            None,
        );
    }
    match (payload_acked(i, opened), i.bytes_received) {
        (Some(0), Some(0)) => return None,
        (_, Some(0)) => return word(Speaker::Us, TurnBy::OneWay, None),
        (Some(0), _) => return word(Speaker::Peer, TurnBy::OneWay, None),
        _ => {}
    }
    // The same millisecond both ways. An ACK received since, without data (it would have
    // moved last_data_recv), within a delayed-ACK time: the peer had read our data and had
    // nothing to say.
    let after = sent.checked_sub(i.last_ack_recv_ms)?;
    (after > 0 && after <= DELAYED_ACK_MAX_MS).then_some(())?;
    word(Speaker::Us, TurnBy::BareAck, Some(after))
}

/// Who spoke last: this end's ages, else (the same millisecond both ways, as when a client
/// sends its next query the moment the server's "ready" arrives) the bare ACK that followed
/// the last data, at this end or at the other end when it is on this host. The other end is
/// read only when its counters show the same bytes as ours, all delivered and all read — one
/// another process holds was read before the window, and anything that moved since makes its
/// ages another moment's. An answer both ends contradict is no answer.
pub(crate) fn last_word(
    ours: &TcpInfo,
    peer: Option<OtherSide<'_>>,
    opened: bool,
) -> Option<LastWord> {
    let mine = own_view(ours, opened);
    if mine.is_some_and(|w| w.by != TurnBy::BareAck) {
        return mine;
    }
    let theirs = peer
        .filter(|p| same_bytes(ours, p, opened))
        .and_then(|p| own_view(p.info, !opened))
        .map(|w| LastWord {
            speaker: match w.speaker {
                Speaker::Us => Speaker::Peer,
                Speaker::Peer => Speaker::Us,
            },
            other_end: true,
            ..w
        });
    match (mine, theirs) {
        (Some(m), Some(t)) if m.speaker != t.speaker => None,
        // Ages at the other end are firmer than a bare ACK here.
        (Some(m), Some(t)) if t.by == TurnBy::BareAck => Some(m),
        (m, t) => t.or(m),
    }
}

/// Whether the other end has received and read every byte this end sent, and sent nothing
/// this end has not received: both counted the same conversation.
fn same_bytes(ours: &TcpInfo, peer: &OtherSide<'_>, opened: bool) -> bool {
    let theirs = peer.info;
    let sent = payload_acked(ours, opened);
    peer.recv_q == 0
        && peer.send_q == 0
        && ours.unacked == 0
        && sent.is_some()
        && sent == theirs.bytes_received
        && ours.bytes_received.is_some()
        && ours.bytes_received == payload_acked(theirs, !opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::PeerHolder;

    /// One end's tcp_info: ages (sent, received, last ACK) and payload bytes (sent, received).
    fn info(sent_ms: u32, recv_ms: u32, ack_ms: u32, out: u64, back: u64) -> TcpInfo {
        TcpInfo {
            last_data_sent_ms: sent_ms,
            last_data_recv_ms: recv_ms,
            last_ack_recv_ms: ack_ms,
            // bytes_acked counts the SYN.
            bytes_acked: Some(out + 1),
            bytes_received: Some(back),
            ..TcpInfo::default()
        }
    }

    /// The end that accepted the connection: its bytes_acked has no SYN.
    fn accepted(mut i: TcpInfo) -> TcpInfo {
        i.bytes_acked = i.bytes_acked.map(|b| b - 1);
        i
    }

    /// The other end as `last_word` reads it, from the local peer alone.
    fn side(p: &LocalPeer) -> Option<OtherSide<'_>> {
        Some(OtherSide {
            recv_q: p.recv_q,
            send_q: p.send_q,
            info: p.tcp_info.as_deref()?,
        })
    }

    fn other_end(i: TcpInfo) -> LocalPeer {
        LocalPeer {
            inode: 9,
            state: "ESTAB".into(),
            end: Some(hangscope_model::PeerEnd::Held {
                holder: PeerHolder {
                    pid: 4112,
                    name: "postgres".into(),
                    fd: 7,
                    threads: None,
                    opened: vec![],
                },
            }),
            tcp_info: Some(Box::new(i)),
            ..LocalPeer::default()
        }
    }

    /// psql sent its UPDATE the millisecond the server's "ready for query" came, and the
    /// server, waiting on a row lock, ACKed it 44 ms later (ato:40), as measured on PostgreSQL
    /// 15: `lastsnd:2020 lastrcv:2020 lastack:1976 bytes_received:415`.
    fn psql_waiting() -> TcpInfo {
        info(2020, 2020, 1976, 107, 415)
    }

    #[test]
    fn a_bare_ack_after_a_tie_says_the_request_is_the_last_word() {
        let w = last_word(&psql_waiting(), None, true).expect("decided");
        assert_eq!(
            (w.speaker, w.by, w.other_end, w.ack_after_ms),
            (Speaker::Us, TurnBy::BareAck, false, Some(44))
        );
        // An older kernel without byte counters: the ACK alone decides, the same way.
        let old = TcpInfo {
            bytes_acked: None,
            bytes_received: None,
            data_segs_in: None,
            data_segs_out: None,
            ..psql_waiting()
        };
        assert_eq!(last_word(&old, None, true), Some(w));
    }

    #[test]
    fn a_reply_in_the_same_millisecond_carried_the_ack() {
        // The reply came with the ACK of the request: nothing here says who spoke last.
        let answered = info(2020, 2020, 2020, 107, 600);
        assert_eq!(last_word(&answered, None, true), None);
        // A keepalive's ACK long after the last data is no delayed ACK.
        let keepalive = info(80_000, 80_000, 20_000, 107, 600);
        assert_eq!(last_word(&keepalive, None, true), None);
    }

    #[test]
    fn the_other_end_on_this_host_tells_a_tie_this_end_cannot() {
        // This end answered in the millisecond the request came; the client's delayed ACK of
        // the answer reached the server 44 ms later.
        let client = info(2020, 2020, 2020, 107, 600);
        let server = other_end(accepted(info(2020, 2020, 1976, 600, 107)));
        let w = last_word(&client, side(&server), true).expect("decided there");
        assert_eq!(
            (w.speaker, w.by, w.other_end, w.ack_after_ms),
            (Speaker::Peer, TurnBy::BareAck, true, Some(44))
        );
        // The backend of the row-lock wait: its own ages tie three ways (it ACKed nothing
        // late); the client's end has the delayed ACK, so the client spoke last.
        let backend = accepted(info(6200, 6200, 6200, 415, 107));
        let psql = other_end(psql_waiting());
        let w = last_word(&backend, side(&psql), false).expect("decided at psql's end");
        assert_eq!((w.speaker, w.other_end), (Speaker::Peer, true));
        assert_eq!((w.sent_ms, w.recv_ms, w.ack_ms), (2020, 2020, 1976));
    }

    #[test]
    fn the_other_end_counts_only_when_it_saw_the_same_bytes() {
        let backend = accepted(info(6200, 6200, 6200, 415, 107));
        // It was read before more data came: its ages are another moment's.
        let behind = other_end(info(2020, 2020, 1976, 50, 415));
        assert_eq!(last_word(&backend, side(&behind), false), None);
        // Data it has not read yet.
        let unread = LocalPeer {
            recv_q: 20,
            ..other_end(psql_waiting())
        };
        assert_eq!(last_word(&backend, side(&unread), false), None);
        // No tcp_info there (an older snapshot).
        let bare = LocalPeer {
            tcp_info: None,
            ..other_end(psql_waiting())
        };
        assert_eq!(last_word(&backend, side(&bare), false), None);
    }

    #[test]
    fn an_end_the_process_holds_itself_is_read_from_its_own_socket() {
        // The collector does not copy the tcp_info of an end the process holds into the
        // other's local peer: the rule reads it from that socket, and decides as it did when
        // it was copied.
        use crate::testkit::{add_socket, base, inet_of, tcp};
        let mut snap = base(4112, "app");
        let mut client = tcp(21, "127.0.0.1:40000", "127.0.0.1:5432", "ESTAB");
        inet_of(&mut client).tcp_info = Some(Box::new(info(2020, 2020, 2020, 107, 600)));
        inet_of(&mut client).local_peer = Some(Box::new(LocalPeer {
            tcp_info: None,
            ..other_end(TcpInfo::default())
        }));
        let mut server = tcp(9, "127.0.0.1:5432", "127.0.0.1:40000", "ESTAB");
        inet_of(&mut server).tcp_info = Some(Box::new(accepted(info(2020, 2020, 1976, 600, 107))));
        add_socket(&mut snap, 5, client);
        add_socket(&mut snap, 6, server);
        let ctx = Ctx::new(&snap);
        let conn = ctx.conns.iter().find(|c| c.sock.inode == 21).unwrap();
        let w = conn.last_word(&ctx).expect("decided at the server's end");
        assert_eq!(
            (w.speaker, w.by, w.other_end, w.ack_after_ms),
            (Speaker::Peer, TurnBy::BareAck, true, Some(44))
        );
        // An end neither copied nor held here says nothing.
        let mut snap = snap.clone();
        snap.sockets.retain(|s| s.inode != 9);
        let ctx = Ctx::new(&snap);
        let conn = ctx.conns.iter().find(|c| c.sock.inode == 21).unwrap();
        assert_eq!(conn.last_word(&ctx), None);
    }

    #[test]
    fn ends_that_contradict_decide_nothing() {
        // Both ends got an ACK with no data after their last data: one of them is not what
        // it seems (a window update), so neither is taken.
        let ours = psql_waiting();
        let theirs = other_end(accepted(info(2020, 2020, 1976, 415, 107)));
        assert_eq!(last_word(&ours, side(&theirs), true), None);
    }

    #[test]
    fn ages_that_differ_decide_alone() {
        let w = last_word(&info(100, 5000, 60, 10, 10), None, true).expect("ages");
        assert_eq!((w.speaker, w.by), (Speaker::Us, TurnBy::Ages));
        let w = last_word(&info(5000, 100, 60, 10, 10), None, true).expect("ages");
        assert_eq!((w.speaker, w.by), (Speaker::Peer, TurnBy::Ages));
        // Nothing ever came back: connect() stamped the receive age.
        let w = last_word(&info(3000, 3000, 2990, 32, 0), None, true).expect("one way");
        assert_eq!((w.speaker, w.by), (Speaker::Us, TurnBy::OneWay));
        // Nothing ever went out: accept() stamped the send age.
        let w = last_word(&accepted(info(3000, 3000, 3000, 0, 32)), None, false).expect("one way");
        assert_eq!((w.speaker, w.by), (Speaker::Peer, TurnBy::OneWay));
        // A server's one-byte answer (PostgreSQL's 'N' to an SSLRequest) is not nothing: its
        // bytes_acked has no SYN in it.
        assert_eq!(
            last_word(&accepted(info(3000, 3000, 3000, 1, 8)), None, false),
            None
        );
        assert_eq!(last_word(&info(3000, 3000, 3000, 0, 0), None, true), None);
    }

    #[test]
    fn the_client_side_guess_uses_the_ephemeral_range_the_snapshot_carries() {
        use crate::testkit::{add_socket, base, tcp};
        // A server on :8000 with a client on 15000, listeners unknown: inbound only if 15000
        // is a client's port, which the host's range says and Linux's default does not.
        let mut snap = base(10, "server");
        add_socket(
            &mut snap,
            3,
            tcp(1, "10.0.0.1:8000", "10.0.0.2:15000", "ESTAB"),
        );
        let inbound = |snap: &Snapshot| {
            let ctx = Ctx::new(snap);
            Conn::tcp(&ctx)
                .next()
                .expect("the connection")
                .is_inbound(&ctx)
        };
        assert!(!inbound(&snap), "Linux's default range starts at 32768");
        snap.ephemeral_ports = Some(PortRange {
            first: 10000,
            last: 20000,
        });
        assert!(inbound(&snap), "the host's range has 15000");
    }
}
