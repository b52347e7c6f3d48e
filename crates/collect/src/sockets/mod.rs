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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::time::Duration;

use hangscope_model::{
    Fd, Gap, GapReason, NetlinkSocket, PacketSocket, PeerHolder, Process, Socket, SocketDetail,
    SocketFamily, UnixPeer,
};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};

use crate::Deadline;
use crate::holders;
use crate::{Options, ProcRoot};
use inet_diag::InetEntry;
use services::Services;
use sock_diag::SockDiag;
use unix_diag::UnixEntry;

pub const SOURCE_SOCK_DIAG: &str = "sock_diag";
pub const SOURCE_PROC_NET: &str = "/proc/net";
pub const SOURCE_NONE: &str = "none";

/// Longest wait for any one netlink reply.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

/// What the dumps returned, already filtered to the sockets that matter.
#[derive(Debug, Default)]
pub struct Dumps {
    pub inet: HashMap<u64, InetEntry>,
    /// Every UNIX socket of the namespace: peers' names are looked up here too.
    pub unix: HashMap<u64, UnixEntry>,
    pub netlink: HashMap<u64, NetlinkSocket>,
    pub packet: HashMap<u64, PacketSocket>,
    pub inet_ok: bool,
    pub unix_ok: bool,
    pub netlink_ok: bool,
    pub packet_ok: bool,
    /// (what, error) of each dump that failed.
    pub failures: Vec<(String, io::Error)>,
    /// Dumps the kernel flagged NLM_F_DUMP_INTR.
    pub interrupted: Vec<String>,
    /// Reply messages that did not parse.
    pub malformed: Vec<String>,
    /// Connections to this host whose other end was not looked up: over the cap or the deadline.
    pub peers_not_looked_up: usize,
    /// Exact lookups of a connection's other end that failed, with the first error.
    pub peer_lookup_failures: (usize, Option<String>),
    /// Every TCP listening address of the namespace, whoever holds it (IPv4-mapped addresses
    /// as IPv4): complete only when `inet_ok`.
    pub listeners: HashSet<std::net::SocketAddr>,
}

impl Dumps {
    /// Whether any dump returned the socket with this inode.
    pub fn contains(&self, inode: u64) -> bool {
        self.inet.contains_key(&inode)
            || self.unix.contains_key(&inode)
            || self.netlink.contains_key(&inode)
            || self.packet.contains_key(&inode)
    }
}

/// The target's socket inodes, which are known only once its fd links are read: the dumps
/// start before that, on the other core, and keep what arrives early as raw messages.
pub struct WantedInodes {
    rx: std::sync::mpsc::Receiver<HashSet<u64>>,
    known: Option<HashSet<u64>>,
    deadline: Deadline,
}

/// Where the inode set is sent from, once the links are read. Dropped unsent means none.
pub type WantedSender = std::sync::mpsc::SyncSender<HashSet<u64>>;

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
        self.known.as_ref()
    }

    /// The set, waiting for it until the deadline; empty if it never comes.
    fn wait(&mut self) -> &HashSet<u64> {
        if self.known.is_none() {
            let set = self.rx.recv_timeout(self.deadline.remaining()).ok();
            self.known = Some(set.unwrap_or_default());
        }
        self.known.get_or_insert_with(HashSet::new)
    }
}

/// Raw inet replies held until the inode set is known beyond this size; then the dump waits.
const EARLY_BYTES: usize = 8 << 20;

/// Runs every dump in the calling thread's network namespace, keeping the inet, netlink and
/// packet sockets whose inode is in `wanted`.
pub fn dump_all(mut wanted: WantedInodes, timeout: Duration) -> Dumps {
    let mut d = Dumps::default();
    let mut nl = match SockDiag::open(timeout) {
        Ok(s) => s,
        Err(e) => {
            d.failures.push(("NETLINK_SOCK_DIAG socket".into(), e));
            return d;
        }
    };
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
    d
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

fn reason_of(e: &io::Error) -> GapReason {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => GapReason::Permission,
        Some(libc::ENOENT)
        | Some(libc::EINVAL)
        | Some(libc::EOPNOTSUPP)
        | Some(libc::EPROTONOSUPPORT)
        | Some(libc::EAFNOSUPPORT) => GapReason::Unsupported,
        Some(libc::EAGAIN) => GapReason::Deadline,
        _ => GapReason::Other,
    }
}

/// Reads the socket fds of `pid` again, right after the dumps: fd → current socket inode
/// (`None` when closed or no longer a socket). readlinkat on the open fd directory, as the
/// listing does, so the second look is as quick as the first.
fn reread(root: &ProcRoot, pid: i32, fds: &[(i32, u64)]) -> HashMap<i32, Option<u64>> {
    let Ok(dir) = nix::dir::Dir::open(
        &root.pid(pid).join("fd"),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    ) else {
        return fds.iter().map(|&(fd, _)| (fd, None)).collect();
    };
    fds.iter()
        .map(|&(fd, _)| {
            let now = nix::fcntl::readlinkat(&dir, fd.to_string().as_str())
                .ok()
                .and_then(|t| {
                    t.to_str()
                        .and_then(|s| s.strip_prefix("socket:["))
                        .and_then(|s| s.strip_suffix(']'))
                        .and_then(|s| s.parse::<u64>().ok())
                });
            (fd, now)
        })
        .collect()
}

fn ns_label(pid: i32, process: &Process) -> String {
    match process.netns_inode {
        Some(i) => format!("netns {i}"),
        None => format!("the netns of {pid}"),
    }
}

/// The sock_diag dumps of one collection, under way on their own thread.
pub struct PendingDumps {
    state: PendingState,
    ns_label: String,
}

enum PendingState {
    Running(netns::Pending<Dumps>),
    /// Could not start: the gap to report and the reason sockets will not be found.
    Failed(Gap, String),
}

/// Starts the dumps in the target's network namespace on a thread of their own, before its
/// fd links are read: they take tens of milliseconds on a busy host, which then pass on the
/// other core while the links are read. The socket inodes are sent through the returned
/// sender once known; replies are filtered by them.
pub fn start_dumps(
    root: &ProcRoot,
    pid: i32,
    process: &Process,
    opts: &Options,
) -> (PendingDumps, WantedSender) {
    let ns_label = ns_label(pid, process);
    let (tx, wanted) = WantedInodes::channel(opts.deadline);
    let state = if opts.deadline.passed() {
        PendingState::Failed(
            Gap::new(
                format!("sockets of {pid}"),
                GapReason::Deadline,
                "not dumped: the deadline had passed",
            ),
            "the deadline passed before the socket dump".into(),
        )
    } else {
        let timeout = opts
            .deadline
            .remaining()
            .clamp(Duration::from_millis(1), RECV_TIMEOUT);
        let ns = if process.netns_same_as_tool == Some(true) {
            Ok(None)
        } else {
            let ns_path = root.pid(pid).join("ns/net");
            std::fs::File::open(&ns_path).map(Some).map_err(|e| {
                (
                    Gap::new(ns_path.display().to_string(), reason_of(&e), e.to_string()),
                    format!("{ns_label} could not be opened: {e}"),
                )
            })
        };
        match ns {
            Ok(ns) => match netns::spawn_in(ns, move || dump_all(wanted, timeout)) {
                Ok(p) => PendingState::Running(p),
                Err(why) => PendingState::Failed(
                    Gap::new(
                        format!("sock_diag in {ns_label}"),
                        GapReason::Other,
                        why.clone(),
                    ),
                    why,
                ),
            },
            Err((gap, why)) => PendingState::Failed(gap, why),
        }
    };
    (PendingDumps { state, ns_label }, tx)
}

impl PendingDumps {
    /// Waits for the dumps (bounded by the deadline); failures become gaps, and the second
    /// value says why sockets could not be found, for the not-found reasons.
    fn finish(self, deadline: &Deadline, gaps: &mut Vec<Gap>) -> (Dumps, Option<String>) {
        let ns_label = self.ns_label;
        match self.state {
            PendingState::Failed(gap, why) => {
                gaps.push(gap);
                (Dumps::default(), Some(why))
            }
            PendingState::Running(p) => match p.wait(deadline) {
                Ok(d) => (d, None),
                Err(why) => {
                    let reason = if why.contains("EPERM") {
                        GapReason::Permission
                    } else if why.contains("deadline") {
                        GapReason::Deadline
                    } else {
                        GapReason::Other
                    };
                    let gap = Gap::new(format!("sock_diag in {ns_label}"), reason, why.clone());
                    gaps.push(if why.starts_with("setns") {
                        gap.needing("root (CAP_SYS_ADMIN) to enter the namespace")
                    } else {
                        gap
                    });
                    (
                        Dumps::default(),
                        Some(format!("{ns_label} could not be entered: {why}")),
                    )
                }
            },
        }
    }
}

/// Joins every socket fd in `fds` to its socket, with the dumps `pending` started; see the
/// module header.
pub fn read(
    root: &ProcRoot,
    pid: i32,
    fds: &[Fd],
    process: &Process,
    opts: &Options,
    pending: PendingDumps,
    gaps: &mut Vec<Gap>,
) -> Vec<Socket> {
    let socket_fds: Vec<(i32, u64)> = fds
        .iter()
        .filter_map(|f| f.socket_inode.map(|i| (f.fd, i)))
        .collect();
    if socket_fds.is_empty() {
        // The dump thread sees the empty set and stops on its own.
        return Vec::new();
    }
    let ns_label = ns_label(pid, process);
    let (mut dumps, ns_problem) = pending.finish(&opts.deadline, gaps);

    // Only fds whose socket no dump returned can have changed in a way that matters: a socket
    // that was dumped existed with that inode, so its fd pointed at it when listed. Reading
    // just those keeps a 10,000-socket target from paying for a second readlink of every fd.
    let unmatched: Vec<(i32, u64)> = socket_fds
        .iter()
        .copied()
        .filter(|(_, ino)| !dumps.contains(*ino))
        .collect();
    let reread = reread(root, pid, &unmatched);

    for (what, e) in &dumps.failures {
        gaps.push(Gap::new(
            format!("sock_diag {what} in {ns_label}"),
            reason_of(e),
            e.to_string(),
        ));
    }
    for what in &dumps.interrupted {
        gaps.push(Gap::new(
            format!("sock_diag {what} dump"),
            GapReason::Other,
            "the kernel flagged the dump as interrupted by concurrent changes: a socket may be missing",
        ));
    }
    if !dumps.malformed.is_empty() {
        gaps.push(Gap::new(
            format!("{} sock_diag messages", dumps.malformed.len()),
            GapReason::Malformed,
            dumps.malformed.join("; "),
        ));
    }

    // 2. The fallback, only for what netlink could not give.
    let need_inet = !dumps.inet_ok;
    let need_unix = !dumps.unix_ok;
    // The namespace's TCP listeners, when every table that has them was read.
    let mut listeners = dumps.inet_ok.then(|| std::mem::take(&mut dumps.listeners));
    let (fb_inet, fb_unix) = if need_inet || need_unix {
        let mut errors = Vec::new();
        let r = proc_net::read(root, pid, need_inet, need_unix, &mut errors);
        if need_inet && errors.is_empty() {
            listeners = Some(proc_net::listeners(&r.0));
        }
        let tables = match (need_inet, need_unix) {
            (true, true) => "tcp, tcp6, udp, udp6, unix",
            (true, false) => "tcp, tcp6, udp, udp6",
            _ => "unix",
        };
        gaps.push(Gap::new(
            format!("sock_diag for {pid}"),
            GapReason::Unsupported,
            format!(
                "NETLINK_SOCK_DIAG unavailable; read /proc/{pid}/net/{{{tables}}} instead: no TCP_INFO, timers or UNIX peers{}",
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", errors.join("; "))
                }
            ),
        ));
        r
    } else {
        (HashMap::new(), HashMap::new())
    };

    // 3. Join, one Socket per inode, ordered by its lowest fd.
    let mut by_inode: BTreeMap<u64, Vec<i32>> = BTreeMap::new();
    for &(fd, ino) in &socket_fds {
        by_inode.entry(ino).or_default().push(fd);
    }
    // Moved out rather than cloned: on a 10,000-connection target the copies were a quarter
    // of the tool's peak memory.
    let mut inet = std::mem::take(&mut dumps.inet);
    let mut sockets: Vec<Socket> = by_inode
        .into_iter()
        .map(|(inode, fds)| {
            let fds_changed: Vec<i32> = fds
                .iter()
                .copied()
                .filter(|fd| reread.get(fd).is_some_and(|now| *now != Some(inode)))
                .collect();
            let mut s = Socket {
                inode,
                fds,
                family: SocketFamily::Other,
                detail: SocketDetail::Unknown,
                source: SOURCE_SOCK_DIAG.into(),
                not_found_reason: None,
                fds_changed,
            };
            if let Some(e) = inet.remove(&inode) {
                set_inet(&mut s, e);
            } else if let Some(e) = dumps.unix.get(&inode) {
                s.family = SocketFamily::Unix;
                s.detail = SocketDetail::Unix(e.socket.clone());
            } else if let Some(n) = dumps.netlink.get(&inode) {
                s.family = SocketFamily::Netlink;
                s.detail = SocketDetail::Netlink(n.clone());
            } else if let Some(p) = dumps.packet.get(&inode) {
                s.family = SocketFamily::Packet;
                s.detail = SocketDetail::Packet(p.clone());
            } else if let Some(e) = fb_inet.get(&inode) {
                set_inet(&mut s, e.clone());
                s.source = SOURCE_PROC_NET.into();
            } else if let Some(e) = fb_unix.get(&inode) {
                s.family = SocketFamily::Unix;
                s.detail = SocketDetail::Unix(e.socket.clone());
                s.source = SOURCE_PROC_NET.into();
            } else {
                s.source = SOURCE_NONE.into();
                s.not_found_reason = Some(not_found_reason(
                    &s,
                    &reread,
                    &dumps,
                    ns_problem.as_deref(),
                    &ns_label,
                ));
            }
            s
        })
        .collect();
    sockets.sort_by_key(|s| s.fds.first().copied().unwrap_or(i32::MAX));

    // 4. The slower joins.
    if let Some(listeners) = &listeners {
        mark_accepted(&mut sockets, listeners);
    }
    resolve_peers(root, process, &mut sockets, &socket_fds, &dumps, opts, gaps);
    name_ports(&mut sockets, &Services::load(), &ephemeral_range(root));
    sockets
}

/// The TCP sockets among `inodes`, dumped with their tcp_info in the network namespace of
/// `process` (the target's): for the sockets of the process at the other end of a connection,
/// which shares it.
pub(crate) fn tcp_of(
    root: &ProcRoot,
    process: &Process,
    inodes: HashSet<u64>,
    opts: &Options,
) -> Result<Vec<Socket>, String> {
    let ns = if process.netns_same_as_tool == Some(true) {
        None
    } else {
        let path = root.pid(process.pid).join("ns/net");
        Some(std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?)
    };
    let timeout = opts
        .deadline
        .remaining()
        .clamp(Duration::from_millis(1), RECV_TIMEOUT);
    let kinds = [(AF_INET, IPPROTO_TCP), (AF_INET6, IPPROTO_TCP)];
    let entries = netns::run_in(ns, &opts.deadline, move || {
        window::dump_entries(&kinds, &inodes, timeout)
    })??;
    Ok(entries
        .into_iter()
        .map(|e| {
            let mut s = Socket {
                inode: e.inode,
                fds: Vec::new(),
                family: SocketFamily::Other,
                detail: SocketDetail::Unknown,
                source: SOURCE_SOCK_DIAG.into(),
                not_found_reason: None,
                fds_changed: Vec::new(),
            };
            set_inet(&mut s, e);
            s
        })
        .collect())
}

fn set_inet(s: &mut Socket, e: InetEntry) {
    s.family = if e.family == AF_INET6 {
        SocketFamily::Inet6
    } else {
        SocketFamily::Inet
    };
    s.detail = if e.protocol == IPPROTO_TCP {
        SocketDetail::Tcp(e.socket)
    } else {
        SocketDetail::Udp(e.socket)
    };
}

fn not_found_reason(
    s: &Socket,
    reread: &HashMap<i32, Option<u64>>,
    dumps: &Dumps,
    ns_problem: Option<&str>,
    ns_label: &str,
) -> String {
    if !s.fds_changed.is_empty() && s.fds_changed.len() == s.fds.len() {
        let now: Vec<String> = s
            .fds
            .iter()
            .map(|fd| match reread.get(fd).copied().flatten() {
                Some(ino) => format!("fd {fd} is now socket:[{ino}]"),
                None => format!("fd {fd} is closed or no longer a socket"),
            })
            .collect();
        return format!(
            "closed between the fd listing and the socket dump ({})",
            now.join(", ")
        );
    }
    if let Some(p) = ns_problem {
        return format!("not dumped: {p}");
    }
    if !(dumps.inet_ok && dumps.unix_ok) {
        return "not in the /proc/net tables read instead of sock_diag: not yet bound or \
                connected, in another network namespace, or of another protocol"
            .into();
    }
    format!(
        "in no sock_diag dump (tcp, udp, unix, netlink, packet) of {ns_label}: a TCP or UDP socket \
         not yet bound or connected, a socket created in another network namespace, or another \
         protocol (raw, SCTP, vsock, ...)"
    )
}

/// The other ends the target does not hold itself — UNIX peers, and TCP connections' local
/// peers — resolved to the process and fd that hold them, with one /proc/*/fd scan for both.
fn resolve_peers(
    root: &ProcRoot,
    process: &Process,
    sockets: &mut [Socket],
    socket_fds: &[(i32, u64)],
    dumps: &Dumps,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) {
    let pid = process.pid;
    let own: HashMap<u64, i32> = socket_fds.iter().map(|&(fd, ino)| (ino, fd)).collect();
    // Peers the target holds itself (a socketpair kept whole) need no system-wide scan.
    let peers: HashSet<u64> = sockets
        .iter()
        .flat_map(|s| match &s.detail {
            SocketDetail::Unix(u) => [Some(u.peer_inode), None],
            SocketDetail::Tcp(i) | SocketDetail::Udp(i) => match i.local_peer.as_deref() {
                Some(p) => [Some(p.inode), p.listener.as_ref().map(|l| l.inode)],
                None => [None, None],
            },
            _ => [None, None],
        })
        .flatten()
        .filter(|p| *p != 0 && !own.contains_key(p))
        .collect();
    let scan = holders::scan(root, holders::Kind::Socket, &peers, pid, &opts.deadline);
    if scan.cut_by_deadline {
        gaps.push(Gap::new(
            "holders of peer sockets",
            GapReason::Deadline,
            format!(
                "the /proc/*/fd scan stopped after {} processes",
                scan.processes
            ),
        ));
    }
    if dumps.peers_not_looked_up > 0 {
        gaps.push(Gap::new(
            format!(
                "the other end of {} connections to this host",
                dumps.peers_not_looked_up
            ),
            if opts.deadline.passed() {
                GapReason::Deadline
            } else {
                GapReason::Skipped
            },
            format!(
                "at most {} are looked up, before the deadline",
                local_peers::MAX_LOOKUPS
            ),
        ));
    }
    if let (n @ 1.., Some(first)) = &dumps.peer_lookup_failures {
        gaps.push(Gap::new(
            format!("the other end of {n} connections to this host"),
            GapReason::Other,
            format!("the sock_diag lookup failed: {first}"),
        ));
    }
    // Another process holding the peer is the interesting answer; the target itself (both
    // ends kept) only when nobody else does.
    let holder_of = |inode: u64| {
        scan.holders
            .get(&inode)
            .and_then(|h| h.iter().find(|h| h.pid != pid).copied())
            .or_else(|| own.get(&inode).map(|&fd| holders::Holder { pid, fd }))
    };
    let not_found = |inode: u64| {
        if scan.cut_by_deadline {
            format!("socket:[{inode}] not found before the deadline cut the /proc/*/fd scan")
        } else {
            format!(
                "socket:[{inode}] is held by no process visible here ({} processes scanned, {} \
                 unreadable): another PID namespace, closed, or only in flight",
                scan.processes, scan.unreadable
            )
        }
    };
    let mut names = holders::Names::default();
    let mut holder_named = |inode: u64| {
        holder_of(inode).map(|h| PeerHolder {
            pid: h.pid,
            name: if h.pid == pid {
                process.name.clone()
            } else {
                names.of(root, h.pid)
            },
            fd: h.fd,
            threads: None,
            opened: Vec::new(),
        })
    };
    for s in sockets.iter_mut() {
        match &mut s.detail {
            SocketDetail::Unix(u) if u.peer_inode != 0 => {
                let peer_path = dumps
                    .unix
                    .get(&u.peer_inode)
                    .and_then(|e| e.socket.path.clone());
                match holder_named(u.peer_inode) {
                    Some(h) => {
                        u.peer = Some(Box::new(UnixPeer {
                            pid: h.pid,
                            name: h.name,
                            fd: h.fd,
                            path: peer_path,
                            threads: None,
                        }));
                    }
                    None => {
                        let mut why = not_found(u.peer_inode);
                        if let Some(p) = peer_path {
                            why.push_str(&format!("; the peer is bound to {p}"));
                        }
                        u.peer_unresolved = Some(why);
                    }
                }
            }
            SocketDetail::Tcp(i) | SocketDetail::Udp(i) => {
                let port = i.peer.port;
                let Some(p) = i.local_peer.as_deref_mut() else {
                    continue;
                };
                // Not accepted yet: the socket to name is the listener that should accept it.
                let end = if p.inode == 0 {
                    p.unresolved = Some(match p.state.as_str() {
                        "ESTAB" | "SYN-RECV" | "NEW-SYN-RECV" => format!(
                            "not accepted yet: the connection waits in the accept queue of \
                             the socket listening on port {port}"
                        ),
                        state => format!("held by no process ({state})"),
                    });
                    p.listener.as_deref_mut()
                } else {
                    Some(p)
                };
                if let Some(end) = end {
                    match holder_named(end.inode) {
                        Some(h) => end.holder = Some(h),
                        None => end.unresolved = Some(not_found(end.inode)),
                    }
                }
            }
            _ => {}
        }
    }
}

/// Sets `accepted` on each TCP connection: whether a socket of the namespace listens on its
/// local port, on its address or on any. The listener decides it, not the port numbers: a
/// server may listen in the ephemeral range, and its workers (a forked PostgreSQL backend)
/// hold no listener of their own.
fn mark_accepted(sockets: &mut [Socket], listeners: &HashSet<std::net::SocketAddr>) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    for s in sockets.iter_mut() {
        let SocketDetail::Tcp(i) = &mut s.detail else {
            continue;
        };
        if i.state == "LISTEN" || i.peer.port == 0 {
            continue;
        }
        let Ok(ip) = i.local.addr.parse::<IpAddr>() else {
            continue;
        };
        let port = i.local.port;
        let on = |ip: IpAddr| listeners.contains(&SocketAddr::new(ip, port));
        i.accepted = Some(
            on(ip.to_canonical())
                || on(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                || on(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        );
    }
}

/// /proc/sys/net/ipv4/ip_local_port_range: ports handed out to clients, not named.
fn ephemeral_range(root: &ProcRoot) -> (u16, u16) {
    root.read("sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut w = t.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((w.next()??, w.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Names well-known ports from /etc/services: the peer's port always, the local port when it is
/// not a client's ephemeral one.
fn name_ports(sockets: &mut [Socket], services: &Services, eph: &(u16, u16)) {
    for s in sockets.iter_mut() {
        let (inet, proto) = match &mut s.detail {
            SocketDetail::Tcp(i) => (i, "tcp"),
            SocketDetail::Udp(i) => (i, "udp"),
            _ => continue,
        };
        if inet.peer.port != 0 {
            inet.peer.service = services.name(inet.peer.port, proto).map(String::from);
        }
        let serving = inet.state == "LISTEN" || inet.peer.port == 0 || inet.accepted == Some(true);
        // The port range is a guess, for when the listeners are not known.
        let ephemeral = (eph.0..=eph.1).contains(&inet.local.port);
        if inet.local.port != 0 && (serving || (inet.accepted.is_none() && !ephemeral)) {
            inet.local.service = services.name(inet.local.port, proto).map(String::from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_inodes_arrive_later_or_never() {
        let (tx, mut wanted) = WantedInodes::channel(Deadline::after(Duration::from_secs(5)));
        assert!(wanted.peek().is_none(), "not sent yet");
        tx.send(HashSet::from([7, 9])).unwrap();
        assert_eq!(wanted.peek(), Some(&HashSet::from([7, 9])));
        assert_eq!(wanted.wait(), &HashSet::from([7, 9]));

        let (tx, mut never) = WantedInodes::channel(Deadline::after(Duration::from_secs(5)));
        drop(tx); // the fd listing failed before it knew any socket
        assert!(never.wait().is_empty());
    }

    fn unknown(fds: Vec<i32>, changed: Vec<i32>) -> Socket {
        Socket {
            inode: 500,
            fds,
            family: SocketFamily::Other,
            detail: SocketDetail::Unknown,
            source: SOURCE_NONE.into(),
            not_found_reason: None,
            fds_changed: changed,
        }
    }

    fn all_ok() -> Dumps {
        Dumps {
            inet_ok: true,
            unix_ok: true,
            netlink_ok: true,
            packet_ok: true,
            ..Dumps::default()
        }
    }

    #[test]
    fn replaced_fd_is_reported_as_closed_between_reads() {
        let s = unknown(vec![7], vec![7]);
        let reread = HashMap::from([(7, Some(501))]);
        let why = not_found_reason(&s, &reread, &all_ok(), None, "netns 1");
        assert!(why.starts_with("closed between"), "{why}");
        assert!(why.contains("fd 7 is now socket:[501]"), "{why}");
    }

    #[test]
    fn netns_problem_and_plain_absence() {
        let s = unknown(vec![7], vec![]);
        let reread = HashMap::from([(7, Some(500))]);
        let why = not_found_reason(
            &s,
            &reread,
            &all_ok(),
            Some("netns 9 could not be entered"),
            "netns 9",
        );
        assert_eq!(why, "not dumped: netns 9 could not be entered");
        let why = not_found_reason(&s, &reread, &all_ok(), None, "netns 9");
        assert!(why.contains("not yet bound or connected"), "{why}");
        assert!(why.contains("netns 9"), "{why}");
    }

    fn tcp_conn(local: &str, peer: &str) -> Socket {
        let ep = |s: &str| {
            let a: std::net::SocketAddr = s.parse().expect("address");
            hangscope_model::Endpoint {
                addr: a.ip().to_string(),
                port: a.port(),
                service: None,
            }
        };
        Socket {
            inode: 1,
            fds: vec![3],
            family: SocketFamily::Inet,
            detail: SocketDetail::Tcp(hangscope_model::InetSocket {
                state: "ESTAB".into(),
                local: ep(local),
                peer: ep(peer),
                ..Default::default()
            }),
            source: SOURCE_SOCK_DIAG.into(),
            not_found_reason: None,
            fds_changed: vec![],
        }
    }

    fn accepted(s: &Socket) -> Option<bool> {
        match &s.detail {
            SocketDetail::Tcp(i) => i.accepted,
            _ => None,
        }
    }

    #[test]
    fn a_connection_on_a_listened_port_was_accepted_whatever_the_port() {
        // A server listening in the ephemeral range (PostgreSQL on 45432) with a client on
        // 38108, a dual-stack listener on [::]:8080, and a client on a low port to 45432.
        let listeners: HashSet<std::net::SocketAddr> = ["127.0.0.1:45432", "[::]:8080"]
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect();
        let mut sockets = vec![
            tcp_conn("127.0.0.1:45432", "127.0.0.1:38108"),
            tcp_conn("127.0.0.1:38108", "127.0.0.1:45432"),
            tcp_conn("10.0.0.1:8080", "10.0.0.2:51000"),
            tcp_conn("10.0.0.1:1022", "10.0.0.9:45432"),
            // The same port on another address is another listener's, if any.
            tcp_conn("10.0.0.1:45432", "10.0.0.2:51000"),
        ];
        mark_accepted(&mut sockets, &listeners);
        let got: Vec<Option<bool>> = sockets.iter().map(accepted).collect();
        assert_eq!(
            got,
            [
                Some(true),
                Some(false),
                Some(true),
                Some(false),
                Some(false)
            ]
        );
        // The port is named as a server's once it is known to be one.
        let services = Services::parse("pgx 45432/tcp\n");
        name_ports(&mut sockets, &services, &(32768, 60999));
        let SocketDetail::Tcp(i) = &sockets[0].detail else {
            panic!("tcp")
        };
        assert_eq!(i.local.service.as_deref(), Some("pgx"));
    }

    #[test]
    fn ports_named_unless_ephemeral_client_side() {
        let services = Services::parse("eforward 2181/tcp\nhttp-alt 8080/tcp\nx 40000/tcp\n");
        let mut sockets = vec![Socket {
            inode: 1,
            fds: vec![3],
            family: SocketFamily::Inet,
            detail: SocketDetail::Tcp(hangscope_model::InetSocket {
                state: "ESTAB".into(),
                local: hangscope_model::Endpoint {
                    addr: "10.0.0.1".into(),
                    port: 40000,
                    service: None,
                },
                peer: hangscope_model::Endpoint {
                    addr: "10.0.0.2".into(),
                    port: 2181,
                    service: None,
                },
                ..Default::default()
            }),
            source: SOURCE_SOCK_DIAG.into(),
            not_found_reason: None,
            fds_changed: vec![],
        }];
        name_ports(&mut sockets, &services, &(32768, 60999));
        let SocketDetail::Tcp(i) = &sockets[0].detail else {
            panic!("tcp")
        };
        assert_eq!(i.peer.service.as_deref(), Some("eforward"));
        assert_eq!(i.local.service, None, "ephemeral client port not named");
    }
}
