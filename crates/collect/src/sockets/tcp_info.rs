//! struct tcp_info (include/uapi/linux/tcp.h), the INET_DIAG_INFO attribute of a TCP socket in
//! a sock_diag dump; see sock_diag(7) and tcp(7) (TCP_INFO).
//!
//! Hand-written because the struct grew at its end across kernels (104 bytes on 2.6, 200 on
//! 4.18, 232 on 5.4..6.1, 280 on 6.18) and the kernel sends only what it knows, while
//! netlink-packet-sock-diag's `rich_nlas` parser wants at least 232 bytes and otherwise drops the
//! whole socket. Here every field is read at its fixed offset if the attribute reaches it;
//! fields the kernel did not send stay `None`. All fields are host-endian.

use hangscope_model::TcpInfo;

/// Bytes of the fixed, always-present part: everything up to and including tcpi_total_retrans.
pub const MIN_LEN: usize = 104;

/// Decodes a raw INET_DIAG_INFO attribute by its length. `None` when it is shorter than the
/// oldest struct tcp_info any kernel sends (then it is not a tcp_info at all).
pub fn decode(raw: &[u8]) -> Option<TcpInfo> {
    if raw.len() < MIN_LEN {
        return None;
    }
    let b = |off: usize| raw[off];
    let u32_at = |off: usize| -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&raw[off..off + 4]);
        u32::from_ne_bytes(a)
    };
    // Optional fields: present only when the attribute reaches their end.
    let o16 = |off: usize| -> Option<u16> {
        raw.get(off..off + 2).map(|s| {
            let mut a = [0u8; 2];
            a.copy_from_slice(s);
            u16::from_ne_bytes(a)
        })
    };
    let o32 = |off: usize| -> Option<u32> {
        raw.get(off..off + 4).map(|s| {
            let mut a = [0u8; 4];
            a.copy_from_slice(s);
            u32::from_ne_bytes(a)
        })
    };
    let o64 = |off: usize| -> Option<u64> {
        raw.get(off..off + 8).map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_ne_bytes(a)
        })
    };
    Some(TcpInfo {
        len: raw.len(),
        state: b(0),
        ca_state: b(1),
        retransmits: b(2),
        probes: b(3),
        backoff: b(4),
        options: b(5),
        // `__u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;` — GCC allocates bitfields from the
        // low bits on little-endian targets, from the high bits on big-endian ones.
        snd_wscale: if cfg!(target_endian = "little") {
            b(6) & 0x0f
        } else {
            b(6) >> 4
        },
        rcv_wscale: if cfg!(target_endian = "little") {
            b(6) >> 4
        } else {
            b(6) & 0x0f
        },
        rto_us: u32_at(8),
        ato_us: u32_at(12),
        snd_mss: u32_at(16),
        rcv_mss: u32_at(20),
        unacked: u32_at(24),
        sacked: u32_at(28),
        lost: u32_at(32),
        retrans: u32_at(36),
        fackets: u32_at(40),
        last_data_sent_ms: u32_at(44),
        last_ack_sent_ms: u32_at(48),
        last_data_recv_ms: u32_at(52),
        last_ack_recv_ms: u32_at(56),
        pmtu: u32_at(60),
        rcv_ssthresh: u32_at(64),
        rtt_us: u32_at(68),
        rttvar_us: u32_at(72),
        snd_ssthresh: u32_at(76),
        snd_cwnd: u32_at(80),
        advmss: u32_at(84),
        reordering: u32_at(88),
        rcv_rtt_us: u32_at(92),
        rcv_space: u32_at(96),
        total_retrans: u32_at(100),
        // 3.15+
        pacing_rate: o64(104),
        max_pacing_rate: o64(112),
        // 4.1+ / 4.2+
        bytes_acked: o64(120),
        bytes_received: o64(128),
        segs_out: o32(136),
        segs_in: o32(140),
        // 4.6+
        notsent_bytes: o32(144),
        min_rtt_us: o32(148),
        data_segs_in: o32(152),
        data_segs_out: o32(156),
        // 4.9+ / 4.10+
        delivery_rate: o64(160),
        busy_time_us: o64(168),
        rwnd_limited_us: o64(176),
        sndbuf_limited_us: o64(184),
        // 4.18: struct ends after delivered_ce, 200 bytes.
        delivered: o32(192),
        delivered_ce: o32(196),
        // 4.19+
        bytes_sent: o64(200),
        bytes_retrans: o64(208),
        dsack_dups: o32(216),
        reord_seen: o32(220),
        // 5.4+
        rcv_ooopack: o32(224),
        snd_wnd: o32(228),
        // 6.2+ (232 bytes before)
        rcv_wnd: o32(232),
        rehash: o32(236),
        // 6.7+
        total_rto: o16(240),
        total_rto_recoveries: o16(242),
        total_rto_time: o32(244),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sockets::netlink_fixture as fixture;

    /// What every length shares: the capture is a loopback client that sent 5 bytes, got them
    /// acked, and received nothing.
    fn common(t: &TcpInfo) {
        assert_eq!(t.state, 1, "ESTABLISHED");
        assert_eq!(t.options, 7, "timestamps, SACK, window scaling");
        assert_eq!((t.snd_wscale, t.rcv_wscale), (10, 10));
        assert_eq!(t.rto_us, 204_000);
        assert_eq!(t.snd_mss, 32768);
        assert_eq!(t.unacked, 0);
        assert_eq!(t.last_data_sent_ms, 200);
        assert_eq!(t.rtt_us, 24);
        assert_eq!(t.bytes_acked, Some(6), "5 bytes + the SYN");
        assert_eq!(t.bytes_received, Some(0));
        assert_eq!((t.segs_out, t.segs_in), (Some(3), Some(2)));
    }

    #[test]
    fn linux_6_18_full_280_bytes() {
        let raw = fixture("tcp_info-linux-6.18-280b.hex");
        assert_eq!(raw.len(), 280);
        let t = decode(&raw).expect("decodes");
        assert_eq!(t.len, 280);
        common(&t);
        assert_eq!(t.bytes_sent, Some(5));
        assert_eq!(t.snd_wnd, Some(65536));
        assert_eq!(t.rcv_wnd, Some(65536));
        assert_eq!(t.total_rto, Some(0));
        assert_eq!(t.total_rto_time, Some(0));
    }

    #[test]
    fn linux_5_4_length_232_bytes() {
        let raw = fixture("tcp_info-linux-6.18-truncated-232b.hex");
        assert_eq!(raw.len(), 232);
        let t = decode(&raw).expect("decodes");
        common(&t);
        assert_eq!(t.bytes_sent, Some(5));
        assert_eq!(t.snd_wnd, Some(65536));
        assert_eq!(t.rcv_wnd, None);
        assert_eq!(t.total_rto, None);
    }

    #[test]
    fn linux_4_18_length_200_bytes() {
        let raw = fixture("tcp_info-linux-6.18-truncated-200b.hex");
        assert_eq!(raw.len(), 200);
        let t = decode(&raw).expect("decodes: the crate's rich_nlas parser would drop it");
        common(&t);
        assert!(t.delivered.is_some() && t.delivered_ce.is_some());
        assert_eq!(t.bytes_sent, None);
        assert_eq!(t.snd_wnd, None);
        assert_eq!(t.rcv_wnd, None);
    }

    #[test]
    fn too_short_is_not_tcp_info() {
        assert_eq!(decode(&[0u8; MIN_LEN - 1]), None);
    }

    #[test]
    fn fixed_part_only() {
        let mut raw = vec![0u8; MIN_LEN];
        raw[0] = 1;
        raw[6] = 0x97;
        raw[68..72].copy_from_slice(&1234u32.to_ne_bytes());
        raw[100..104].copy_from_slice(&5u32.to_ne_bytes());
        let t = decode(&raw).expect("104 bytes decode");
        assert_eq!(t.state, 1);
        assert_eq!((t.snd_wscale, t.rcv_wscale), (7, 9));
        assert_eq!(t.rtt_us, 1234);
        assert_eq!(t.total_retrans, 5);
        assert_eq!(t.pacing_rate, None);
        assert_eq!(t.bytes_acked, None);
    }
}
