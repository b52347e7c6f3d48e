//! The sock_diag dumps of the target's network namespace, and the wait for its socket inodes
//! that filters them.

use std::collections::HashSet;
use std::time::Duration;

use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};

use super::inet_diag;
use super::sock_diag::SockDiag;
use super::unix_diag;
use super::{local_peers, netlink_diag, packet_diag};
use crate::Deadline;

pub use super::dumped::Dumps;

/// The target's socket fds, known once its fd links are read.
#[derive(Debug, Default)]
pub struct Wanted {
    pub inodes: HashSet<u64>,
    /// (fd, inode) of each socket fd: for the exact lookups of a target with few.
    pub fds: Vec<(i32, u64)>,
}

impl Wanted {
    pub fn of(fds: &[hangscope_model::Fd]) -> Wanted {
        let fds = super::exact::pairs(fds);
        Wanted {
            inodes: fds.iter().map(|&(_, i)| i).collect(),
            fds,
        }
    }
}

/// The target's socket inodes, which are known only once its fd links are read: the dumps
/// start before that, on the other core, and keep what arrives early as raw messages.
pub struct WantedInodes {
    rx: std::sync::mpsc::Receiver<Wanted>,
    known: Option<Wanted>,
    deadline: Deadline,
}

/// Where the inode set is sent from, once the links are read. Dropped unsent means none.
pub type WantedSender = std::sync::mpsc::SyncSender<Wanted>;

impl WantedInodes {
    pub fn channel(deadline: Deadline) -> (WantedSender, WantedInodes) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let wanted = WantedInodes {
            rx,
            known: None,
            deadline,
        };
        (tx, wanted)
    }

    /// The set if it has arrived, without waiting.
    fn peek(&mut self) -> Option<&HashSet<u64>> {
        if self.known.is_none() {
            self.known = self.rx.try_recv().ok();
        }
        self.known.as_ref().map(|w| &w.inodes)
    }

    /// The fds if they arrive within `limit` (and the deadline).
    fn wait_for(&mut self, limit: Duration) -> Option<&Wanted> {
        if self.known.is_none() {
            self.known = self
                .rx
                .recv_timeout(limit.min(self.deadline.remaining()))
                .ok();
        }
        self.known.as_ref()
    }

    /// The set, waiting for it until the deadline; empty if it never comes.
    fn wait(&mut self) -> &HashSet<u64> {
        if self.known.is_none() {
            let set = self.rx.recv_timeout(self.deadline.remaining()).ok();
            self.known = Some(set.unwrap_or_default());
        }
        &self.known.get_or_insert_with(Wanted::default).inodes
    }
}

/// Raw inet replies held until the inode set is known beyond this size; then the dump waits.
const EARLY_BYTES: usize = 8 << 20;

/// How long the dump thread waits for the fds of a target that looks small (`fd_hint`, the
/// size of /proc/PID/fd: its count on Linux 6.2+, 0 before) before it starts the dumps: a
/// listing of a few hundred fds takes a millisecond.
fn exact_wait(fd_hint: u64) -> Option<Duration> {
    match fd_hint {
        0 => Some(Duration::from_millis(5)),
        1..=256 => Some(Duration::from_millis(50)),
        _ => None,
    }
}

/// Runs every dump in the calling thread's network namespace, keeping the inet, netlink and
/// packet sockets whose inode is in `wanted`; or for a target `pid` with few sockets, reads
/// them by exact lookups instead (`exact`), which give the same answer.
pub fn dump_all(mut wanted: WantedInodes, timeout: Duration, pid: i32, fd_hint: u64) -> Dumps {
    let mut d = Dumps::default();
    let mut nl = match SockDiag::open(timeout) {
        Ok(s) => s,
        Err(e) => {
            d.failures.push(("NETLINK_SOCK_DIAG socket".into(), e));
            return d;
        }
    };
    if let Some(limit) = exact_wait(fd_hint)
        && let Some(w) = wanted.wait_for(limit)
        && !w.fds.is_empty()
        && w.fds.len() <= super::exact::MAX_SOCKETS
    {
        crate::stage::mark("  (sockets) exact lookups");
        let mut exact = Dumps::default();
        // On Err the namespace is dumped instead: see `exact`.
        if let Ok(x) = super::exact::read(&mut nl, pid, &w.fds, &mut exact) {
            let inodes = w.inodes.clone();
            if x.need_small_dumps {
                small_dumps(&mut nl, &mut exact, &inodes);
            } else {
                exact.netlink_ok = true;
                exact.packet_ok = true;
            }
            let deadline = wanted.deadline;
            crate::stage::mark("  (sockets) local peers");
            local_peers::find(&mut nl, &mut exact, &deadline);
            crate::stage::mark("  (sockets) done");
            return exact;
        }
    }
    let mut inet_failed = false;
    // (protocol, dump name, message) received before the inode set was known.
    let mut early: Vec<(u8, usize, Vec<u8>)> = Vec::new();
    let mut early_bytes = 0usize;
    let mut names = Vec::new();
    for (family, fam_name) in [(AF_INET, "4"), (AF_INET6, "6")] {
        for (proto, proto_name) in [(IPPROTO_TCP, "tcp"), (IPPROTO_UDP, "udp")] {
            if wanted.peek().is_some_and(|set| set.is_empty()) {
                return d; // no socket fds: nothing to join
            }
            let what = format!("{proto_name}{fam_name}");
            names.push(what.clone());
            let name = names.len() - 1;
            let mut each = |m: &[u8]| {
                if proto == IPPROTO_TCP
                    && let Some(l) = inet_diag::listener_of(m)
                {
                    d.listeners.insert(l);
                }
                let set = match wanted.peek() {
                    Some(set) => {
                        // Sized once: growing a map of 10,000 entries rehashes it a dozen times.
                        d.inet.reserve(set.len().saturating_sub(d.inet.len()));
                        set
                    }
                    None if early_bytes < EARLY_BYTES => {
                        early_bytes += m.len();
                        early.push((proto, name, m.to_vec()));
                        return;
                    }
                    None => wanted.wait(),
                };
                keep_inet(&mut d, set, proto, &what, m);
            };
            match nl.dump_each(&inet_diag::request(family, proto), &mut each) {
                Ok(interrupted) => {
                    if interrupted {
                        d.interrupted.push(what.clone());
                    }
                }
                Err(e) => {
                    inet_failed = true;
                    d.failures.push((format!("{what} dump"), e));
                }
            }
        }
    }
    d.inet_ok = !inet_failed;
    let deadline = wanted.deadline;
    let wanted = wanted.wait();
    d.inet.reserve(wanted.len().saturating_sub(d.inet.len()));
    for (proto, name, m) in early {
        keep_inet(&mut d, wanted, proto, &names[name], &m);
    }
    local_peers::find(&mut nl, &mut d, &deadline);
    if wanted.is_empty() {
        // No socket fds after all (or none known before the deadline): nothing to join.
        return d;
    }
    match nl.dump(&unix_diag::request()) {
        Ok(dump) => {
            d.unix_ok = true;
            if dump.interrupted {
                d.interrupted.push("unix".into());
            }
            for m in &dump.messages {
                match unix_diag::parse(m) {
                    Ok(e) => {
                        d.unix.insert(e.inode, e);
                    }
                    Err(why) => d.malformed.push(format!("unix: {why}")),
                }
            }
        }
        Err(e) => d.failures.push(("unix dump".into(), e)),
    }
    small_dumps(&mut nl, &mut d, wanted);
    d
}

/// The netlink and packet dumps, keeping the sockets in `wanted`.
fn small_dumps(nl: &mut SockDiag, d: &mut Dumps, wanted: &HashSet<u64>) {
    match nl.dump(&netlink_diag::request()) {
        Ok(dump) => {
            d.netlink_ok = true;
            for m in &dump.messages {
                match netlink_diag::parse(m) {
                    Ok((ino, s)) if wanted.contains(&ino) => {
                        d.netlink.insert(ino, s);
                    }
                    Ok(_) => {}
                    Err(why) => d.malformed.push(format!("netlink: {why}")),
                }
            }
        }
        Err(e) => d.failures.push(("netlink dump".into(), e)),
    }
    match nl.dump(&packet_diag::request()) {
        Ok(dump) => {
            d.packet_ok = true;
            for m in &dump.messages {
                match packet_diag::parse(m) {
                    Ok((ino, s)) if wanted.contains(&ino) => {
                        d.packet.insert(ino, s);
                    }
                    Ok(_) => {}
                    Err(why) => d.malformed.push(format!("packet: {why}")),
                }
            }
        }
        Err(e) => d.failures.push(("packet dump".into(), e)),
    }
}

/// Parses one inet reply and keeps it if it is one of `wanted`.
fn keep_inet(d: &mut Dumps, wanted: &HashSet<u64>, proto: u8, what: &str, m: &[u8]) {
    // The inode first: most of a busy namespace's sockets are not the target's.
    if inet_diag::inode_of(m).is_some_and(|i| !wanted.contains(&i)) {
        return;
    }
    match inet_diag::parse(proto, m) {
        Ok(e) if wanted.contains(&e.inode) => {
            for u in &e.undecoded {
                d.malformed
                    .push(format!("{what} socket:[{}]: {u}", e.inode));
            }
            d.inet.insert(e.inode, e);
        }
        Ok(_) => {}
        Err(why) => d.malformed.push(format!("{what}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_inodes_arrive_later_or_never() {
        let (tx, mut wanted) = WantedInodes::channel(Deadline::after(Duration::from_secs(5)));
        assert!(wanted.peek().is_none(), "not sent yet");
        tx.send(Wanted {
            inodes: HashSet::from([7, 9]),
            fds: vec![(3, 7), (4, 9)],
        })
        .unwrap();
        assert_eq!(wanted.peek(), Some(&HashSet::from([7, 9])));
        assert_eq!(wanted.wait(), &HashSet::from([7, 9]));

        let (tx, mut never) = WantedInodes::channel(Deadline::after(Duration::from_secs(5)));
        drop(tx); // the fd listing failed before it knew any socket
        assert!(never.wait().is_empty());
    }
}
