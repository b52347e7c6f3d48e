//! unix_diag: UNIX sockets over NETLINK_SOCK_DIAG (struct unix_diag_req and unix_diag_msg,
//! include/uapi/linux/unix_diag.h); see sock_diag(7) and unix(7).
//!
//! The request goes through netlink-packet-sock-diag. The reply is read here: the header is 16
//! bytes and the three attributes asked for (name, peer, queue lengths) are a few bytes each;
//! reading them one by one means an attribute the crate would reject costs only itself.

use netlink_packet_core::{Emitable, NLA_TYPE_MASK, NlasIterator};
use netlink_packet_sock_diag::constants::{UNIX_DIAG_NAME, UNIX_DIAG_PEER, UNIX_DIAG_RQLEN};
use netlink_packet_sock_diag::unix::{ShowFlags, StateFlags, UnixRequest};

use crate::error::ReadError;
use hangscope_model::{TcpState, Text, UnixSocket};

/// sizeof(struct unix_diag_msg).
const MSG_LEN: usize = 16;

#[derive(Debug, Clone)]
pub struct UnixEntry {
    pub inode: u64,
    pub socket: UnixSocket,
}

/// The body of a dump request for every UNIX socket, with name, peer and queue lengths.
pub fn request() -> Vec<u8> {
    let req = UnixRequest {
        state_flags: StateFlags::from_bits_retain(u32::MAX),
        inode: 0,
        show_flags: ShowFlags::NAME | ShowFlags::PEER | ShowFlags::RQLEN,
        cookie: [0xff; 8],
    };
    let mut buf = vec![0u8; req.buffer_len()];
    req.emit(&mut buf);
    buf
}

/// The body of an exact lookup of the UNIX socket with inode `inode` (unix_diag_get_exact),
/// asking for what the dump asks for.
pub fn lookup_request(inode: u32) -> Vec<u8> {
    let req = UnixRequest {
        state_flags: StateFlags::from_bits_retain(u32::MAX),
        inode,
        show_flags: ShowFlags::NAME | ShowFlags::PEER | ShowFlags::RQLEN,
        cookie: [0xff; 8],
    };
    let mut buf = vec![0u8; req.buffer_len()];
    req.emit(&mut buf);
    buf
}

/// "STREAM", "DGRAM", "SEQPACKET" for SOCK_* (include/linux/net.h).
pub fn sock_type_name(t: u8) -> String {
    match t {
        1 => "STREAM".into(),
        2 => "DGRAM".into(),
        3 => "RAW".into(),
        5 => "SEQPACKET".into(),
        10 => "PACKET".into(),
        other => format!("type {other}"),
    }
}

/// Parses one reply body.
pub fn parse(msg: &[u8]) -> Result<UnixEntry, ReadError> {
    if msg.len() < MSG_LEN {
        return Err(ReadError::malformed(format!(
            "unix_diag_msg of {} bytes",
            msg.len()
        )));
    }
    let inode = u32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    let mut socket = UnixSocket {
        sock_type: sock_type_name(msg[1]),
        state: TcpState::from_kernel(msg[2]),
        ..UnixSocket::default()
    };
    for nla in NlasIterator::new(&msg[MSG_LEN..]) {
        let Ok(nla) = nla else { break };
        let v = nla.value();
        match nla.kind() & NLA_TYPE_MASK {
            UNIX_DIAG_NAME => socket.path = Some(path_of(v)),
            UNIX_DIAG_PEER if v.len() >= 4 => {
                socket.peer_inode = u64::from(u32::from_ne_bytes([v[0], v[1], v[2], v[3]]));
            }
            UNIX_DIAG_RQLEN if v.len() >= 8 => {
                socket.recv_q = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
                socket.send_q = u32::from_ne_bytes([v[4], v[5], v[6], v[7]]);
            }
            _ => {}
        }
    }
    Ok(UnixEntry {
        inode: u64::from(inode),
        socket,
    })
}

/// sun_path as ss prints it: abstract names (leading NUL) get "@"; a path may or may not carry
/// its terminating NUL.
fn path_of(raw: &[u8]) -> Text {
    match raw.split_first() {
        Some((0, rest)) => Text::from_bytes([b"@", rest].concat()),
        _ => {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            Text::from_bytes(&raw[..end])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_and_path_names() {
        assert_eq!(path_of(b"\0dbus-x"), "@dbus-x");
        assert_eq!(path_of(b"/run/x.sock\0"), "/run/x.sock");
        assert_eq!(path_of(b"/run/x.sock"), "/run/x.sock");
    }

    #[test]
    fn header_and_attributes() {
        let mut msg = vec![1u8, 1, 1, 0];
        msg.extend_from_slice(&4242u32.to_ne_bytes());
        msg.extend_from_slice(&[0u8; 8]);
        // UNIX_DIAG_PEER
        msg.extend_from_slice(&8u16.to_ne_bytes());
        msg.extend_from_slice(&UNIX_DIAG_PEER.to_ne_bytes());
        msg.extend_from_slice(&4343u32.to_ne_bytes());
        // UNIX_DIAG_RQLEN
        msg.extend_from_slice(&12u16.to_ne_bytes());
        msg.extend_from_slice(&UNIX_DIAG_RQLEN.to_ne_bytes());
        msg.extend_from_slice(&7u32.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        let e = parse(&msg).expect("parses");
        assert_eq!(e.inode, 4242);
        assert_eq!(e.socket.sock_type, "STREAM");
        assert_eq!(e.socket.state.as_str(), "ESTAB");
        assert_eq!(e.socket.peer_inode, 4343);
        assert_eq!(e.socket.recv_q, 7);
    }
}
