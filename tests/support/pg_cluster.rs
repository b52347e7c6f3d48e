//! A private PostgreSQL cluster for a test: initdb in a temp dir owned by the server's user,
//! the server on a free loopback port with its unix socket in that dir, sessions as real psql
//! processes fed through a pipe the test holds, or by a process of their own. Stopped by its PID when dropped.
//!
//! `Cluster::start()` is `None` (with a note on stderr) when PostgreSQL is not installed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;
use super::procs::free_port;

/// How long the server gets to start.
const START_WITHIN: Duration = Duration::from_secs(60);

pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    pub port: u16,
    postmaster: i32,
    /// Run the server's tools as this user (root cannot run them).
    run_as: Option<&'static str>,
    /// The directory of its unix socket, in the server's mount namespace.
    sock: String,
    /// The socket directory is a mount only the server sees: ask over TCP.
    private_socket: bool,
}

/// The bin directory of the newest PostgreSQL installed (/usr/lib/postgresql/N/bin).
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Cluster {
    /// A running cluster with a table `t (id int primary key, v int)` holding rows 1 and 2, in
    /// database `postgres`; `None` when PostgreSQL is absent.
    pub fn start(tag: &str) -> Option<Cluster> {
        let c = Cluster::start_with(tag, &["-A", "trust"])?;
        c.sql("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0);");
        Some(c)
    }

    /// A running trusting cluster with no table.
    pub fn start_empty(tag: &str) -> Option<Cluster> {
        Cluster::start_with(tag, &["-A", "trust"])
    }

    /// A running cluster that refuses every connection over its unix socket (pg_hba.conf
    /// `local all all reject`) and trusts TCP from loopback; no table.
    pub fn start_refusing_local(tag: &str) -> Option<Cluster> {
        Cluster::start_with(tag, &["--auth-local=reject", "--auth-host=trust"])
    }

    /// A running trusting cluster (no table) whose unix socket is in `socket_dir()` on a tmpfs
    /// mounted only in the server's own mount namespace: from the test's namespace the
    /// directory is empty. Needs root; `None` (with a note) otherwise.
    pub fn start_in_private_mount_ns(tag: &str) -> Option<Cluster> {
        if !is_root() {
            eprintln!("skipped: a mount namespace needs root");
            return None;
        }
        Cluster::start_inner(tag, &["-A", "trust"], true)
    }

    fn start_with(tag: &str, auth: &[&str]) -> Option<Cluster> {
        Cluster::start_inner(tag, auth, false)
    }

    fn start_inner(tag: &str, auth: &[&str], private_socket: bool) -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            eprintln!("skipped: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin)");
            return None;
        };
        let run_as = is_root().then_some("postgres");
        let dir = TempDir::new(tag);
        if run_as.is_some() {
            let ok = Command::new("chown")
                .args(["postgres:", dir.path()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown postgres {}", dir.path());
        }
        let sock = if private_socket {
            let sock = format!("{}/sock", dir.path());
            std::fs::create_dir(&sock).expect("mkdir sock");
            sock
        } else {
            dir.path().to_string()
        };
        let mut c = Cluster {
            dir,
            bin,
            port: free_port(),
            postmaster: 0,
            run_as,
            sock,
            private_socket,
        };
        let data = c.data();
        let mut initdb = auth.to_vec();
        initdb.extend(["-U", "postgres", "-D", &data]);
        c.tool("initdb", &initdb);
        let opts = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c log_connections=on -c fsync=off",
            c.sock, c.port
        );
        let log = c.log_path();
        let start = [
            "-D", &data, "-l", &log, "-o", &opts, "-w", "-t", "60", "start",
        ];
        if private_socket {
            // pg_ctl's server inherits the namespace, and the tmpfs only it sees.
            let pg_ctl = c.bin.join("pg_ctl");
            let script = "mount -t tmpfs -o mode=0755 tmpfs \"$0\" && chown postgres: \"$0\" \
                          && exec runuser -u postgres -- \"$@\"";
            let out = Command::new("unshare")
                .args([
                    "-m",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    &c.sock,
                ])
                .arg(pg_ctl)
                .args(start)
                .stdin(Stdio::null())
                .current_dir("/")
                .output()
                .expect("run unshare");
            assert!(
                out.status.success(),
                "unshare pg_ctl start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            c.tool("pg_ctl", &start);
        }
        let deadline = Instant::now() + START_WITHIN;
        while c.postmaster == 0 && Instant::now() < deadline {
            c.postmaster = std::fs::read_to_string(format!("{data}/postmaster.pid"))
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse().ok())
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(c.postmaster > 0, "the server did not start: {}", c.log());
        Some(c)
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path())
    }

    fn log_path(&self) -> String {
        format!("{}/server.log", self.dir.path())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn postmaster(&self) -> i32 {
        self.postmaster
    }

    pub fn socket_dir(&self) -> &str {
        &self.sock
    }

    fn tool_command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn tool(&self, tool: &str, args: &[&str]) {
        let out = self
            .tool_command(tool)
            .args(args)
            .stdin(Stdio::null())
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL as the administrator over the unix socket; its output, unaligned, no header.
    pub fn sql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self
            .tool_command("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(if self.private_socket {
                "127.0.0.1"
            } else {
                self.sock.as_str()
            })
            .args(["-p", &port, "-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGAPPNAME", "test-admin")
            .stdin(Stdio::null())
            .current_dir("/")
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A psql session over TCP to 127.0.0.1, fed from a pipe the test holds: the psql process
    /// is this test's child, and its backend pid is known.
    pub fn session_tcp(&self) -> Session {
        self.session_at("127.0.0.1")
    }

    /// A psql session over TCP, fed from a pipe the test holds, with `name` as its
    /// application_name (how [`Cluster::backend`] finds its backend).
    pub fn session_named(&self, name: &str) -> Session {
        self.start_session("127.0.0.1", Stdio::piped(), true, name)
    }

    /// `psql -c SQL` over TCP, with `name` as its application_name: the query goes out the
    /// moment the server says it is ready for one. Its backend is not asked for.
    pub fn command(&self, name: &str, sql: &str) -> Session {
        let port = self.port.to_string();
        let mut child = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", &port])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGAPPNAME", name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start psql");
        let lines = super::lines_of(child.stdout.take().expect("psql stdout"));
        Session {
            child,
            stdin: None,
            lines,
            backend: 0,
            feeder: None,
            name: name.to_string(),
            marks: 0,
        }
    }

    /// The backend serving `session`, found by its application_name, once it is there and
    /// `ready` holds for it (bounded).
    pub fn backend(&self, session: &Session, ready: impl Fn(&Backend) -> bool) -> Backend {
        let end = Instant::now() + START_WITHIN;
        let sql = format!(
            "SELECT pid, state, coalesce(wait_event_type, ''), coalesce(wait_event, '') FROM \
             pg_stat_activity WHERE application_name = '{}'",
            session.name
        );
        let mut last = String::new();
        while Instant::now() < end {
            last = self.sql(&sql);
            if let [pid, state, wtype, wevent] = last.split('|').collect::<Vec<_>>()[..] {
                let b = Backend {
                    pid: pid.parse().expect("backend pid"),
                    state: state.into(),
                    wait_event_type: wtype.into(),
                    wait_event: wevent.into(),
                };
                if ready(&b) {
                    return b;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no backend of {} as wanted within {START_WITHIN:?}: {last:?}",
            session.name
        );
    }

    /// A psql session over the server's unix socket (trust lets this test's user be
    /// `postgres`), fed from a pipe the test holds.
    pub fn session_unix(&self) -> Session {
        let sock = self.sock.clone();
        self.session_at(&sock)
    }

    /// A psql session over TCP whose stdin is a pipe from `sh`, which writes `sql` and then
    /// becomes `sleep`: the session stays open, and psql waits on a process that is not the
    /// test (so a wait chain through it ends at that `sleep`, not in the test harness).
    pub fn session_fed(&self, sql: &str) -> Session {
        let mut feeder = Command::new("sh")
            .args([
                "-c",
                "printf '%s\\n' 'SELECT pg_backend_pid();' \"$1\"; exec sleep 600",
                "feeder",
                sql,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the feeder");
        let from = feeder.stdout.take().expect("feeder's stdout");
        let mut s = self.start_session("127.0.0.1", Stdio::from(from), false, &session_name());
        s.feeder = Some(feeder);
        s
    }

    fn session_at(&self, host: &str) -> Session {
        self.start_session(host, Stdio::piped(), true, &session_name())
    }

    fn start_session(&self, host: &str, input: Stdio, ask_backend: bool, name: &str) -> Session {
        let port = self.port.to_string();
        let mut child = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-h", host, "-p", &port])
            .args(["-U", "postgres", "-d", "postgres"])
            .env("PGAPPNAME", name)
            .stdin(input)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start psql");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("psql stdout"));
        // Lines arrive on a thread, so a wait for one is bounded; it ends with psql's stdout.
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in stdout.lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut s = Session {
            child,
            stdin,
            lines,
            backend: 0,
            feeder: None,
            name: name.to_string(),
            marks: 0,
        };
        if ask_backend {
            s.send("SELECT pg_backend_pid();");
        }
        s.backend = s
            .line(Duration::from_secs(30))
            .trim()
            .parse()
            .expect("a backend pid");
        s
    }

    /// Waits (bounded) until `sql` answers `want`.
    pub fn wait_for(&self, sql: &str, want: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.sql(sql) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .tool_command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "-t", "10", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .status();
        // Still there: the server this test started, by its PID.
        if self.postmaster > 0 && Path::new(&format!("/proc/{}", self.postmaster)).exists() {
            // SAFETY: kill on a PID this test started.
            unsafe {
                libc::kill(self.postmaster, libc::SIGKILL);
            }
        }
    }
}

/// A psql client process and the backend serving it.
pub struct Session {
    child: Child,
    /// Its stdin, when the test feeds it.
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    backend: i32,
    /// The process feeding its stdin instead (see [`Cluster::session_fed`]).
    feeder: Option<Child>,
    /// Its application_name.
    pub name: String,
    /// `\echo` marks sent by [`Session::run`].
    marks: u32,
}

/// The server process behind a session, as pg_stat_activity shows it.
#[derive(Debug, Clone)]
pub struct Backend {
    pub pid: i32,
    /// "idle", "active", "idle in transaction".
    pub state: String,
    /// "Lock", "Timeout", "Client"... empty when it waits for nothing.
    pub wait_event_type: String,
    pub wait_event: String,
}

/// A new application_name for a session, unique in the test binary.
fn session_name() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "test-session-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

impl Session {
    /// The psql process.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The server process serving it.
    pub fn backend(&self) -> i32 {
        self.backend
    }

    /// The process feeding its stdin, for a session made by [`Cluster::session_fed`].
    pub fn feeder(&self) -> Option<i32> {
        self.feeder.as_ref().map(|f| f.id() as i32)
    }

    pub fn send(&mut self, sql: &str) {
        let stdin = self.stdin.as_mut().expect("a session the test feeds");
        writeln!(stdin, "{sql}").expect("write to psql");
        stdin.flush().expect("flush to psql");
    }

    /// Sends SQL and waits (bounded) until psql has done it.
    pub fn run(&mut self, sql: &str) {
        self.marks += 1;
        let mark = format!("hangscope-done-{}", self.marks);
        self.send(&format!("{sql}\n\\echo {mark}"));
        let end = Instant::now() + START_WITHIN;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == mark => return,
                Ok(_) => {}
                Err(e) => panic!("psql {} did not finish {sql:?}: {e}", self.name),
            }
        }
    }

    /// The next line psql prints; panics if none comes within `limit`.
    fn line(&mut self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .expect("psql printed a line in time")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Our own children, by their PIDs.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(f) = self.feeder.as_mut() {
            let _ = f.kill();
            let _ = f.wait();
        }
    }
}
