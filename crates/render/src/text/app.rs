//! The server's own view of its sessions (`Snapshot::app`): for PostgreSQL, the backends that
//! matter to the target — itself, those it waits for and those waiting for it — or, on the
//! postmaster, its client backends, waiting and blocking ones first.

use std::fmt::Write;

use hangscope_model::{AppView, PgBackend, PgView, Snapshot};

use super::Style;
use crate::human_ms;
use crate::table::Table;

/// Backends listed at most.
const SHOWN: usize = 20;
/// Characters of a statement shown.
const QUERY_CHARS: usize = 60;

pub(super) fn app(out: &mut String, snap: &Snapshot, st: &Style) {
    match &snap.app {
        Some(AppView::Postgres(v)) => postgres(out, snap.process.pid, v, st),
        Some(AppView::Mariadb(v)) => mariadb(out, v, st),
        Some(AppView::Redis(_)) => {}
        Some(AppView::Unknown) | None => {}
    }
}

fn postgres(out: &mut String, pid: i32, v: &PgView, st: &Style) {
    let s = &v.server;
    let _ = writeln!(
        out,
        "{} {} (postmaster {}, socket {}/.s.PGSQL.{})",
        st.bold("POSTGRESQL"),
        st.show(&s.version),
        s.postmaster_pid,
        st.show(&s.socket_dir),
        s.port
    );
    let involved = |b: &PgBackend| {
        b.pid == pid
            || b.blocked_by.contains(&pid)
            || v.backend(pid)
                .is_some_and(|t| t.blocked_by.contains(&b.pid))
    };
    let mut rows: Vec<&PgBackend> = if s.postmaster_pid == pid {
        v.backends
            .iter()
            .filter(|b| b.backend_type == "client backend")
            .collect()
    } else {
        v.backends.iter().filter(|b| involved(b)).collect()
    };
    // Waiting and blocking first, then the longest in their state.
    let blocks = |b: &PgBackend| v.backends.iter().any(|w| w.blocked_by.contains(&b.pid));
    rows.sort_by_key(|b| {
        (
            b.blocked_by.is_empty() && !blocks(b),
            std::cmp::Reverse(b.state_ms.unwrap_or(0)),
        )
    });
    let more = rows.len().saturating_sub(SHOWN) + v.backends_cut as usize;
    let mut t = Table::new(&[
        "PID",
        "STATE",
        "FOR",
        "WAIT",
        "BLOCKED BY",
        "CLIENT",
        "QUERY",
    ]);
    for b in rows.iter().take(SHOWN) {
        let mark = if b.pid == pid { "*" } else { "" };
        t.push(vec![
            format!("{}{mark}", b.pid),
            st.show(b.state.as_deref().unwrap_or("-")),
            b.state_ms
                .map(|ms| human_ms(ms as f64))
                .unwrap_or_else(|| "-".into()),
            match (&b.wait_event_type, &b.wait_event) {
                (Some(t), Some(e)) => st.show(&format!("{t}/{e}")),
                _ => "-".into(),
            },
            if b.blocked_by.is_empty() {
                "-".into()
            } else {
                b.blocked_by
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            },
            match (&b.client_addr, b.client_port) {
                (Some(a), Some(p)) => st.show(&format!("{a}:{p}")),
                (Some(a), None) => st.show(a),
                (None, _) => "local".into(),
            },
            b.query
                .as_ref()
                .map(|q| q.escaped_cut(QUERY_CHARS))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    if !rows.is_empty() {
        out.push_str(&t.render(2, st.header()));
    }
    if more > 0 {
        let _ = writeln!(out, "  {}", st.dim(&format!("... {more} more backends")));
    }
    out.push('\n');
}

/// MariaDB: the connections in a transaction, waiting ones first (the server's order).
fn mariadb(out: &mut String, v: &hangscope_model::MariaView, st: &Style) {
    let s = &v.server;
    let _ = writeln!(
        out,
        "{} {} (mariadbd {}, socket {}, asked as {})",
        st.bold("MARIADB"),
        st.show(&s.version),
        s.pid,
        st.show(&s.socket),
        st.show(&s.asked_as)
    );
    let ms = |v: Option<u64>| {
        v.map(|ms| human_ms(ms as f64))
            .unwrap_or_else(|| "-".into())
    };
    let mut t = Table::new(&[
        "ID",
        "TID",
        "CLIENT",
        "COMMAND",
        "FOR",
        "TRX",
        "BLOCKED BY",
        "QUERY",
    ]);
    let rows: Vec<_> = v
        .sessions
        .iter()
        .filter(|x| x.trx_state.is_some())
        .collect();
    for x in rows.iter().take(SHOWN) {
        t.push(vec![
            x.id.to_string(),
            x.tid.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            x.host
                .as_ref()
                .map(|h| st.show(h))
                .unwrap_or_else(|| "-".into()),
            st.show(&x.command),
            ms(x.time_ms),
            ms(x.trx_ms),
            if x.blocked_by.is_empty() {
                "-".into()
            } else {
                x.blocked_by
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            },
            x.info
                .as_ref()
                .map(|q| q.escaped_cut(QUERY_CHARS))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    if !rows.is_empty() {
        out.push_str(&t.render(2, st.header()));
    }
    out.push('\n');
}
