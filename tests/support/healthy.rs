//! A host's ordinary processes, for the tests that must tell the stuck from the healthy:
//! sleepers, sleep loops, idle servers and a busy echo client/server pair. None of them may
//! get a cause; all are stopped by PID on drop.

use std::process::Command;

use super::procs::Proc;
use super::{Started, scenario};

pub struct Healthy {
    /// Every process started, the echo pair included.
    pub pids: Vec<i32>,
    _procs: Vec<Proc>,
    _scenarios: Vec<Started>,
}

impl Healthy {
    /// `sleepers` `sleep 600`, `loops` shells sleeping 0.2 s in a loop, `idle_servers` idle
    /// loopback servers, and one busy echo pair over two connections.
    pub fn start(sleepers: usize, loops: usize, idle_servers: usize) -> Healthy {
        let mut pids = Vec::new();
        let mut procs = Vec::new();
        let mut scenarios = Vec::new();
        for _ in 0..sleepers {
            procs.push(Proc::quiet(Command::new("sleep").arg("600")));
        }
        for _ in 0..loops {
            procs.push(Proc::quiet(
                Command::new("sh").args(["-c", "while :; do sleep 0.2; done"]),
            ));
        }
        pids.extend(procs.iter().map(Proc::pid));
        for _ in 0..idle_servers {
            let mut s = scenario("idle-server", &[]);
            s.expect("port");
            scenarios.push(s);
        }
        let mut echo = scenario("echo-server", &[]);
        let echo_peer = format!("127.0.0.1:{}", echo.expect("port"));
        let mut echo_client = scenario("echo-client", &["--peer", &echo_peer, "--conns", "2"]);
        echo_client.expect("conns");
        scenarios.extend([echo, echo_client]);
        pids.extend(scenarios.iter().map(Started::pid));
        Healthy {
            pids,
            _procs: procs,
            _scenarios: scenarios,
        }
    }
}
