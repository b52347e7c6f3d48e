//! PostgreSQL idle in transaction: a backend whose client opened a transaction and sent
//! nothing since, while other backends wait for the locks that transaction holds (it is in
//! their `pg_blocking_pids()`). The backend itself is fine — it waits in ClientRead for its
//! client's next statement, as it should — so the finding says it is the client's turn, and
//! names the client: the process at the other end of the backend's connection when it is on
//! this host (the sockets collector's `local_peer` for TCP, the unix peer for a local socket).
//!
//! One that blocks nobody is context (info), not a cause: an open transaction is normal.

use hangscope_model::TcpState;
use hangscope_model::{Cause, Next, Severity, SocketDetail, Subject};

use crate::facts::RuleFacts;
use crate::facts::pg_idle_in_transaction::{PgClient, PgIdleInTransaction};
use crate::facts::pg_lock_wait::PgSession;
use crate::rules::pg_lock_wait::in_view;
use crate::{Ctx, STUCK_MS};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<PgIdleInTransaction> {
    let Some((view, backends)) = in_view(ctx) else {
        return vec![];
    };
    let pid = ctx.snap.process.pid;
    backends
        .into_iter()
        .filter(|b| b.idle_in_transaction())
        .map(|b| {
            let blocks = view
                .backends
                .iter()
                .filter(|w| w.blocked_by.contains(&b.pid))
                .map(|w| w.pid)
                .collect();
            let this_process = b.pid == pid;
            PgIdleInTransaction {
                postmaster: view.server.postmaster_pid,
                this_process,
                backend: PgSession::of(b),
                blocks,
                client: if this_process {
                    client_process(ctx, b, view.server.postmaster_pid)
                } else {
                    None
                }
                .unwrap_or_else(|| address_only(b)),
            }
        })
        .collect()
}

/// The process at the other end of the backend's own connection to its client.
fn client_process(
    ctx: &Ctx<'_>,
    b: &hangscope_model::PgBackend,
    postmaster: i32,
) -> Option<PgClient> {
    let address = crate::facts::pg_lock_wait::client_of(b)?;
    match (&b.client_addr, b.client_port) {
        (Some(addr), Some(port)) => ctx.snap.sockets.iter().find_map(|s| match &s.detail {
            SocketDetail::Tcp(i) if i.peer.port as i32 == port && same_addr(&i.peer.addr, addr) => {
                let h = i.local_peer.as_ref()?.holder()?;
                Some(PgClient::Process {
                    pid: h.pid,
                    name: h.name.clone(),
                    fd: h.fd,
                    address: address.clone(),
                })
            }
            _ => None,
        }),
        // A unix-socket client: the backend's one connected stream socket whose peer is not
        // its postmaster.
        (None, _) => ctx.snap.sockets.iter().find_map(|s| match &s.detail {
            SocketDetail::Unix(u)
                if u.state == TcpState::Established && u.sock_type == "STREAM" =>
            {
                let p = u.peer.as_ref().filter(|p| p.pid != postmaster)?;
                Some(PgClient::Process {
                    pid: p.pid,
                    name: p.name.clone(),
                    fd: p.fd,
                    address: address.clone(),
                })
            }
            _ => None,
        }),
        _ => None,
    }
}

/// The same address, an IPv4-mapped IPv6 one included.
fn same_addr(a: &str, b: &str) -> bool {
    let canon = |s: &str| {
        s.parse::<std::net::IpAddr>()
            .map(|ip| ip.to_canonical().to_string())
            .unwrap_or_else(|_| s.to_string())
    };
    canon(a) == canon(b)
}

fn address_only(b: &hangscope_model::PgBackend) -> PgClient {
    match crate::facts::pg_lock_wait::client_of(b) {
        Some(address) => PgClient::Address {
            address,
            host: b.client_addr.clone(),
            port: b.client_port.and_then(|p| u16::try_from(p).ok()),
        },
        None => PgClient::Unknown,
    }
}

impl RuleFacts for PgIdleInTransaction {
    const RULE: &'static str = "pg_idle_in_transaction";

    fn cause(&self) -> Cause {
        Cause::IdleInTransaction
    }

    /// Blocking others for more than a moment is a cause; an open transaction that blocks
    /// nobody is only context.
    fn severity(&self) -> Severity {
        if self.blocks.is_empty() {
            Severity::Info
        } else if self.backend.state_ms.is_some_and(|ms| ms >= STUCK_MS) {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.backend.state_ms.unwrap_or(0)
    }

    fn subject(&self) -> Subject {
        Subject {
            tid: self.this_process.then_some(self.backend.pid),
            connection: match &self.client {
                PgClient::Process { address, .. } | PgClient::Address { address, .. } => {
                    Some(format!("client {address}"))
                }
                PgClient::Unknown => None,
            },
            ..Subject::default()
        }
    }

    fn next(&self) -> Option<Next> {
        let terminate = format!("SELECT pg_terminate_backend({})", self.backend.pid);
        Some(match &self.client {
            PgClient::Process { pid, .. } => Next::process(*pid),
            // On the postmaster: the backend, whose own connection names its client.
            _ if !self.this_process => Next::process(self.backend.pid),
            PgClient::Address {
                host: Some(h),
                port: Some(p),
                ..
            } => Next::host_port(h.clone(), *p).with_command(terminate),
            PgClient::Address { .. } | PgClient::Unknown => Next::command(terminate),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::pg_lock_wait::tests::{chain_view, on};
    use crate::testkit::*;
    use hangscope_model::{Finding, LocalPeer, NextKind, PeerHolder, Snapshot};

    fn find(snap: &Snapshot) -> Vec<Finding> {
        super::find(&Ctx::new(snap))
            .iter()
            .map(crate::words::finding)
            .collect()
    }

    /// Backend 11182 with its connection to psql 11172, as the sockets collector found it.
    fn holder_snapshot() -> Snapshot {
        let mut snap = on(11182, chain_view());
        let mut sock = tcp(842_600, "127.0.0.1:54329", "127.0.0.1:60110", "ESTAB");
        inet_of(&mut sock).local_peer = Some(Box::new(LocalPeer {
            inode: 842_684,
            state: "ESTAB".into(),
            end: Some(hangscope_model::PeerEnd::Held {
                holder: PeerHolder {
                    pid: 11172,
                    name: "psql".into(),
                    fd: 3,
                    ..PeerHolder::default()
                },
            }),
            ..LocalPeer::default()
        }));
        add_socket(&mut snap, 10, sock);
        snap
    }

    #[test]
    fn the_idle_holder_names_its_client_process_and_next_is_the_client() {
        let f = &find(&holder_snapshot())[0];
        assert_eq!(
            (f.rule.as_str(), f.severity, f.cause),
            (
                "pg_idle_in_transaction",
                Severity::Cause,
                Cause::IdleInTransaction
            )
        );
        assert!(
            f.summary
                .starts_with("Backend 11182 has been idle in transaction for "),
            "{}",
            f.summary
        );
        assert!(
            f.summary
                .contains("holding locks 1 backend waits for (11180)")
                && f.summary
                    .contains("its client is psql 11172 on this host (127.0.0.1:60110)"),
            "{}",
            f.summary
        );
        assert_eq!(f.facts["client"]["kind"], "process");
        assert_eq!(f.facts["client"]["pid"], 11172);
        assert_eq!(f.facts["blocks"][0], 11180);
        let next = f.next.as_ref().unwrap();
        assert_eq!((next.kind, next.pid), (NextKind::Process, Some(11172)));
        assert!(
            f.next_step.contains("SELECT pg_terminate_backend(11182)"),
            "{}",
            f.next_step
        );
    }

    #[test]
    fn without_its_connection_the_client_is_its_address_and_on_the_postmaster_the_backend() {
        let f = &find(&on(11182, chain_view()))[0];
        assert_eq!(f.facts["client"]["kind"], "address");
        let next = f.next.as_ref().unwrap();
        assert_eq!((next.kind, next.port), (NextKind::HostPort, Some(60110)));
        let mut view = chain_view();
        view.server.postmaster_pid = 10992;
        let found = find(&on(10992, view));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].next.as_ref().unwrap().pid, Some(11182));
    }

    #[test]
    fn blocking_nobody_is_context_and_an_idle_backend_is_nothing() {
        let mut view = chain_view();
        for b in &mut view.backends {
            b.blocked_by.clear();
        }
        let found = find(&on(11182, view.clone()));
        assert_eq!(found[0].severity, Severity::Info);
        for b in &mut view.backends {
            b.state = Some("idle".into());
        }
        assert!(find(&on(11182, view)).is_empty());
        // The waiter is not idle in a transaction.
        assert!(find(&on(11180, chain_view())).is_empty());
    }
}
