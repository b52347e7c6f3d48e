//! MariaDB (and MySQL's `mysqld`): information_schema `PROCESSLIST` (its `TID` column names the
//! server's OS thread of each connection), `INNODB_TRX`, `INNODB_LOCK_WAITS` and
//! `INNODB_LOCKS`, asked with the `mariadb` client over the server's unix socket as the
//! server's OS user, else as root — the accounts Debian's packages give unix_socket
//! authentication — so the operating system vouches for the asker and no password of
//! hangscope's is ever used (`--no-defaults`: no option file's password is read either).
//!
//! As for PostgreSQL: the listening socket is found from the server's fds and its
//! /proc/PID/net/unix, not from its configuration; the client gets a connect timeout, a
//! statement time limit and a read-only session, and is killed by its PID when the whole ask
//! takes longer than [`LIMIT`] (less when the run's deadline is nearer). The answer is one JSON
//! document the server built.

use std::time::Duration;

use hangscope_model::text::escape_cut;
use hangscope_model::{Gap, GapReason, MariaServer, MariaSession, MariaView, Process, Text};
use serde::Deserialize;

use super::client::{self, Failure, MAX_OUTPUT};
use super::postgres::{owner, reachable_dir};
use crate::error::{ReadError, reason_of};
use crate::{Options, ProcRoot, mountinfo};

/// Longest time the client is given, connection included.
pub const LIMIT: Duration = Duration::from_millis(1500);
const MIN_TIME: Duration = Duration::from_millis(100);
/// Most connections listed.
const MAX_SESSIONS: usize = 1000;
const MAX_FDS: usize = 4096;
/// A statement is kept to this many characters.
pub const QUERY_CHARS: usize = 200;

fn what(pid: i32) -> String {
    format!("MariaDB sessions (information_schema of mariadbd {pid})")
}

/// hangscope's own session leaves itself out by CONNECTION_ID(). Waiting connections first.
/// Subqueries' JSON goes through JSON_EXTRACT so it nests as JSON, not as a quoted string.
const QUERY: &str = "\
SET SESSION max_statement_time = 1;
SET SESSION TRANSACTION READ ONLY;
SELECT JSON_OBJECT(
 'version', VERSION(),
 'total', (SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()),
 'sessions', JSON_EXTRACT(COALESCE((SELECT JSON_ARRAYAGG(s.o) FROM (
  SELECT JSON_OBJECT(
   'id', p.ID, 'tid', p.TID, 'user', p.USER, 'host', p.HOST, 'db', p.DB,
   'command', p.COMMAND, 'time_ms', ROUND(p.TIME_MS), 'state', p.STATE,
   'info', LEFT(p.INFO, 200),
   'trx_state', t.trx_state,
   'trx_ms', TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) DIV 1000,
   'wait_ms', TIMESTAMPDIFF(MICROSECOND, t.trx_wait_started, NOW(6)) DIV 1000,
   'blocked_by', JSON_EXTRACT(COALESCE((SELECT JSON_ARRAYAGG(b.trx_mysql_thread_id)
      FROM information_schema.INNODB_LOCK_WAITS w
      JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
      WHERE w.requesting_trx_id = t.trx_id), '[]'), '$'),
   'lock_table', (SELECT l.lock_table FROM information_schema.INNODB_LOCKS l
      WHERE l.lock_id = t.trx_requested_lock_id LIMIT 1),
   'lock_mode', (SELECT l.lock_mode FROM information_schema.INNODB_LOCKS l
      WHERE l.lock_id = t.trx_requested_lock_id LIMIT 1)
  ) AS o
  FROM information_schema.PROCESSLIST p
  LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
  WHERE p.ID <> CONNECTION_ID()
  ORDER BY t.trx_wait_started IS NULL, p.ID
  LIMIT 1000) s), '[]'), '$'));
";

/// The target when it is a MariaDB server (`mariadbd`, `mysqld`): nothing is asked of any
/// other process.
pub fn recognise(process: &Process) -> bool {
    process
        .exe
        .as_ref()
        .is_some_and(|e| hangscope_model::is_mariadb_exe(e.as_bytes()))
}

pub fn read(
    root: &ProcRoot,
    pid: i32,
    snap: &mut hangscope_model::Snapshot,
    opts: &Options,
) -> Option<MariaView> {
    if !opts.app_introspection {
        snap.gaps.push(Gap::new(
            what(pid),
            GapReason::Skipped,
            "not asked: --no-app-introspection",
        ));
        return None;
    }
    match ask(root, pid, opts) {
        Ok(view) => Some(view),
        Err(g) => {
            snap.gaps.push(g);
            None
        }
    }
}

fn ask(root: &ProcRoot, pid: i32, opts: &Options) -> Result<MariaView, Gap> {
    let gap = |reason, detail: String| Gap::new(what(pid), reason, detail);
    let limit = LIMIT.min(opts.deadline.remaining());
    if limit < MIN_TIME {
        return Err(gap(
            GapReason::Deadline,
            "not asked: the run's deadline was too near".into(),
        ));
    }
    let (uid, gid) = owner(root, pid).ok_or_else(|| {
        gap(
            GapReason::Vanished,
            format!("/proc/{pid}/status unreadable"),
        )
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if me != 0 && me != uid {
        return Err(gap(
            GapReason::Permission,
            format!("not asked: the client would have to run as uid {uid}, the server's user"),
        )
        .needing("root, or running hangscope as the server's user"));
    }
    let socket = socket_of(root, pid).map_err(|why| gap(reason_of(&why), why.to_string()))?;
    let mut mgaps = Vec::new();
    let mounts = mountinfo::read(root, pid, &mut mgaps);
    if let Some(m) = mounts.containing(&socket)
        && !mountinfo::is_local(&m.fs_type)
    {
        return Err(gap(
            GapReason::Unsafe,
            format!(
                "not asked: the socket {} is on {} mount {}, where connecting could hang",
                escape_cut(&socket, 200),
                m.fs_type,
                m.mount_point
            ),
        ));
    }
    let path = reachable_dir(root, pid, &socket);
    if path.len() >= 108 {
        return Err(gap(
            GapReason::Unsupported,
            format!(
                "the socket path {} is longer than a unix socket address holds",
                escape_cut(&path, 200)
            ),
        ));
    }
    // The server's OS user first; root when that user has no account (Debian gives both
    // unix_socket authentication).
    let mut tries = vec![(uid, gid)];
    if me == 0 && uid != 0 {
        tries.push((0, 0));
    }
    let mut last = None;
    for (as_uid, as_gid) in tries {
        let left = limit.min(opts.deadline.remaining());
        if left < MIN_TIME {
            break;
        }
        match run_client(&path, me, as_uid, as_gid, left) {
            Ok(out) => {
                let mut view = parse(&out).map_err(|e| gap(reason_of(&e), e.to_string()))?;
                view.server.pid = pid;
                view.server.socket = Text::from(socket);
                view.server.asked_as = user_name(as_uid);
                return Ok(view);
            }
            Err((reason, why)) => {
                let denied = reason == GapReason::Permission;
                last = Some(gap(reason, why));
                if !denied {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        gap(
            GapReason::Deadline,
            "not asked: the run's deadline was too near".into(),
        )
    }))
}

fn user_name(uid: u32) -> String {
    if uid == 0 {
        "root".into()
    } else {
        format!("uid {uid}")
    }
}

/// Runs the client once; its stdout, or why it gave none.
fn run_client(
    socket: &str,
    me: u32,
    uid: u32,
    gid: u32,
    limit: Duration,
) -> Result<Vec<u8>, (GapReason, String)> {
    let program = ["/usr/bin/mariadb", "/usr/bin/mysql"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or("mariadb");
    let mut cmd = client::command(program);
    cmd.args(["--no-defaults", "--batch", "--skip-column-names", "--raw"])
        .args(["--connect-timeout=2", "--protocol=SOCKET"])
        .arg(format!("--socket={socket}"))
        .args(["-e", QUERY]);
    let said = |err: &[u8]| escape_cut(String::from_utf8_lossy(err).trim(), 600);
    client::run(cmd, me, uid, gid, limit).map_err(|f| match f {
        Failure::Spawn(e) => (
            Failure::spawn_reason(&e),
            format!("cannot run {program}: {e}"),
        ),
        Failure::TimedOut { .. } => (
            GapReason::Other,
            format!(
                "{program} did not answer within {} and was killed",
                hangscope_model::units::duration(limit)
            ),
        ),
        Failure::Failed { status, stderr } => {
            let text = String::from_utf8_lossy(&stderr);
            let reason = if text.contains("Access denied") || text.contains("ERROR 1045") {
                GapReason::Permission
            } else {
                GapReason::Other
            };
            (
                reason,
                format!(
                    "{program} as uid {uid} failed ({status}): {}",
                    said(&stderr)
                ),
            )
        }
        Failure::TooLong => (
            GapReason::Malformed,
            format!("the answer was longer than {MAX_OUTPUT} bytes"),
        ),
    })
}

/// The server's listening unix socket: one of its fds' inodes in its /proc/PID/net/unix.
fn socket_of(root: &ProcRoot, pid: i32) -> Result<String, ReadError> {
    let mut inodes = std::collections::HashSet::new();
    let dir = std::fs::read_dir(root.pid(pid).join("fd")).map_err(|e| {
        ReadError::io(format!("the server's fds: /proc/{pid}/fd"), &e).at(format!("/proc/{pid}/fd"))
    })?;
    // An fd closed during the listing is not the listening socket; the server's own fds are
    // as readable as its fd directory.
    for entry in dir.take(MAX_FDS).flatten() {
        if let Ok(link) = std::fs::read_link(entry.path())
            && let Some(ino) = link
                .to_str()
                .and_then(|s| s.strip_prefix("socket:["))
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
        {
            inodes.insert(ino);
        }
    }
    let table = root
        .read_pid(pid, "net/unix")
        .map_err(|e| ReadError::io_at(format!("/proc/{pid}/net/unix"), &e))?;
    listening_paths(&table)
        .into_iter()
        .find(|(ino, _)| inodes.contains(ino))
        .map(|(_, path)| path)
        .ok_or_else(|| {
            ReadError::unsupported(format!(
                "mariadbd {pid} listens on no unix socket (TCP only?)"
            ))
        })
}

/// The listening path-named unix sockets of a /proc/net/unix table: (inode, path). Flag
/// 0x10000 is __SO_ACCEPTCON, a listening socket; see proc_net(5).
fn listening_paths(table: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let mut rest = line;
        let mut fields = Vec::with_capacity(7);
        for _ in 0..7 {
            rest = rest.trim_start_matches(' ');
            let end = rest.find(' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        let path = rest.strip_prefix(' ').unwrap_or(rest);
        let (Some(flags), Some(inode)) = (fields.get(3), fields.get(6)) else {
            continue;
        };
        let listening = u32::from_str_radix(flags, 16).is_ok_and(|f| f & 0x10000 != 0);
        if let Ok(inode) = inode.parse::<u64>()
            && listening
            && path.starts_with('/')
        {
            out.push((inode, path.to_string()));
        }
    }
    out
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    version: String,
    #[serde(default)]
    total: Option<i64>,
    #[serde(default)]
    sessions: Vec<RawSession>,
}

#[derive(Deserialize)]
struct RawSession {
    id: u64,
    #[serde(default)]
    tid: Option<i64>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    db: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    time_ms: Option<f64>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    info: Option<String>,
    #[serde(default)]
    trx_state: Option<String>,
    #[serde(default)]
    trx_ms: Option<i64>,
    #[serde(default)]
    wait_ms: Option<i64>,
    #[serde(default)]
    blocked_by: Vec<u64>,
    #[serde(default)]
    lock_table: Option<String>,
    #[serde(default)]
    lock_mode: Option<String>,
}

/// The client's answer: the last non-empty line, the JSON the query built.
pub fn parse(out: &[u8]) -> Result<MariaView, ReadError> {
    let text = String::from_utf8_lossy(out);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| ReadError::malformed("the client printed nothing"))?;
    let a: Answer = serde_json::from_str(line.trim())
        .map_err(|e| ReadError::malformed(format!("not the expected JSON: {e}")))?;
    let ms = |v: Option<i64>| v.map(|v| v.max(0) as u64);
    let cut = |s: Option<String>, n: usize| s.map(|s| Text::from(escape_cut(&s, n)));
    let listed = a.sessions.len().min(MAX_SESSIONS);
    let total = a.total.map(|t| t.max(0) as usize).unwrap_or(listed);
    Ok(MariaView {
        server: MariaServer {
            version: escape_cut(&a.version, 100),
            ..MariaServer::default()
        },
        sessions_cut: u32::try_from(total.saturating_sub(listed)).unwrap_or(u32::MAX),
        sessions: a
            .sessions
            .into_iter()
            .take(MAX_SESSIONS)
            .map(|s| MariaSession {
                id: s.id,
                tid: s.tid.and_then(|t| i32::try_from(t).ok()).filter(|t| *t > 0),
                user: cut(s.user, 100),
                host: cut(s.host, 300),
                db: cut(s.db, 100),
                command: escape_cut(s.command.as_deref().unwrap_or(""), 40),
                time_ms: s
                    .time_ms
                    .filter(|t| t.is_finite())
                    .map(|t| t.max(0.0) as u64),
                state: s
                    .state
                    .filter(|s| !s.is_empty())
                    .map(|s| escape_cut(&s, 100)),
                info: cut(s.info, QUERY_CHARS),
                trx_state: s.trx_state.map(|s| escape_cut(&s, 40)),
                trx_ms: ms(s.trx_ms),
                wait_ms: ms(s.wait_ms),
                blocked_by: s.blocked_by.into_iter().take(64).collect(),
                lock_table: cut(s.lock_table, 200),
                lock_mode: s.lock_mode.map(|s| escape_cut(&s, 40)),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_of_10_11() {
        // As mariadb 10.11.19 printed it for a waiter behind an idle transaction.
        let out = br#"{"version": "10.11.19-MariaDB-0+deb12u1", "total": 2, "sessions": [{"id": 9, "tid": 31297, "user": "app", "host": "localhost:36780", "db": "hs", "command": "Query", "time_ms": 1027, "state": "Updating", "info": "UPDATE ledger SET v=v+1 WHERE id=1", "trx_state": "LOCK WAIT", "trx_ms": 1609, "wait_ms": 1609, "blocked_by": [8], "lock_table": "`hs`.`ledger`", "lock_mode": "X"}, {"id": 8, "tid": 30249, "user": "app", "host": "localhost:36766", "db": "hs", "command": "Sleep", "time_ms": 2036, "state": "", "info": null, "trx_state": "RUNNING", "trx_ms": 2609, "wait_ms": null, "blocked_by": [], "lock_table": null, "lock_mode": null}]}
"#;
        let v = parse(out).expect("parses");
        assert_eq!(v.sessions.len(), 2);
        let w = &v.sessions[0];
        assert_eq!(
            (w.id, w.tid, w.blocked_by.as_slice()),
            (9, Some(31297), &[8][..])
        );
        assert_eq!(
            w.lock_table.as_ref().map(Text::as_str),
            Some("`hs`.`ledger`")
        );
        let h = v.session(8).expect("holder");
        assert!(h.idle_in_transaction());
        assert_eq!(h.state, None);
        assert!(!w.idle_in_transaction());
        assert!(parse(b"ERROR\n").is_err());
    }

    #[test]
    fn listening_sockets_by_path() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                     0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/mysqld/mysqld.sock\n\
                     0000000000000000: 00000003 00000000 00000000 0001 03 4243 /run/mysqld/mysqld.sock\n";
        assert_eq!(
            listening_paths(table),
            [(4242, "/run/mysqld/mysqld.sock".to_string())]
        );
    }
}
