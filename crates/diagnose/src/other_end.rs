//! The other end of a connection when it is on this host: who holds it, what it did with what
//! was sent, what its threads were in, and the words rules use to say so. The facts come from
//! the sockets collector's lookups (`InetSocket::local_peer`, `UnixPeer`) and one look at the
//! holder's threads (`PeerThreads`).

use hangscope_model::{Evidence, PeerHolder, PeerThread, PeerThreads};

use crate::connection::Conn;
use crate::waiters::Want;

impl Conn<'_> {
    /// Who holds the other end, when it is on this host and was found: "fd 7 of process 4242
    /// (metad)" or "fd 7 of this same process".
    pub fn local_holder(&self, pid: i32) -> Option<String> {
        let h = self.inet.local_peer.as_ref()?.holder.as_ref()?;
        Some(holder_words(h.pid, &h.name, h.fd, pid))
    }

    /// What the other end did with what was sent, when it is on this host: the sentence a
    /// rule appends to its summary.
    pub fn local_peer_sentence(&self, pid: i32) -> Option<String> {
        let p = self.inet.local_peer.as_deref()?;
        let port = self.inet.peer.port;
        if p.state == "LISTEN" {
            return None; // not a connection's end: the opening rule speaks of listeners
        }
        if p.inode == 0 && p.unresolved.is_some() && p.state != "TIME-WAIT" {
            let listener = match p.listener.as_deref().and_then(|l| l.holder.as_ref()) {
                Some(h) => format!(
                    "the socket listening there, {}",
                    holder_words(h.pid, &h.name, h.fd, pid)
                ),
                None => "the listening socket".into(),
            };
            return Some(format!(
                "The server on :{port} has not even accepted the connection: it waits in the \
                 accept queue of {listener}."
            ));
        }
        let who = self.local_holder(pid)?;
        if p.recv_q > 0 {
            return Some(format!(
                "The other end is {who} on this host, which has not read it: {} wait in its \
                 receive queue.",
                crate::wording::bytes(u64::from(p.recv_q))
            ));
        }
        let threads = p
            .holder
            .as_ref()
            .filter(|h| h.pid != pid)
            .and_then(|h| Some(peer_threads_sentence(h.threads.as_ref()?, h.fd).0))
            .unwrap_or_default();
        Some(format!(
            "The other end is {who} on this host, which has read everything sent.{threads}"
        ))
    }

    /// The other end on this host as evidence: its holder and its queues.
    pub fn local_peer_evidence(&self, pid: i32) -> Option<Evidence> {
        let p = self.inet.local_peer.as_deref()?;
        let queues = format!("Recv-Q {} Send-Q {}", p.recv_q, p.send_q);
        if p.inode == 0 {
            let mut value = p.unresolved.clone().unwrap_or_else(|| p.state.clone());
            if let Some(l) = p.listener.as_deref()
                && let Some(h) = &l.holder
            {
                value = format!(
                    "not accepted yet by the socket listening there, {}: accept queue {}, \
                     backlog {}",
                    holder_words(h.pid, &h.name, h.fd, pid),
                    l.recv_q,
                    l.send_q
                );
            }
            return Some(Evidence::new(
                "other end",
                value,
                format!(
                    "sock_diag lookup of {} -> {}: {} inode 0 {queues}",
                    self.inet.peer, self.inet.local, p.state
                ),
            ));
        }
        let (value, held) = match (&p.holder, self.local_holder(pid)) {
            // No connection at the other end: the lookup found the socket listening there.
            (Some(h), Some(who)) if p.state == "LISTEN" => (
                format!(
                    "the socket listening there, {who}: accept queue {}, backlog {}",
                    p.recv_q, p.send_q
                ),
                format!("; /proc/{}/fd/{} -> socket:[{}]", h.pid, h.fd, p.inode),
            ),
            (Some(h), Some(who)) => (
                format!(
                    "{who}, {}, {} unread",
                    p.state,
                    crate::wording::bytes(u64::from(p.recv_q))
                ),
                format!("; /proc/{}/fd/{} -> socket:[{}]", h.pid, h.fd, p.inode),
            ),
            _ => (
                p.unresolved
                    .clone()
                    .unwrap_or_else(|| format!("socket:[{}], holder unknown", p.inode)),
                String::new(),
            ),
        };
        Some(Evidence::new(
            "other end",
            value,
            format!(
                "sock_diag lookup of {} -> {}: {} {queues}{held}",
                self.inet.peer, self.inet.local, p.state
            ),
        ))
    }

    /// What the threads of the process at the other end were in, when they were looked at.
    pub fn local_peer_threads(&self, pid: i32) -> Option<Evidence> {
        let p = self.inet.local_peer.as_deref()?;
        let h = p
            .holder
            .as_ref()
            .or(p.listener.as_deref().and_then(|l| l.holder.as_ref()))
            .filter(|h| h.pid != pid)?;
        Some(peer_threads_evidence(h.pid, h.fd, h.threads.as_ref()?))
    }
}

/// "fd 7 of process 4242 (metad)", or "fd 7 of this same process" when `pid` holds it.
pub(crate) fn holder_words(holder: i32, name: &str, fd: i32, pid: i32) -> String {
    if holder == pid {
        format!("fd {fd} of this same process")
    } else {
        format!("fd {fd} of process {holder} ({name})")
    }
}

/// The next step when a listener does not accept: where its accept loop should run.
pub(crate) fn accept_step(listener: &PeerHolder, pid: i32) -> String {
    if listener.pid == pid {
        format!(
            "The listener is fd {} of this same process: find the thread that should call \
             accept() on it, and what it waits for instead.",
            listener.fd
        )
    } else {
        format!(
            "Look at process {} ({}): hangscope {}; find the thread that should call accept() \
             on fd {}, and what it waits for instead.",
            listener.pid, listener.name, listener.pid, listener.fd
        )
    }
}

/// What the other end's threads say, as a sentence for a summary, and whether one of them waits
/// to read the same connection — both ends waiting for the other, which no timeout of theirs
/// can end well.
pub(crate) fn peer_threads_sentence(t: &PeerThreads, fd: i32) -> (String, bool) {
    // A call that names no direction and waits on no events (ioctl, fsync) is not a read.
    let reading = |r: &&PeerThread| match crate::waiters::want_of(&r.syscall, &r.events) {
        Want::Read => true,
        Want::Either => !r.events.is_empty(),
        Want::Write | Want::Connect => false,
    };
    if let Some(r) = t.on_fd.iter().find(reading) {
        return (
            format!(
                " Its thread {} ({}) waits to read fd {fd} too: both ends wait for the other, so \
                 the request is likely incomplete (a missing terminator or length, or not \
                 flushed) or the two disagree on the protocol.",
                r.tid, r.name
            ),
            true,
        );
    }
    if let Some(w) = t.on_fd.first() {
        return (
            format!(
                " Its thread {} ({}) is in {} on fd {fd}.",
                w.tid, w.name, w.call
            ),
            false,
        );
    }
    let where_ = if t.elsewhere.is_empty() {
        String::new()
    } else {
        format!(" (they are in {})", t.elsewhere.join(", "))
    };
    (
        format!(
            " None of its {} threads waits on fd {fd}{where_}: what should answer is busy or \
             blocked elsewhere.",
            t.count
        ),
        false,
    )
}

/// The other end's threads as evidence: those on its fd (`fd` of process `pid`) with their
/// calls, or where the others are.
pub(crate) fn peer_threads_evidence(pid: i32, fd: i32, t: &PeerThreads) -> Evidence {
    let value = if t.on_fd.is_empty() {
        format!(
            "none of its {} threads waits on fd {fd}; they are in {}",
            t.count,
            t.elsewhere.join(", ")
        )
    } else {
        t.on_fd
            .iter()
            .map(|r| format!("thread {} ({}) in {}", r.tid, r.name, r.call))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Evidence::new("its threads", value, format!("/proc/{pid}/task/*/syscall"))
}
