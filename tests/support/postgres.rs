//! A private PostgreSQL cluster for a test, and psql sessions on it.
//!
//! - [`Cluster::start`]: initdb in a temp dir of its own, then the server on 127.0.0.1 at a
//!   free port (one the kernel hands out, so in the ephemeral range) with its socket directory
//!   there too; `None`, after an eprintln, when PostgreSQL is not installed (Debian package
//!   `postgresql`). Stopped on drop (`pg_ctl stop -m immediate`, then the postmaster by its
//!   PID if it is still there), and the directory removed.
//! - [`Cluster::session`]: psql held open over TCP, fed from a pipe: [`Session::run`] sends
//!   SQL and waits (bounded) until psql has done it, [`Session::send`] does not wait.
//! - [`Cluster::command`]: `psql -c SQL`, which sends its query the moment the server says it
//!   is ready for one.
//! - [`Cluster::backend`]: the server process that serves a session, from pg_stat_activity
//!   (each session has its own application_name), with its state and wait event.
//!
//! PostgreSQL refuses to run as root: as root, everything runs as user `postgres` through
//! setpriv, which execs, so a session's PID is psql's own. Drop sessions before their cluster.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::TempDir;
use super::procs::free_port;

/// How long the server may take to start, and psql to answer: the machine is shared and busy.
const WITHIN: Duration = Duration::from_secs(60);

pub struct Cluster {
    bin: PathBuf,
    pub port: u16,
    /// Holds the data directory and the server's socket.
    dir: TempDir,
    /// As root, the user everything runs as.
    user: Option<(u32, u32)>,
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

/// psql, connected over TCP; killed by its PID and reaped on drop.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Its application_name, how its backend is found.
    pub name: String,
    marks: u32,
}

/// The newest installed major version's bin directory.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// A directory every user can reach, for the cluster: the system temp dir, or /tmp when that
/// is private (a root's TMPDIR).
fn reachable_temp(tag: &str) -> TempDir {
    let searchable = |p: &Path| {
        p.ancestors()
            .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
    };
    let base = std::env::temp_dir();
    let base = if searchable(&base) {
        base
    } else {
        PathBuf::from("/tmp")
    };
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let p = base.join(format!(
        "hangscope-pg-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).expect("mkdir");
    TempDir(p)
}

/// uid and gid of user `postgres`, from /etc/passwd.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres"))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

impl Cluster {
    /// A new cluster, started and ready; `None` when PostgreSQL is not installed.
    pub fn start(tag: &str) -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            eprintln!(
                "skipped: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; \
                 Debian package postgresql)"
            );
            return None;
        };
        // SAFETY: geteuid cannot fail and touches no memory.
        let root = unsafe { libc::geteuid() } == 0;
        let user = if root {
            let Some(u) = postgres_user() else {
                eprintln!("skipped: running as root and there is no user postgres");
                return None;
            };
            Some(u)
        } else {
            None
        };
        let dir = reachable_temp(tag);
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir.0, Some(uid), Some(gid)).expect("chown the cluster dir");
        }
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let mut c = Cluster {
            bin,
            port: 0,
            dir,
            user,
        };
        let data = c.data();
        let out = c
            .cmd("initdb")
            .args(["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Another test may take the port between the pick and the start: a few tries.
        for _ in 0..3 {
            c.port = free_port();
            let opts = format!(
                "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off",
                c.dir.path(),
                c.port
            );
            let log = format!("{}/server.log", c.dir.path());
            let started = c
                .cmd("pg_ctl")
                .args([
                    "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &opts, "start",
                ])
                .stdout(Stdio::null())
                .status()
                .expect("run pg_ctl");
            if started.success() {
                return Some(c);
            }
        }
        panic!(
            "the server did not start: {}",
            std::fs::read_to_string(format!("{}/server.log", c.dir.path())).unwrap_or_default()
        );
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path())
    }

    /// The bin directory's `program`, as user postgres when run as root.
    fn cmd(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.user {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={gid}"),
                    "--init-groups",
                    "--",
                ])
                .arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn psql(&self, name: &str) -> Command {
        let mut c = self.cmd("psql");
        c.args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-p", &self.port.to_string()])
        .env("PGAPPNAME", name)
        .current_dir(&self.dir.0);
        c
    }

    /// The output of one query, rows unaligned ("a|b"), run by its own psql.
    pub fn query(&self, sql: &str) -> String {
        let out = self
            .psql("hangscope-test-query")
            .args(["-At", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// psql held open, reading SQL from a pipe; connected once this returns.
    pub fn session(&self, name: &str) -> Session {
        let mut s = self.spawn(name, self.psql(name).stdin(Stdio::piped()));
        s.run("SELECT 1;");
        s
    }

    /// `psql -c SQL`: the query goes out the moment the server is ready for one.
    pub fn command(&self, name: &str, sql: &str) -> Session {
        self.spawn(name, self.psql(name).args(["-c", sql]).stdin(Stdio::null()))
    }

    fn spawn(&self, name: &str, cmd: &mut Command) -> Session {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start psql");
        let out = child.stdout.take().expect("stdout");
        let lines = super::lines_of(out);
        Session {
            stdin: child.stdin.take(),
            child,
            lines,
            name: name.to_string(),
            marks: 0,
        }
    }

    /// The backend serving `session`, once it is there and `ready` holds for it (bounded).
    pub fn backend(&self, session: &Session, ready: impl Fn(&Backend) -> bool) -> Backend {
        let end = Instant::now() + WITHIN;
        let sql = format!(
            "SELECT pid, state, coalesce(wait_event_type, ''), coalesce(wait_event, '') FROM \
             pg_stat_activity WHERE application_name = '{}'",
            session.name
        );
        let mut last = String::new();
        while Instant::now() < end {
            last = self.query(&sql);
            let f: Vec<&str> = last.split('|').collect();
            if let [pid, state, wtype, wevent] = f[..] {
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
            "no backend of {} as wanted within {WITHIN:?}: {last:?}",
            session.name
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .cmd("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "-t", "20", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The postmaster this test started, by the PID it wrote, if pg_ctl could not stop it.
        if let Some(pid) = std::fs::read_to_string(format!("{data}/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // `dir` is removed after this.
    }
}

impl Session {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends SQL without waiting for it to finish.
    pub fn send(&mut self, sql: &str) {
        let stdin = self.stdin.as_mut().expect("a session fed from a pipe");
        writeln!(stdin, "{sql}").expect("write to psql");
        stdin.flush().expect("flush to psql");
    }

    /// Sends SQL and waits (bounded) until psql has done it.
    pub fn run(&mut self, sql: &str) {
        self.marks += 1;
        let mark = format!("hangscope-done-{}", self.marks);
        self.send(&format!("{sql}\n\\echo {mark}"));
        let end = Instant::now() + WITHIN;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == mark => return,
                Ok(_) => {}
                Err(e) => panic!("psql {} did not finish {sql:?}: {e}", self.name),
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
