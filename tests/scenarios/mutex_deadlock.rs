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
    assert_plain_words(&doc);
    assert_eq!(code, 1);
}
