//! PostgreSQL lock wait: a backend whose statement waits for a heavyweight lock (a row, a
//! transaction, a table) that other backends hold, as the server itself says it
//! (`pg_stat_activity.wait_event_type` "Lock", `pg_blocking_pids()`, `pg_locks.waitstart`).
//! The process-level view of such a backend is an epoll_wait on its latch, which says nothing
//! about whom it waits for: this is the edge to the backend that holds the lock.
//!
//! On a backend, the finding is about that backend; on the postmaster, about each of its
//! backends that waits.

use hangscope_model::{AppView, Cause, Next, PgBackend, PgView, Severity, Subject};

use crate::facts::RuleFacts;
use crate::facts::pg_lock_wait::{Measured, PgLockWait, PgSession};
use crate::{Ctx, STUCK_MS};

/// The server's view, and the backends a finding may be about: the target alone when it is a
/// backend, every backend when it is the postmaster.
pub(crate) fn in_view<'a>(ctx: &Ctx<'a>) -> Option<(&'a PgView, Vec<&'a PgBackend>)> {
    let Some(AppView::Postgres(view)) = &ctx.snap.app else {
        return None;
    };
    let pid = ctx.snap.process.pid;
    let backends = if view.server.postmaster_pid == pid {
        view.backends.iter().collect()
    } else {
        view.backend(pid).into_iter().collect()
    };
    Some((view, backends))
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<PgLockWait> {
    let Some((view, backends)) = in_view(ctx) else {
        return vec![];
    };
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for b in backends {
        if b.wait_event_type.as_deref() != Some("Lock") || b.blocked_by.is_empty() {
            continue;
        }
        let (waited_ms, measured_from) =
            match (b.lock_wait.as_ref().and_then(|l| l.wait_ms), b.query_ms) {
                (Some(ms), _) => (Some(ms), Measured::LockRequest),
                (None, Some(ms)) => (Some(ms), Measured::Statement),
                (None, None) => (None, Measured::Unknown),
            };
        // The root among the blockers: one that does not wait itself, where the chain ends.
        let holder = b
            .blocked_by
            .iter()
            .filter_map(|&h| view.backend(h))
            .min_by_key(|h| !h.blocked_by.is_empty())
            .map(PgSession::of);
        out.push(PgLockWait {
            postmaster: view.server.postmaster_pid,
            this_process: b.pid == pid,
            backend: PgSession::of(b),
            waited_ms,
            measured_from,
            lock: b.lock_wait.clone(),
            blocked_by: b.blocked_by.clone(),
            holder,
        });
    }
    out
}

impl RuleFacts for PgLockWait {
    const RULE: &'static str = "pg_lock_wait";

    fn cause(&self) -> Cause {
        Cause::LockWait
    }

    fn severity(&self) -> Severity {
        if self.waited_ms.is_some_and(|ms| ms >= STUCK_MS) {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.waited_ms.unwrap_or(0)
    }

    fn subject(&self) -> Subject {
        Subject {
            // A backend is one thread: its pid.
            tid: self.this_process.then_some(self.backend.pid),
            ..Subject::default()
        }
    }

    fn next(&self) -> Option<Next> {
        Some(Next::process(self.holder_pid()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Finding, NextKind, PgServer, Snapshot};

    fn find(snap: &Snapshot) -> Vec<Finding> {
        super::find(&Ctx::new(snap))
            .iter()
            .map(crate::words::finding)
            .collect()
    }

    /// The recorded chain: backend 11180 (B) waits for backend 11182 (A), idle in transaction,
    /// whose client is psql 11172 over 127.0.0.1:60110.
    pub(crate) fn chain_view() -> PgView {
        let text = std::fs::read_to_string(format!(
            "{}/../../tests/fixtures/postgres/lock_chain.view.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub(crate) fn on(pid: i32, view: PgView) -> Snapshot {
        let mut snap = base(pid, "postgres");
        snap.process.exe = Some("/usr/lib/postgresql/15/bin/postgres".into());
        snap.app = Some(AppView::Postgres(view));
        snap
    }

    #[test]
    fn the_waiting_backend_names_the_holder_and_next_is_the_holder() {
        let snap = on(11180, chain_view());
        let found = find(&snap);
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(
            (f.rule.as_str(), f.severity, f.cause),
            ("pg_lock_wait", Severity::Cause, Cause::LockWait)
        );
        assert_eq!(
            f.summary,
            "Backend 11180 (UPDATE t SET v=v+1 WHERE id=1;) has waited 3 min 24 s for a row \
             lock (transactionid ShareLock on t) held by backend 11182, idle in transaction for \
             3 min 24 s."
        );
        assert_eq!(f.facts["holder"]["pid"], 11182);
        assert_eq!(f.facts["measured_from"], "lock_request");
        assert_eq!(f.facts["blocked_by"][0], 11182);
        let next = f.next.as_ref().unwrap();
        assert_eq!((next.kind, next.pid), (NextKind::Process, Some(11182)));
        assert!(
            f.next_step.contains("SELECT pg_terminate_backend(11182)"),
            "{}",
            f.next_step
        );
    }

    #[test]
    fn only_the_target_backend_or_every_backend_on_the_postmaster() {
        // The holder itself waits for nothing.
        assert!(find(&on(11182, chain_view())).is_empty());
        // The postmaster sees the wait of its backend.
        let mut view = chain_view();
        view.server.postmaster_pid = 10992;
        let found = find(&on(10992, view));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject.tid, None);
        // No view, no finding; a backend not waiting for a lock: none.
        assert!(find(&base(11180, "postgres")).is_empty());
        let mut view = chain_view();
        for b in &mut view.backends {
            b.wait_event_type = Some("Client".into());
        }
        assert!(find(&on(11180, view)).is_empty());
    }

    #[test]
    fn a_short_wait_is_a_warning_and_an_old_server_measures_the_statement() {
        let mut view = chain_view();
        let b = view.backends.iter_mut().find(|b| b.pid == 11180).unwrap();
        b.lock_wait.as_mut().unwrap().wait_ms = None;
        b.query_ms = Some(300);
        let f = &find(&on(11180, view))[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.facts["measured_from"], "statement");
        assert!(
            f.summary.contains("has waited at most 300 ms"),
            "{}",
            f.summary
        );
        let _ = PgServer::default();
    }
}
