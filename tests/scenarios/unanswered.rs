//! (i) The server side of a silent peer: run on the server a client's verdict points at,
//! hangscope names the request it read and never answered, and the client waiting for it.

use std::time::Duration;

use crate::support::*;
use crate::{STUCK, WINDOW, assert_plain_words, findings_text, has_evidence};

#[test]
fn a_server_that_read_a_request_and_never_answered() {
    let mut server = scenario("silent-server", &[]);
    let port = server.expect("port");
    let mut client = scenario("socket-holder", &["--peer", &format!("127.0.0.1:{port}")]);
    client.expect("ready");
    let client_port = client.announced("client_port").to_string();
    let pid = server.pid();
    // The request is read at once; it must stay unanswered longer than a wait in passing.
    std::thread::sleep(STUCK);
    let found = wait_until(Duration::from_secs(20), || {
        let (_, doc) = inspect(pid, &WINDOW);
        doc["findings"]
            .as_array()
            .is_some_and(|fs| fs.iter().any(|f| f["cause"] == "unanswered"))
    });
    let (_, doc) = inspect(pid, &WINDOW);
    assert!(found, "no unanswered finding:\n{}", findings_text(&doc));
    let f = doc["findings"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["cause"] == "unanswered"))
        .expect("the finding");
    assert_eq!(f["severity"], "warning", "{f}");
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!(
            "A request from 127.0.0.1:{client_port} (fd {} of process {} (hangscope))",
            client.announced("client_fd"),
            client.pid()
        )),
        "{summary}"
    );
    assert!(
        summary.contains("nothing has been sent back since"),
        "{summary}"
    );
    assert!(
        has_evidence(
            f,
            &format!("request on fd {}", f["subject"]["fd"]),
            "last data in"
        ),
        "{f}"
    );
    // The same as data: the client's request and its process at the other end.
    assert_eq!(f["rule"], "unanswered");
    assert_eq!(f["facts"]["count"], 1, "{f}");
    let r = &f["facts"]["requests"][0];
    assert_eq!(r["conn"]["peer"]["port"].to_string(), client_port);
    assert_eq!(r["conn"]["other_end"]["holder"]["pid"], client.pid(), "{f}");
    assert!(r["waited_ms"].as_u64() >= Some(1000), "{f}");
    assert_eq!(f["next"]["pid"], pid);
    assert_plain_words(&doc);
}
