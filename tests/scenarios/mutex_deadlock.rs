//! Two threads in a lock cycle: each holds a pthread mutex and waits for the other's.

use std::time::Duration;

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text, top_cause};

#[test]
fn two_threads_in_a_lock_cycle() {
    let mut p = scenario("mutex-deadlock", &[]);
    let a: i32 = p.expect("transfer-a").parse().expect("tid");
    let b: i32 = p.expect("transfer-b").parse().expect("tid");
    let pid = p.pid();
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            syscall_nr(pid, a) == Some(libc::SYS_futex)
                && syscall_nr(pid, b) == Some(libc::SYS_futex)
        }),
        "the two threads never both waited in futex"
    );

    let (code, doc) = inspect(pid, &WINDOW);
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "deadlock", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["tid"], a.min(b));
    let summary = top["summary"].as_str().expect("summary");
    assert!(
        summary.contains(&format!("held by thread {a}"))
            && summary.contains(&format!("held by thread {b}")),
        "{summary}"
    );
    // The same as data: the cycle from the lowest TID, and the thread it waits for as next.
    assert_eq!(top["rule"], "mutex_deadlock");
    let cycle = top["facts"]["cycle"].as_array().expect("cycle");
    let (first, second) = (a.min(b), a.max(b));
    assert_eq!(cycle.len(), 2, "{top}");
    assert_eq!(
        (&cycle[0]["tid"], &cycle[0]["owner_tid"]),
        (&first.into(), &second.into())
    );
    assert_eq!(
        (&cycle[1]["tid"], &cycle[1]["owner_tid"]),
        (&second.into(), &first.into())
    );
    assert_eq!(top["next"]["kind"], "thread");
    assert_eq!(top["next"]["pid"], pid);
    assert_eq!(top["next"]["tid"], second);
    assert_plain_words(&doc);
    assert_eq!(code, 1, "exit code 1 means a cause was found");
}

#[test]
fn a_pool_behind_a_lock_whose_owner_is_blocked() {
    let mut p = scenario("many-threads", &["--count", "8"]);
    let line = p.expect("main");
    let main: i32 = line
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .expect("main tid");
    let pid = p.pid();
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            thread_count(pid) >= 9 && syscall_nr(pid, main) == Some(libc::SYS_pause)
        }),
        "the pool never settled behind the lock"
    );
    let (code, doc) = inspect(pid, &WINDOW);
    let top = top_cause(&doc);
    assert_eq!(top["cause"], "lock_wait", "{}", findings_text(&doc));
    assert_eq!(top["subject"]["tid"], main, "the subject is the owner");
    let summary = top["summary"].as_str().expect("summary");
    assert!(summary.starts_with("8 threads have waited"), "{summary}");
    assert!(summary.contains("in pause()"), "{summary}");
    assert_eq!(top["rule"], "mutex_holder_blocked");
    assert_eq!(top["facts"]["owner"]["tid"], main);
    assert_eq!(top["facts"]["owner"]["syscall"], "pause");
    assert_eq!(top["facts"]["waiters"].as_array().map(Vec::len), Some(8));
    assert_eq!(
        (&top["next"]["kind"], &top["next"]["tid"]),
        (&"thread".into(), &main.into())
    );
    assert_plain_words(&doc);
    assert_eq!(code, 1);
}
