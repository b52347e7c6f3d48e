//! netlink_diag: netlink sockets over NETLINK_SOCK_DIAG (struct netlink_diag_req and
//! netlink_diag_msg, include/uapi/linux/netlink_diag.h); see sock_diag(7) and netlink(7).
//!
//! Hand-written: netlink-packet-sock-diag 0.5 covers only inet and unix. Both structs are a few
//! fixed fields; only family, protocol and port id are used.

use crate::error::ReadError;
use hangscope_model::NetlinkSocket;

const AF_NETLINK: u8 = 16;
/// NDIAG_PROTO_ALL: every netlink protocol in one dump.
const NDIAG_PROTO_ALL: u8 = 255;
/// sizeof(struct netlink_diag_msg).
const MSG_LEN: usize = 28;

/// The body of a dump request for every netlink socket (20 bytes, no attributes asked for).
pub fn request() -> Vec<u8> {
    let mut buf = vec![0u8; 20];
    buf[0] = AF_NETLINK;
    buf[1] = NDIAG_PROTO_ALL;
    // ndiag_ino 0, ndiag_show 0, cookie ignored for dumps.
    buf[12..20].fill(0xff);
    buf
}

/// NETLINK_* protocol names (include/uapi/linux/netlink.h).
pub fn protocol_name(p: u8) -> String {
    match p {
        0 => "route",
        2 => "usersock",
        3 => "firewall",
        4 => "sock_diag",
        5 => "nflog",
        6 => "xfrm",
        7 => "selinux",
        8 => "iscsi",
        9 => "audit",
        10 => "fib_lookup",
        11 => "connector",
        12 => "netfilter",
        13 => "ip6_fw",
        14 => "dnrtmsg",
        15 => "kobject_uevent",
        16 => "generic",
        18 => "scsitransport",
        19 => "ecryptfs",
        20 => "rdma",
        21 => "crypto",
        22 => "smc",
        _ => return format!("protocol {p}"),
    }
    .into()
}

/// Parses one reply body into (inode, socket).
pub fn parse(msg: &[u8]) -> Result<(u64, NetlinkSocket), ReadError> {
    if msg.len() < MSG_LEN {
        return Err(ReadError::malformed(format!(
            "netlink_diag_msg of {} bytes",
            msg.len()
        )));
    }
    let u32_at = |o: usize| u32::from_ne_bytes([msg[o], msg[o + 1], msg[o + 2], msg[o + 3]]);
    let protocol = msg[2];
    Ok((
        u64::from(u32_at(16)),
        NetlinkSocket {
            protocol,
            protocol_name: protocol_name(protocol),
            portid: u32_at(4),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header() {
        let mut msg = vec![AF_NETLINK, 3, 0, 7];
        msg.extend_from_slice(&1234u32.to_ne_bytes()); // portid
        msg.extend_from_slice(&0u32.to_ne_bytes()); // dst_portid
        msg.extend_from_slice(&0u32.to_ne_bytes()); // dst_group
        msg.extend_from_slice(&99u32.to_ne_bytes()); // ino
        msg.extend_from_slice(&[0u8; 8]);
        let (ino, s) = parse(&msg).expect("parses");
        assert_eq!(ino, 99);
        assert_eq!(s.protocol_name, "route");
        assert_eq!(s.portid, 1234);
        assert!(parse(&msg[..20]).is_err());
    }
}
