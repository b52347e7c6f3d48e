//! A Redis client blocked by design: its connection to a redis-server on this host is, by the
//! server's own `CLIENT LIST` (`AppView::Redis`), blocked in a blocking command — BLPOP,
//! BRPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, WAIT... The server holds the reply until the event the
//! command waits for (or the command's own timeout), so the silence is the answer being
//! awaited, not a server that stopped. Context, never a cause; the silence finding about the
//! same connection (`peer_silent`) is replaced by this one.
//!
//! Facts: the server's `CLIENT LIST` entry for the target's end of the connection (`flags=b`,
//! `cmd`, `idle`), and the thread waiting on that connection's fd.

use hangscope_model::{AppView, Cause, Next, Severity, SocketDetail, Subject};

use crate::Ctx;
use crate::facts::RuleFacts;
use crate::facts::ThreadWait;
use crate::facts::redis_blocked::RedisBlocked;

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<RedisBlocked> {
    let Some(AppView::Redis(view)) = &ctx.snap.app else {
        return vec![];
    };
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for c in view.clients.iter().filter(|c| c.blocked()) {
        let Ok(end) = c.addr.parse::<std::net::SocketAddr>() else {
            continue;
        };
        let Some(sock) = ctx.snap.sockets.iter().find(|s| match &s.detail {
            SocketDetail::Tcp(i) => {
                i.local.port == end.port()
                    && i.local
                        .addr
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.to_canonical() == end.ip().to_canonical())
            }
            _ => false,
        }) else {
            continue;
        };
        out.push(RedisBlocked {
            pid,
            server_pid: view.server_pid,
            server: view.address.clone(),
            client_id: c.id,
            command: c.cmd.split('|').next().unwrap_or("").to_uppercase(),
            blocked_s: c.idle_s,
            socket_inode: sock.inode,
            waiter: ctx
                .waiters
                .first_on(&sock.fds)
                .map(|w| ThreadWait::of(w, pid)),
        });
    }
    out
}

impl RuleFacts for RedisBlocked {
    const RULE: &'static str = "redis_blocked";

    fn cause(&self) -> Cause {
        Cause::ByDesign
    }

    fn severity(&self) -> Severity {
        Severity::Info
    }

    fn stuck_ms(&self) -> u64 {
        self.blocked_s.saturating_mul(1000)
    }

    fn subject(&self) -> Subject {
        Subject {
            tid: self.waiter.as_ref().map(|w| w.tid),
            thread_name: self.waiter.as_ref().map(|w| w.name.clone()),
            connection: Some(format!("redis {}", self.server)),
            ..Subject::default()
        }
    }

    /// Nothing to follow: the server is doing what was asked.
    fn next(&self) -> Option<Next> {
        None
    }
}
