//! Waiting loop: a thread that wakes up periodically (a sleep loop, a timed poll) while another
//! thread is stuck. Context for the reader: it is waiting, not the cause. Reported only when a
//! cause was found, since a sleep loop alone is what idle programs do.
//!
//! Facts from the sampling window (the threads collector's `Activity::looping`).

use hangscope_model::{Cause, Next, Severity, Subject};

use crate::Ctx;
use crate::facts::Facts;
use crate::facts::waiting_loop::{Loop, WaitingLoop};
use crate::facts::{RuleFacts, ThreadRef};

/// Loops listed one by one; beyond that, one finding for all (a JVM has a dozen timed waits).
const MAX_SINGLE: usize = 3;

pub(crate) fn find(ctx: &Ctx<'_>, found: &[Facts]) -> Vec<WaitingLoop> {
    let pid = ctx.snap.process.pid;
    let stuck: Vec<ThreadRef> = found
        .iter()
        .filter(|f| f.severity() == Severity::Cause)
        .filter_map(|f| {
            let subject = f.subject();
            Some(ThreadRef {
                tid: subject.tid?,
                name: subject.thread_name.unwrap_or_default(),
            })
        })
        .collect();
    if stuck.is_empty() {
        return vec![];
    }
    let mut looping: Vec<Loop> = ctx
        .snap
        .threads
        .iter()
        .filter(|t| !stuck.iter().any(|s| s.tid == t.tid))
        .filter_map(Loop::of)
        .collect();
    // The main thread first: its loop is the one most likely tied to the stuck thread.
    looping.sort_by_key(|l| l.thread.tid != pid);
    let rest = if looping.len() > MAX_SINGLE {
        looping.split_off(MAX_SINGLE - 1)
    } else {
        Vec::new()
    };
    let mut out: Vec<WaitingLoop> = looping
        .into_iter()
        .map(|l| {
            let main_thread = l.thread.tid == pid;
            // The main thread looping while a worker is stuck is most often waiting for it (a
            // join, a flag); another thread's loop is its own periodic work (a heartbeat, a
            // timer).
            let likely_waits_for = match stuck.as_slice() {
                [one] if main_thread => Some(one.clone()),
                _ => None,
            };
            WaitingLoop::One {
                pid,
                looping: l,
                main_thread,
                likely_waits_for,
            }
        })
        .collect();
    if !rest.is_empty() {
        out.push(WaitingLoop::Others { pid, loops: rest });
    }
    out
}

impl RuleFacts for WaitingLoop {
    const RULE: &'static str = "waiting_loop";

    fn cause(&self) -> Cause {
        Cause::WaitingLoop
    }

    /// Context: it waits, it is not the cause.
    fn severity(&self) -> Severity {
        Severity::Info
    }

    fn stuck_ms(&self) -> u64 {
        0
    }

    fn subject(&self) -> Subject {
        match self {
            WaitingLoop::One { looping, .. } => looping.thread.subject(),
            WaitingLoop::Others { .. } => Subject::default(),
        }
    }

    /// It moves on once the stuck wait ends: nothing to look at.
    fn next(&self) -> Option<Next> {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::*;
    use hangscope_model::Cause;

    #[test]
    fn the_loop_is_worded_from_its_fields_not_the_collectors_line() {
        // A 1.7 document: the fields say 250 ms; the line (for older readers) is not read.
        let mut snap = seed();
        let t = snap.threads.iter_mut().find(|t| t.tid == 31516).unwrap();
        let a = t.activity.as_mut().unwrap();
        a.periodic = Some("not read".into());
        a.rate_per_s = Some(4.0);
        a.looping = Some(hangscope_model::Looping {
            syscall: "clock_nanosleep".into(),
            period_ms: Some(250.0),
            timeout: false,
        });
        let findings = crate::diagnose(&snap);
        let l = findings
            .iter()
            .find(|f| f.cause == Cause::WaitingLoop)
            .unwrap();
        assert!(
            l.summary
                .contains("wakes up in a loop (clock_nanosleep 250 ms, ~4/s)"),
            "{}",
            l.summary
        );
        assert_eq!(l.facts["looping"]["period_ms"], 250.0);
    }

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

    #[test]
    fn facts_are_the_loop_its_rate_and_the_thread_it_waits_for() {
        let findings = crate::diagnose(&seed());
        let l = findings
            .iter()
            .find(|f| f.cause == Cause::WaitingLoop)
            .unwrap();
        assert_eq!(l.rule, "waiting_loop");
        assert_eq!(
            l.facts,
            serde_json::json!({
                "kind": "one",
                "pid": 31516,
                "looping": {
                    "tid": 31516,
                    "name": "zbs-metad",
                    "syscall": "clock_nanosleep",
                    "period_ms": 100.0,
                    "rate_per_s": 10.0,
                },
                "main_thread": true,
                "likely_waits_for": {"tid": 31576, "name": "dump_meta"},
            })
        );
        assert!(l.next.is_none());
    }

    #[test]
    fn facts_of_the_rest_list_each_loop() {
        let mut snap = seed();
        for i in 0..4 {
            snap.threads
                .push(sleeper(32000 + i, &format!("pool-{i}"), 50));
        }
        let findings = crate::diagnose(&snap);
        let rest = findings
            .iter()
            .find(|f| f.cause == Cause::WaitingLoop && f.facts["kind"] == "others")
            .expect("one finding for the rest");
        let loops = rest.facts["loops"].as_array().unwrap();
        let tids: Vec<i64> = loops.iter().map(|l| l["tid"].as_i64().unwrap()).collect();
        assert_eq!(tids, [32001, 32002, 32003]);
        assert_eq!(loops[0]["period_ms"], 50.0);
        assert_eq!(loops[0]["rate_per_s"], 20.0);
        // The one stuck thread is not claimed for loops other than the main thread's.
        let pool0 = findings
            .iter()
            .find(|f| f.subject.tid == Some(32000))
            .unwrap();
        assert_eq!(pool0.facts["main_thread"], false);
        assert!(pool0.facts.get("likely_waits_for").is_none());
    }
}
