//! MariaDB row-lock waits, from the server's own view (`AppView::Mariadb`): a connection whose
//! InnoDB transaction waits for a lock another connection's transaction holds. The holder is
//! the root when it is idle in its transaction (`Sleep` with the transaction open): only its
//! client ends it, and when that client is a process on this host the chain goes on to it.
//!
//! Facts: information_schema `PROCESSLIST` (connection id, `TID`, `HOST`, `COMMAND`,
//! `TIME_MS`), `INNODB_TRX`, `INNODB_LOCK_WAITS`, `INNODB_LOCKS` as the server answered them;
//! the client process from the server's own TCP connection to that client's port.

use hangscope_model::{AppView, Cause, MariaSession, Next, Severity, SocketDetail, Subject, Text};

use crate::facts::RuleFacts;
use crate::facts::mariadb_lock_wait::{MariaConn, MariaLockWait};
use crate::facts::pg_idle_in_transaction::PgClient;
use crate::{Ctx, STUCK_MS};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<MariaLockWait> {
    let Some(AppView::Mariadb(view)) = &ctx.snap.app else {
        return vec![];
    };
    let server = ctx.snap.process.pid;
    let mut out = Vec::new();
    for w in &view.sessions {
        if w.blocked_by.is_empty() || w.wait_ms.unwrap_or(0) < STUCK_MS {
            continue;
        }
        // The root among the holders: one that does not wait itself.
        let Some(holder) = w
            .blocked_by
            .iter()
            .filter_map(|id| view.session(*id))
            .min_by_key(|h| !h.blocked_by.is_empty())
        else {
            continue;
        };
        out.push(MariaLockWait {
            server,
            waiter: MariaConn::of(w),
            holder: MariaConn::of(holder),
            table: w.lock_table.clone(),
            mode: w.lock_mode.clone(),
            client: client_of(ctx, holder),
        });
    }
    out
}

/// The holder's client: `HOST` is "host:port" for TCP (the host maybe a name, "localhost" for
/// loopback); the server's own connection with that peer port names the process on this host.
fn client_of(ctx: &Ctx<'_>, s: &MariaSession) -> PgClient {
    let Some(host) = s.host.as_ref().map(Text::as_str) else {
        return PgClient::Unknown;
    };
    let Some((name, port)) = host
        .rsplit_once(':')
        .and_then(|(n, p)| Some((n, p.parse::<u16>().ok()?)))
    else {
        return PgClient::Address {
            address: host.to_string(),
            host: Some(host.to_string()),
            port: None,
        };
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let matches_name = |addr: &str| {
        name == addr
            || (name == "localhost"
                && addr
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.to_canonical().is_loopback()))
    };
    let found = ctx.snap.sockets.iter().find_map(|sock| match &sock.detail {
        SocketDetail::Tcp(i) if i.peer.port == port && matches_name(&i.peer.addr) => {
            let h = i.local_peer.as_ref()?.holder()?;
            Some(PgClient::Process {
                pid: h.pid,
                name: h.name.clone(),
                fd: h.fd,
                address: host.to_string(),
            })
        }
        _ => None,
    });
    found.unwrap_or_else(|| PgClient::Address {
        address: host.to_string(),
        host: Some(name.to_string()),
        port: Some(port),
    })
}

impl RuleFacts for MariaLockWait {
    const RULE: &'static str = "mariadb_lock_wait";

    fn cause(&self) -> Cause {
        if self.holder.idle_in_transaction {
            Cause::IdleInTransaction
        } else {
            Cause::LockWait
        }
    }

    fn severity(&self) -> Severity {
        Severity::Cause
    }

    fn stuck_ms(&self) -> u64 {
        self.waiter.wait_ms.unwrap_or(0)
    }

    fn subject(&self) -> Subject {
        Subject {
            tid: self.waiter.tid,
            connection: Some(format!("connection {}", self.waiter.id)),
            ..Subject::default()
        }
    }

    fn next(&self) -> Option<Next> {
        match &self.client {
            PgClient::Process { pid, .. } if *pid != self.server => Some(Next::process(*pid)),
            PgClient::Address {
                host: Some(h),
                port: Some(p),
                ..
            } if h != "localhost" && !crate::wording::is_loopback(h) => {
                Some(Next::host_port(h.clone(), *p))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{MariaView, NextKind};

    fn session(id: u64, tid: i32, command: &str) -> MariaSession {
        MariaSession {
            id,
            tid: Some(tid),
            host: Some(format!("localhost:{}", 40000 + id).into()),
            command: command.into(),
            time_ms: Some(9000),
            trx_state: Some("RUNNING".into()),
            trx_ms: Some(9500),
            ..MariaSession::default()
        }
    }

    fn view() -> hangscope_model::Snapshot {
        let mut snap = base(300, "mariadbd");
        let mut w = session(12, 312, "Query");
        w.trx_state = Some("LOCK WAIT".into());
        w.wait_ms = Some(4000);
        w.blocked_by = vec![11];
        w.info = Some("UPDATE ledger SET v=v+1 WHERE id=2".into());
        w.lock_table = Some("`hs`.`ledger`".into());
        w.lock_mode = Some("X".into());
        snap.app = Some(AppView::Mariadb(MariaView {
            sessions: vec![w, session(11, 311, "Sleep")],
            ..MariaView::default()
        }));
        snap
    }

    #[test]
    fn a_waiter_behind_an_idle_transaction() {
        let snap = view();
        let found: Vec<_> = find(&Ctx::new(&snap))
            .iter()
            .map(crate::words::finding)
            .collect();
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.cause, Cause::IdleInTransaction);
        assert_eq!(f.subject.tid, Some(312));
        assert_eq!(
            f.summary,
            "Connection 12 (thread 312: UPDATE ledger SET v=v+1 WHERE id=2) has waited 4.0 s \
             for an X lock on `hs`.`ledger`, held by connection 11 (thread 311), idle in its \
             transaction for 9.0 s (open 9.5 s); its client is at localhost:40011, not a \
             process seen on this host."
        );
        assert!(f.next_step.contains("KILL 11"), "{}", f.next_step);
        // The client not found among the server's connections: nothing on this host to
        // follow.
        assert_eq!(f.next.as_ref().map(|n| n.kind), None::<NextKind>);
    }

    #[test]
    fn a_short_wait_is_nothing() {
        let mut snap = view();
        if let Some(AppView::Mariadb(v)) = snap.app.as_mut() {
            v.sessions[0].wait_ms = Some(200);
        }
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
