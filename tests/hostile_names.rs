//! Names the target chose reach the operator's terminal only escaped, and the JSON keeps them
//! exactly. The target is a python3 process whose comm, thread name, argv, files, memfd, unix
//! sockets, lock and log lines carry escape sequences, newlines, C1 and bidi characters and
//! bytes that are not UTF-8; a child it forked, with such a comm, holds the other end of its
//! unix socket and the write end of the pipe its main thread reads.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hangscope_model::Document;
use support::*;

/// The target's comm and its child's: retitles a terminal, breaks a line, is not UTF-8.
const COMM: &[u8] = b"\x1b]0;pwned\x07\n\xff";
const CHILD_COMM: &[u8] = b"\x1b[2Jkid\n\xfe";
/// A thread name with a C1 CSI, a right-to-left override and a newline (valid UTF-8).
const THREAD: &str = "t\u{9b}\u{202e}X\n";
const FILE: &[u8] = b"f\x1b]0;pwned\x07\n\xff.dat";
const HTML_FILE: &[u8] = b"<!--<script>";
const MEMFD: &[u8] = b"m\x1b[2J\n\xff";
const SOCK: &[u8] = b"s\x1b[31m\n\xff";
const ABSTRACT: &[u8] = b"abs\x1b]0;x\x07\n\xff";
const LOCK: &[u8] = b"l\x1b[5m\n\xff.lock";
const ARG: &str = "arg\nwith\x1b[31m escape </script>";
/// The start of each log line's message (the target's argv[3]); then " N \xff " and words.
const LOG: &str = "boom \x1b]0;pwned\x07 \x1b[2J\u{9b}\u{202e} tail";
/// Arguments of 128,000 bytes each (one argument may not exceed 128 KiB): ~1 MB of argv.
const BIG_ARGS: usize = 8;
const BIG_ARG: usize = 128_000;

const SCRIPT: &str = r#"
import ctypes, fcntl, os, signal, socket, sys, threading, time
signal.alarm(120)
libc = ctypes.CDLL(None, use_errno=True)
def name(n):
    libc.prctl(15, ctypes.c_char_p(n), 0, 0, 0)
def b(hexed):
    return bytes.fromhex(hexed)
d = os.fsencode(sys.argv[1])
comm, child_comm, thread, file, html_file, memfd, sock, abstract, lock = [
    b(x) for x in sys.argv[2].split(",")]
r, w = os.pipe()
a, z = socket.socketpair()
child = os.fork()
if child == 0:
    name(child_comm)
    os.close(r)
    a.close()
    time.sleep(120)
    os._exit(0)
os.close(w)
z.close()
f1 = os.open(d + b"/" + file, os.O_CREAT | os.O_RDWR, 0o600)
f2 = os.open(d + b"/" + html_file, os.O_CREAT | os.O_RDWR, 0o600)
libc.memfd_create.restype = ctypes.c_int
m = libc.memfd_create(ctypes.c_char_p(memfd), 0)
s1 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s1.bind(d + b"/" + sock)
s1.listen(1)
s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s2.bind(b"\0" + abstract + str(os.getpid()).encode())
s2.listen(1)
l = os.open(d + b"/" + lock, os.O_CREAT | os.O_RDWR, 0o600)
fcntl.flock(l, fcntl.LOCK_EX)
log = open(d + b"/app.log", "ab", buffering=0)
for i in range(3):
    log.write(b"2026-12-01 09:00:0%d ERROR " % i + sys.argv[3].encode() + b" %d \xff " % i
              + b"and enough plain words after it to read as a text log\n")
ready = threading.Event()
def worker():
    name(thread)
    ready.set()
    time.sleep(120)
threading.Thread(target=worker, daemon=True).start()
ready.wait()
name(comm)
print("ready", os.getpid(), child, m, flush=True)
os.read(r, 1)
"#;

/// The target, killed (with its child) on drop.
struct Target {
    child: Child,
    pid: i32,
    kid: i32,
    memfd: i32,
    dir: TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        // Only the processes this test started, by PID.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.kid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn start() -> Target {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("hostile");
    let names = [
        COMM,
        CHILD_COMM,
        THREAD.as_bytes(),
        FILE,
        HTML_FILE,
        MEMFD,
        SOCK,
        ABSTRACT,
        LOCK,
    ]
    .map(hex)
    .join(",");
    let big = "A".repeat(BIG_ARG);
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir.path())
        .arg(&names)
        .arg(LOG)
        .arg(ARG)
        .args(std::iter::repeat_n(&big, BIG_ARGS))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(ANNOUNCE_WITHIN).unwrap_or_default();
    let nums: Vec<i32> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    let (pid, kid, memfd) = match nums.as_slice() {
        [pid, kid, memfd] => (*pid, *kid, *memfd),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the target did not start: {line:?}");
        }
    };
    let target = Target {
        child,
        pid,
        kid,
        memfd,
        dir,
    };
    // The main thread blocks in read on the pipe; the rule waits for that to last.
    assert!(
        wait_steady(Duration::from_secs(20), Duration::from_millis(1200), || {
            syscall_nr(pid, pid) == Some(libc::SYS_read)
        }),
        "the target never blocked in read"
    );
    target
}

/// Raw control, C1 and bidi characters: none may be printed.
fn assert_no_raw_controls(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} is not UTF-8: {e}: {}",
            String::from_utf8_lossy(bytes)
        )
    });
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            !bad,
            "{what} has a raw {c:?} at byte {i}, after {:?}",
            text[..i]
                .chars()
                .rev()
                .take(80)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        );
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = hangscope(args);
    assert_no_raw_controls("stdout", &out.stdout);
    assert_no_raw_controls("stderr", &out.stderr);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines of a section, from its title to the blank line that ends it.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(title))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_text_report_escapes_every_name_and_cuts_a_huge_argv() {
    let t = start();
    let pid = t.pid.to_string();
    let (code, text, stderr) = run(&[&pid, "--window", "1s"]);
    assert!(matches!(code, 0 | 1), "exit {code}: {stderr}\n{text}");

    // The header: the name escaped, then one `cmd` line holding the multi-line script.
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    assert!(
        head.starts_with(&format!("\\e]0;pwned\\a\\n\\xff  pid {pid} ")),
        "{head}"
    );
    let cmd = lines.next().unwrap_or_default();
    assert!(
        cmd.starts_with("cmd ") && cmd.contains("python3 -c \\nimport ctypes, fcntl, os"),
        "{cmd}"
    );
    assert!(cmd.contains("bytes cut]"), "the argv is cut: {cmd}");
    assert!(cmd.chars().count() < 1000, "{} chars", cmd.chars().count());
    // Then when it was captured, and the header ends.
    assert!(
        lines.next().is_some_and(|l| l.starts_with("captured ")),
        "the cmd header is one line:\n{text}"
    );
    assert_eq!(lines.next(), Some(""), "{text}");
    assert!(text.len() < 64 * 1024, "{} bytes of report", text.len());

    // Every THREADS line is a thread's, its tid first, or the code path printed under one
    // ("from f ← g", "3 × from f ← g"): no name breaks a row.
    let threads = section(&text, "THREADS");
    assert!(threads.len() >= 2, "{text}");
    let detail = |l: &str| {
        let l = l.trim_start();
        let l = l
            .split_once(" × ")
            .filter(|(n, _)| n.parse::<u32>().is_ok())
            .map_or(l, |(_, rest)| rest);
        // A row's detail lines: its code path, and what it is to the runtime (py-spy's
        // frames, when py-spy is installed).
        l.starts_with("from ") || l.starts_with("runtime: ")
    };
    assert!(
        threads.first().is_some_and(|l| !detail(l)),
        "THREADS starts with a row: {text}"
    );
    for l in threads.iter().filter(|l| !detail(l)) {
        let tid = l
            .trim_start_matches('▶')
            .split_whitespace()
            .next()
            .unwrap_or("");
        assert!(
            tid.parse::<i32>().is_ok(),
            "not a thread row: {l:?}\n{text}"
        );
    }
    assert!(
        threads.iter().any(|l| l.contains("t\\u{9b}\\u{202e}X\\n")),
        "{text}"
    );
    // The pipe's writer, with its comm escaped, on the reader's line and in the finding.
    let kid = format!("process {} (\\e[2Jkid\\n\\xfe)", t.kid);
    assert!(threads.iter().any(|l| l.contains(&kid)), "{text}");

    for expected in [
        "f\\e]0;pwned\\a\\n\\xff.dat",
        "/memfd:m\\e[2J\\n\\xff",
        "s\\e[31m\\n\\xff",
        &format!("@abs\\e]0;x\\a\\n\\xff{pid}"),
        "l\\e[5m\\n\\xff.lock",
        "boom \\e]0;pwned\\a \\e[2J\\u{9b}\\u{202e} tail 2 \\xff and enough",
        // The unix peer, named by its escaped comm.
        &format!("pid {} (\\e[2Jkid\\n\\xfe) fd", t.kid),
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    // Rows of FILES, LOCKS and SOCKETS each start with an fd (or the group's title).
    for title in ["FILES", "LOCKS"] {
        for l in section(&text, title).iter().skip(1) {
            let first = l.split_whitespace().next().unwrap_or("");
            assert!(
                first
                    .trim_end_matches(['r', 'w', 'u'])
                    .parse::<i32>()
                    .is_ok()
                    || first == "-",
                "not a {title} row: {l:?}\n{text}"
            );
        }
    }

    // -v shows more of the argv, still escaped (checked by `run`) and bounded.
    let (_, verbose, _) = run(&[&pid, "-v"]);
    let cmd = verbose.lines().nth(1).unwrap_or_default();
    assert!(cmd.contains("bytes cut]"), "{cmd}");
    assert!(
        verbose.len() < 256 * 1024,
        "{} bytes with -v",
        verbose.len()
    );
}

#[test]
fn the_json_keeps_every_name_exactly() {
    let t = start();
    let pid = t.pid.to_string();
    let out = hangscope(&[&pid, "--json"]);
    // JSON escapes what a terminal would act on, too.
    assert_no_raw_controls("--json", &out.stdout);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let p = &json["snapshot"]["process"];
    assert_eq!(p["name"]["hex"], hex(COMM), "{}", p["name"]);
    let argv: Vec<&serde_json::Value> = p["cmdline"].as_array().expect("cmdline").iter().collect();
    assert_eq!(argv.len(), 7 + BIG_ARGS);
    assert_eq!(argv[2].as_str(), Some(SCRIPT));
    assert_eq!(argv[6].as_str(), Some(ARG));
    assert!(
        argv[7..]
            .iter()
            .all(|a| a.as_str().map(str::len) == Some(BIG_ARG))
    );

    // The same, read back as the model's type: exact bytes, not U+FFFD.
    let doc = Document::from_json(&String::from_utf8_lossy(&out.stdout)).expect("document");
    let snap = &doc.snapshot;
    assert_eq!(snap.process.name.as_bytes(), COMM);
    let thread = snap.threads.iter().find(|t| t.name == THREAD);
    assert!(thread.is_some(), "{:?}", snap.threads);
    let dir = t.dir.path().as_bytes();
    let path = |name: &[u8]| [dir, b"/", name].concat();
    for want in [path(FILE), path(HTML_FILE), path(LOCK)] {
        assert!(
            snap.fds.iter().any(|f| f.target.as_bytes() == want),
            "no fd on {}",
            String::from_utf8_lossy(&want)
        );
    }
    let memfd = snap.fd(t.memfd).expect("the memfd");
    assert_eq!(memfd.target.as_bytes(), [b"/memfd:", MEMFD].concat());
    let lock = snap.locks.iter().find_map(|l| l.path.as_ref());
    assert_eq!(lock.map(|l| l.as_bytes()), Some(&path(LOCK)[..]));
    let unix: Vec<&hangscope_model::UnixSocket> = snap
        .sockets
        .iter()
        .filter_map(|s| match &s.detail {
            hangscope_model::SocketDetail::Unix(u) => Some(u),
            _ => None,
        })
        .collect();
    let paths: Vec<&[u8]> = unix
        .iter()
        .filter_map(|u| u.path.as_ref().map(|p| p.as_bytes()))
        .collect();
    assert!(paths.contains(&&path(SOCK)[..]), "{paths:?}");
    let abs = [b"@", ABSTRACT, pid.as_bytes()].concat();
    assert!(paths.contains(&&abs[..]), "{paths:?}");
    let peer = unix
        .iter()
        .find_map(|u| u.peer.as_ref())
        .expect("the unix peer");
    assert_eq!((peer.pid, peer.name.as_bytes()), (t.kid, CHILD_COMM));
    let messages: Vec<&[u8]> = snap
        .logs
        .iter()
        .flat_map(|l| &l.entries)
        .map(|e| e.message.as_bytes())
        .collect();
    let line = [
        LOG.as_bytes(),
        b" 2 \xff and enough plain words after it to read as a text log",
    ]
    .concat();
    assert!(messages.contains(&&line[..]), "{messages:?}");
    let writer = snap.fds.iter().flat_map(|f| &f.pipe_peers).next();
    assert_eq!(
        writer.map(|w| (w.pid, w.name.as_bytes())),
        Some((t.kid, CHILD_COMM))
    );
}

#[test]
fn the_html_page_embeds_the_document_intact() {
    let t = start();
    let pid = t.pid.to_string();
    let saved = format!("{}/saved.json", t.dir.path());
    let page = format!("{}/page.html", t.dir.path());
    // The terminal's side is the other tests'; this one reads only the files.
    for args in [
        vec![&pid[..], "--save", &saved],
        vec!["replay", &saved, "--html", &page],
    ] {
        let out = hangscope(&args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {out:?}"
        );
    }
    let html = std::fs::read_to_string(&page).expect("page");
    // The document's script element and the page's own: nothing from the target opens,
    // comments out or ends one.
    assert_eq!(html.matches("<script").count(), 2);
    assert_eq!(html.matches("</script>").count(), 2);
    assert_eq!(html.matches("<!--").count(), 0);
    // Its 1 MB argv makes the document large enough to be embedded compressed.
    assert!(html.contains("id=\"hangscope-document-zst\""));
    let json = hangscope_render::html::embedded_document(&html, 64 << 20).expect("embedded");
    let embedded = Document::from_json(&json).expect("the embedded JSON");
    let file = Document::from_json(&std::fs::read_to_string(&saved).expect("saved"))
        .expect("the saved document");
    assert_eq!(embedded.snapshot, file.snapshot);
    let html_file = [t.dir.path().as_bytes(), b"/", HTML_FILE].concat();
    assert!(
        embedded
            .snapshot
            .fds
            .iter()
            .any(|f| f.target.as_bytes() == html_file)
    );
}

#[test]
fn an_ambiguous_name_lists_the_candidates_escaped() {
    // Two processes with one comm, command lines with escapes, newlines and 300 KB.
    let comm = format!("hsamb{}", std::process::id() % 100_000);
    let script = "import ctypes,sys,time\nctypes.CDLL(None).prctl(15,sys.argv[1].encode(),0,0,0)\n\
                  print('ready',flush=True)\ntime.sleep(60)";
    let big = "B".repeat(100_000);
    let mut kids: Vec<Child> = Vec::new();
    struct Kill<'a>(&'a mut Vec<Child>);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            for c in self.0.iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let guard = Kill(&mut kids);
    for _ in 0..2 {
        let mut c = Command::new("python3")
            .args(["-c", script, &comm])
            .arg(OsStr::from_bytes(b"\x1b]0;pwned\x07\n\xff"))
            .args([&big, &big, &big])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut out = std::io::BufReader::new(c.stdout.take().expect("stdout"));
        guard.0.push(c);
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut out, &mut line);
        assert_eq!(line.trim(), "ready");
    }
    let (code, stdout, stderr) = run(&[&comm]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let listed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("python3 -c"))
        .collect();
    assert_eq!(listed.len(), 2, "one line per candidate:\n{stderr}");
    for l in &listed {
        assert!(l.contains("\\e]0;pwned\\a\\n\\xff"), "{l}");
        assert!(l.contains("bytes cut]"), "{l}");
    }
    assert!(stderr.len() < 4096, "{} bytes on stderr", stderr.len());
    drop(guard);
}
