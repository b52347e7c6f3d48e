//! A thread waiting for a child's output on a pipe: the finding names the child, which holds
//! the write end, as where to look next.

use std::time::Duration;

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text};

#[test]
fn a_thread_reading_a_pipe_names_the_writer() {
    let mut p = scenario("pipe-parent", &[]);
    let line = p.expect("reader");
    let words: Vec<&str> = line.split_whitespace().collect();
    let (reader, fd, child): (i32, i32, i32) = match words.as_slice() {
        [tid, "fd", fd, "child", child] => (
            tid.parse().expect("tid"),
            fd.parse().expect("fd"),
            child.parse().expect("child pid"),
        ),
        _ => panic!("unexpected announcement {line:?}"),
    };
    let pid = p.pid();
    assert!(
        wait_steady(Duration::from_secs(20), STUCK, || {
            syscall_nr(pid, reader) == Some(libc::SYS_read)
        }),
        "the reader never blocked in read"
    );
    let (_, doc) = inspect(pid, &WINDOW);
    let pipe = &doc["snapshot"]["fds"]
        .as_array()
        .expect("fds")
        .iter()
        .find(|f| f["fd"] == fd)
        .expect("the pipe fd")["pipe_peers"];
    assert_eq!(pipe[0]["pid"], child, "{pipe}");
    assert_eq!(pipe[0]["fd"], 1);
    assert_eq!(pipe[0]["access"], "write");
    let f = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["cause"] == "pipe_wait")
        .unwrap_or_else(|| panic!("no pipe finding:\n{}", findings_text(&doc)));
    assert_eq!(f["subject"]["tid"], reader);
    assert_eq!(f["subject"]["fd"], fd);
    assert!(
        f["next_step"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("hangscope {child}"))),
        "{f}"
    );
    // The same as data: the reader, the child at the other end, and the child as next.
    assert_eq!(f["rule"], "pipe_wait");
    assert_eq!(f["facts"]["waiter"]["tid"], reader);
    assert_eq!(f["facts"]["writing"], false);
    assert_eq!(f["facts"]["other_ends"][0]["pid"], child, "{f}");
    assert_eq!(f["next"]["kind"], "process");
    assert_eq!(f["next"]["pid"], child);
    assert_plain_words(&doc);
}
