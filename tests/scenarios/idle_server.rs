//! (f) Idle servers: one waiting in accept() that nobody connects to, and a silent server with
//! nobody connected. Waiting is not stuck: no cause, exit code 0.

use std::time::Duration;

use crate::support::*;
use crate::{WINDOW, assert_plain_words, findings_text};

fn assert_idle(name: &str) {
    let mut server = scenario(name, &[]);
    let _port = server.expect("port");
    let pid = server.pid();
    assert!(
        wait_until(Duration::from_secs(20), || {
            syscall_nr(pid, pid) == Some(libc::SYS_accept4)
        }),
        "{name} is not waiting in accept4"
    );

    let (code, doc) = inspect(pid, &WINDOW);
    assert_eq!(doc["snapshot"]["process"]["pid"], pid);
    assert!(causes(&doc).is_empty(), "{name}: {}", findings_text(&doc));
    assert_plain_words(&doc);
    assert_eq!(code, 0, "{name}: exit code 0 means no cause was found");
}

#[test]
fn idle_server_gets_no_cause() {
    assert_idle("idle-server");
}

#[test]
fn silent_server_with_nobody_connected_gets_no_cause() {
    assert_idle("silent-server");
}
