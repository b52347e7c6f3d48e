//! The words of requests this server read and did not answer (`rules/unanswered.rs`).

use hangscope_model::Evidence;

use super::{blocked_call, fd_text, holder, how, thread, thread_of, waiting_in};
use crate::facts::{ConnFacts, OtherEnd, Words};
use crate::rules::unanswered::{SHOWN, Unanswered};
use crate::wording::{self, duration};

pub(crate) fn words(f: &Unanswered) -> Words {
    let pid = f.pid;
    let Some(oldest) = f.requests.first() else {
        return Words::default();
    };
    let requests = if f.count == 1 {
        format!("A request from {}", from(&oldest.conn))
    } else {
        format!(
            "{} requests from clients have had no reply; the oldest, from {},",
            f.count,
            from(&oldest.conn)
        )
    };
    let mut summary = format!(
        "{requests} came {} ago on {} and nothing has been sent back since.",
        duration(oldest.waited_ms),
        fd_text(&oldest.conn)
    );
    if let Some(w) = &f.reader {
        summary.push_str(&format!(
            " {} waits on fd {} in {} for more of it: the client may consider the request \
             complete while this side expects more.",
            thread(w),
            w.fd,
            how(w)
        ));
    } else if let Some(t) = f.blocked.first() {
        summary.push_str(&format!(
            " No thread waits on {}. {} has been blocked at least {} in {}, and what should \
             answer likely waits behind it.",
            if f.count == 1 {
                "it"
            } else {
                "those connections"
            },
            thread_of(t.tid, &t.name),
            duration(t.blocked_ms.unwrap_or(0)),
            wording::call(&t.syscall)
        ));
    }
    summary.push_str(" (A long-poll or subscription protocol also leaves requests waiting.)");

    let mut evidence = Vec::new();
    for r in &f.requests {
        evidence.push(Evidence::new(
            format!("request on fd {}", r.conn.fd.unwrap_or(-1)),
            format!(
                "from {}: last data in {} ago, last data out {} ago",
                from(&r.conn),
                duration(r.waited_ms),
                duration(r.last_sent_ms)
            ),
            format!(
                "ss: bytes_received:{} bytes_acked:{} lastrcv:{} lastsnd:{} Recv-Q 0",
                r.bytes_received, r.bytes_acked, r.waited_ms, r.last_sent_ms
            ),
        ));
    }
    // Why the oldest request is the last word, when its ages alone do not say.
    evidence.extend(super::last_word::evidence(&oldest.last_word));
    if f.count > SHOWN {
        evidence.push(Evidence::new(
            "more requests",
            format!("{} more connections like these", f.count - SHOWN),
            "sock_diag",
        ));
    }
    evidence.extend(f.reader.iter().map(waiting_in));
    for t in &f.blocked {
        evidence.push(Evidence::new(
            format!("thread {} ({})", t.tid, t.name),
            format!(
                "blocked at least {} in {}",
                duration(t.blocked_ms.unwrap_or(0)),
                blocked_call(t)
            ),
            format!("/proc/{pid}/task/{}/syscall, sampled", t.tid),
        ));
    }
    let next_step = match f.blocked.first() {
        Some(t) if f.reader.is_none() => format!(
            "See what thread {} waits for: /proc/{pid}/task/{}/stack, or a debugger backtrace \
             (gdb -p {pid}, thread apply all bt); the code that answers these requests likely \
             waits behind it.",
            t.tid, t.tid
        ),
        _ => format!(
            "Find why the code that answers these requests does not run: a debugger backtrace \
             (gdb -p {pid}, thread apply all bt)."
        ),
    };
    Words {
        summary,
        evidence,
        ruled_out: vec![],
        next_step,
    }
}

/// "127.0.0.1:58252 (fd 3 of process 950 (client))": the client, and who it is when it is on
/// this host.
fn from(c: &ConnFacts) -> String {
    match &c.other_end {
        Some(OtherEnd::Held { holder: h, .. } | OtherEnd::Listener { holder: h, .. }) => {
            format!("{} ({})", c.peer_addr(), holder(h))
        }
        _ => c.peer_addr(),
    }
}
