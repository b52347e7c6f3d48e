//! The words of a MariaDB lock wait (`rules/mariadb_lock_wait.rs`).

use hangscope_model::Evidence;
use hangscope_model::text::escape_cut;

use crate::facts::mariadb_lock_wait::{MariaConn, MariaLockWait};
use crate::facts::pg_idle_in_transaction::PgClient;
use crate::wording::duration;
use crate::words::Words;

const QUOTE_CHARS: usize = 80;

/// "connection 8 (thread 4242: UPDATE ...)"; `word` is "Connection" at the start of a sentence.
fn conn(word: &str, c: &MariaConn, with_query: bool) -> String {
    let mut s = format!("{word} {}", c.id);
    let query = c
        .info
        .as_ref()
        .filter(|_| with_query)
        .map(|q| escape_cut(q.as_str().trim(), QUOTE_CHARS));
    match (c.tid, query) {
        (Some(t), Some(q)) => s.push_str(&format!(" (thread {t}: {q})")),
        (Some(t), None) => s.push_str(&format!(" (thread {t})")),
        (None, Some(q)) => s.push_str(&format!(" ({q})")),
        (None, None) => {}
    }
    s
}

pub(crate) fn words(f: &MariaLockWait) -> Words {
    let w = &f.waiter;
    let h = &f.holder;
    let lock = match (&f.mode, &f.table) {
        (Some(m), Some(t)) => format!(
            "an {} lock on {}",
            escape_cut(m, 20),
            escape_cut(t.as_str(), 100)
        ),
        (None, Some(t)) => format!("a lock on {}", escape_cut(t.as_str(), 100)),
        _ => "a lock".into(),
    };
    let ms = |v: Option<u64>| v.map(duration).unwrap_or_else(|| "?".into());
    let holder_does = if h.idle_in_transaction {
        format!(
            "idle in its transaction for {} (open {})",
            ms(h.time_ms),
            ms(h.trx_ms)
        )
    } else {
        format!(
            "itself in {} for {}",
            escape_cut(&h.command, 40),
            ms(h.time_ms)
        )
    };
    let client = match &f.client {
        PgClient::Process {
            pid, name, address, ..
        } => format!("its client is process {pid} ({name}) at {address} on this host"),
        PgClient::Address { address, .. } => {
            format!(
                "its client is at {}, not a process seen on this host",
                escape_cut(address, 100)
            )
        }
        PgClient::Unknown => "its client is not known".into(),
    };
    let summary = format!(
        "{} has waited {} for {lock}, held by {}, {holder_does}; {client}.",
        conn("Connection", w, true),
        ms(w.wait_ms),
        conn("connection", h, false),
    );
    let who = match &f.client {
        PgClient::Process { pid, name, .. } => format!("process {pid} ({name})"),
        _ => "its client".into(),
    };
    let next_step = if h.idle_in_transaction {
        format!(
            "Make {who} commit or roll back its transaction, or end the session as an \
             administrator: KILL {} (mariadb -e 'KILL {}').",
            h.id, h.id
        )
    } else {
        format!(
            "See what connection {} is doing (SHOW FULL PROCESSLIST); it holds the lock until \
             its transaction ends, or KILL {}.",
            h.id, h.id
        )
    };
    let source = format!(
        "information_schema of mariadbd {} (PROCESSLIST, INNODB_TRX, INNODB_LOCK_WAITS)",
        f.server
    );
    Words {
        summary,
        evidence: vec![
            Evidence::new(
                "waiting",
                format!(
                    "connection {} ({}), lock wait {}",
                    w.id,
                    escape_cut(&w.command, 40),
                    ms(w.wait_ms)
                ),
                source.clone(),
            ),
            Evidence::new(
                "holder",
                format!(
                    "connection {} ({}) for {}, transaction open {}{}",
                    h.id,
                    escape_cut(&h.command, 40),
                    ms(h.time_ms),
                    ms(h.trx_ms),
                    h.host
                        .as_ref()
                        .map(|x| format!(", from {}", escape_cut(x.as_str(), 100)))
                        .unwrap_or_default()
                ),
                source,
            ),
        ],
        ruled_out: vec![],
        next_step,
    }
}
