//! Every parser of system text or bytes, fed garbage: random bytes, and lines built from the
//! characters real input is made of (digits, separators, multi-byte UTF-8). Nothing may panic.
//! The generator is a fixed-seed xorshift, so a failure reproduces.

use hangscope_collect::apps::postgres;
use hangscope_collect::logs::civil_time::TimeContext;
use hangscope_collect::logs::{entries, glog, json_lines, kmsg, peers, plain};
use hangscope_collect::sockets::{
    inet_diag, netlink_diag, packet_diag, proc_net, tcp_info, unix_diag,
};
use hangscope_collect::threads::{sched, syscall, task};
use hangscope_collect::{fdinfo, locks, mountinfo, process};
use hangscope_model::LogFormat;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Text from the pieces /proc files and logs are made of.
    fn text(&mut self, max_pieces: usize) -> String {
        const PIECES: &[&str] = &[
            "0",
            "1",
            "7",
            "9",
            "42",
            "31576",
            "-1",
            "0x7f",
            "ffff",
            ":",
            "::",
            ".",
            ",",
            " ",
            "\t",
            "\n",
            "[",
            "]",
            "(",
            ")",
            "{",
            "}",
            "\"",
            "/",
            "->",
            "I",
            "W",
            "E",
            "F",
            "0917",
            "05:25:17.037914",
            "2023-09-17T05:25:17Z",
            "pos:",
            "flags:",
            "tfd:",
            "events:",
            "lock:",
            "POSIX",
            "FLOCK",
            "OFDLCK",
            "EOF",
            "ADVISORY",
            "WRITE",
            "fe:00:1234",
            "ino:",
            "mnt_id:",
            "eventfd-count:",
            "it_value:",
            "10.0.130.72:10100",
            "[::1]:80",
            "İ",
            "ß",
            "日本",
            "🦀",
            "\u{0}",
            "\u{7f}",
            "é",
            "level",
            "msg",
            "tid",
            "=",
            "running",
            "se.exec_start",
            "task hangscope:123 blocked for more than 120 seconds.",
        ];
        let n = self.below(max_pieces + 1);
        (0..n).map(|_| PIECES[self.below(PIECES.len())]).collect()
    }
}

#[test]
fn text_parsers_survive_garbage() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ctx = TimeContext::default();
    let target = kmsg::Target {
        pid: 123,
        names: vec!["hangscope".into()],
        tids: vec![123, 124],
    };
    for _ in 0..4000 {
        let t = rng.text(40);
        let _ = fdinfo::parse(&t);
        let _ = locks::parse_all(&t);
        let _ = mountinfo::Mounts::parse(&t);
        let _ = process::parse_stat(&t);
        let _ = process::parse_status(&t);
        let _ = proc_net::parse_tcp(&t);
        let _ = proc_net::parse_udp(&t);
        let _ = proc_net::parse_unix(&t);
        let _ = postgres::listening_sockets(&t);
        let _ = postgres::parse(t.as_bytes());
        let _ = sched::parse(&t);
        let _ = task::parse_stack(&t);
        if let Ok(raw) = syscall::parse(&t) {
            let _ = raw;
        }
        let _ = glog::parse_line(&t, &ctx);
        let _ = plain::parse_line(&t, &ctx);
        let _ = json_lines::parse_line(&t, &ctx);
        let _ = entries::detect(&t, &ctx);
        for f in [
            LogFormat::Glog,
            LogFormat::Plain,
            LogFormat::JsonLines,
            LogFormat::Unknown,
        ] {
            let parsed = entries::parse(&t, f, &ctx);
            let _ = peers::timeline(&parsed);
        }
        let _ = peers::extract(&t);
        if let Some(r) = kmsg::parse_record(&t) {
            let _ = r;
        }
        let _ = kmsg::classify(&t, &target);
    }
}

#[test]
fn netlink_parsers_survive_garbage() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..20000 {
        let b = rng.bytes(400);
        let _ = tcp_info::decode(&b);
        let _ = inet_diag::parse(6, &b);
        let _ = inet_diag::parse(17, &b);
        let _ = inet_diag::inode_of(&b);
        let _ = unix_diag::parse(&b);
        let _ = netlink_diag::parse(&b);
        let _ = packet_diag::parse(&b);
    }
}

/// psql's recorded answer (the server chooses all of it), cut short, with bytes flipped, and
/// with its numbers out of range: the parser refuses or reads it, never panics.
#[test]
fn postgres_answers_survive_mutation() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/postgres/lock_chain.out"
    );
    let answer = std::fs::read(path).expect("fixture");
    let mut rng = Rng(0x51_7cc1_b727_220a);
    let text = String::from_utf8_lossy(&answer).into_owned();
    for big in [
        "99999999999999999999",
        "-99999999999999999999",
        "1e308",
        "-1",
        "null",
        "\"x\"",
    ] {
        let _ = postgres::parse(text.replace("11180", big).as_bytes());
        let _ = postgres::parse(text.replace("11280", big).as_bytes());
    }
    for _ in 0..3000 {
        let mut b = answer.clone();
        for _ in 0..rng.below(4) {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
        }
        b.truncate(rng.below(b.len() + 1));
        let _ = postgres::parse(&b);
    }
}
