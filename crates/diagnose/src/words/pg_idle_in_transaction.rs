//! The words of a PostgreSQL session idle in a transaction (`rules/pg_idle_in_transaction.rs`).

use hangscope_model::Evidence;
use hangscope_model::text::escape_cut;

use super::pg_lock_wait::state;
use crate::facts::pg_idle_in_transaction::{PgClient, PgIdleInTransaction};
use crate::wording::{duration, plural};
use crate::words::Words;

pub(crate) fn words(f: &PgIdleInTransaction) -> Words {
    let b = &f.backend;
    let pid = b.pid;
    let st = b.state.as_deref().unwrap_or("idle in transaction");
    let how_long = b
        .state_ms
        .map(|ms| format!(" for {}", duration(ms)))
        .unwrap_or_default();
    let holding = if f.blocks.is_empty() {
        "blocking no other backend".to_string()
    } else {
        let n = f.blocks.len() as u64;
        format!(
            "holding locks {} {} for ({})",
            plural(n, "backend", "backends"),
            if n == 1 { "waits" } else { "wait" },
            f.blocks
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let client = match &f.client {
        PgClient::Process {
            pid: c,
            name,
            address,
            ..
        } if address == "local" => {
            format!("its client is {name} {c} on this host, over the server's unix socket")
        }
        PgClient::Process {
            pid: c,
            name,
            address,
            ..
        } => format!("its client is {name} {c} on this host ({address})"),
        PgClient::Address { address, .. } if address == "local" => {
            "its client is on this host, over the server's unix socket".to_string()
        }
        PgClient::Address { address, .. } => format!("its client is {address}"),
        PgClient::Unknown => "its client is not known".to_string(),
    };
    let terminate = format!("SELECT pg_terminate_backend({pid})");
    let next_step = match &f.client {
        _ if f.blocks.is_empty() => "Nothing waits for it yet; a client that leaves \
                                     transactions open will block others \
                                     (idle_in_transaction_session_timeout ends such sessions)."
            .to_string(),
        PgClient::Process { pid: c, name, .. } => format!(
            "The transaction waits for its client, {name} {c}: commit or roll back there \
             (hangscope {c}), or end the session: {terminate}."
        ),
        _ if !f.this_process => format!(
            "Look at backend {pid}, whose connection names its client: hangscope {pid}; or end \
             the session: {terminate}."
        ),
        PgClient::Address { address, .. } => format!(
            "The transaction waits for its client at {address}: commit or roll back there, or \
             end the session: {terminate}."
        ),
        PgClient::Unknown => format!("End the session if its client is gone: {terminate}."),
    };
    let mut evidence = vec![Evidence::new(
        "state",
        format!(
            "{}{}",
            state(b).unwrap_or_else(|| st.to_string()),
            b.xact_ms
                .map(|ms| format!("; transaction open {}", duration(ms)))
                .unwrap_or_default()
        ),
        "pg_stat_activity",
    )];
    if let Some(q) = &b.query {
        evidence.push(Evidence::new(
            "last statement",
            escape_cut(q.trim(), 200),
            "pg_stat_activity",
        ));
    }
    if !f.blocks.is_empty() {
        evidence.push(Evidence::new(
            "waited for by",
            f.blocks
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            "pg_blocking_pids()",
        ));
    }
    if let PgClient::Process {
        pid: c,
        fd,
        address,
        ..
    } = &f.client
    {
        evidence.push(Evidence::new(
            "client",
            format!("process {c} fd {fd}, the other end of {address}"),
            "sock_diag",
        ));
    }
    Words {
        summary: format!("Backend {pid} has been {st}{how_long}, {holding}; {client}."),
        evidence,
        ruled_out: vec![format!(
            "the server: backend {pid} waits for its client's next statement (ClientRead), as \
             it should"
        )],
        next_step,
    }
}
