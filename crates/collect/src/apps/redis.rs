//! Redis: when the target is a client of a redis-server on this host, `CLIENT LIST` says
//! whether its connection is blocked in a blocking command (BLPOP, XREAD BLOCK, WAIT...) — a
//! wait the client asked for, not a server that stopped answering.
//!
//! Asked over the same loopback address the target's connection goes to, in one RESP
//! command, with no credentials: a server that requires AUTH answers NOAUTH, which becomes a
//! gap. Connect, write and read are bounded by [`LIMIT`] (less near the run's deadline), the
//! answer by [`MAX_ANSWER`]; nothing is asked when the target's network namespace is not
//! hangscope's (its loopback is not ours). Only the entries of the target's own connections
//! are kept.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use hangscope_model::text::escape_cut;
use hangscope_model::{Gap, GapReason, RedisClient, RedisView, Snapshot, SocketDetail, Text};

use crate::{Options, ProcRoot};

pub const LIMIT: Duration = Duration::from_millis(500);
const MIN_TIME: Duration = Duration::from_millis(50);
/// 10,000 clients of ~300 bytes each.
const MAX_ANSWER: usize = 4 << 20;

fn what(pid: i32) -> String {
    format!("Redis clients (CLIENT LIST of redis-server {pid})")
}

/// The redis-server on this host the target has a TCP connection to, with the address it
/// listens on and the target's ends of its connections there.
struct Target {
    server: i32,
    address: SocketAddr,
    ends: Vec<SocketAddr>,
}

fn find(root: &ProcRoot, snap: &Snapshot) -> Option<Target> {
    let mut out: Option<Target> = None;
    // Each holder's executable is read once: a target with 10,000 loopback connections to one
    // process that is not redis read that process's exe link 10,000 times (0.1 s).
    let mut not_redis: HashSet<i32> = HashSet::new();
    for s in &snap.sockets {
        let SocketDetail::Tcp(i) = &s.detail else {
            continue;
        };
        let Some(h) = i.local_peer.as_ref().and_then(|p| p.holder()) else {
            continue;
        };
        if not_redis.contains(&h.pid) {
            continue;
        }
        let (Ok(peer), Ok(local)) = (
            i.peer.addr.parse::<IpAddr>(),
            i.local.addr.parse::<IpAddr>(),
        ) else {
            continue;
        };
        if !peer.to_canonical().is_loopback() {
            continue;
        }
        match &mut out {
            Some(t) if t.server == h.pid => t.ends.push(SocketAddr::new(local, i.local.port)),
            Some(_) => {}
            None => {
                let exe = std::fs::read_link(root.pid(h.pid).join("exe")).ok()?;
                if !hangscope_model::is_redis_exe(exe.as_os_str().as_bytes()) {
                    not_redis.insert(h.pid);
                } else {
                    out = Some(Target {
                        server: h.pid,
                        address: SocketAddr::new(peer, i.peer.port),
                        ends: vec![SocketAddr::new(local, i.local.port)],
                    });
                }
            }
        }
    }
    out
}

/// The view of the target's connections to a redis-server, when it has any; what could not be
/// read becomes a gap.
pub fn read_for_client(root: &ProcRoot, snap: &mut Snapshot, opts: &Options) -> Option<RedisView> {
    let target = find(root, snap)?;
    let gap = |reason, detail: String| Gap::new(what(target.server), reason, detail);
    if !opts.app_introspection {
        snap.gaps.push(gap(
            GapReason::Skipped,
            "not asked: --no-app-introspection".into(),
        ));
        return None;
    }
    if snap.process.netns_same_as_tool == Some(false) {
        snap.gaps.push(gap(
            GapReason::Unsupported,
            "not asked: the target is in another network namespace, whose loopback is not \
             hangscope's"
                .into(),
        ));
        return None;
    }
    let limit = LIMIT.min(opts.deadline.remaining());
    if limit < MIN_TIME {
        snap.gaps.push(gap(
            GapReason::Deadline,
            "not asked: the run's deadline was too near".into(),
        ));
        return None;
    }
    match ask(target.address, limit) {
        Ok(text) => {
            let clients = parse(&text)
                .into_iter()
                .filter(|c| {
                    c.addr
                        .parse::<SocketAddr>()
                        .is_ok_and(|a| target.ends.iter().any(|e| same(e, &a)))
                })
                .collect();
            Some(RedisView {
                server_pid: target.server,
                address: target.address.to_string(),
                clients,
            })
        }
        Err((reason, why)) => {
            snap.gaps.push(gap(reason, why));
            None
        }
    }
}

fn same(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

/// `CLIENT LIST`'s bulk string, within `limit`.
fn ask(address: SocketAddr, limit: Duration) -> Result<String, (GapReason, String)> {
    let end = Instant::now() + limit;
    let left = || {
        end.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let timed_out = |what: &str| {
        (
            GapReason::Other,
            format!(
                "redis-server at {address} did not {what} within {}",
                hangscope_model::units::duration(limit)
            ),
        )
    };
    let mut conn = TcpStream::connect_timeout(&address, left()).map_err(|e| {
        (
            GapReason::Other,
            format!("cannot connect to {address}: {e}"),
        )
    })?;
    let _ = conn.set_nodelay(true);
    conn.set_write_timeout(Some(left()))
        .and_then(|_| conn.write_all(b"*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n"))
        .map_err(|_| timed_out("take the request"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(done) = complete(&buf)? {
            return Ok(done);
        }
        if buf.len() > MAX_ANSWER {
            return Err((
                GapReason::Malformed,
                format!("CLIENT LIST was longer than {MAX_ANSWER} bytes"),
            ));
        }
        if Instant::now() >= end {
            return Err(timed_out("answer CLIENT LIST"));
        }
        conn.set_read_timeout(Some(left()))
            .map_err(|e| (GapReason::Other, e.to_string()))?;
        match conn.read(&mut chunk) {
            Ok(0) => {
                return Err((
                    GapReason::Other,
                    "redis-server closed the connection before answering".into(),
                ));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(timed_out("answer CLIENT LIST")),
        }
    }
}

/// The reply once it is whole: a bulk string `$LEN\r\n...\r\n`, or an error `-...\r\n`.
fn complete(buf: &[u8]) -> Result<Option<String>, (GapReason, String)> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..eol]);
    if let Some(err) = head.strip_prefix('-') {
        let reason = if err.starts_with("NOAUTH") || err.starts_with("NOPERM") {
            GapReason::Permission
        } else {
            GapReason::Other
        };
        return Err((
            reason,
            format!(
                "redis-server refused CLIENT LIST: {} (hangscope uses no credentials)",
                escape_cut(err, 200)
            ),
        ));
    }
    let len: usize = head
        .strip_prefix('$')
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| {
            (
                GapReason::Malformed,
                format!("not a bulk string reply: {}", escape_cut(&head, 100)),
            )
        })?;
    if len > MAX_ANSWER {
        return Err((
            GapReason::Malformed,
            format!("CLIENT LIST of {len} bytes is more than hangscope reads"),
        ));
    }
    let body = eol + 2;
    if buf.len() < body + len {
        return Ok(None);
    }
    Ok(Some(
        String::from_utf8_lossy(&buf[body..body + len]).into_owned(),
    ))
}

/// `id=3 addr=127.0.0.1:33948 laddr=... fd=7 name= age=0 idle=0 flags=b db=0 ... cmd=blpop`,
/// one client a line. A `name` may hold spaces? No: Redis refuses spaces in client names.
pub fn parse(text: &str) -> Vec<RedisClient> {
    text.lines()
        .filter_map(|line| {
            let field = |key: &str| {
                line.split(' ')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            };
            Some(RedisClient {
                id: field("id")?.parse().ok()?,
                addr: escape_cut(field("addr")?, 100),
                name: field("name")
                    .filter(|n| !n.is_empty())
                    .map(|n| Text::from(escape_cut(n, 100))),
                age_s: field("age").and_then(|v| v.parse().ok()).unwrap_or(0),
                idle_s: field("idle").and_then(|v| v.parse().ok()).unwrap_or(0),
                flags: escape_cut(field("flags").unwrap_or(""), 20),
                cmd: escape_cut(field("cmd").unwrap_or(""), 40),
                db: field("db").and_then(|v| v.parse().ok()).unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_list_of_7_0() {
        let text = "id=3 addr=127.0.0.1:33948 laddr=127.0.0.1:16379 fd=7 name= age=12 idle=11 \
                    flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=20474 \
                    argv-mem=7 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22303 \
                    events=r cmd=blpop user=default redir=-1 resp=2\n\
                    id=4 addr=127.0.0.1:33958 laddr=127.0.0.1:16379 fd=8 name=hs age=0 idle=0 \
                    flags=N db=2 cmd=client|list\n";
        let c = parse(text);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].id, c[0].addr.as_str()), (3, "127.0.0.1:33948"));
        assert_eq!(
            (c[0].age_s, c[0].idle_s, c[0].cmd.as_str()),
            (12, 11, "blpop")
        );
        assert!(c[0].blocked() && !c[1].blocked());
        assert_eq!(c[1].name.as_ref().map(Text::as_str), Some("hs"));
        assert_eq!(c[1].db, 2);
    }

    #[test]
    fn a_reply_is_whole_or_an_error() {
        assert_eq!(complete(b"$5\r\nab").ok(), Some(None));
        assert_eq!(
            complete(b"$5\r\nabcde\r\n").ok().flatten().as_deref(),
            Some("abcde")
        );
        let e = complete(b"-NOAUTH Authentication required.\r\n").expect_err("an error");
        assert_eq!(e.0, GapReason::Permission);
        assert!(complete(b"+OK\r\n").is_err());
    }
}
