//! The words of requests this server read and did not answer (`rules/unanswered.rs`).

use hangscope_model::Evidence;

use super::{blocked_call, fd_text, holder, how, thread, thread_of, waiting_in};
use crate::facts::unanswered::{SHOWN, Unanswered};
use crate::facts::{ConnFacts, OtherEnd};
use crate::wording::{self, duration};
use crate::words::Words;

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
    let it = if f.count == 1 {
        "it"
    } else {
        "those connections"
    };
    if let Some(w) = &f.reader {
        summary.push_str(&format!(
            " {} waits on fd {} in {} for more of it: the client may consider the request \
             complete while this side expects more.",
            thread(w),
            w.fd,
            how(w)
        ));
    } else if let Some(t) = &f.took_it {
        let mut who = thread_of(t.tid, &t.name);
        if f.watching.is_some() {
            who = who.replacen("Thread", "thread", 1);
        }
        let loop_ = match &f.watching {
            Some(w) => format!(" {} still watches {it} in its event loop, but", thread(w)),
            None => match f.stopped_loop {
                Some(ep) => format!(
                    " No thread waits on {it}, directly or in its event loop: epoll fd {ep}, \
                     which watches {it}, has no thread in it."
                ),
                None => format!(" No thread waits on {it}, directly or in an event loop."),
            },
        };
        summary.push_str(&format!(
            "{loop_} {} went into {} after the request came and has been there at least {}: \
             the thread that took the request is stuck in that wait, not waiting for the \
             client.",
            who,
            blocked_call(t),
            duration(t.blocked_ms.unwrap_or(0)),
        ));
    } else if let Some(w) = &f.watching {
        summary.push_str(&format!(
            " {} is idle in its event loop, in {} watching fd {} among other fds: it read the \
             request and waits for anything to happen; a blocking command or a long poll looks \
             the same.",
            thread(w),
            how(w),
            w.fd
        ));
    } else if let Some(t) = &f.suspect {
        summary.push_str(&format!(
            " No thread waits on {it}. {} has been blocked at least {} in {}, and what should \
             answer likely waits behind it.",
            thread_of(t.tid, &t.name),
            duration(t.blocked_ms.unwrap_or(0)),
            wording::call(&t.syscall)
        ));
    } else if !f.blocked.is_empty() {
        summary.push_str(&format!(
            " No thread waits on {it}; its blocked threads were already in their waits before \
             the request came."
        ));
    }
    if f.took_it.is_none() && f.watching.is_none() {
        summary.push_str(" (A long-poll or subscription protocol also leaves requests waiting.)");
    }

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
    evidence.extend(f.reader.iter().chain(&f.watching).map(waiting_in));
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
    let next_step = match f.took_it.as_ref().or(f.suspect.as_ref()) {
        Some(t) if f.reader.is_none() && (f.watching.is_none() || f.took_it.is_some()) => format!(
            "See what thread {} waits for: /proc/{pid}/task/{}/stack, or a debugger backtrace \
             (gdb -p {pid}, thread apply all bt); the code that answers these requests likely \
             waits behind it.",
            t.tid, t.tid
        ),
        _ if f.watching.is_some() && f.reader.is_none() => format!(
            "If these requests should have been answered by now, ask the application what it \
             holds them for (a blocking command, a long poll, a subscription); its threads \
             show no stuck wait. Else a debugger backtrace: gdb -p {pid}, thread apply all bt."
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
