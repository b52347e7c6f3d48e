//! (e) A healthy busy server: one echo thread per connection, each constantly reading and
//! writing. Busy is not stuck: no cause, exit code 0.

use std::time::Duration;

use crate::support::*;
use crate::{WINDOW, assert_plain_words, findings_text};

#[test]
fn busy_echo_server_gets_no_cause() {
    let mut server = scenario("echo-server", &[]);
    let peer = format!("127.0.0.1:{}", server.expect("port"));
    let mut client = scenario("echo-client", &["--peer", &peer, "--conns", "4"]);
    assert_eq!(client.expect("conns"), "4");
    let pid = server.pid();
    // Main thread plus one echo thread per connection.
    assert!(
        wait_until(Duration::from_secs(20), || thread_count(pid) >= 5),
        "the server did not start 4 echo threads"
    );

    let (code, doc) = inspect(pid, &WINDOW);
    assert_eq!(doc["snapshot"]["process"]["pid"], pid);
    assert!(causes(&doc).is_empty(), "{}", findings_text(&doc));
    assert_plain_words(&doc);
    assert_eq!(code, 0, "exit code 0 means no cause was found");
}
