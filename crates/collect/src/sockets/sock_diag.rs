//! One NETLINK_SOCK_DIAG dump: send a SOCK_DIAG_BY_FAMILY request with NLM_F_DUMP, collect every
//! reply message up to NLMSG_DONE; see sock_diag(7) and netlink(7).
//!
//! The request bodies and the reply bodies are built and parsed by the per-family modules
//! (inet_diag, unix_diag, netlink_diag, packet_diag); this module only frames. The socket lives
//! in whatever network namespace the calling thread is in when it is created, which is how the
//! dump reaches the target's namespace (see `netns`).

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer,
};
use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

const NLMSG_HDRLEN: usize = 16;

/// An open NETLINK_SOCK_DIAG socket in the creating thread's network namespace.
pub struct SockDiag {
    sock: Socket,
    seq: u32,
    /// One receive buffer for the whole dump. Large on purpose: the kernel sizes a dump's
    /// batches by the largest buffer it has seen the reader use (up to 32 KiB), so a big
    /// buffer means ~8 times fewer receives than sizing each one to a peeked length.
    buf: Vec<u8>,
}

/// Larger than any batch the kernel sends in a dump (32 KiB, net/netlink/af_netlink.c).
const RECV_BUF: usize = 64 * 1024;

/// The reply bodies of one dump (each one struct *_diag_msg followed by its attributes), and
/// whether the kernel said the dump was interrupted by a concurrent change.
#[derive(Debug, Default)]
pub struct Dump {
    pub messages: Vec<Vec<u8>>,
    pub interrupted: bool,
}

impl SockDiag {
    /// Opens the socket. `timeout` bounds every receive: a dump never hangs the tool.
    pub fn open(timeout: Duration) -> io::Result<SockDiag> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let tv = libc::timeval {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_usec: timeout.subsec_micros().max(1) as libc::suseconds_t,
        };
        // SAFETY: setsockopt with a valid timeval of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SockDiag {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Sends one dump request whose body is `request` (struct inet_diag_req_v2,
    /// unix_diag_req, ...) and reads the whole reply.
    pub fn dump(&mut self, request: &[u8]) -> io::Result<Dump> {
        let mut messages = Vec::new();
        let interrupted = self.dump_each(request, &mut |m| messages.push(m.to_vec()))?;
        Ok(Dump {
            messages,
            interrupted,
        })
    }

    /// Sends one request for a single socket (no NLM_F_DUMP) and returns its reply body, or
    /// `None` when the kernel has no such socket (ENOENT).
    pub fn lookup(&mut self, request: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let seq = self.send(request, NLM_F_REQUEST)?;
        // The reply is one message, or an error; nothing else follows it.
        for _ in 0..8 {
            self.buf.clear();
            let n = self.sock.recv(&mut self.buf, libc::MSG_TRUNC)?;
            if n > self.buf.len() || n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("netlink reply of {n} bytes"),
                ));
            }
            let nl = NetlinkBuffer::new_checked(&self.buf[..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if nl.sequence_number() != seq {
                continue; // a late reply to an earlier request
            }
            let payload = nl.payload();
            return match nl.message_type() {
                NLMSG_ERROR => match error_of(payload) {
                    0 => Ok(None),
                    e if e == -libc::ENOENT => Ok(None),
                    e => Err(error_from(e)),
                },
                _ => Ok(Some(payload.to_vec())),
            };
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no reply to the lookup among the next messages",
        ))
    }

    /// Frames `request` as a SOCK_DIAG_BY_FAMILY message with `flags`, sends it, and returns
    /// its sequence number.
    fn send(&mut self, request: &[u8], flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut msg = vec![0u8; NLMSG_HDRLEN + request.len()];
        {
            let mut nl = NetlinkBuffer::new(&mut msg[..]);
            nl.set_length((NLMSG_HDRLEN + request.len()) as u32);
            nl.set_message_type(SOCK_DIAG_BY_FAMILY);
            nl.set_flags(flags);
            nl.set_sequence_number(seq);
            nl.set_port_number(0);
        }
        msg[NLMSG_HDRLEN..].copy_from_slice(request);
        self.sock.send(&msg, 0)?;
        Ok(seq)
    }

    /// Runs a dump and hands each reply message to `each` as it arrives, so a namespace with
    /// 100,000 sockets is never held in memory at once. Returns whether the kernel flagged the
    /// dump as interrupted (NLM_F_DUMP_INTR).
    pub fn dump_each(&mut self, request: &[u8], each: &mut dyn FnMut(&[u8])) -> io::Result<bool> {
        let seq = self.send(request, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut interrupted = false;
        loop {
            self.buf.clear();
            // MSG_TRUNC: the real length comes back even if it did not fit, so a batch larger
            // than the buffer is an error, never a silently cut message.
            let n = self.sock.recv(&mut self.buf, libc::MSG_TRUNC)?;
            if n > self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("netlink batch of {n} bytes exceeds the {RECV_BUF}-byte buffer"),
                ));
            }
            if self.buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "netlink socket closed mid-dump",
                ));
            }
            if walk_batch(&self.buf, seq, &mut interrupted, each)? {
                return Ok(interrupted);
            }
        }
    }
}

/// Walks the messages of one received batch, handing the bodies of the replies to request
/// `seq` to `each`. True when the dump ended in it (NLMSG_DONE, or an ACK); an NLMSG_ERROR or
/// a malformed header is an error. Apart from the socket so it is tested (and fuzzed) on bytes.
pub(crate) fn walk_batch(
    buf: &[u8],
    seq: u32,
    interrupted: &mut bool,
    each: &mut dyn FnMut(&[u8]),
) -> io::Result<bool> {
    let mut off = 0usize;
    while off + NLMSG_HDRLEN <= buf.len() {
        let nl = NetlinkBuffer::new_checked(&buf[off..])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let len = nl.length() as usize;
        if len < NLMSG_HDRLEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("netlink message of length {len}"),
            ));
        }
        if nl.flags() & NLM_F_DUMP_INTR != 0 {
            *interrupted = true;
        }
        let payload = nl.payload();
        if nl.sequence_number() == seq {
            match nl.message_type() {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let errno = error_of(payload);
                    if errno == 0 {
                        return Ok(true); // an ACK
                    }
                    return Err(error_from(errno));
                }
                _ => each(payload),
            }
        }
        // Messages are 4-byte aligned (NLMSG_ALIGN).
        off += (len + 3) & !3;
    }
    Ok(false)
}

/// The error of a reply's negative errno. Anything else (`i32::MIN`, which has no negation,
/// or a positive one) is a reply not to be believed, said as such rather than a panic.
pub(crate) fn error_from(negative_errno: i32) -> io::Error {
    match negative_errno.checked_neg() {
        Some(e) if e > 0 => io::Error::from_raw_os_error(e),
        _ => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a reply with errno {negative_errno}, not a negative one"),
        ),
    }
}

/// The (negative) errno of an NLMSG_ERROR body; 0 is an ACK.
fn error_of(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzz/ (tests/fixtures/fuzz-regressions/sock_diag/error-errno-i32-min): an
    /// NLMSG_ERROR whose errno is i32::MIN panicked negating it.
    #[test]
    fn an_error_reply_with_an_errno_that_has_no_negation_is_an_error() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&20u32.to_ne_bytes()); // length
        msg.extend_from_slice(&NLMSG_ERROR.to_ne_bytes()); // type
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&7u32.to_ne_bytes()); // sequence
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port
        msg.extend_from_slice(&i32::MIN.to_ne_bytes()); // errno
        let mut interrupted = false;
        let err = walk_batch(&msg, 7, &mut interrupted, &mut |_| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert_eq!(error_from(-libc::ENOENT).raw_os_error(), Some(libc::ENOENT));
        assert_eq!(error_from(5).kind(), io::ErrorKind::InvalidData);
    }
}
