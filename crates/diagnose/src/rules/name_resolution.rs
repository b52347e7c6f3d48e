//! Waiting on name resolution: a thread waits on a socket to a DNS server (UDP or TCP to port
//! 53) or on a unix socket to nscd or sssd, the services glibc's NSS modules ask (libnss_sss).
//! glibc keeps these sockets only for the length of a lookup, so one with a waiting thread is a
//! lookup in progress.
//!
//! Facts from sock_diag (peer address, unix peer path and owner) and
//! /proc/PID/task/TID/syscall.

use hangscope_model::{Cause, Evidence, Finding, Severity, Socket, SocketDetail};

use crate::connection::{Conn, socket_fds};
use crate::{Ctx, Found, STUCK_MS, wording};

/// Who answers the lookup, in the reader's words, and the next step for it.
struct Resolver {
    who: String,
    next_step: String,
    source: String,
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    for sock in &ctx.snap.sockets {
        let Some(r) = resolver(ctx, sock) else {
            continue;
        };
        let fds = socket_fds(ctx.snap, sock);
        let Some(w) = ctx.waiters.on_any(&fds).into_iter().next() else {
            continue;
        };
        let blocked = w.blocked_ms();
        let severity = if blocked.is_some_and(|ms| ms >= STUCK_MS) {
            Severity::Cause
        } else {
            Severity::Warning
        };
        let waited = match blocked {
            Some(ms) => format!("has waited {} in {}", wording::duration(ms), w.how()),
            None => format!("waits in {}", w.how()),
        };
        let summary = format!(
            "{} {waited} for an answer from {}: a name lookup is stuck, and whatever needed \
             the name waits with it.",
            wording::thread(w.thread),
            r.who
        );
        let subject = hangscope_model::Subject {
            tid: Some(w.thread.tid),
            thread_name: Some(w.thread.name.clone()).filter(|n| !n.is_empty()),
            fd: Some(w.fd),
            socket_inode: Some(sock.inode),
            connection: Some(r.source.clone()),
        };
        out.push(Found {
            finding: Finding {
                severity,
                cause: Cause::NameResolution,
                summary,
                subject,
                evidence: vec![
                    w.evidence(ctx.snap.process.pid),
                    Evidence::new("socket", r.source, "sock_diag"),
                ],
                ruled_out: vec![],
                next_step: r.next_step,
                ..Finding::default()
            },
            stuck_ms: blocked.unwrap_or(0),
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
            let conn = Conn::all(ctx)
                .into_iter()
                .find(|c| c.sock.inode == sock.inode)?;
            let host = &i.peer.addr;
            Some(Resolver {
                who: format!("the DNS server {}", i.peer),
                next_step: format!(
                    "Check the DNS server {host}: dig @{host} <name>; is it reachable from \
                     here? See /etc/resolv.conf for the servers, timeout and attempts."
                ),
                source: conn.label(),
            })
        }
        SocketDetail::Unix(u) => {
            let peer = u.peer.as_ref()?;
            let path = peer.path.clone().unwrap_or_default();
            let label = format!("unix socket to {} ({}, pid {})", path, peer.name, peer.pid);
            if path.contains("nscd") || peer.name == "nscd" {
                Some(Resolver {
                    who: format!("nscd ({path})"),
                    next_step: "Check nscd, which caches name lookups: systemctl status nscd; \
                                nscd -g; restart it if it does not answer."
                        .into(),
                    source: label,
                })
            } else if path.contains("/sss/") || peer.name.starts_with("sssd") {
                Some(Resolver {
                    who: format!(
                        "sssd ({path}), which answers user and host lookups through \
                                  libnss_sss"
                    ),
                    next_step: "Check sssd: systemctl status sssd; the logs in /var/log/sssd/; \
                                whether its LDAP or AD servers answer (sssctl domain-status)."
                        .into(),
                    source: label,
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

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
        let f = &find(&Ctx::new(&snap))[0].finding;
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
        let f = &find(&Ctx::new(&snap))[0].finding;
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
}
