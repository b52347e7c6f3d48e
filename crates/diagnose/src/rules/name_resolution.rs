//! Waiting on name resolution: a thread waits on a socket to a DNS server (UDP or TCP to port
//! 53) or on a unix socket to nscd or sssd, the services glibc's NSS modules ask (libnss_sss).
//! glibc keeps these sockets only for the length of a lookup, so one with a waiting thread is a
//! lookup in progress. Words in `words/name_resolution.rs`.
//!
//! Facts from sock_diag (peer address, unix peer path and owner) and
//! /proc/PID/task/TID/syscall.

use hangscope_model::{Cause, Next, Severity, Socket, SocketDetail, Subject};

use crate::connection::{Conn, socket_fds};
use crate::facts::name_resolution::{NameResolution, Resolver, UnixService};
use crate::facts::{ConnFacts, RuleFacts, ThreadWait};
use crate::{Ctx, STUCK_MS};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<NameResolution> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for sock in &ctx.snap.sockets {
        let Some(resolver) = resolver(ctx, sock) else {
            continue;
        };
        let fds = socket_fds(ctx.snap, sock);
        let Some(w) = ctx.waiters.on_any(&fds).into_iter().next() else {
            continue;
        };
        out.push(NameResolution {
            waiter: ThreadWait::of(w, pid),
            socket_inode: sock.inode,
            resolver,
        });
    }
    out
}

/// Whether `sock` leads to a name service, which this rule explains rather than the generic ones.
pub(crate) fn resolves_names(ctx: &Ctx<'_>, sock: &Socket) -> bool {
    resolver(ctx, sock).is_some()
}

fn resolver(ctx: &Ctx<'_>, sock: &Socket) -> Option<Resolver> {
    match &sock.detail {
        SocketDetail::Udp(i) | SocketDetail::Tcp(i) if i.peer.port == 53 => {
            let conn = Conn::all(ctx).find(|c| c.sock.inode == sock.inode)?;
            Some(Resolver::Dns {
                conn: Box::new(ConnFacts::of(conn, ctx.snap.process.pid)),
            })
        }
        SocketDetail::Unix(u) => {
            let peer = u.peer.as_ref()?;
            let service = UnixService {
                path: peer.path.clone().unwrap_or_default(),
                pid: peer.pid,
                name: peer.name.clone(),
            };
            if service.path.contains("nscd") || peer.name == "nscd" {
                Some(Resolver::Nscd(service))
            } else if service.path.contains("/sss/") || peer.name.starts_with("sssd") {
                Some(Resolver::Sssd(service))
            } else {
                None
            }
        }
        _ => None,
    }
}

impl RuleFacts for NameResolution {
    const RULE: &'static str = "name_resolution";

    fn cause(&self) -> Cause {
        Cause::NameResolution
    }

    fn severity(&self) -> Severity {
        if self.waiter.blocked_ms.is_some_and(|ms| ms >= STUCK_MS) {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.waiter.blocked_ms.unwrap_or(0)
    }

    fn subject(&self) -> Subject {
        Subject {
            tid: Some(self.waiter.tid),
            thread_name: Some(self.waiter.name.clone()).filter(|n| !n.is_empty()),
            fd: Some(self.waiter.fd),
            socket_inode: Some(self.socket_inode),
            connection: Some(self.label()),
        }
    }

    fn next(&self) -> Option<Next> {
        Some(match &self.resolver {
            Resolver::Dns { conn } => {
                let host = &conn.peer.addr;
                // A resolver on this host (a caching stub, dnsmasq): the process itself.
                match conn.other_end.as_ref().and_then(|o| o.holder()) {
                    Some(h) if !h.this_process => Next::process(h.pid),
                    _ => Next::host_port(host.clone(), conn.peer.port),
                }
                .with_command(format!("dig @{host} <name>"))
            }
            Resolver::Nscd(s) => Next::process(s.pid).with_command("systemctl status nscd"),
            Resolver::Sssd(s) => Next::process(s.pid).with_command("systemctl status sssd"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::Finding;

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

    #[test]
    fn dns_over_udp() {
        let mut snap = base(5, "curl");
        add_socket(&mut snap, 5, udp(9, "10.0.0.5:39000", "10.0.0.53:53"));
        snap.threads.push(thread(
            5,
            "curl",
            "poll",
            vec![fd_wait(5, &["POLLIN"])],
            Some(4000),
        ));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(
            (f.severity, f.cause, f.subject.fd),
            (Severity::Cause, Cause::NameResolution, Some(5))
        );
        assert_eq!(
            f.summary,
            "Thread 5 (curl) has waited 4.0 s in poll() for an answer from the DNS server \
             10.0.0.53:53: a name lookup is stuck, and whatever needed the name waits with it."
        );
        assert!(
            f.next_step
                .starts_with("Check the DNS server 10.0.0.53: dig @10.0.0.53")
        );
    }

    #[test]
    fn sssd_unix_socket() {
        let mut snap = base(5, "zbs-metad");
        add_socket(
            &mut snap,
            6,
            unix_to(100, "/var/lib/sss/pipes/nss", "sssd_nss"),
        );
        snap.threads.push(thread(
            7,
            "worker",
            "poll",
            vec![fd_wait(6, &["POLLIN"])],
            Some(30_000),
        ));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert!(
            f.summary.contains("sssd (/var/lib/sss/pipes/nss)"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn no_waiter_or_other_unix_peer_is_nothing() {
        let mut snap = base(5, "x");
        add_socket(&mut snap, 5, udp(9, "10.0.0.5:39000", "10.0.0.53:53"));
        add_socket(
            &mut snap,
            6,
            unix_to(100, "/run/systemd/journal/stdout", "systemd-journal"),
        );
        snap.threads.push(thread(
            5,
            "x",
            "poll",
            vec![fd_wait(6, &["POLLOUT"])],
            Some(4000),
        ));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn facts_name_the_resolver() {
        let mut snap = base(5, "curl");
        add_socket(&mut snap, 5, udp(9, "10.0.0.5:39000", "10.0.0.53:53"));
        snap.threads.push(thread(
            5,
            "curl",
            "poll",
            vec![fd_wait(5, &["POLLIN"])],
            Some(4000),
        ));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.rule, "name_resolution");
        assert_eq!(f.facts["resolver"]["kind"], "dns");
        assert_eq!(f.facts["resolver"]["conn"]["proto"], "udp");
        assert_eq!(f.facts["resolver"]["conn"]["peer"]["addr"], "10.0.0.53");
        assert_eq!(f.facts["waiter"]["tid"], 5);
        assert_eq!(f.facts["waiter"]["fd"], 5);
        assert_eq!(f.facts["waiter"]["blocked_ms"], 4000);
        assert_eq!(f.facts["socket_inode"], 9);
        assert_eq!(
            f.subject.connection.as_deref(),
            Some("UDP 10.0.0.5:39000 -> 10.0.0.53:53")
        );
        let next = f.next.as_ref().expect("next");
        assert_eq!(
            (next.kind, next.host.as_deref(), next.port),
            (
                hangscope_model::NextKind::HostPort,
                Some("10.0.0.53"),
                Some(53)
            )
        );

        let mut snap = base(5, "id");
        add_socket(&mut snap, 6, unix_to(100, "/var/run/nscd/socket", "nscd"));
        snap.threads.push(thread(
            7,
            "id",
            "poll",
            vec![fd_wait(6, &["POLLIN"])],
            Some(300),
        ));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.facts["resolver"]["kind"], "nscd");
        assert_eq!(f.facts["resolver"]["pid"], 4242);
        let next = f.next.as_ref().expect("next");
        assert_eq!(
            (next.pid, next.command.as_deref()),
            (Some(4242), Some("systemctl status nscd"))
        );
    }
}
