//! Event loops, death-watch pipes and parked threads on real software (issue #12, classes 3 and
//! 4): Debian's PostgreSQL 15, nginx and Redis, started by the tests in temp dirs on free
//! loopback ports. A wait in epoll_wait over a set of fds is a wait on the set: an idle
//! backend, an idle nginx worker, an idle Redis and a Redis serving BLPOP get no cause; a
//! Redis whose main thread sleeps in DEBUG SLEEP, and nginx in front of an upstream that never
//! answers, get the thread or the upstream that is stuck — on the server and on its client.
//!
//! Each program is looked for first; a test whose program is absent says so and passes (CI
//! installs them: postgresql, nginx-light, redis-server, curl).

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::procs::{free_port, state_of};
use support::*;

const WINDOW: [&str; 2] = ["--window", "1s"];

/// A process this test started, killed and reaped on drop.
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        Proc(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {cmd:?}: {e}")),
        )
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first: nginx and PostgreSQL then stop their children too.
        // SAFETY: kill(2) on a child this test started and has not reaped.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let pid = self.pid();
        if !wait_until(Duration::from_secs(10), || {
            state_of(pid).is_none_or(|s| s == 'Z')
        }) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The children of `pid`, from /proc/*/stat.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| ppid_of(p) == Some(pid))
        .collect()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The program's path, or `None` (said on stderr) when it is not installed here.
fn program(name: &str, candidates: &[&str]) -> Option<String> {
    let found = candidates
        .iter()
        .map(|c| c.to_string())
        .chain(std::env::var_os("PATH").into_iter().flat_map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name).display().to_string())
                .collect::<Vec<_>>()
        }))
        .find(|p| std::path::Path::new(p).is_file());
    if found.is_none() {
        eprintln!("skipped: {name} is not installed (Debian installs it with .ci/run)");
    }
    found
}

/// The verdict's first sentence, for the record of what real programs get.
fn first_sentence(doc: &serde_json::Value) -> String {
    let s = doc["verdict"]["summary"].as_str().unwrap_or_default();
    match s.find(". ") {
        Some(i) => s[..=i].to_string(),
        None => s.to_string(),
    }
}

fn report(what: &str, doc: &serde_json::Value) {
    eprintln!("VERDICT {what}: {}", doc["verdict"]["summary"]);
    let _ = first_sentence(doc);
}

fn rules(doc: &serde_json::Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| format!("{}:{}", f["rule"], f["severity"]))
                .collect()
        })
        .unwrap_or_default()
}

/// A thread's syscall number, None when running or gone.
fn nr(pid: i32, tid: i32) -> Option<i64> {
    syscall_nr(pid, tid)
}

// Redis.

fn redis(port: u16, dir: &TempDir) -> Option<Proc> {
    let bin = program("redis-server", &["/usr/bin/redis-server"])?;
    let server = Proc::spawn(
        Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", dir.path()])
            // DEBUG SLEEP: allowed from local connections only.
            .args(["--enable-debug-command", "local"])
            .stdin(Stdio::null()),
    );
    assert!(
        wait_until(Duration::from_secs(20), || listening(port)),
        "redis-server did not listen on {port}"
    );
    Some(server)
}

fn redis_cli(port: u16, args: &[&str]) -> Option<Proc> {
    let bin = program("redis-cli", &["/usr/bin/redis-cli"])?;
    Some(Proc::spawn(
        Command::new(bin)
            .args(["-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null()),
    ))
}

/// Waits (bounded) until `pid`'s only thread has been in `syscall` for `hold`.
fn blocked_in(pid: i32, syscall: i64, hold: Duration) -> bool {
    wait_steady(Duration::from_secs(20), hold, || {
        nr(pid, pid) == Some(syscall)
    })
}

#[test]
fn an_idle_redis_and_a_client_blocked_in_blpop_get_no_cause() {
    let dir = TempDir::new("redis-blpop");
    let port = free_port();
    let Some(server) = redis(port, &dir) else {
        return;
    };
    let (_, doc) = inspect(server.pid(), &WINDOW);
    report("redis-server idle", &doc);
    assert_eq!(doc["verdict"]["cause_found"], false, "{doc:#}");

    // BLPOP on an empty list: a blocking command, the server idle in its loop with it read.
    let Some(client) = redis_cli(port, &["BLPOP", "hangscope-empty", "0"]) else {
        return;
    };
    assert!(
        blocked_in(client.pid(), libc::SYS_recvfrom, STUCK),
        "redis-cli did not block in recvfrom"
    );
    let (code, doc) = inspect(client.pid(), &WINDOW);
    report("redis-cli BLPOP", &doc);
    assert_eq!(doc["verdict"]["cause_found"], false, "{doc:#}");
    assert_eq!(code, 0);
    // The server's CLIENT LIST says the client is blocked in BLPOP: a wait by design, said
    // as such, and no silence finding beside it.
    let f = &doc["findings"][0];
    assert_eq!(f["rule"], "redis_blocked", "{doc:#}");
    assert_eq!(
        (f["severity"].as_str(), f["cause"].as_str()),
        (Some("info"), Some("by_design"))
    );
    assert_eq!(f["facts"]["command"], "BLPOP", "{f:#}");
    assert_eq!(f["facts"]["server_pid"], server.pid(), "{f:#}");
    assert_eq!(f["subject"]["tid"], client.pid(), "{f:#}");
    let v = doc["verdict"]["summary"].as_str().unwrap_or_default();
    assert!(
        v.starts_with("Nothing looks stuck: ")
            && v.contains("in BLPOP on redis-server")
            && v.contains("by design"),
        "{v}"
    );
    assert!(
        doc["findings"]
            .as_array()
            .is_some_and(|fs| fs.iter().all(|f| f["rule"] != "peer_silent")),
        "{doc:#}"
    );
    assert_eq!(doc["snapshot"]["app"]["kind"], "redis");

    // Not asked (--no-app-introspection): a gap says so, and what the connection alone shows
    // is told: the server read the request and idles in its event loop.
    let (code, doc) = inspect(
        client.pid(),
        &[WINDOW[0], WINDOW[1], "--no-app-introspection"],
    );
    assert_eq!(code, 0);
    let gaps = doc["snapshot"]["gaps"].as_array().expect("gaps");
    assert!(
        gaps.iter().any(|g| g["reason"] == "skipped"
            && g["what"].as_str().unwrap_or("").contains("Redis")),
        "{gaps:?}"
    );
    let f = &doc["findings"][0];
    assert_eq!(f["rule"], "peer_silent", "{doc:#}");
    assert_eq!(f["severity"], "warning");
    let threads = &f["facts"]["conn"]["other_end"]["threads"];
    assert_eq!(threads["activity"]["kind"], "idle_loop", "{f:#}");
    assert_eq!(threads["activity"]["tid"], server.pid());
    assert!(threads.get("reads_too").is_none(), "{f:#}");
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(!summary.contains("both ends wait"), "{summary}");
    assert!(summary.contains("is idle in its event loop"), "{summary}");

    // The server meanwhile: its loop watches the client among its fds, not "reading more".
    let (code, doc) = inspect(server.pid(), &WINDOW);
    report("redis-server serving BLPOP", &doc);
    assert_eq!(doc["verdict"]["cause_found"], false, "{doc:#}");
    assert_eq!(code, 0);
    if let Some(f) = doc["findings"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["rule"] == "unanswered"))
    {
        assert!(f["facts"].get("reader").is_none(), "{f:#}");
        assert!(f["facts"].get("took_it").is_none(), "{f:#}");
        assert_eq!(f["facts"]["watching"]["tid"], server.pid(), "{f:#}");
    }
}

#[test]
fn redis_sleeping_in_debug_sleep_is_named_by_its_main_thread_not_a_bio_thread() {
    let dir = TempDir::new("redis-sleep");
    let port = free_port();
    let Some(server) = redis(port, &dir) else {
        return;
    };
    // Its background threads park at start; the request must come clearly later for the one
    // that took it to be told apart from them.
    std::thread::sleep(Duration::from_secs(2));
    let Some(client) = redis_cli(port, &["DEBUG", "SLEEP", "30"]) else {
        return;
    };
    assert!(
        blocked_in(server.pid(), libc::SYS_clock_nanosleep, STUCK),
        "redis-server's main thread did not go into clock_nanosleep (DEBUG SLEEP refused?)"
    );
    let (code, doc) = inspect(server.pid(), &WINDOW);
    report("redis-server in DEBUG SLEEP", &doc);
    assert_eq!(code, 1, "{doc:#}");
    let f = &doc["findings"][0];
    assert_eq!(
        (f["rule"].as_str(), f["severity"].as_str()),
        (Some("unanswered"), Some("cause")),
        "{doc:#}"
    );
    assert_eq!(f["facts"]["took_it"]["tid"], server.pid(), "{f:#}");
    assert_eq!(f["subject"]["tid"], server.pid());
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("clock_nanosleep"), "{summary}");
    assert!(
        !summary.contains("bio_"),
        "a parked bio thread blamed: {summary}"
    );
    assert_eq!(f["next"]["tid"], server.pid(), "{f:#}");

    // The client: the server read the request and its main thread is not back in its loop.
    let (code, doc) = inspect(client.pid(), &WINDOW);
    report("redis-cli DEBUG SLEEP", &doc);
    assert_eq!(code, 1, "{doc:#}");
    let f = &doc["findings"][0];
    assert_eq!(f["rule"], "peer_silent", "{doc:#}");
    assert_eq!(f["severity"], "cause");
    let threads = &f["facts"]["conn"]["other_end"]["threads"];
    assert_eq!(threads["activity"]["kind"], "elsewhere", "{f:#}");
    assert_eq!(threads["busy"][0]["tid"], server.pid(), "{f:#}");
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!(
            "thread {} (redis-server) is in clock_nanosleep",
            server.pid()
        )),
        "{summary}"
    );
    drop(client);
}

// nginx.

struct Nginx {
    master: Proc,
    port: u16,
}

/// nginx in the foreground with its own prefix in `dir`, one worker, listening on a free
/// loopback port; `/up` proxied to `upstream`.
fn nginx(dir: &TempDir, upstream: u16) -> Option<Nginx> {
    let bin = program("nginx", &["/usr/sbin/nginx"])?;
    let port = free_port();
    let d = dir.path();
    std::fs::create_dir_all(format!("{d}/logs")).expect("mkdir logs");
    // As root, workers run as root so that the test's files are theirs; otherwise nginx runs
    // them as the user it is.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    let conf = format!(
        "{user}
worker_processes 1;
error_log {d}/logs/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 \"ok\\n\"; }}
    location /up {{ proxy_pass http://127.0.0.1:{upstream}; proxy_read_timeout 120s; }}
  }}
}}
"
    );
    std::fs::write(format!("{d}/nginx.conf"), conf).expect("write nginx.conf");
    let master = Proc::spawn(
        Command::new(bin)
            .args(["-p", d, "-c", &format!("{d}/nginx.conf")])
            .args(["-g", &format!("daemon off; pid {d}/nginx.pid;")])
            .stdin(Stdio::null()),
    );
    assert!(
        wait_until(Duration::from_secs(20), || listening(port)),
        "nginx did not listen on {port}"
    );
    Some(Nginx { master, port })
}

impl Nginx {
    fn worker(&self) -> i32 {
        let pid = self.master.pid();
        let mut found = None;
        assert!(
            wait_until(Duration::from_secs(10), || {
                found = children_of(pid)
                    .into_iter()
                    .find(|&c| cmdline(c).contains("worker process"));
                found.is_some()
            }),
            "no nginx worker"
        );
        found.unwrap_or_default()
    }
}

#[test]
fn an_idle_nginx_master_and_worker_get_nothing() {
    let dir = TempDir::new("nginx-idle");
    let Some(ngx) = nginx(&dir, free_port()) else {
        return;
    };
    let worker = ngx.worker();
    // Served once, then idle: epoll_wait over its listener, an eventfd and its master's
    // channel, with no timeout.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", ngx.port)).expect("connect");
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("send");
    drop(c);
    std::thread::sleep(STUCK);
    for (what, pid) in [
        ("nginx master", ngx.master.pid()),
        ("nginx worker idle", worker),
    ] {
        let (code, doc) = inspect(pid, &WINDOW);
        report(what, &doc);
        assert_eq!(code, 0, "{doc:#}");
        assert_eq!(doc["verdict"]["cause_found"], false);
        // Not even a warning sending the worker to its master over the channel.
        assert!(rules(&doc).is_empty(), "{what}: {:?}", rules(&doc));
    }
}

#[test]
fn nginx_in_front_of_a_silent_upstream_names_it_on_the_client_and_the_worker() {
    let Some(curl) = program("curl", &["/usr/bin/curl"]) else {
        return;
    };
    let dir = TempDir::new("nginx-proxy");
    // The silent upstream: accepts, reads the request, never answers (no real program holds
    // a request read and unanswered as plainly).
    let mut upstream = scenario("silent-server", &[]);
    let up_port: u16 = upstream.expect("port").parse().expect("port number");
    let Some(ngx) = nginx(&dir, up_port) else {
        return;
    };
    let worker = ngx.worker();
    let client = Proc::spawn(
        Command::new(curl)
            .args(["-s", "-m", "120"])
            .arg(format!("http://127.0.0.1:{}/up", ngx.port))
            .stdin(Stdio::null()),
    );
    std::thread::sleep(STUCK);

    let (code, doc) = inspect(client.pid(), &WINDOW);
    report("curl through nginx to a silent upstream", &doc);
    assert_eq!(code, 1, "{doc:#}");
    let f = &doc["findings"][0];
    assert_eq!(
        (f["rule"].as_str(), f["severity"].as_str()),
        (Some("peer_silent"), Some("cause")),
        "{doc:#}"
    );
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(!summary.contains("both ends wait"), "{summary}");
    assert!(
        summary.contains(&format!(
            "fd {} of process {worker} (nginx) on this host, which passed the request on and \
             waits itself on the upstream 127.0.0.1:{up_port}",
            f["facts"]["conn"]["other_end"]["holder"]["fd"]
        )),
        "{summary}"
    );
    assert_eq!(f["facts"]["upstream"]["peer"]["port"], up_port, "{f:#}");
    assert!(f["facts"]["upstream"]["silent_ms"].as_u64() >= Some(1000));
    // Where to look is the proxy, whose own finding names the upstream: the chain goes
    // client → nginx worker → the upstream's process.
    assert_eq!(f["next"]["kind"], "process", "{f:#}");
    assert_eq!(f["next"]["pid"], worker);
    let hops: Vec<i64> = doc["chain"]["hops"]
        .as_array()
        .map(|h| h.iter().filter_map(|x| x["pid"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(
        hops,
        [
            i64::from(client.pid()),
            i64::from(worker),
            i64::from(upstream.pid())
        ],
        "{:#}",
        doc["chain"]
    );

    // The worker: the upstream that has not answered, not its master, not the client.
    let (code, doc) = inspect(worker, &WINDOW);
    report("nginx worker waiting on a silent upstream", &doc);
    assert_eq!(code, 1, "{doc:#}");
    let f = &doc["findings"][0];
    assert_eq!(f["rule"], "peer_silent", "{doc:#}");
    assert_eq!(f["facts"]["conn"]["peer"]["port"], up_port, "{f:#}");
    assert_eq!(
        f["facts"]["conn"]["other_end"]["holder"]["pid"],
        upstream.pid(),
        "{f:#}"
    );
    assert!(
        !rules(&doc)
            .iter()
            .any(|r| r.starts_with("\"unix_peer_wait\"")),
        "{:?}",
        rules(&doc)
    );
    drop(client);
}

// PostgreSQL.

#[test]
fn an_idle_postgres_backend_and_its_postmaster_get_nothing() {
    let Some(pg) = support::pg_cluster::Cluster::start_empty("event-loops") else {
        return;
    };
    let Some(psql) = program(
        "psql",
        &["/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql"],
    ) else {
        return;
    };
    // A connected, idle psql: it waits on its stdin, which the test holds open.
    let client = Proc::spawn(
        Command::new(psql)
            .args(["-X", "-h", "127.0.0.1", "-p", &pg.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres"])
            .stdin(Stdio::piped()),
    );
    let mut backend = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            backend = children_of(pg.postmaster())
                .into_iter()
                .find(|&c| cmdline(c).contains(" idle"));
            backend.is_some()
        }),
        "no idle backend: {:?}",
        children_of(pg.postmaster())
            .into_iter()
            .map(cmdline)
            .collect::<Vec<_>>()
    );
    let backend = backend.unwrap_or_default();
    std::thread::sleep(STUCK);
    // The backend: epoll_wait over its latch, the postmaster's death-watch pipe and the
    // client socket. The postmaster: select over its listeners.
    for (what, pid) in [
        ("postgres backend idle", backend),
        ("postmaster", pg.postmaster()),
    ] {
        let (code, doc) = inspect(pid, &WINDOW);
        report(what, &doc);
        assert_eq!(code, 0, "{doc:#}");
        assert_eq!(doc["verdict"]["cause_found"], false);
        // Not a warning sending the backend to the postmaster over the death-watch pipe.
        assert!(
            !rules(&doc).iter().any(|r| r.starts_with("\"pipe_wait\"")),
            "{what}: {:?}",
            rules(&doc)
        );
    }
    drop(client);
}

/// Long enough for any wait to count as stuck (the rules' threshold is 1 s).
const STUCK: Duration = Duration::from_millis(1500);
