//! Sockets: every socket fd of the target joined to what the kernel knows of it, read with
//! NETLINK_SOCK_DIAG in the target's network namespace; see sock_diag(7).
//!
//! Order of work: one dump per family/protocol (TCP and UDP over IPv4 and IPv6, UNIX, netlink,
//! packet) starts on its own thread before the fds are listed, so it runs on the other core
//! while the links are read; inet replies that arrive before the target's socket inodes are
//! known are kept raw (up to `EARLY_BYTES`) and filtered once they are. Then the socket fds no
//! dump returned are read again, and an fd whose inode changed in between is marked, not
//! merged. Only after that come the slower joins: the other end of each TCP connection to this
//! host (from the dump when the target holds both ends, else one exact lookup each), that and
//! each UNIX peer to its holder (one system-wide /proc scan), and port names.
//!
//! A socket fd that no dump returned is still listed, with the likely reason. When netlink is
//! unavailable, /proc/PID/net/* stands in and a gap says so.

pub mod inet_diag;
mod local_peers;
pub mod netlink_diag;
pub mod netns;
pub mod owner;
pub mod packet_diag;
pub mod proc_net;
pub mod services;
pub mod sock_diag;
pub mod tcp_info;
pub mod unix_diag;
pub mod window;

/// Reads a recorded netlink message or attribute from tests/fixtures/netlink/ (see its README):
/// the last line of the file that is not a comment, as hex.
#[cfg(test)]
pub(crate) fn netlink_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/netlink/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    let hex = text
        .lines()
        .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
        .expect("a hex line");
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

use std::io;
use std::time::Duration;

use hangscope_model::GapReason;

mod dumped;
mod dumps;
pub mod exact;
mod join;
mod peers;
mod pending;
mod ports;
mod probe;

pub use dumps::{Dumps, Wanted, WantedInodes, WantedSender, dump_all};
pub use join::read;
pub(crate) use join::tcp_of;
pub use pending::{PendingDumps, start_dumps};

pub const SOURCE_SOCK_DIAG: &str = "sock_diag";
pub const SOURCE_PROC_NET: &str = "/proc/net";
pub const SOURCE_NONE: &str = "none";

/// Longest wait for any one netlink reply.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a sock_diag request failed: as any read, except that ENOENT there means the kernel has
/// no diag module for the family (inet_diag, unix_diag... not loaded or built), not a process
/// gone.
fn sock_diag_reason(e: &io::Error) -> GapReason {
    match e.raw_os_error() {
        Some(libc::ENOENT) => GapReason::Unsupported,
        _ => crate::error::reason_of(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_of_errors_with_sock_diag_s_enoent() {
        let os = io::Error::from_raw_os_error;
        // The reasons the sockets reader had of its own, now the crate's.
        assert_eq!(sock_diag_reason(&os(libc::EAGAIN)), GapReason::Deadline);
        assert_eq!(
            sock_diag_reason(&os(libc::EAFNOSUPPORT)),
            GapReason::Unsupported
        );
        assert_eq!(sock_diag_reason(&os(libc::EPERM)), GapReason::Permission);
        // ENOENT: no diag module for the family, where a /proc read means a process gone.
        assert_eq!(sock_diag_reason(&os(libc::ENOENT)), GapReason::Unsupported);
        assert_eq!(
            crate::error::reason_of(&os(libc::ENOENT)),
            GapReason::Vanished
        );
    }
}
