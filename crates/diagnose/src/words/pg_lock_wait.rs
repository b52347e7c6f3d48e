//! The words of a PostgreSQL backend waiting for a lock (`rules/pg_lock_wait.rs`), and the
//! phrases the PostgreSQL rules share.

use hangscope_model::Evidence;
use hangscope_model::text::escape_cut;

use crate::facts::pg_lock_wait::{Measured, PgLockWait, PgSession};
use crate::wording::{duration, plural};
use crate::words::Words;

/// Characters of a statement a sentence quotes.
const QUOTE_CHARS: usize = 80;

/// "Backend 11180 (UPDATE t SET v=v+1 WHERE id=1;)", its statement escaped and cut.
pub(crate) fn backend(s: &PgSession) -> String {
    match &s.query {
        Some(q) => format!(
            "Backend {} ({})",
            s.pid,
            escape_cut(q.as_str().trim(), QUOTE_CHARS)
        ),
        None => format!("Backend {}", s.pid),
    }
}

/// "idle in transaction for 11.7 s", "active for 2.0 s".
pub(crate) fn state(s: &PgSession) -> Option<String> {
    let st = s.state.as_deref()?;
    Some(match s.state_ms {
        Some(ms) => format!("{st} for {}", duration(ms)),
        None => st.to_string(),
    })
}

/// The lock in the reader's words, from the wait event: an UPDATE of a row another
/// transaction changed waits for that transaction's id.
fn kind(event: Option<&str>) -> String {
    match event.unwrap_or("") {
        "transactionid" | "tuple" => "a row lock".into(),
        "relation" => "a table lock".into(),
        "advisory" => "an advisory lock".into(),
        "" => "a lock".into(),
        other => format!("a lock ({other})"),
    }
}

pub(crate) fn words(f: &PgLockWait) -> Words {
    let b = &f.backend;
    let waited = match (f.waited_ms, f.measured_from) {
        (Some(ms), Measured::LockRequest) => format!("has waited {}", duration(ms)),
        (Some(ms), _) => format!("has waited at most {}", duration(ms)),
        (None, _) => "waits".into(),
    };
    let mut detail = kind(b.wait_event.as_deref());
    if let Some(l) = &f.lock {
        detail.push_str(&format!(" ({} {}", l.locktype, l.mode));
        if let Some(r) = &l.relation {
            detail.push_str(&format!(" on {}", escape_cut(r, QUOTE_CHARS)));
        }
        detail.push(')');
    }
    let holder_pid = f.holder_pid();
    let others = f.blocked_by.len().saturating_sub(1) as u64;
    let mut held = format!("held by backend {holder_pid}");
    if let Some(h) = &f.holder
        && let Some(st) = state(h)
    {
        held.push_str(&format!(", {st}"));
    }
    if others > 0 {
        held.push_str(&format!(" (and {})", plural(others, "other", "others")));
    }
    let mut evidence = vec![Evidence::new(
        "wait event",
        format!(
            "{}/{}",
            b.wait_event_type.as_deref().unwrap_or("?"),
            b.wait_event.as_deref().unwrap_or("?")
        ),
        "pg_stat_activity",
    )];
    if let Some(l) = &f.lock {
        evidence.push(Evidence::new(
            "lock requested",
            format!(
                "{} {}{}{}",
                l.locktype,
                l.mode,
                l.relation
                    .as_ref()
                    .map(|r| format!(" on {}", escape_cut(r, QUOTE_CHARS)))
                    .unwrap_or_default(),
                l.wait_ms
                    .map(|ms| format!(", not granted for {}", duration(ms)))
                    .unwrap_or_default()
            ),
            "pg_locks",
        ));
    }
    evidence.push(Evidence::new(
        "blocked by",
        f.blocked_by
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        "pg_blocking_pids()",
    ));
    if let Some(h) = &f.holder {
        evidence.push(Evidence::new(
            format!("backend {}", h.pid),
            [
                state(h),
                h.xact_ms
                    .map(|ms| format!("transaction open {}", duration(ms))),
                h.query
                    .as_ref()
                    .map(|q| format!("last statement {}", escape_cut(q.trim(), QUOTE_CHARS))),
                h.client.as_ref().map(|c| format!("client {c}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "),
            "pg_stat_activity",
        ));
    }
    let idle = f.holder.as_ref().is_some_and(|h| h.idle_in_transaction());
    let next_step = if idle {
        format!(
            "Look at backend {holder_pid}, whose transaction holds the lock and whose client \
             sends nothing: hangscope {holder_pid}; to end it, SELECT \
             pg_terminate_backend({holder_pid})."
        )
    } else {
        format!(
            "Look at backend {holder_pid}, which holds the lock: hangscope {holder_pid}; \
             SELECT * FROM pg_stat_activity WHERE pid = {holder_pid}."
        )
    };
    Words {
        summary: format!("{} {waited} for {detail} {held}.", backend(b)),
        evidence,
        ruled_out: vec![],
        next_step,
    }
}
