//! PostgreSQL: `pg_stat_activity` with `pg_blocking_pids()`, asked with the server's own
//! `psql` over its unix socket as its OS user — how an administrator on the host asks — so
//! peer or trust authentication decides, never a password of hangscope's.
//!
//! Finding the socket touches no file of the server's: the postmaster's listening unix sockets
//! are the inodes of its fds (readlink) found in /proc/PM/net/unix, whose path names the
//! directory and the port (`DIR/.s.PGSQL.PORT`). The data directory (its cwd, `postmaster.pid`)
//! is never opened, since it may be on a mount that hangs; the socket directory is used only
//! when mountinfo says it is on a local file system. Across mount namespaces the socket is
//! reached through /proc/PM/root.
//!
//! psql runs with a clean environment, `-X -w` (no psqlrc, never a password prompt), a connect
//! timeout, a statement timeout and read-only transactions, for at most 1.5 s (less when the
//! run's deadline is nearer); one that has not answered by then is killed by its PID. Its
//! output is bounded and parsed by [`parse`] as one JSON document the server built, so no text
//! from the server (queries hold any byte) is ever split on a separator.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hangscope_model::text::escape_cut;
use hangscope_model::{Gap, GapReason, PgBackend, PgLockWait, PgServer, PgView, Process, Text};
use serde::Deserialize;

use super::client::{self, Failure, MAX_OUTPUT};
use crate::error::{ReadError, reason_of};
use crate::{Options, ProcRoot, mountinfo};

/// Longest time psql is given, connection included.
pub const LIMIT: Duration = Duration::from_millis(1500);
/// Below this much time left before the deadline, psql is not started.
const MIN_TIME: Duration = Duration::from_millis(100);
/// Most fds of the postmaster looked at for its listening sockets.
const MAX_FDS: usize = 4096;
/// A statement is kept to this many characters (the query cuts it too; the server is not
/// trusted to have done so).
pub const QUERY_CHARS: usize = 200;
/// Most backends listed; `backends_cut` counts the rest.
const MAX_BACKENDS: usize = 1000;
/// The `application_name` of hangscope's own session, which the listing leaves out.
pub const APP_NAME: &str = "hangscope";
/// What a gap about this collector names.
fn what(pm: i32) -> String {
    format!("PostgreSQL sessions (pg_stat_activity of postmaster {pm})")
}

/// One JSON object: the server's version and port, and its sessions, those blocked or blocking
/// first. Durations use clock_timestamp(); one a clock step made negative is floored at 0 by
/// the parser (greatest() would also turn an absent one into 0). Columns newer than 9.6 (`backend_type` 10,
/// `pg_locks.waitstart` 14) are read through to_jsonb, so older servers answer too.
const QUERY: &str = "\
SELECT json_build_object(
 'version', current_setting('server_version'),
 'port', current_setting('port')::int,
 'total', (SELECT count(*) FROM pg_stat_activity
           WHERE pid <> pg_backend_pid() AND application_name IS DISTINCT FROM 'hangscope'),
 'backends', coalesce((SELECT json_agg(b) FROM (
  SELECT * FROM (
   SELECT a.pid, to_jsonb(a) ->> 'backend_type' AS backend_type, a.state,
    to_jsonb(a) ->> 'wait_event_type' AS wait_event_type,
    to_jsonb(a) ->> 'wait_event' AS wait_event,
    left(a.query, 200) AS query,
    (extract(epoch FROM clock_timestamp() - a.state_change) * 1000)::bigint AS state_ms,
    (extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint AS xact_ms,
    (extract(epoch FROM clock_timestamp() - a.query_start) * 1000)::bigint AS query_ms,
    host(a.client_addr) AS client_addr, a.client_port, a.usename, a.datname,
    a.application_name,
    pg_blocking_pids(a.pid) AS blocked_by,
    CASE WHEN to_jsonb(a) ->> 'wait_event_type' = 'Lock' THEN (
     SELECT json_build_object(
      'locktype', l.locktype, 'mode', l.mode,
      'relation', (SELECT r.relation::regclass::text FROM pg_locks r
                   WHERE r.pid = a.pid AND r.relation IS NOT NULL
                    AND r.database = (SELECT oid FROM pg_database
                                      WHERE datname = current_database())
                   ORDER BY r.granted, r.locktype = 'tuple' DESC LIMIT 1),
      'wait_ms', (extract(epoch FROM clock_timestamp()
                   - (to_jsonb(l) ->> 'waitstart')::timestamptz) * 1000)::bigint)
     FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) END AS lock_wait
   FROM pg_stat_activity a
   WHERE a.pid <> pg_backend_pid() AND a.application_name IS DISTINCT FROM 'hangscope'
  ) s
  ORDER BY cardinality(s.blocked_by) > 0 DESC, s.pid
  LIMIT 1000) b), '[]'::json))";

/// A PostgreSQL server process and its postmaster.
#[derive(Debug, Clone)]
pub struct Server {
    pub postmaster: i32,
    /// The postmaster's executable, as it sees it.
    pub exe: PathBuf,
}

/// Whether an executable's path is PostgreSQL's server.
pub fn is_server_exe(exe: &[u8]) -> bool {
    hangscope_model::is_postgres_exe(exe)
}

fn exe_of(root: &ProcRoot, pid: i32) -> Option<PathBuf> {
    std::fs::read_link(root.pid(pid).join("exe")).ok()
}

/// The server the target belongs to, when it is a PostgreSQL process: its postmaster is the
/// target itself when its parent is not PostgreSQL, else its parent. Nothing is asked of a
/// process that is not PostgreSQL.
pub fn recognise(root: &ProcRoot, pid: i32, process: &Process) -> Option<Server> {
    let exe = process.exe.as_ref()?;
    if !is_server_exe(exe.as_bytes()) {
        return None;
    }
    let parent_is_server = match exe_of(root, process.ppid) {
        Some(p) => is_server_exe(p.as_os_str().as_bytes()),
        // Not readable (another user's process, without privilege): a backend's parent is
        // named like it.
        None => process
            .parent_name
            .as_ref()
            .is_some_and(|n| is_server_exe(n.as_bytes())),
    };
    let postmaster = if parent_is_server && process.ppid > 1 {
        process.ppid
    } else {
        pid
    };
    let exe = if postmaster == pid {
        PathBuf::from(std::ffi::OsStr::from_bytes(exe.as_bytes()))
    } else {
        exe_of(root, postmaster).unwrap_or_else(|| PathBuf::from("postgres"))
    };
    Some(Server { postmaster, exe })
}

/// What the server says, or `None` with a gap saying why it could not be asked.
pub fn read(
    root: &ProcRoot,
    server: &Server,
    snap: &mut hangscope_model::Snapshot,
    opts: &Options,
) -> Option<PgView> {
    let pm = server.postmaster;
    let gap = |reason, detail: String| Gap::new(what(pm), reason, detail);
    if !opts.app_introspection {
        snap.gaps.push(gap(
            GapReason::Skipped,
            "not asked: --no-app-introspection".into(),
        ));
        return None;
    }
    match ask(root, server, opts) {
        Ok(view) => Some(view),
        Err(g) => {
            snap.gaps.push(g);
            None
        }
    }
}

fn ask(root: &ProcRoot, server: &Server, opts: &Options) -> Result<PgView, Gap> {
    let pm = server.postmaster;
    let gap = |reason, detail: String| Gap::new(what(pm), reason, detail);
    let limit = LIMIT.min(opts.deadline.remaining());
    if limit < MIN_TIME {
        return Err(gap(
            GapReason::Deadline,
            "not asked: the run's deadline was too near".into(),
        ));
    }
    let (uid, gid) = owner(root, pm)
        .ok_or_else(|| gap(GapReason::Vanished, format!("/proc/{pm}/status unreadable")))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if me != 0 && me != uid {
        return Err(gap(
            GapReason::Permission,
            format!("not asked: psql would have to run as uid {uid}, the server's user"),
        )
        .needing("root, or running hangscope as the server's user"));
    }
    // A refused /proc/PID/fd is a permission gap, not "no socket".
    let (dir, port) = socket_of(root, pm).map_err(|why| gap(reason_of(&why), why.to_string()))?;
    let mut mgaps = Vec::new();
    let mounts = mountinfo::read(root, pm, &mut mgaps);
    if let Some(m) = mounts.containing(&dir)
        && !mountinfo::is_local(&m.fs_type)
    {
        return Err(gap(
            GapReason::Unsafe,
            format!(
                "not asked: the socket directory {} is on {} mount {}, where connecting could hang",
                escape_cut(&dir, 200),
                m.fs_type,
                m.mount_point
            ),
        ));
    }
    let host = reachable_dir(root, pm, &dir);
    if host.len() + "/.s.PGSQL.65535".len() >= 108 {
        return Err(gap(
            GapReason::Unsupported,
            format!(
                "the socket path {} is longer than a unix socket address holds",
                escape_cut(&host, 200)
            ),
        ));
    }
    let psql = psql_beside(&server.exe);
    let mut cmd = client::command(&psql);
    cmd.args(["-X", "-q", "-w", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(&host)
        .args(["-p", &port.to_string(), "-d", "postgres", "-c", QUERY])
        .env("PGCLIENTENCODING", "UTF8")
        // libpq's shortest connect timeout; the kill below bounds it anyway.
        .env("PGCONNECT_TIMEOUT", "2")
        .env(
            "PGOPTIONS",
            "-c statement_timeout=1000 -c lock_timeout=500 \
             -c default_transaction_read_only=on",
        )
        .env("PGAPPNAME", APP_NAME)
        // Peer or trust authentication only: no password file, no prompt (-w).
        .env("PGPASSFILE", "/dev/null");
    let said = |err: &[u8]| escape_cut(String::from_utf8_lossy(err).trim(), 600);
    let out = client::run(cmd, me, uid, gid, limit).map_err(|f| match f {
        Failure::Spawn(e) => gap(
            Failure::spawn_reason(&e),
            format!("cannot run {}: {e}", psql.display()),
        ),
        Failure::TimedOut { stderr } => gap(
            GapReason::Other,
            format!(
                "psql did not answer within {} and was killed{}",
                hangscope_model::units::duration(limit),
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {}", said(&stderr))
                }
            ),
        ),
        Failure::Failed { status, stderr } => {
            let text = String::from_utf8_lossy(&stderr);
            let reason = if text.contains("authentication failed")
                || text.contains("no pg_hba.conf entry")
                || text.contains("pg_hba.conf rejects")
                || text.contains("permission denied")
                || (text.contains("role") && text.contains("does not exist"))
            {
                GapReason::Permission
            } else {
                GapReason::Other
            };
            gap(reason, format!("psql failed ({status}): {}", said(&stderr)))
        }
        Failure::TooLong => gap(
            GapReason::Malformed,
            format!("psql's answer was longer than {MAX_OUTPUT} bytes"),
        ),
    })?;
    let mut view = parse(&out).map_err(|e| gap(reason_of(&e), e.to_string()))?;
    view.server.postmaster_pid = pm;
    view.server.socket_dir = Text::from(dir);
    // The port of the socket used; the server's own setting agrees unless it lies.
    view.server.port = port;
    Ok(view)
}

/// The real uid and gid of a process, from /proc/PID/status.
pub(crate) fn owner(root: &ProcRoot, pid: i32) -> Option<(u32, u32)> {
    let text = root.read_pid(pid, "status").ok()?;
    let first = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
    };
    Some((first("Uid:")?, first("Gid:")?))
}

/// The directory and port of the postmaster's listening unix socket.
fn socket_of(root: &ProcRoot, pm: i32) -> Result<(String, u16), ReadError> {
    let mut inodes = std::collections::HashSet::new();
    let dir = std::fs::read_dir(root.pid(pm).join("fd")).map_err(|e| {
        ReadError::io(format!("the postmaster's fds: /proc/{pm}/fd"), &e)
            .at(format!("/proc/{pm}/fd"))
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
    // The postmaster's network namespace's view: its unix sockets are listed there.
    let table = root
        .read_pid(pm, "net/unix")
        .map_err(|e| ReadError::io_at(format!("/proc/{pm}/net/unix"), &e))?;
    listening_sockets(&table)
        .into_iter()
        .find(|(ino, _, _)| inodes.contains(ino))
        .map(|(_, dir, port)| (dir, port))
        .ok_or_else(|| {
            ReadError::unsupported(format!(
                "postmaster {pm} listens on no unix socket .s.PGSQL.PORT (TCP only, or not a \
                 server yet)"
            ))
        })
}

/// The listening `DIR/.s.PGSQL.PORT` sockets in a /proc/net/unix table: (inode, DIR, PORT).
/// See proc_net(5): "Num RefCount Protocol Flags Type St Inode Path"; flag 0x10000 is
/// __SO_ACCEPTCON, a listening socket.
pub fn listening_sockets(table: &str) -> Vec<(u64, String, u16)> {
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
        let Ok(inode) = inode.parse::<u64>() else {
            continue;
        };
        let Some((dir, name)) = path.rsplit_once('/') else {
            continue;
        };
        let Some(port) = name
            .strip_prefix(".s.PGSQL.")
            .and_then(|p| p.parse::<u16>().ok())
        else {
            continue;
        };
        if listening && path.starts_with('/') {
            let dir = if dir.is_empty() { "/" } else { dir };
            out.push((inode, dir.to_string(), port));
        }
    }
    out
}

/// The socket directory as hangscope reaches it: as it is when the postmaster shares
/// hangscope's mount namespace, else through /proc/PM/root.
pub(crate) fn reachable_dir(root: &ProcRoot, pm: i32, dir: &str) -> String {
    let ns = |p: PathBuf| std::fs::read_link(p).ok();
    let theirs = ns(root.pid(pm).join("ns/mnt"));
    let ours = ns(root.path().join("self/ns/mnt"));
    if theirs.is_some() && theirs == ours {
        dir.to_string()
    } else {
        format!("{}/{pm}/root{dir}", root.path().display())
    }
}

/// The psql of the server's own installation (beside its `postgres`), else the one on PATH.
fn psql_beside(exe: &Path) -> PathBuf {
    exe.parent()
        .map(|d| d.join("psql"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

/// psql's answer, as the query builds it.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    version: String,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default)]
    total: Option<i64>,
    #[serde(default)]
    backends: Vec<RawBackend>,
}

#[derive(Deserialize)]
struct RawBackend {
    pid: i32,
    #[serde(default)]
    backend_type: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    wait_event_type: Option<String>,
    #[serde(default)]
    wait_event: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    state_ms: Option<i64>,
    #[serde(default)]
    xact_ms: Option<i64>,
    #[serde(default)]
    query_ms: Option<i64>,
    #[serde(default)]
    client_addr: Option<String>,
    #[serde(default)]
    client_port: Option<i32>,
    #[serde(default)]
    usename: Option<String>,
    #[serde(default)]
    datname: Option<String>,
    #[serde(default)]
    application_name: Option<String>,
    #[serde(default)]
    blocked_by: Option<Vec<i32>>,
    #[serde(default)]
    lock_wait: Option<RawLockWait>,
}

#[derive(Deserialize)]
struct RawLockWait {
    #[serde(default)]
    locktype: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    relation: Option<String>,
    #[serde(default)]
    wait_ms: Option<i64>,
}

fn ms(v: Option<i64>) -> Option<u64> {
    v.map(|v| v.max(0) as u64)
}

/// The first `max` characters of a statement.
fn cut(s: String, max: usize) -> Text {
    match s.char_indices().nth(max) {
        Some((i, _)) => Text::from(s[..i].to_string()),
        None => Text::from(s),
    }
}

/// Parses psql's answer to [`QUERY`]: one JSON object on one line (psql -A -t).
pub fn parse(out: &[u8]) -> Result<PgView, ReadError> {
    let text = std::str::from_utf8(out)
        .map_err(|e| ReadError::malformed(format!("psql's answer is not UTF-8: {e}")))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ReadError::malformed("psql answered nothing"));
    }
    let a: Answer = serde_json::from_str(text)
        .map_err(|e| ReadError::malformed(format!("psql's answer is not the JSON asked: {e}")))?;
    let backends: Vec<PgBackend> = a
        .backends
        .into_iter()
        .take(MAX_BACKENDS)
        .map(|b| PgBackend {
            pid: b.pid,
            backend_type: b.backend_type.unwrap_or_default(),
            state: b.state.filter(|s| !s.is_empty()),
            wait_event_type: b.wait_event_type,
            wait_event: b.wait_event,
            query: b
                .query
                .filter(|q| !q.is_empty())
                .map(|q| cut(q, QUERY_CHARS)),
            state_ms: ms(b.state_ms),
            xact_ms: ms(b.xact_ms),
            query_ms: ms(b.query_ms),
            client_addr: b.client_addr,
            // -1: a unix-socket client.
            client_port: b.client_port.filter(|&p| p > 0),
            usename: b.usename.map(Text::from),
            datname: b.datname.map(Text::from),
            application_name: b.application_name.filter(|s| !s.is_empty()).map(Text::from),
            blocked_by: b.blocked_by.unwrap_or_default(),
            lock_wait: b.lock_wait.map(|l| PgLockWait {
                locktype: l.locktype.unwrap_or_default(),
                mode: l.mode.unwrap_or_default(),
                relation: l.relation.map(Text::from),
                wait_ms: ms(l.wait_ms),
            }),
        })
        .collect();
    let listed = backends.len() as i64;
    Ok(PgView {
        server: PgServer {
            port: a.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            version: a.version,
            ..PgServer::default()
        },
        backends_cut: a
            .total
            .map(|t| (t - listed).clamp(0, u32::MAX as i64) as u32)
            .unwrap_or(0),
        backends,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_server_by_its_executable() {
        assert!(is_server_exe(b"/usr/lib/postgresql/15/bin/postgres"));
        assert!(is_server_exe(b"/usr/pgsql-9.6/bin/postmaster"));
        assert!(is_server_exe(
            b"/usr/lib/postgresql/15/bin/postgres (deleted)"
        ));
        assert!(!is_server_exe(b"/usr/bin/psql"));
        assert!(!is_server_exe(b"/usr/bin/postgres_exporter"));
        assert!(!is_server_exe(b"/opt/postgres/bin/pgbouncer"));
    }

    #[test]
    fn finds_the_listening_pg_sockets_in_proc_net_unix() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 123456 /var/run/postgresql/.s.PGSQL.5433\n\
            0000000000000000: 00000002 00000000 00010000 0001 01  99 /tmp/my dir/.s.PGSQL.5432\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 777 /var/run/postgresql/.s.PGSQL.5433\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 555 /run/other.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 556 @.s.PGSQL.1\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 557\n\
            garbage\n";
        assert_eq!(
            listening_sockets(table),
            vec![
                (123456, "/var/run/postgresql".to_string(), 5433),
                (99, "/tmp/my dir".to_string(), 5432),
            ]
        );
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/postgres/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).expect("fixture readable")
    }

    #[test]
    fn parses_a_recorded_lock_chain() {
        let v = parse(&fixture("lock_chain.out")).unwrap();
        assert!(v.server.version.starts_with("15"), "{}", v.server.version);
        let waiting: Vec<&PgBackend> = v
            .backends
            .iter()
            .filter(|b| !b.blocked_by.is_empty())
            .collect();
        assert_eq!(waiting.len(), 1, "{v:?}");
        let b = waiting[0];
        assert_eq!(b.wait_event_type.as_deref(), Some("Lock"));
        assert_eq!(b.wait_event.as_deref(), Some("transactionid"));
        let lw = b.lock_wait.as_ref().unwrap();
        assert_eq!(lw.locktype, "transactionid");
        assert_eq!(lw.relation.as_deref(), Some("t"));
        assert!(lw.wait_ms.is_some());
        let holder = v.backend(b.blocked_by[0]).unwrap();
        assert_eq!(holder.state.as_deref(), Some("idle in transaction"));
        assert!(holder.idle_in_transaction());
        assert_eq!(holder.client_addr.as_deref(), Some("127.0.0.1"));
        assert!(holder.client_port.is_some_and(|p| p > 0));
        // Background processes are listed without a state or a client.
        let bg = v
            .backends
            .iter()
            .find(|b| b.backend_type == "checkpointer")
            .unwrap();
        assert_eq!((bg.state.as_ref(), bg.client_port), (None, None));
    }

    #[test]
    fn a_statement_with_newlines_and_separators_is_kept_whole_and_cut() {
        let v = parse(&fixture("hostile_query.out")).unwrap();
        let q = v
            .backends
            .iter()
            .find_map(|b| b.query.as_ref().filter(|q| q.contains("evil")))
            .unwrap();
        assert!(
            q.contains('\n') && q.contains('\u{1f}') && q.contains('"'),
            "{q:?}"
        );
        assert!(q.chars().count() <= QUERY_CHARS);
    }

    #[test]
    fn refuses_what_is_not_the_answer() {
        assert!(parse(b"").is_err());
        assert!(parse(b"psql: error").is_err());
        assert!(parse(b"\xff\xfe").is_err());
        assert!(parse(br#"{"backends": [{"pid": "x"}]}"#).is_err());
        // Negative durations (a clock step) are floored, a unix client's port is dropped.
        let v = parse(
            br#"{"version":"9.6.1","port":5432,"total":3,"backends":[{"pid":7,"state_ms":-5,
               "client_port":-1,"blocked_by":null}]}"#,
        )
        .unwrap();
        assert_eq!(v.backends[0].state_ms, Some(0));
        assert_eq!(v.backends[0].client_port, None);
        assert_eq!(v.backends_cut, 2);
    }
}
