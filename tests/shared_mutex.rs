//! Process-shared pthread mutexes across processes, on real processes (`hangscope __scenario
//! shared-mutex`: robust mutexes in a file two processes map, PI ones with `--pi`). A thread
//! waiting for a mutex a thread of another process holds leads to that process; two processes
//! taking two mutexes in opposite orders are a cycle; a holder that unlocks leaves no cause.

mod support;

use std::time::Duration;

use hangscope_model::{ChainEnd, Document, NextKind, WaitObject};
use support::*;

/// The announced TID of `key` ("holding 0 TID" → TID).
fn tid_of(s: &mut Started, key: &str) -> i32 {
    s.expect(key)
        .parse()
        .unwrap_or_else(|_| panic!("{key}: not a TID"))
}

fn start(dir: &TempDir, args: &[&str]) -> Started {
    let file = format!("{}/mutexes", dir.path());
    let mut all = vec!["--file", file.as_str()];
    all.extend_from_slice(args);
    scenario("shared-mutex", &all)
}

/// Waits (bounded) until thread `tid` of `pid` is in futex().
fn in_futex(pid: i32, tid: i32) {
    assert!(
        wait_until(Duration::from_secs(20), || syscall_nr(pid, tid)
            == Some(libc::SYS_futex)),
        "thread {tid} waits in futex()"
    );
}

fn chain_pids(doc: &Document) -> Vec<i32> {
    doc.chain
        .as_ref()
        .map(|c| c.hops.iter().map(|h| h.pid).collect())
        .unwrap_or_default()
}

/// A holder that takes mutex 0 and waits in pause(); a waiter that asks for it. The waiter's
/// verdict names the holder's thread, and the chain ends at the holder, idle.
fn holder_and_waiter(pi: bool) {
    let dir = TempDir::new("shared-mutex");
    let mut init = vec!["--init", "--lock", "0"];
    if pi {
        init.push("--pi");
    }
    let mut holder = start(&dir, &init);
    let holder_tid = tid_of(&mut holder, "holding 0");
    let mut waiter = start(&dir, &["--lock", "1", "--then", "0"]);
    let waiter_tid = tid_of(&mut waiter, "locking 0");
    in_futex(waiter.pid(), waiter_tid);
    std::thread::sleep(Duration::from_millis(1200));

    let doc = document(waiter.pid(), &[]);
    assert!(doc.verdict.cause_found, "{:#?}", doc.verdict);
    assert_eq!(doc.verdict.rule, "shared_mutex_wait", "{:#?}", doc.verdict);
    assert!(
        doc.verdict.summary.contains(&format!(
            "held by thread {holder_tid} of process {}",
            holder.pid()
        )),
        "{}",
        doc.verdict.summary
    );
    let f = &doc.findings[doc.verdict.finding.expect("a finding")];
    let next = f.next.as_ref().expect("a next process");
    assert_eq!(
        (next.kind, next.pid, next.tid),
        (NextKind::Thread, Some(holder.pid()), Some(holder_tid))
    );
    assert_eq!(
        f.facts["op"].as_str().map(|op| op.contains("LOCK_PI")),
        Some(pi),
        "{}",
        f.facts
    );
    assert!(
        f.facts["file"]
            .as_str()
            .is_some_and(|p| p.ends_with("/mutexes")),
        "{}",
        f.facts
    );
    // The wait itself carries the owner's process.
    let wait = doc
        .snapshot
        .thread(waiter_tid)
        .and_then(|t| t.syscall.as_ref())
        .and_then(|s| s.waits_on.first());
    assert!(
        matches!(wait, Some(WaitObject::Futex { owner_tid: Some(o), owner_pid: Some(p), .. })
            if *o == holder_tid && *p == holder.pid()),
        "{wait:?}"
    );
    assert_eq!(chain_pids(&doc), [waiter.pid(), holder.pid()]);
    let chain = doc.chain.as_ref().expect("a chain");
    assert_eq!(
        chain.end,
        ChainEnd::Root {
            why: None,
            idle: true
        }
    );
    assert!(
        chain.hops[1].summary.contains("pause()"),
        "{}",
        chain.hops[1].summary
    );
}

#[test]
fn a_waiter_for_a_robust_shared_mutex_leads_to_the_holder_process() {
    holder_and_waiter(false);
}

#[test]
fn a_waiter_for_a_pi_shared_mutex_leads_to_the_holder_process() {
    holder_and_waiter(true);
}

/// Two processes, each holding one mutex and asking for the other's: from either one the
/// chain closes on the other, a cycle.
#[test]
fn two_processes_waiting_on_each_others_shared_mutex_are_a_cycle() {
    let dir = TempDir::new("shared-mutex-cycle");
    let mut one = start(
        &dir,
        &["--init", "--lock", "0", "--then", "1", "--holders", "2"],
    );
    one.expect("holding 0");
    let mut two = start(&dir, &["--lock", "1", "--then", "0", "--holders", "2"]);
    let one_tid = tid_of(&mut one, "locking 1");
    let two_tid = tid_of(&mut two, "locking 0");
    in_futex(one.pid(), one_tid);
    in_futex(two.pid(), two_tid);
    std::thread::sleep(Duration::from_millis(1200));
    for (me, other) in [(&one, &two), (&two, &one)] {
        let doc = document(me.pid(), &[]);
        assert_eq!(doc.verdict.rule, "shared_mutex_wait", "{:#?}", doc.verdict);
        assert_eq!(
            chain_pids(&doc),
            [me.pid(), other.pid()],
            "{:#?}",
            doc.chain
        );
        let chain = doc.chain.as_ref().expect("a chain");
        assert_eq!(chain.end, ChainEnd::Cycle { back_to: 0 });
        assert!(doc.verdict.root.as_ref().is_some_and(|r| r.cycle));
    }
}

/// The healthy twin: the holder unlocks after a moment, the waiter takes the mutex and waits
/// in pause(). No cause, no chain.
#[test]
fn a_shared_mutex_that_is_released_leaves_no_cause() {
    let dir = TempDir::new("shared-mutex-released");
    let mut holder = start(&dir, &["--init", "--lock", "0", "--unlock-after-ms", "800"]);
    holder.expect("holding 0");
    let mut waiter = start(&dir, &["--lock", "1", "--then", "0"]);
    waiter.expect("locking 0");
    holder.expect("released 0");
    waiter.expect("got 0");
    std::thread::sleep(Duration::from_millis(500));
    let doc = document(waiter.pid(), &[]);
    assert!(!doc.verdict.cause_found, "{:#?}", doc.verdict);
    assert!(
        doc.findings.iter().all(|f| f.rule != "shared_mutex_wait"),
        "{:#?}",
        doc.findings
    );
    assert_eq!(chain_pids(&doc).len(), 1, "{:#?}", doc.chain);
}
