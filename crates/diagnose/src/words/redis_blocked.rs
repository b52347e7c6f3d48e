//! The words of a Redis client blocked by design (`rules/redis_blocked.rs`).

use hangscope_model::Evidence;

use crate::facts::redis_blocked::RedisBlocked;
use crate::wording::duration;
use crate::words::Words;

pub(crate) fn words(f: &RedisBlocked) -> Words {
    let who = match &f.waiter {
        Some(w) if !w.name.is_empty() => format!("Thread {} ({})", w.tid, w.name),
        Some(w) => format!("Thread {}", w.tid),
        None => format!("Process {}", f.pid),
    };
    Words {
        summary: format!(
            "{who} is blocked in {} on redis-server {} ({}) for {}, by design: the server \
             answers when {} (or when the command's own timeout ends); the server is not stuck.",
            f.command,
            f.server_pid,
            f.server,
            duration(f.blocked_s.saturating_mul(1000)),
            f.returns_when(),
        ),
        evidence: vec![Evidence::new(
            "the server says",
            format!(
                "client id {} flags=b cmd={} idle={} s",
                f.client_id,
                f.command.to_lowercase(),
                f.blocked_s
            ),
            format!(
                "CLIENT LIST of redis-server {} at {}",
                f.server_pid, f.server
            ),
        )],
        ruled_out: vec!["a server that stopped answering: it lists the client as blocked".into()],
        next_step: format!(
            "Nothing to fix unless nothing should be waiting: see who should feed it ({}), \
             or end the wait with CLIENT UNBLOCK {}.",
            f.returns_when(),
            f.client_id
        ),
    }
}
