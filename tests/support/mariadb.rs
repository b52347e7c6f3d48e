//! A MariaDB server of the test's own: a fresh data directory in a temp dir given to the
//! `mysql` user, `mariadbd` on a free loopback port and its own unix socket, running as
//! `mysql` (`--user`), stopped by its PID on drop. Sessions are the real `mariadb` client.
//! `None` (with a note on stderr) when MariaDB is not installed or the test is not root.

use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::procs::{Proc, free_port};
use super::{TempDir, lines_of, wait_until};

pub const SERVER: &str = "/usr/sbin/mariadbd";
pub const INSTALL: &str = "/usr/bin/mariadb-install-db";
pub const CLIENT: &str = "/usr/bin/mariadb";

/// Longer than InnoDB's 100 ms: see [`Server::wait_for`].
const I_S_CACHE_IDLE: Duration = Duration::from_millis(150);

pub struct Server {
    // Dropped in order: the server, then its directory.
    pub proc: Proc,
    pub port: u16,
    pub socket: String,
    pub dir: TempDir,
}

impl Server {
    pub fn start(tag: &str) -> Option<Server> {
        for p in [SERVER, INSTALL, CLIENT] {
            if !std::path::Path::new(p).is_file() {
                eprintln!("skipped: {p} is not installed (Debian: mariadb-server, mariadb-client)");
                return None;
            }
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: starting mariadbd as the mysql user needs root");
            return None;
        }
        let dir = TempDir::new(tag);
        let data = format!("{}/data", dir.path());
        // Its own tmpdir: a starting mariadbd removes the `#sql*` files it finds in its
        // tmpdir as leftovers, and in a shared /tmp those are another test's server's.
        let tmp = format!("{}/tmp", dir.path());
        std::fs::create_dir(&tmp).expect("create the server's tmpdir");
        let chown = Command::new("chown")
            .args(["-R", "mysql:mysql", dir.path()])
            .status()
            .expect("chown");
        assert!(chown.success(), "chown {} to mysql", dir.path());
        let out = Command::new(INSTALL)
            .args(["--no-defaults", "--user=mysql", "--skip-test-db"])
            .arg(format!("--datadir={data}"))
            .arg(format!("--tmpdir={tmp}"))
            .arg("--auth-root-authentication-method=socket")
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let socket = format!("{}/sock", dir.path());
        let proc = Proc::quiet(
            Command::new(SERVER)
                .args(["--no-defaults", "--user=mysql", "--skip-log-bin"])
                .arg(format!("--datadir={data}"))
                .arg(format!("--socket={socket}"))
                .arg(format!("--tmpdir={tmp}"))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--pid-file={}/pid", dir.path()))
                .arg(format!("--log-error={}/err.log", dir.path()))
                .args([
                    "--innodb-buffer-pool-size=16M",
                    "--innodb-lock-wait-timeout=600",
                ]),
        );
        let server = Server {
            proc,
            port,
            socket,
            dir,
        };
        assert!(
            wait_until(Duration::from_secs(60), || server
                .try_sql("SELECT 1")
                .is_some_and(|o| o.trim() == "1")),
            "mariadbd did not answer on {}: {}",
            server.socket,
            std::fs::read_to_string(format!("{}/err.log", server.dir.path())).unwrap_or_default()
        );
        server.sql(
            "CREATE DATABASE hs; CREATE TABLE hs.ledger (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; \
             INSERT INTO hs.ledger VALUES (1, 0), (2, 0); \
             CREATE USER app@'127.0.0.1' IDENTIFIED BY 'app'; \
             CREATE USER app@localhost IDENTIFIED BY 'app'; \
             GRANT ALL ON hs.* TO app@'127.0.0.1'; GRANT ALL ON hs.* TO app@localhost;",
        );
        Some(server)
    }

    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    fn try_sql(&self, sql: &str) -> Option<String> {
        let out = Command::new(CLIENT)
            .args(["--no-defaults", "-N", "-B", "--connect-timeout=2"])
            .arg(format!("--socket={}", self.socket))
            .args(["-e", sql])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `sql` as root over the socket (unix_socket authentication).
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|| panic!("mariadb -e {sql:?} failed"))
    }

    /// Waits (bounded) until `sql` prints `want`, reading at most every 150 ms.
    ///
    /// InnoDB fills `INNODB_TRX`, `INNODB_LOCKS` and `INNODB_LOCK_WAITS` from one cache that
    /// it refreshes only when nobody has read it for 100 ms (`CACHE_MIN_IDLE_TIME_NS` and
    /// `trx_i_s_cache_end_read` in trx0i_s.cc), so that a join of them reads one version.
    /// Polled faster, on a quick machine, the poll itself keeps the cache as it was before
    /// the lock wait began, for as long as it polls.
    pub fn wait_for(&self, sql: &str, want: &str, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.try_sql(sql).is_some_and(|o| o.trim() == want) {
                return true;
            }
            if start.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(I_S_CACHE_IDLE);
        }
    }

    /// A client over TCP as the application's user, its statements in `-e`.
    pub fn command(&self, sql: &str) -> Proc {
        Proc::quiet(self.client().args(["-e", sql]))
    }

    fn client(&self) -> Command {
        let mut c = Command::new(CLIENT);
        c.args([
            "--no-defaults",
            "--unbuffered",
            "-N",
            "-B",
            "-h",
            "127.0.0.1",
            "-uapp",
            "-papp",
        ])
        .arg(format!("-P{}", self.port))
        .arg("hs");
        c
    }

    /// A client over TCP whose stdin is a pipe from `sh`: the statements, then `sleep`, so
    /// the session stays open and its client waits on a process that is not the test. Its
    /// stdout lines come back on the receiver.
    pub fn session(&self, sql: &str) -> Session {
        let script = "printf '%s\\n' \"$1\"; exec sleep 600";
        let mut feeder = Command::new("sh");
        feeder
            .args(["-c", script, "feeder", sql])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut feeder = Proc::spawn(&mut feeder);
        let stdin = feeder.0.stdout.take().expect("feeder's stdout");
        let mut client = self.client();
        client.stdin(Stdio::from(stdin)).stdout(Stdio::piped());
        let mut client = Proc::spawn(&mut client);
        let lines = lines_of(client.0.stdout.take().expect("client's stdout"));
        Session {
            client,
            feeder,
            lines,
        }
    }
}

/// A `mariadb` client fed by a `sleep` (see [`Server::session`]).
pub struct Session {
    pub client: Proc,
    /// The process holding the client's stdin: `sh`, then `sleep` once it has written.
    pub feeder: Proc,
    pub lines: Receiver<String>,
}

impl Session {
    /// The next line the client prints, within `limit`.
    pub fn line(&self, limit: Duration) -> String {
        let end = Instant::now() + limit;
        self.lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| panic!("no line from the mariadb client: {e}"))
    }
}
