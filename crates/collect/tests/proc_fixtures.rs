//! Parsers on /proc files recorded on this machine (Linux 6.18, x86_64), under tests/fixtures/.
//! Each fixture starts with "# " lines saying how it was recorded; the rest is verbatim.

use hangscope_collect::{fd::classify, fdinfo, locks};
use hangscope_model::{FdKind, LockClass};

fn fixture(rel: &str) -> (String, String) {
    let path = format!(
        "{}/../../tests/fixtures/proc/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("# readlink: "))
        .unwrap_or("")
        .to_string();
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect();
    (link, body)
}

#[test]
fn eventpoll_watch_list() {
    let (link, body) = fixture("fdinfo-linux-6.18/eventpoll");
    assert_eq!(classify(5, &link).kind, FdKind::Eventpoll);
    let info = fdinfo::parse(&body);
    let tfds: Vec<i32> = info.epoll_watches.iter().map(|w| w.tfd).collect();
    assert_eq!(tfds, [6, 8]);
    assert_eq!(
        info.epoll_watches[1]
            .events_decoded
            .last()
            .map(String::as_str),
        Some("EPOLLET")
    );
    assert!(info.other.is_empty(), "{:?}", info.other);
}

#[test]
fn eventfd_count_is_hex() {
    let (link, body) = fixture("fdinfo-linux-6.18/eventfd");
    assert_eq!(classify(6, &link).kind, FdKind::Eventfd);
    assert_eq!(fdinfo::parse(&body).eventfd_count, Some(7));
}

#[test]
fn timerfd_settings() {
    let (link, body) = fixture("fdinfo-linux-6.18/timerfd");
    assert_eq!(classify(3, &link).kind, FdKind::Timerfd);
    let t = fdinfo::parse(&body).timerfd.expect("timerfd settings");
    assert_eq!(t.clockid, 1);
    assert_eq!(t.it_interval_ns, 1_000_000_000);
    assert!(t.it_value_ns > 4_000_000_000 && t.it_value_ns < 5_000_000_000);
}

#[test]
fn signalfd_inotify_socket() {
    let (_, body) = fixture("fdinfo-linux-6.18/signalfd");
    assert_eq!(
        fdinfo::parse(&body).sigmask.as_deref(),
        Some("0000000000000200")
    );
    let (link, body) = fixture("fdinfo-linux-6.18/inotify");
    assert_eq!(classify(4, &link).kind, FdKind::Inotify);
    assert_eq!(fdinfo::parse(&body).inotify_watches.len(), 1);
    let (link, body) = fixture("fdinfo-linux-6.18/socket");
    let f = classify(8, &link);
    assert_eq!(f.kind, FdKind::Socket);
    assert_eq!(f.socket_inode, fdinfo::parse(&body).ino);
}

#[test]
fn deleted_file_and_append_log() {
    let (link, body) = fixture("fdinfo-linux-6.18/deleted-file");
    let f = classify(9, &link);
    assert!(f.deleted);
    assert_eq!(fdinfo::parse(&body).pos, 100);
    let (_, body) = fixture("fdinfo-linux-6.18/append-log");
    let info = fdinfo::parse(&body);
    assert_eq!(info.flags_decoded[..2], ["O_WRONLY", "O_APPEND"]);
}

#[test]
fn locks_held_waited_and_ofd() {
    let (_, table) = fixture("locks-linux-6.18/proc-locks");
    let (all, bad) = locks::parse_all(&table);
    assert_eq!(bad, 0);
    let holder = 10309;
    let waiter = 10350;

    let fd_from = |name: &str, n: i32| {
        let (link, body) = fixture(&format!("locks-linux-6.18/{name}"));
        let mut f = classify(n, &link);
        f.info = Some(Box::new(fdinfo::parse(&body)));
        f
    };
    let holder_fds = [
        fd_from("fdinfo-holder-posix", 3),
        fd_from("fdinfo-holder-ofd", 4),
        fd_from("fdinfo-holder-flock", 5),
    ];
    let (held, _) = locks::join(holder, &all, &holder_fds);
    let class_fd = |c: LockClass| {
        held.iter()
            .find(|l| l.class == c && !l.waiting)
            .and_then(|l| l.fd)
    };
    assert_eq!(class_fd(LockClass::Posix), Some(3));
    assert_eq!(
        class_fd(LockClass::Ofd),
        Some(4),
        "OFD holder found only through fdinfo"
    );
    assert_eq!(class_fd(LockClass::Flock), Some(5));
    assert!(
        held.iter().any(|l| l.waiting && l.pid == Some(waiter)),
        "the holder sees its waiter"
    );

    let (waiting, left_out) = locks::join(waiter, &all, &[fd_from("fdinfo-waiter", 3)]);
    assert_eq!((waiting.len(), left_out), (2, 0));
    assert!(waiting[0].waiting);
    assert_eq!(waiting[0].holder_pid, Some(holder));
    assert_eq!(waiting[0].fd, Some(3));
    assert_eq!(waiting[0].path.as_deref(), Some("/tmp/hs-lockrec"));
    // The lock it waits behind, held by another process on the file it has open.
    let other = &waiting[1];
    assert!(other.other_owner && !other.waiting);
    assert_eq!((other.pid, other.fd), (Some(holder), Some(3)));
    assert!(
        !held.iter().any(|l| l.other_owner),
        "the holder's own locks are its own"
    );
}
