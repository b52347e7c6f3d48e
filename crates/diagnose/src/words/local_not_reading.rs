//! The words of data this process does not read (`rules/local_not_reading.rs`).

use hangscope_model::Evidence;

use super::{blocked_call, fd_text, thread_in_sentence, window_evidence};
use crate::facts::local_not_reading::LocalNotReading;
use crate::wording::{self, bytes, duration};
use crate::words::Words;

pub(crate) fn words(f: &LocalNotReading) -> Words {
    let queued = u64::from(f.queued);
    let fd = fd_text(&f.conn);
    let pid = f.pid;
    // The verdict names what the threads do; which thread is in which call is evidence.
    let mut calls: Vec<String> = Vec::new();
    for t in &f.blocked {
        let call = wording::call(&t.syscall);
        if !calls.contains(&call) {
            calls.push(call);
        }
    }
    let newest = match f.waited_ms {
        Some(ms) => format!(", the newest arrived {} ago", duration(ms)),
        None => String::new(),
    };
    let elsewhere = match f.blocked_count {
        0 => String::new(),
        1 => format!(": its one waiting thread is in {}", calls.join(", ")),
        n => format!(": its {n} waiting threads are in {}", calls.join(", ")),
    };
    let summary = format!(
        "Data from {} sits unread in the receive queue of {fd} ({}{newest}), and no thread \
         reads it{elsewhere}.",
        f.conn.peer_addr(),
        bytes(queued),
    );
    let mut evidence = vec![Evidence::new(
        "receive queue",
        format!(
            "{} unread{}",
            bytes(queued),
            match f.waited_ms {
                Some(ms) => format!(", last data arrived {} ago", duration(ms)),
                None => String::new(),
            }
        ),
        match f.waited_ms {
            Some(ms) => format!("ss: Recv-Q {} lastrcv:{ms}", f.queued),
            None => format!("ss: Recv-Q {}", f.queued),
        },
    )];
    evidence.extend(window_evidence(&f.conn));
    for t in &f.blocked {
        evidence.push(Evidence::new(
            format!("thread {} ({})", t.tid, t.name),
            blocked_call(t),
            format!("/proc/{pid}/task/{}/syscall", t.tid),
        ));
    }
    let next_step = match f.blocked.first() {
        Some(t) => format!(
            "Find why the code that reads {fd} does not run: look at what {} waits for \
             (/proc/{pid}/task/{}/stack, or a debugger backtrace).",
            thread_in_sentence(t.tid, &t.name),
            t.tid
        ),
        None => format!("Find why the code that reads {fd} does not run."),
    };
    Words {
        summary,
        evidence,
        ruled_out: vec![format!(
            "the peer: it sent the data, {} is waiting here",
            bytes(queued)
        )],
        next_step,
    }
}
