//! A writer that retries a lock in a loop, on Debian's sqlite3: with `.timeout MS` (SQLite's
//! busy handler) a blocked INSERT tries fcntl(F_SETLK), fails, sleeps up to 100 ms, tries
//! again, so no thread ever blocks in a lock call and /proc/locks lists no request. The holder
//! is a sqlite3 shell left in an open transaction, fed from a pipe the test keeps open. Twins:
//! the same writer with no holder finishes; a shell idle at its prompt with the database open,
//! beside the same lock, is not a cause; the holder itself, idle, is not a cause either.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A sqlite3 shell on `db` reading SQL from a pipe this test holds; killed and reaped on
/// drop.
struct Shell {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Shell {
    fn open(db: &Path, dir: &TempDir, tag: &str) -> Shell {
        let out = std::fs::File::create(Path::new(dir.path()).join(format!("{tag}.out")))
            .expect("create the shell's output file");
        let err = out.try_clone().expect("dup the output file");
        let mut child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start sqlite3 (Debian package sqlite3, installed by .ci/run)");
        let stdin = child.stdin.take();
        Shell { child, stdin }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn send(&mut self, sql: &str) {
        let stdin = self.stdin.as_mut().expect("the shell's stdin is open");
        stdin.write_all(sql.as_bytes()).expect("write to sqlite3");
        stdin.flush().expect("flush to sqlite3");
    }

    /// Closes its stdin and waits for it to exit, at most `limit`; its exit status.
    fn finish(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.stdin = None;
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sqlite3_installed() -> bool {
    let found = Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: sqlite3 is not installed (Debian package sqlite3)");
    }
    found
}

/// A database with one table, in its own directory.
fn database(dir: &TempDir) -> std::path::PathBuf {
    let db = Path::new(dir.path()).join("app.db");
    let made = Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE t(x);")
        .status()
        .expect("run sqlite3");
    assert!(made.success(), "create {}", db.display());
    db
}

/// Whether process `pid` holds a lock in /proc/locks.
fn holds_a_lock(pid: i32) -> bool {
    std::fs::read_to_string("/proc/locks").is_ok_and(|t| {
        t.lines()
            .any(|l| !l.contains("->") && l.split_whitespace().nth(4) == Some(&pid.to_string()))
    })
}

/// Whether its main thread is blocked reading its stdin: idle at the prompt.
fn at_prompt(pid: i32) -> bool {
    syscall_nr(pid, pid) == Some(libc::SYS_read)
}

fn sleeping(pid: i32) -> bool {
    let nr = syscall_nr(pid, pid);
    nr == Some(libc::SYS_clock_nanosleep) || nr == Some(libc::SYS_nanosleep)
}

/// A shell left in an open transaction that holds `sql`'s locks, idle at its prompt.
fn holder(db: &Path, dir: &TempDir, sql: &str) -> Shell {
    let mut h = Shell::open(db, dir, "holder");
    h.send(sql);
    assert!(
        wait_steady(Duration::from_secs(10), Duration::from_millis(200), || {
            holds_a_lock(h.pid()) && at_prompt(h.pid())
        }),
        "the holder did not take its lock: {}",
        std::fs::read_to_string("/proc/locks").unwrap_or_default()
    );
    h
}

/// A shell writing a row with a busy timeout of a minute, seen in its sleep loop.
fn busy_writer(db: &Path, dir: &TempDir) -> Shell {
    let mut w = Shell::open(db, dir, "writer");
    w.send(".timeout 60000\nINSERT INTO t VALUES(2);\n");
    // Its back-off reaches 100 ms after about 230 ms of tries.
    assert!(
        wait_steady(Duration::from_secs(10), Duration::from_millis(500), || {
            sleeping(w.pid())
        }),
        "the writer is not in its busy loop"
    );
    w
}

fn summary(f: &serde_json::Value) -> &str {
    f["summary"].as_str().unwrap_or_default()
}

fn first_sentence(doc: &serde_json::Value) -> String {
    doc["verdict"]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn rows(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg("SELECT count(*) FROM t;")
        .output()
        .expect("run sqlite3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_writer_retrying_behind_an_open_transaction_names_the_holder_and_the_file() {
    if !sqlite3_installed() {
        return;
    }
    let dir = TempDir::new("sqlite-retry");
    let db = database(&dir);
    let mut hold = holder(&db, &dir, "BEGIN IMMEDIATE;\nINSERT INTO t VALUES(1);\n");
    let mut writer = busy_writer(&db, &dir);

    let (code, doc) = inspect(writer.pid(), &["--window", "2s"]);
    eprintln!("writer behind BEGIN IMMEDIATE: {}", first_sentence(&doc));
    let found = causes(&doc);
    let f = found.first().unwrap_or_else(|| panic!("no cause: {doc:#}"));
    assert_eq!(f["rule"], "lock_retry", "{doc:#}");
    assert_eq!(f["cause"], "lock_wait");
    assert_eq!(f["subject"]["tid"], writer.pid());
    let db_path = db.to_str().expect("utf-8 path");
    assert!(
        summary(f).contains(&format!("retries a lock on {db_path} every ~")),
        "{}",
        summary(f)
    );
    assert!(
        summary(f).contains(&format!("held by process {} (sqlite3)", hold.pid())),
        "{}",
        summary(f)
    );
    // In the way: the holder's RESERVED byte, a write lock. SQLite drops its own SHARED lock
    // between tries, so the writer holds nothing.
    let blocking = &f["facts"]["blocking"][0];
    assert_eq!(blocking["pid"], hold.pid(), "{f:#}");
    assert_eq!(blocking["access"], "write");
    assert_eq!(blocking["conflict"], "write");
    assert_eq!(f["facts"]["path"], db_path);
    assert_eq!(f["facts"]["holds"], serde_json::json!([]));
    assert!(
        f["facts"]["looping"]["period_ms"]
            .as_f64()
            .is_some_and(|ms| ms <= 100.0)
    );
    assert_eq!(f["next"]["kind"], "process");
    assert_eq!(f["next"]["pid"], hold.pid());
    assert_eq!(code, 1, "a cause exits 1");

    // The holder, idle in its transaction and reading its stdin, is not itself stuck: why it
    // keeps the transaction open is outside it.
    let (code, doc) = inspect(hold.pid(), &["--window", "1s"]);
    eprintln!("holder idle in BEGIN IMMEDIATE: {}", first_sentence(&doc));
    assert!(causes(&doc).is_empty(), "{doc:#}");
    assert!(
        !doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["rule"] == "lock_retry" || f["rule"] == "lock_wait"),
        "{doc:#}"
    );
    assert_eq!(doc["verdict"]["cause_found"], false);
    assert_eq!(code, 0);

    // It commits; the writer gets its lock and finishes.
    hold.send("COMMIT;\n");
    let status = writer.finish(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "the writer did not finish: {status:?}"
    );
    assert_eq!(
        hold.finish(Duration::from_secs(10)).map(|s| s.success()),
        Some(true)
    );
    assert_eq!(rows(&db), "2");
}

#[test]
fn a_writer_waiting_for_a_reader_to_finish_names_the_reader() {
    if !sqlite3_installed() {
        return;
    }
    let dir = TempDir::new("sqlite-reader");
    let db = database(&dir);
    // A read transaction left open: SHARED, a read lock the writer's commit must wait out.
    let reader = holder(&db, &dir, "BEGIN;\nSELECT count(*) FROM t;\n");
    let writer = busy_writer(&db, &dir);

    let (code, doc) = inspect(writer.pid(), &["--window", "2s"]);
    eprintln!("writer behind an open read: {}", first_sentence(&doc));
    let found = causes(&doc);
    let f = found.first().unwrap_or_else(|| panic!("no cause: {doc:#}"));
    assert_eq!(f["rule"], "lock_retry", "{doc:#}");
    let blocking = &f["facts"]["blocking"][0];
    assert_eq!(blocking["pid"], reader.pid(), "{f:#}");
    assert_eq!(blocking["access"], "read");
    assert_eq!(blocking["conflict"], "upgrade");
    // At PENDING it holds its write locks and its read lock on the database.
    let holds = f["facts"]["holds"].as_array().expect("holds");
    assert!(holds.iter().any(|h| h["access"] == "write"), "{f:#}");
    assert!(
        summary(f).contains(&format!("held by process {} (sqlite3)", reader.pid())),
        "{}",
        summary(f)
    );
    assert_eq!(f["next"]["pid"], reader.pid());
    assert_eq!(code, 1);

    let (_, doc) = inspect(reader.pid(), &["--window", "1s"]);
    eprintln!("reader idle in an open read: {}", first_sentence(&doc));
    assert!(causes(&doc).is_empty(), "{doc:#}");
    assert_eq!(doc["verdict"]["cause_found"], false);
}

#[test]
fn the_writer_alone_finishes_and_an_idle_shell_beside_a_lock_is_not_a_cause() {
    if !sqlite3_installed() {
        return;
    }
    let dir = TempDir::new("sqlite-twin");
    let db = database(&dir);
    // The same writer with no one holding the database: done at once.
    let mut alone = Shell::open(&db, &dir, "alone");
    alone.send(".timeout 60000\nINSERT INTO t VALUES(2);\n");
    let status = alone.finish(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_eq!(rows(&db), "1");

    // A shell that has read the database and sits at its prompt: the file open, no lock.
    let mut idle = Shell::open(&db, &dir, "idle");
    idle.send(".timeout 60000\nSELECT count(*) FROM t;\n");
    assert!(
        wait_steady(Duration::from_secs(10), Duration::from_millis(300), || {
            at_prompt(idle.pid())
        }),
        "the idle shell is not at its prompt"
    );
    let (code, doc) = inspect(idle.pid(), &["--window", "1s"]);
    eprintln!("idle shell, no lock anywhere: {}", first_sentence(&doc));
    assert!(causes(&doc).is_empty(), "{doc:#}");
    assert_eq!(doc["verdict"]["cause_found"], false);
    assert_eq!(code, 0);

    // Another shell takes the write lock: the idle one sees it on its file, and is still idle.
    let hold = holder(&db, &dir, "BEGIN IMMEDIATE;\nINSERT INTO t VALUES(3);\n");
    let (code, doc) = inspect(idle.pid(), &["--window", "1s"]);
    eprintln!("idle shell beside a held lock: {}", first_sentence(&doc));
    let locks = doc["snapshot"]["locks"].as_array().expect("locks");
    assert!(
        locks
            .iter()
            .any(|l| l["other_owner"] == true && l["pid"] == hold.pid()),
        "the lock is seen: {doc:#}"
    );
    assert!(causes(&doc).is_empty(), "{doc:#}");
    assert_eq!(doc["verdict"]["cause_found"], false);
    assert!(
        !doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["rule"] == "lock_retry"),
        "{doc:#}"
    );
    assert_eq!(code, 0);
    assert_eq!(
        idle.finish(Duration::from_secs(10)).map(|s| s.success()),
        Some(true)
    );
}
