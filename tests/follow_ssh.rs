//! Following a chain across hosts over ssh (`--follow`): two network namespaces as two hosts,
//! joined by a veth with addresses in 198.18.0.0/15; Debian's OpenSSH server (openssh-server,
//! client from openssh-client) started by the test in the server's namespace, also in a PID
//! namespace of its own, with a host key and client keys made for the test in its temp dir.
//! The seed's topology: the client (`meta-client`) calls :10100 on the other host, where the
//! silent meta server's handler thread read the request and waits on a mutex its `compactor`
//! thread holds. Nothing outside the namespaces the test creates is touched.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hangscope_model::{ChainEnd, Document, HopFailureKind};
use support::netns::Pair;
use support::*;

const SSHD: &str = "/usr/sbin/sshd";

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether sshd and the ssh tools are there; else the test says why it does not run.
fn have_ssh() -> bool {
    let there = |p: &str| std::path::Path::new(p).exists();
    let which = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !there(SSHD) || !which("ssh") || !which("ssh-keygen") {
        eprintln!(
            "SKIP: needs OpenSSH ({SSHD}, ssh, ssh-keygen: Debian's openssh-server and \
             openssh-client, installed by .ci/run)"
        );
        return false;
    }
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: needs root (network namespaces, sshd)");
        return false;
    }
    true
}

/// Whether this kernel and container let a PID namespace be made (unshare --pid).
fn pid_namespaces_work() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An sshd in namespace `ns`, listening on `addr`:22, killed by PID on drop; everything in its
/// PID namespace dies with it.
struct Sshd {
    child: Child,
    /// The process whose namespaces (net, PID, mount) are the server host's: sshd itself.
    host_pid: i32,
    pid_ns: bool,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's keys: sshd's host key, the client key it accepts, one it does not; and the
/// files ssh reads (known_hosts with the host key, nothing of the user's).
struct Keys {
    dir: TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = TempDir::new("follow-ssh");
        for name in ["host_key", "client_key", "wrong_key"] {
            run(Command::new("ssh-keygen").args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                name,
                "-f",
                &format!("{}/{name}", dir.path()),
            ]));
        }
        std::fs::copy(
            format!("{}/client_key.pub", dir.path()),
            format!("{}/authorized_keys", dir.path()),
        )
        .expect("authorized_keys");
        Keys { dir }
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.path())
    }

    fn known_hosts(&self, addr: &str) {
        let key = std::fs::read_to_string(self.path("host_key.pub")).expect("host key");
        std::fs::write(self.path("known_hosts"), format!("{addr} {key}")).expect("known_hosts");
    }

    /// The --ssh command with `key`: only the test's files, no user config, agent or prompt.
    fn ssh(&self, key: &str) -> String {
        let q = |p: String| shlex::try_quote(&p).expect("quotable").into_owned();
        format!(
            "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null \
             -o UserKnownHostsFile={} -o ConnectTimeout=5 -o LogLevel=ERROR -i {}",
            q(self.path("known_hosts")),
            q(self.path(key))
        )
    }
}

fn start_sshd(pair: &Pair, keys: &Keys) -> Sshd {
    let config = keys.path("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port 22\nListenAddress {}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\nLogLevel ERROR\n",
            pair.b_addr,
            keys.path("host_key"),
            keys.path("authorized_keys")
        ),
    )
    .expect("sshd_config");
    let pid_ns = pid_namespaces_work();
    if !pid_ns {
        eprintln!(
            "note: unshare --pid is refused here, so the server host shares this PID namespace"
        );
    }
    // sshd wants /run/sshd: a tmpfs on /run in the server's own mount namespace, so the
    // host's /run is not touched. --kill-child: sshd (PID 1 there) dies with unshare, the
    // process this test kills, and the whole PID namespace with it.
    let script = format!(
        "mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec {SSHD} -D -e -f {}",
        shlex::try_quote(&config).expect("quotable")
    );
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &pair.b,
        "unshare",
        "--mount",
        "--kill-child",
    ]);
    if pid_ns {
        cmd.args(["--pid", "--fork", "--mount-proc"]);
    } else {
        cmd.arg("--fork");
    }
    let child = cmd
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sshd");
    let unshare = child.id() as i32;
    let mut sshd = Sshd {
        child,
        host_pid: 0,
        pid_ns,
    };
    // sshd is unshare's child; it listens once its /proc/PID/net/tcp (its namespace's) has
    // :22 in LISTEN.
    let listening = wait_until(Duration::from_secs(20), || {
        let Some(pid) = child_of(unshare) else {
            return false;
        };
        sshd.host_pid = pid;
        std::fs::read_to_string(format!("/proc/{pid}/net/tcp"))
            .is_ok_and(|t| t.lines().any(|l| l.contains(":0016 00000000:0000 0A")))
            && std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|e| e.to_string_lossy().contains("sshd"))
    });
    assert!(listening, "sshd did not listen on {}:22", pair.b_addr);
    sshd
}

fn child_of(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The PID a process has in its own PID namespace (the last of NSpid).
fn ns_pid(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .expect("NSpid")
}

/// Runs hangscope in the client's namespace; returns the exit code, stdout and stderr.
fn hangscope_in(pair: &Pair, args: &[&str]) -> (i32, String, String) {
    let start = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &pair.a, HANGSCOPE])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hangscope");
    eprintln!("hangscope {args:?}: {:?}", start.elapsed());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn parse(json: &str, stderr: &str) -> Document {
    Document::from_json(json).unwrap_or_else(|e| panic!("not a document ({e}): {json}\n{stderr}"))
}

/// The seed's incident across two hosts: the chain goes from the client's waiting thread, over
/// ssh, to the meta server's process on the other host (by the PID it has there) and its
/// handler's wait on the compactor's mutex. Then the same with a key the server refuses, a
/// remote hangscope that is not there, and --ship.
#[test]
fn the_seed_is_followed_to_the_meta_server_on_the_other_host() {
    if !have_ssh() {
        return;
    }
    let pair = Pair::create("fs");
    let keys = Keys::new();
    keys.known_hosts(&pair.b_addr);
    let sshd = start_sshd(&pair, &keys);
    let listen = format!("{}:10100", pair.b_addr);
    // The meta server, in the server host's namespaces (nsenter forks into the PID namespace;
    // the scenario dies with nsenter, its parent).
    let target = sshd.host_pid.to_string();
    let enter = [
        "nsenter", "--target", &target, "--net", "--pid", "--mount", "--",
    ];
    let mut server = scenario_via(
        &enter,
        "silent-server",
        &["--handler-lock", "--listen", &listen],
    );
    let compactor: i32 = server.expect("compactor").parse().expect("compactor tid");
    server.expect("port");
    let server_pid = child_of(server.pid()).expect("the meta server under nsenter");
    let remote_pid = ns_pid(server_pid);
    if sshd.pid_ns {
        assert_ne!(
            remote_pid, server_pid,
            "the server host has PIDs of its own"
        );
    }
    // The seed's healthy service on the same host, which the client's heartbeat uses.
    let side = format!("{}:2181", pair.b_addr);
    let mut healthy = scenario_via(&enter, "echo-server", &["--listen", &side]);
    healthy.expect("port");
    let mut client = scenario_via(
        &pair.exec(&pair.a),
        "meta-client",
        &["--peer", &listen, "--side", &side, "--timeout-ms", "600000"],
    );
    let worker: i32 = client.expect("worker").parse().expect("worker tid");
    client.expect("connected");
    assert!(
        wait_steady(Duration::from_secs(30), Duration::from_millis(1500), || {
            in_poll(client.pid(), worker)
        }),
        "the client's worker waits in poll() for the reply"
    );
    let pid = client.pid().to_string();
    let remote = HANGSCOPE.to_string();
    let ssh = keys.ssh("client_key");
    let saved = format!("{}/follow.json", keys.dir.path());
    let base = [pid.as_str(), "--follow", "--deadline", "20s"];
    let with = |extra: &[&str]| -> Vec<String> {
        let there = ["--remote-hangscope", remote.as_str()];
        let there = if extra.contains(&"--remote-hangscope") {
            &[][..]
        } else {
            &there[..]
        };
        base.iter()
            .chain(there)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let args = with(&["--ssh", &ssh, "--json", "--save", &saved]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, json, stderr) = hangscope_in(&pair, &args);
    let doc = parse(&json, &stderr);
    eprintln!("VERDICT (followed): {}", doc.verdict.summary);
    assert_eq!(code, 1, "a cause, as without --follow: {stderr}");
    let chain = doc.chain.as_ref().expect("a chain");
    let hosts: Vec<(i32, Option<&str>)> = chain
        .hops
        .iter()
        .map(|h| (h.pid, h.reached_at.as_deref()))
        .collect();
    assert_eq!(
        hosts[..2],
        [
            (client.pid(), None),
            (remote_pid, Some(pair.b_addr.as_str()))
        ],
        "{:#?}\n{stderr}",
        doc.hosts
    );
    assert!(
        matches!(chain.end, ChainEnd::Root { .. }),
        "{:?}",
        chain.end
    );
    assert_eq!(doc.hosts.len(), 1);
    let hop = &doc.hosts[0];
    assert!(hop.failure.is_none(), "{:?}", hop.failure);
    let served = hop
        .document
        .as_ref()
        .and_then(|d| d.served.as_ref())
        .expect("the server host says how it found the connection");
    assert_eq!(served.found_by, hangscope_model::FoundBy::Connection);
    assert_eq!(served.local, listen);
    // The host there was given what was left of the run's deadline, less ssh's share.
    let given = hop
        .command
        .last()
        .and_then(|c| c.split("'--deadline' '").nth(1))
        .and_then(|d| d.split("ms'").next())
        .and_then(|d| d.parse::<u64>().ok())
        .expect("the remote command has --deadline");
    assert!(given < 20_000 - 1_500, "{given} ms");
    assert!(hop.elapsed_ms < 20_000, "{}", hop.elapsed_ms);
    let root = doc.verdict.root.as_ref().expect("a root");
    assert_eq!(
        (root.pid, root.host.as_deref()),
        (remote_pid, Some(pair.b_addr.as_str()))
    );
    // One verdict: the client's thread on its host, the server's process by the PID it has
    // there, what it did with the request, and what its handler waits on.
    let v = &doc.verdict.summary;
    for want in [
        format!("Thread {worker} (dump_meta) of hangscope {}", client.pid()),
        format!("on {} waits for {listen}", pair.a_addr),
        format!("process {remote_pid} (hangscope) there read the request"),
        format!("held by thread {compactor} (compactor)"),
    ] {
        assert!(v.contains(&want), "{want:?} not in the verdict: {v}");
    }
    assert!(
        doc.verdict
            .next_step
            .starts_with(&format!("On {}:", pair.b_addr)),
        "{}",
        doc.verdict.next_step
    );

    // The saved file has every host's document; replay joins the same chain, reading nothing
    // live.
    let out = hangscope(&["replay", &saved, "--json"]);
    let replayed = parse(&String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        replayed.chain, doc.chain,
        "replay walks the same chain across hosts"
    );
    assert_eq!(replayed.verdict.summary, doc.verdict.summary);
    let text = hangscope(&["replay", &saved, "--no-color"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("CHAIN"))
        .unwrap_or_else(|| panic!("a CHAIN line:\n{text}"));
    assert!(
        line.contains(&format!("hangscope {remote_pid} on {}", pair.b_addr)),
        "{line}"
    );

    // A key the server refuses: the local verdict, with the hop that failed and why.
    let wrong = keys.ssh("wrong_key");
    let args = with(&["--ssh", &wrong, "--json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, json, stderr) = hangscope_in(&pair, &args);
    let doc = parse(&json, &stderr);
    eprintln!("VERDICT (wrong key): {}", doc.verdict.summary);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(doc.verdict.rule, "peer_silent");
    let failure = doc.hosts[0].failure.as_ref().expect("the hop failed");
    assert_eq!(failure.kind, HopFailureKind::Auth, "{failure:?}");
    assert!(failure.reason.contains("Permission denied"), "{failure:?}");
    assert!(
        matches!(&doc.chain.as_ref().expect("chain").end, ChainEnd::OtherHost { host, .. } if *host == pair.b_addr)
    );
    assert!(
        doc.snapshot
            .gaps
            .iter()
            .any(|g| g.what.contains(&pair.b_addr) && g.detail.contains("Permission denied")),
        "a gap says which host was not read"
    );
    assert!(v_starts_local(&doc), "{}", doc.verdict.summary);
    let args = with(&["--ssh", &wrong, "--no-color"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, text, _) = hangscope_in(&pair, &args);
    assert!(
        text.contains(&format!(
            "{} was not followed: ssh was refused",
            pair.b_addr
        )),
        "{text}"
    );

    // A host whose key ssh does not know: BatchMode refuses it, nothing is asked.
    let unknown = ssh.replace(&keys.path("known_hosts"), "/dev/null");
    let args = with(&["--ssh", &unknown, "--json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, json, stderr) = hangscope_in(&pair, &args);
    let doc = parse(&json, &stderr);
    assert_eq!(code, 1);
    let failure = doc.hosts[0].failure.as_ref().expect("the hop failed");
    assert_eq!(failure.kind, HopFailureKind::HostKey, "{failure:?}");

    // Something that is not hangscope answers: its output is not taken for a document.
    let args = with(&["--ssh", &ssh, "--json", "--remote-hangscope", "/bin/echo"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, json, stderr) = hangscope_in(&pair, &args);
    let doc = parse(&json, &stderr);
    let failure = doc.hosts[0].failure.as_ref().expect("the hop failed");
    assert_eq!(failure.kind, HopFailureKind::BadOutput, "{failure:?}");

    // An ssh that never answers is given up at the run's deadline, and the report printed.
    let started = Instant::now();
    let (code, json, stderr) = hangscope_in(
        &pair,
        &[
            &pid,
            "--follow",
            "--deadline",
            "5s",
            "--json",
            "--ssh",
            "sh -c 'sleep 60'",
        ],
    );
    let doc = parse(&json, &stderr);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, 1);
    let failure = doc.hosts[0].failure.as_ref().expect("the hop failed");
    assert_eq!(failure.kind, HopFailureKind::Timeout, "{failure:?}");

    // No hangscope at that path there; then this one shipped over the same ssh.
    let args = with(&[
        "--ssh",
        &ssh,
        "--json",
        "--remote-hangscope",
        "/nonexistent/hangscope",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, json, stderr) = hangscope_in(&pair, &args);
    let doc = parse(&json, &stderr);
    let failure = doc.hosts[0].failure.as_ref().expect("the hop failed");
    assert_eq!(failure.kind, HopFailureKind::NoHangscope, "{failure:?}");
    eprintln!("VERDICT (no hangscope there): {}", doc.verdict.summary);

    let size = std::fs::metadata(HANGSCOPE).expect("binary").len();
    let args = with(&["--ssh", &ssh, "--json", "--ship"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, json, stderr) = hangscope_in(&pair, &args);
    let doc = parse(&json, &stderr);
    eprintln!("VERDICT (shipped): {}", doc.verdict.summary);
    assert!(
        doc.hosts[0].failure.is_none(),
        "{:?}\n{stderr}",
        doc.hosts[0].failure
    );
    assert_eq!(doc.verdict.root.as_ref().map(|r| r.pid), Some(remote_pid));
    // The shipped copy is gone from the server host's temp dir.
    let left = std::fs::read_dir("/tmp")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("tmp."))
                .filter(|e| e.metadata().is_ok_and(|m| m.len() == size))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(left, 0, "the shipped binary was removed");
    drop(client);
    drop(server);
    drop(healthy);
    drop(sshd);
}

/// The verdict of a hop that failed is the client's own finding, not one across hosts.
fn v_starts_local(doc: &Document) -> bool {
    doc.verdict.summary.starts_with("Thread ") && doc.verdict.root.is_none()
}

/// The twin: a client whose calls to the other host are answered has nothing to follow, and
/// no ssh is run (the ssh given here would fail: nothing listens for it).
#[test]
fn a_client_answered_across_hosts_is_not_followed() {
    if !have_ssh() {
        return;
    }
    let pair = Pair::create("fh");
    let listen = format!("{}:2181", pair.b_addr);
    let mut server = scenario_via(&pair.exec(&pair.b), "echo-server", &["--listen", &listen]);
    server.expect("port");
    let peer = listen.clone();
    let mut client = scenario_via(
        &pair.exec(&pair.a),
        "echo-client",
        &["--peer", &peer, "--conns", "1"],
    );
    client.expect("conns");
    let pid = client.pid().to_string();
    let (code, json, stderr) = hangscope_in(
        &pair,
        &[
            &pid,
            "--follow",
            "--json",
            "--window",
            "1s",
            "--ssh",
            "ssh -o BatchMode=yes -F /dev/null",
        ],
    );
    let doc = parse(&json, &stderr);
    eprintln!("VERDICT (answered): {}", doc.verdict.summary);
    assert_eq!(code, 0, "{}", doc.verdict.summary);
    assert!(!doc.verdict.cause_found);
    assert!(doc.hosts.is_empty(), "nothing to follow: {:?}", doc.hosts);
}

/// `hangscope peer` run on the host itself, outside the namespace the server is in: the
/// connection is found in that namespace by its reversed address pair, among all of the host's;
/// a pair no socket has (as behind NAT) gets the listener on the port, said to be only that.
#[test]
fn peer_finds_the_connection_in_any_namespace_of_the_host() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: needs root (network namespaces)");
        return;
    }
    let pair = Pair::create("fp");
    let listen = format!("{}:10100", pair.b_addr);
    let mut server = scenario_via(&pair.exec(&pair.b), "silent-server", &["--listen", &listen]);
    server.expect("port");
    let mut client = scenario_via(
        &pair.exec(&pair.a),
        "meta-client",
        &["--peer", &listen, "--timeout-ms", "600000"],
    );
    client.expect("connected");
    // The client's end, from its namespace's table (ss -N enters it).
    let mut from = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let out = Command::new("ss")
                .args(["-H", "-t", "-n", "-N", &pair.a, "state", "established"])
                .output()
                .expect("ss");
            from = String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| l.contains(&listen))
                .and_then(|l| l.split_whitespace().nth(2))
                .unwrap_or_default()
                .to_string();
            !from.is_empty()
        }),
        "the client's connection"
    );
    let ns_inode = |pid: i32| {
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .expect("ns link")
            .to_string_lossy()
            .into_owned()
    };
    let peer = |remote: &str| {
        let out = hangscope(&[
            "peer", "--local", &listen, "--remote", remote, "--json", "--window", "0",
        ]);
        parse(
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        )
    };
    let doc = peer(&from);
    let served = doc.served.as_ref().expect("served");
    assert_eq!(doc.snapshot.process.pid, server.pid());
    assert_eq!(served.found_by, hangscope_model::FoundBy::Connection);
    assert_eq!(
        format!("net:[{}]", served.netns_inode.expect("netns")),
        ns_inode(server.pid())
    );
    assert_ne!(ns_inode(server.pid()), ns_inode(std::process::id() as i32));
    assert!(served.namespaces >= 3, "{served:?}");
    assert!(
        doc.snapshot
            .sockets
            .iter()
            .any(|s| s.inode == served.socket_inode && s.fds.contains(&served.fd)),
        "the snapshot has that socket at that fd"
    );
    let text = hangscope(&[
        "peer", "--local", &listen, "--remote", &from, "--window", "0",
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    // Wrapped where the addresses' lengths put the break: one line, unwrapped.
    let peer_line = text
        .split("\nPEER     ")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    assert!(
        peer_line.starts_with(&format!(
            "this process holds {listen} of the connection from {from} (fd "
        )),
        "{text}"
    );
    // NAT: the caller's end is not what this host sees.
    let doc = peer(&format!("{}:1", pair.a_addr));
    let served = doc.served.as_ref().expect("served");
    assert_eq!(served.found_by, hangscope_model::FoundBy::Listener);
    assert_eq!(doc.snapshot.process.pid, server.pid());
    // Nothing on that port: no document, and why.
    let out = hangscope(&[
        "peer",
        "--local",
        &format!("{}:10199", pair.b_addr),
        "--remote",
        &from,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no socket of"), "{said}");
}
