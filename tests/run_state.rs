//! A process that cannot run because something outside it holds it: stopped by a signal (job
//! control, SIGSTOP), held by a debugger left attached, frozen by its cgroup. Real programs
//! (Debian's redis-server and redis-cli, gdb, strace, coreutils' sleep), each case with a healthy
//! twin that gets no cause: the same process let go, or traced by a tracer that lets it run.

mod support;

use std::process::Command;
use std::time::Duration;

use support::procs::*;
use support::*;

fn top(doc: &serde_json::Value) -> &serde_json::Value {
    &doc["findings"][0]
}

#[test]
fn a_stopped_server_is_the_cause_and_its_client_says_so() {
    let port = free_port();
    let server = redis(port);
    server.signal(libc::SIGSTOP);
    assert!(
        wait_until(Duration::from_secs(10), || state_of(server.pid())
            == Some('T')),
        "redis-server did not stop"
    );
    let (code, doc) = inspect(server.pid(), &["--window", "1s"]);
    let f = top(&doc);
    assert_eq!(f["rule"], "stopped", "{doc:#}");
    assert_eq!(f["severity"], "cause");
    assert_eq!(f["facts"]["hold"]["kind"], "signal");
    assert_eq!(f["next"]["command"], format!("kill -CONT {}", server.pid()));
    assert_eq!(code, 1);

    // A client's request waits in the accept queue of a server that cannot run.
    let client = Proc::quiet(Command::new("redis-cli").args(["-p", &port.to_string(), "PING"]));
    std::thread::sleep(Duration::from_millis(1500));
    let (code, doc) = inspect(client.pid(), &["--window", "1s"]);
    let f = top(&doc);
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!(
            "Process {} (redis-server) is stopped",
            server.pid()
        )),
        "{doc:#}"
    );
    assert!(
        f["next_step"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("kill -CONT {}", server.pid()))),
        "{f:#}"
    );
    assert_eq!(code, 1);

    // Let go, it answers, and nothing is stuck.
    server.signal(libc::SIGCONT);
    assert!(wait_until(Duration::from_secs(10), || state_of(
        server.pid()
    ) != Some('T')));
    let (code, doc) = inspect(server.pid(), &["--window", "1s"]);
    assert!(causes(&doc).is_empty(), "{doc:#}");
    assert_eq!(code, 0);
}

#[test]
fn a_debugger_left_attached_is_named_and_a_tracer_that_lets_it_run_is_not_a_cause() {
    let target = Proc::quiet(Command::new("sleep").arg("300"));
    // gdb attaches (the target stops in a tracing stop) and stays attached while its shell
    // command runs.
    let gdb = Proc::quiet(Command::new("gdb").args([
        "-nx",
        "-batch",
        "-p",
        &target.pid().to_string(),
        "-ex",
        "shell sleep 120",
    ]));
    assert!(
        wait_until(Duration::from_secs(30), || {
            tracer_of(target.pid()) == Some(gdb.pid()) && state_of(target.pid()) == Some('t')
        }),
        "gdb did not attach"
    );
    let (code, doc) = inspect(target.pid(), &["--window", "1s"]);
    let f = top(&doc);
    assert_eq!(f["rule"], "stopped", "{doc:#}");
    assert_eq!(f["facts"]["hold"]["kind"], "debugger");
    assert_eq!(f["facts"]["hold"]["tracer"]["pid"], gdb.pid());
    assert_eq!(f["next"]["pid"], gdb.pid());
    assert!(
        f["summary"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("process {} (gdb)", gdb.pid()))),
        "{f:#}"
    );
    assert_eq!(code, 1);
    // hangscope itself never changed that: still gdb's, still in the tracing stop.
    assert_eq!(tracer_of(target.pid()), Some(gdb.pid()));
    drop(gdb);
    assert!(
        wait_until(Duration::from_secs(10), || tracer_of(target.pid())
            == Some(0)),
        "the target was not detached when gdb ended"
    );

    // strace lets it run: context, not a cause.
    let strace = Proc::quiet(Command::new("strace").args(["-p", &target.pid().to_string()]));
    assert!(
        wait_until(Duration::from_secs(10), || {
            tracer_of(target.pid()) == Some(strace.pid()) && state_of(target.pid()) == Some('S')
        }),
        "strace did not attach"
    );
    let (code, doc) = inspect(target.pid(), &["--window", "1s"]);
    assert!(causes(&doc).is_empty(), "{doc:#}");
    let traced = doc["findings"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["rule"] == "stopped"))
        .unwrap_or_else(|| panic!("no finding about the tracer: {doc:#}"));
    assert_eq!(traced["severity"], "info");
    assert_eq!(traced["facts"]["hold"]["kind"], "traced");
    assert_eq!(code, 0);
}

/// A cgroup this test makes under a hierarchy's mount point, with the processes the test put
/// in it. On drop (also when an assertion fails) it is thawed first — a frozen process cannot
/// die — then its processes are killed and reaped, then it is removed.
struct TestCgroup(std::path::PathBuf, Vec<Proc>);

impl TestCgroup {
    fn new(mount: &std::path::Path, tag: &str) -> Option<TestCgroup> {
        let dir = mount.join(format!("hangscope-test-{tag}-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(TestCgroup(dir, Vec::new()))
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.0.join(file), value)
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", self.0.display()));
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.freeze"), "0");
        let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
        // The processes are killed and reaped first (the fields drop only after this body,
        // which left the cgroup in place): a cgroup with a process in it cannot be removed.
        self.1.clear();
        wait_until(Duration::from_secs(5), || {
            std::fs::remove_dir(&self.0).is_ok()
        });
    }
}

fn frozen_case(version: u8, mount: &std::path::Path) {
    let Some(mut cg) = TestCgroup::new(mount, &format!("v{version}")) else {
        eprintln!("skipped: cannot make a cgroup under {}", mount.display());
        return;
    };
    let target = Proc::quiet(Command::new("sleep").arg("300"));
    let pid = target.pid();
    cg.1.push(target);
    cg.write("cgroup.procs", &pid.to_string());
    let (file, freeze, thaw) = if version == 2 {
        ("cgroup.freeze", "1", "0")
    } else {
        ("freezer.state", "FROZEN", "THAWED")
    };
    cg.write(file, freeze);
    std::thread::sleep(Duration::from_millis(1200));
    let (code, doc) = inspect(pid, &["--window", "1s"]);
    let f = top(&doc);
    assert_eq!(f["rule"], "stopped", "{doc:#}");
    assert_eq!(f["facts"]["hold"]["kind"], "frozen");
    assert_eq!(f["facts"]["hold"]["freezer"]["version"], version);
    let control = cg.0.join(file).to_string_lossy().into_owned();
    assert_eq!(f["next"]["path"], control.as_str(), "{f:#}");
    assert!(
        f["next_step"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("> {control}"))),
        "{f:#}"
    );
    assert_eq!(code, 1);

    cg.write(file, thaw);
    std::thread::sleep(Duration::from_millis(300));
    let (code, doc) = inspect(pid, &["--window", "1s"]);
    assert!(causes(&doc).is_empty(), "{doc:#}");
    assert_eq!(code, 0);
}

#[test]
fn a_frozen_cgroup_is_the_cause_and_names_the_file_that_thaws_it() {
    // Where the hierarchies are mounted, found as hangscope finds them.
    let mounts = hangscope_collect::freezer::own_mounts();
    match &mounts.unified {
        Some(m) => frozen_case(2, m),
        None => eprintln!("skipped: no cgroup2 hierarchy is mounted"),
    }
    match &mounts.freezer_v1 {
        Some(m) => frozen_case(1, m),
        None => eprintln!("skipped: no v1 freezer hierarchy is mounted"),
    }
}
