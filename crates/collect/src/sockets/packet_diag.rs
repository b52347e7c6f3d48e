//! packet_diag: AF_PACKET sockets over NETLINK_SOCK_DIAG (struct packet_diag_req and
//! packet_diag_msg, include/uapi/linux/packet_diag.h); see sock_diag(7) and packet(7).
//!
//! Hand-written: netlink-packet-sock-diag 0.5 covers only inet and unix. Only type, protocol and
//! the bound interface (PACKET_DIAG_INFO) are used.

use crate::error::ReadError;
use netlink_packet_core::{NLA_TYPE_MASK, NlasIterator};

use hangscope_model::PacketSocket;

use super::unix_diag::sock_type_name;

const AF_PACKET: u8 = 17;
const PACKET_SHOW_INFO: u32 = 1;
const PACKET_DIAG_INFO: u16 = 0;
/// sizeof(struct packet_diag_msg).
const MSG_LEN: usize = 16;

/// The body of a dump request for every packet socket, with PACKET_DIAG_INFO.
pub fn request() -> Vec<u8> {
    let mut buf = vec![0u8; 20];
    buf[0] = AF_PACKET;
    buf[8..12].copy_from_slice(&PACKET_SHOW_INFO.to_ne_bytes());
    buf[12..20].fill(0xff);
    buf
}

/// Parses one reply body into (inode, socket).
pub fn parse(msg: &[u8]) -> Result<(u64, PacketSocket), ReadError> {
    if msg.len() < MSG_LEN {
        return Err(ReadError::malformed(format!(
            "packet_diag_msg of {} bytes",
            msg.len()
        )));
    }
    let inode = u32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    let mut s = PacketSocket {
        sock_type: sock_type_name(msg[1]),
        // pdiag_num is the protocol in network byte order, as given to socket(2).
        protocol: u16::from_be_bytes([msg[2], msg[3]]),
        ifindex: None,
    };
    for nla in NlasIterator::new(&msg[MSG_LEN..]) {
        let Ok(nla) = nla else { break };
        let v = nla.value();
        if nla.kind() & NLA_TYPE_MASK == PACKET_DIAG_INFO && v.len() >= 4 {
            // struct packet_diag_info starts with pdi_index; 0 means not bound to one.
            let idx = i32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
            s.ifindex = (idx != 0).then_some(idx);
        }
    }
    Ok((u64::from(inode), s))
}
