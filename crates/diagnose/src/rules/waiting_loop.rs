//! Waiting loop: a thread that wakes up periodically (a sleep loop, a timed poll) while another
//! thread is stuck. Context for the reader: it is waiting, not the cause. Reported only when a
//! cause was found, since a sleep loop alone is what idle programs do.
//!
//! Facts from the sampling window (the threads collector's `Activity::periodic`).

use hangscope_model::{Cause, Evidence, Finding, Severity, Subject};

use crate::{Candidate, Ctx, Found, wording};

pub(crate) fn find(ctx: &Ctx<'_>, found: &[Candidate]) -> Vec<Found> {
    let stuck: Vec<(i32, String)> = found
        .iter()
        .filter(|f| f.severity() == Severity::Cause)
        .filter_map(|f| {
            let subject = f.subject();
            Some((
                subject.tid?,
                subject.thread_name.map(String::from).unwrap_or_default(),
            ))
        })
        .collect();
    if stuck.is_empty() {
        return vec![];
    }
    let mut looping: Vec<(&hangscope_model::Thread, String)> = ctx
        .snap
        .threads
        .iter()
        .filter(|t| !stuck.iter().any(|(tid, _)| *tid == t.tid))
        .filter_map(|t| Some((t, t.activity.as_ref()?.periodic.clone()?)))
        .collect();
    // The main thread first: its loop is the one most likely tied to the stuck thread.
    looping.sort_by_key(|(t, _)| t.tid != ctx.snap.process.pid);
    let rest = if looping.len() > MAX_SINGLE {
        looping.split_off(MAX_SINGLE - 1)
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    for (t, periodic) in looping {
        // The main thread looping while a worker is stuck is most often waiting for it (a
        // join, a flag); another thread's loop is its own periodic work (a heartbeat, a
        // timer), so nothing is claimed about it.
        let waiting_for = match stuck.as_slice() {
            [(tid, name)] if t.tid == ctx.snap.process.pid => {
                let who = if name.is_empty() {
                    format!("thread {tid}")
                } else {
                    format!("thread {tid} ({name})")
                };
                format!(", likely waiting for {who}: it waits, it is not the cause.")
            }
            _ => ": a periodic wait, not the cause.".to_string(),
        };
        out.push(Found {
            finding: Finding {
                severity: Severity::Info,
                cause: Cause::WaitingLoop,
                summary: format!(
                    "{} wakes up in a loop ({periodic}){waiting_for}",
                    wording::thread(t)
                ),
                subject: Subject {
                    tid: Some(t.tid),
                    thread_name: Some(t.name.clone()).filter(|n| !n.is_empty()),
                    ..Subject::default()
                },
                evidence: vec![Evidence::new(
                    "loop",
                    periodic,
                    format!(
                        "/proc/{}/task/{}/syscall, sampled",
                        ctx.snap.process.pid, t.tid
                    ),
                )],
                ruled_out: vec![],
                next_step: "None: it moves on once the stuck wait ends.".into(),
                ..Finding::default()
            },
            stuck_ms: 0,
        });
    }
    if !rest.is_empty() {
        out.push(summarise_rest(ctx, &rest));
    }
    out
}

/// Loops listed one by one; beyond that, one line for all (a JVM has a dozen timed waits).
const MAX_SINGLE: usize = 3;

fn summarise_rest(ctx: &Ctx<'_>, rest: &[(&hangscope_model::Thread, String)]) -> Found {
    let mut names: Vec<String> = rest
        .iter()
        .map(|(t, _)| {
            if t.name.is_empty() {
                t.tid.to_string()
            } else {
                t.name.to_string()
            }
        })
        .collect();
    names.dedup();
    let shown = names.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 4 { ", …" } else { "" };
    Found {
        finding: Finding {
            severity: Severity::Info,
            cause: Cause::WaitingLoop,
            summary: format!(
                "{} other threads wake up periodically ({shown}{more}): periodic waits, not the \
                 cause.",
                rest.len()
            ),
            subject: Subject::default(),
            evidence: vec![Evidence::new(
                "loops",
                rest.iter()
                    .take(5)
                    .map(|(t, periodic)| format!("{} {}: {periodic}", t.tid, t.name))
                    .collect::<Vec<_>>()
                    .join("; "),
                format!("/proc/{}/task/*/syscall, sampled", ctx.snap.process.pid),
            )],
            ruled_out: vec![],
            next_step: "None: they move on by themselves.".into(),
            ..Finding::default()
        },
        stuck_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::*;
    use hangscope_model::Cause;

    #[test]
    fn main_loop_in_the_seed_is_context() {
        let findings = crate::diagnose(&seed());
        let l = findings
            .iter()
            .find(|f| f.cause == Cause::WaitingLoop)
            .unwrap();
        assert_eq!(l.subject.tid, Some(31516));
        assert_eq!(
            l.summary,
            "Thread 31516 (zbs-metad) wakes up in a loop (clock_nanosleep 100 ms, ~10/s), likely \
             waiting for thread 31576 (dump_meta): it waits, it is not the cause."
        );
    }

    #[test]
    fn other_loops_are_not_said_to_wait_for_the_stuck_thread() {
        let mut snap = seed();
        snap.threads.push(sleeper(31600, "heartbeat", 500));
        let findings = crate::diagnose(&snap);
        let l = findings
            .iter()
            .find(|f| f.cause == Cause::WaitingLoop && f.subject.tid == Some(31600))
            .unwrap();
        assert_eq!(
            l.summary,
            "Thread 31600 (heartbeat) wakes up in a loop (clock_nanosleep 500 ms, ~2/s): a \
             periodic wait, not the cause."
        );
    }

    #[test]
    fn many_loops_are_summed_up_in_one_line() {
        let mut snap = seed();
        for i in 0..12 {
            snap.threads
                .push(sleeper(32000 + i, &format!("pool-{i}"), 50));
        }
        let findings = crate::diagnose(&snap);
        let loops: Vec<_> = findings
            .iter()
            .filter(|f| f.cause == Cause::WaitingLoop)
            .collect();
        assert_eq!(loops.len(), 3, "{loops:#?}");
        assert!(
            loops.iter().any(|f| f.subject.tid == Some(31516)),
            "the main thread keeps its own line"
        );
        let last = loops
            .iter()
            .find(|f| f.subject.tid.is_none())
            .expect("one line for the rest");
        assert!(
            last.summary.starts_with(
                "11 other threads wake up periodically (pool-1, pool-2, pool-3, pool-4, …)"
            ),
            "{}",
            last.summary
        );
    }

    #[test]
    fn idle_loop_without_a_cause_is_nothing() {
        let mut snap = base(1, "idle");
        snap.threads.push(sleeper(1, "idle", 100));
        assert!(crate::diagnose(&snap).is_empty());
    }
}
