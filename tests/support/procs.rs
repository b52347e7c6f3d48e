//! Real programs the tests start and hold in a state: killed and reaped on drop, by PID.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A process a test started, killed and reaped on drop (SIGCONT first, so a stopped one dies
/// at once). Its stdin, stdout and stderr are /dev/null unless the command set them.
pub struct Proc(pub Child);

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc(
            cmd.stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {cmd:?}: {e}")),
        )
    }

    /// With stdin and stdout on /dev/null too.
    pub fn quiet(cmd: &mut Command) -> Proc {
        Proc::spawn(cmd.stdin(Stdio::null()).stdout(Stdio::null()))
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child this test started and has not reaped.
        unsafe { libc::kill(self.pid(), sig) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Only while it is unreaped is the pid still this test's.
        if let Ok(None) = self.0.try_wait() {
            self.signal(libc::SIGCONT);
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// The state letter of a process, from /proc/PID/stat.
pub fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// TracerPid from /proc/PID/status.
pub fn tracer_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))?
        .trim()
        .parse()
        .ok()
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Debian's redis-server on a loopback port, persistence off, once it accepts connections.
pub fn redis(port: u16) -> Proc {
    let server = Proc::quiet(Command::new("redis-server").args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]));
    assert!(
        super::wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "redis-server did not listen on {port} (installed by .ci/run)"
    );
    server
}

/// gdb attached to `pid`, left attached (its batch command is a long shell sleep) until drop.
pub fn gdb_holding(pid: i32) -> Proc {
    let gdb = Proc::quiet(Command::new("gdb").args([
        "-nx",
        "-batch",
        "-p",
        &pid.to_string(),
        "-ex",
        "shell sleep 120",
    ]));
    assert!(
        super::wait_until(Duration::from_secs(30), || {
            tracer_of(pid) == Some(gdb.pid()) && state_of(pid) == Some('t')
        }),
        "gdb did not attach"
    );
    gdb
}
