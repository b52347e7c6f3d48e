//! `--follow`: a chain that ends at a peer on another host goes on there, with the operator's
//! own ssh (`--ssh`, BatchMode by default: keys, known_hosts, ProxyJump as configured) running
//! `hangscope peer` on that host, which finds the process holding the other end of that very
//! connection and returns its document. No agent, no listener, no credentials of hangscope's.
//!
//! No shell runs on this side: the ssh prefix is split into words like a shell would, and run
//! with the host and one remote command appended. That command is read by the remote user's
//! shell, so every word of it is quoted for a POSIX shell. ssh runs in a session of its own,
//! with no terminal and askpass refused, so it can never ask for a password; a hop that needs
//! one fails, and says so.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hangscope_collect::Deadline;
use hangscope_model::{Document, Gap, GapReason, HopFailure, HopFailureKind, HostHop, Served};

use crate::cli::FollowArgs;

/// Time kept back from what is left for ssh itself: connecting, authenticating, and bringing
/// the document back.
const SSH_MARGIN: Duration = Duration::from_millis(1500);

/// A host's run needs at least this long: a look at a process and its chain there.
const MIN_REMOTE: Duration = Duration::from_millis(1200);

/// Largest document taken back from a host (a snapshot of 19,000 fds is 15 MB).
const MAX_OUTPUT: u64 = 256 << 20;

/// What ssh said on stderr, kept for the reason of a failure.
const MAX_STDERR: usize = 4096;

/// Follows the document's chain across hosts, up to `--hops` of them, within the deadline:
/// each host's document is diagnosed again here and joined into the chain; a host that could
/// not be followed is a gap, and its reason is in the chain's text.
pub fn follow(doc: &mut Document, deadline: &Deadline, args: &FollowArgs) {
    // Each join starts again from the chain on this host, with every host so far.
    let here = doc.chain.clone();
    for _ in 0..args.hops {
        let Some((addr, port, from)) = hangscope_diagnose::hosts::next_host(doc) else {
            break;
        };
        let from = from.unwrap_or_default();
        let start = Instant::now();
        let result = run_there(&addr, port, &from, deadline, args);
        let (command, outcome) = match result {
            Ok((command, remote)) => (command, Ok(remote)),
            Err((command, failure)) => (command, Err(failure)),
        };
        let mut hop = HostHop {
            addr: addr.clone(),
            port,
            from,
            command,
            elapsed_ms: start.elapsed().as_millis() as u64,
            document: None,
            failure: None,
        };
        match outcome {
            Ok(remote) => hop.document = Some(Box::new(remote)),
            Err(failure) => {
                doc.snapshot.gaps.push(Gap::new(
                    format!("hangscope on {addr} (over ssh)"),
                    match failure.kind {
                        HopFailureKind::Timeout => GapReason::Deadline,
                        HopFailureKind::Auth | HopFailureKind::HostKey => GapReason::Permission,
                        _ => GapReason::Other,
                    },
                    failure.reason.clone(),
                ));
                hop.failure = Some(failure);
            }
        }
        let failed = hop.failure.is_some();
        doc.hosts.push(hop);
        doc.chain = here.clone();
        hangscope_diagnose::hosts::join(doc);
        if failed {
            break;
        }
    }
}

type Failed = (Vec<String>, HopFailure);

fn fail(command: &[String], kind: HopFailureKind, reason: impl Into<String>) -> Failed {
    (
        command.to_vec(),
        HopFailure {
            kind,
            reason: reason.into(),
        },
    )
}

/// Runs `hangscope peer` on `addr` over ssh and returns its document, diagnosed again here.
fn run_there(
    addr: &str,
    port: u16,
    from: &str,
    deadline: &Deadline,
    args: &FollowArgs,
) -> Result<(Vec<String>, Document), Failed> {
    // The address comes from the target's socket: an address, never an option or a name.
    let ip: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| {
            fail(
                &[],
                HopFailureKind::Other,
                format!("{addr:?} is not an address"),
            )
        })?;
    if from.is_empty() {
        return Err(fail(
            &[],
            HopFailureKind::Other,
            "this host's end of the connection is not known, so the host there cannot find it",
        ));
    }
    let mut command = shlex::split(&args.ssh)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| {
            fail(
                &[],
                HopFailureKind::Other,
                format!("--ssh {:?} cannot be split into words", args.ssh),
            )
        })?;
    let target = match &args.ssh_user {
        Some(user) => format!("{user}@{ip}"),
        None => ip.to_string(),
    };
    let left = deadline.remaining();
    let Some(remote_deadline) = left.checked_sub(SSH_MARGIN).filter(|d| *d >= MIN_REMOTE) else {
        return Err(fail(
            &command,
            HopFailureKind::Timeout,
            format!(
                "only {} of the deadline were left for {addr}; raise --deadline",
                hangscope_model::units::duration(left)
            ),
        ));
    };
    // Two looks over a window, as on this host, when there is time for them.
    let window = (remote_deadline.saturating_sub(Duration::from_millis(1000)) / 2)
        .min(Duration::from_secs(2));
    let peer_args = [
        "peer".to_string(),
        "--local".into(),
        socket_addr(ip, port),
        "--remote".into(),
        from.to_string(),
        "--json".into(),
        "--deadline".into(),
        format!("{}ms", remote_deadline.as_millis()),
        "--window".into(),
        format!("{}ms", window.as_millis()),
    ];
    let binary = if args.ship {
        Some(std::fs::read("/proc/self/exe").map_err(|e| {
            fail(
                &command,
                HopFailureKind::Other,
                format!("cannot read this hangscope to ship it: {e}"),
            )
        })?)
    } else {
        None
    };
    let remote_command = match &binary {
        Some(_) => ship_script(&peer_args),
        None => std::iter::once(args.remote_hangscope.clone())
            .chain(peer_args.iter().cloned())
            .map(|w| quote(&w))
            .collect::<Vec<_>>()
            .join(" "),
    };
    command.push(target);
    command.push(remote_command);
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| fail(&[], HopFailureKind::Other, "--ssh is empty"))?;
    let mut cmd = Command::new(program);
    cmd.args(rest)
        .stdin(if binary.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Never a password prompt: no askpass, and (below) no terminal to ask on.
        .env("SSH_ASKPASS_REQUIRE", "never")
        .env_remove("SSH_ASKPASS")
        .env_remove("DISPLAY");
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of this process.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        fail(
            &command,
            HopFailureKind::Other,
            format!("cannot run {program}: {e}"),
        )
    })?;
    if let (Some(bytes), Some(mut stdin)) = (binary, child.stdin.take()) {
        // Written on a thread: a host that does not read it must not hold this one up.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let out = child.stdout.take().map(|o| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = o.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
            buf
        })
    });
    let err = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = e.take(1 << 20).read_to_end(&mut buf);
            buf
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if deadline.passed() => {
                // Only this ssh, which this run started, and what it started (a ProxyCommand):
                // the session setsid made for it, whose id is its PID, still unreaped.
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let Some(status) = status else {
        return Err(fail(
            &command,
            HopFailureKind::Timeout,
            format!("no answer from {addr} before the deadline; raise --deadline"),
        ));
    };
    let stdout = out.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|t| t.join().ok()).unwrap_or_default();
    let said = said(&stderr);
    let code = status.code();
    if !matches!(code, Some(0 | 1)) {
        let (kind, reason) = classify(code, &said, args);
        return Err(fail(&command, kind, reason));
    }
    if stdout.len() as u64 > MAX_OUTPUT {
        return Err(fail(
            &command,
            HopFailureKind::BadOutput,
            "the document from there is larger than 256 MiB",
        ));
    }
    // Streamed: a document parsed whole as a JSON value costs ten times its size.
    let mut remote = Document::from_reader(std::io::Cursor::new(&stdout)).map_err(|e| {
        fail(
            &command,
            HopFailureKind::BadOutput,
            format!("not a hangscope document: {e}{}", tail(&said)),
        )
    })?;
    if !plausible(&remote) {
        return Err(fail(
            &command,
            HopFailureKind::BadOutput,
            "the document from there does not say which connection it is about",
        ));
    }
    remote.hosts.clear();
    hangscope_diagnose::hosts::rediagnose(&mut remote);
    Ok((command, remote))
}

/// A document of `hangscope peer` says which connection it is about.
fn plausible(doc: &Document) -> bool {
    doc.served
        .as_ref()
        .is_some_and(|s: &Served| s.socket_inode != 0)
}

fn socket_addr(ip: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

/// One word quoted for a POSIX shell: in single quotes, each single quote closed, escaped and
/// reopened.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The remote command that runs a copy of this binary sent on ssh's stdin: refused on another
/// architecture; written to a private temp file (mktemp makes it 0600), run with the peer
/// arguments, and removed whatever the run's outcome. The script is fixed: only the quoted
/// arguments after it vary.
fn ship_script(peer_args: &[String]) -> String {
    const SCRIPT: &str = r#"a=$(uname -m); if [ "$a" != "$1" ]; then echo "hangscope: this host is $a, the shipped hangscope is $1" >&2; exit 125; fi; shift; f=$(mktemp) || exit 126; trap 'rm -f "$f"' EXIT HUP INT TERM; cat > "$f" && chmod 700 "$f" && "$f" "$@""#;
    let mut words = vec![
        "sh".to_string(),
        "-c".into(),
        SCRIPT.into(),
        "hangscope-ship".into(),
        std::env::consts::ARCH.into(),
    ];
    words.extend(peer_args.iter().cloned());
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// ssh's stderr as text, its last lines, without the banner noise.
fn said(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let joined = lines.join("; ");
    let cut = joined.len().saturating_sub(MAX_STDERR);
    let start = (cut..=joined.len())
        .find(|&i| joined.is_char_boundary(i))
        .unwrap_or(joined.len());
    hangscope_model::text::escape(&joined[start..]).into_owned()
}

fn tail(said: &str) -> String {
    if said.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {said})")
    }
}

/// Why ssh or the remote hangscope failed, from its exit code and what it said.
fn classify(code: Option<i32>, said: &str, args: &FollowArgs) -> (HopFailureKind, String) {
    let has = |s: &str| said.contains(s);
    let kind = if has("Host key verification failed")
        || has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || has("No ED25519 host key is known")
        || has("host key for")
    {
        HopFailureKind::HostKey
    } else if has("Permission denied") || has("Too many authentication failures") {
        HopFailureKind::Auth
    } else if has("Connection refused")
        || has("No route to host")
        || has("Connection timed out")
        || has("Could not resolve hostname")
        || has("Network is unreachable")
        || has("Connection closed by")
    {
        HopFailureKind::Unreachable
    } else if code == Some(127)
        || (code == Some(2) && has("unrecognized subcommand"))
        || (code == Some(125) && has("the shipped hangscope is"))
        || has("not found")
        || has("No such file")
    {
        HopFailureKind::NoHangscope
    } else if code == Some(3) && has("no socket of") {
        HopFailureKind::NotFound
    } else {
        HopFailureKind::Other
    };
    let what = match kind {
        HopFailureKind::HostKey => "ssh does not know that host's key (BatchMode does not ask): add it to known_hosts after checking it".to_string(),
        HopFailureKind::Auth => "ssh was refused: no key it offered was accepted (hangscope never asks for a password)".to_string(),
        HopFailureKind::Unreachable => "ssh could not connect".to_string(),
        HopFailureKind::NoHangscope if code == Some(125) => "--ship needs the same architecture there; install hangscope on that host".to_string(),
        HopFailureKind::NoHangscope if code == Some(2) => format!(
            "the {} there is too old to follow a chain (it has no `peer` command); update it, \
             or --ship this one",
            args.remote_hangscope
        ),
        HopFailureKind::NoHangscope => format!(
            "no {} there; install it, give its path with --remote-hangscope, or --ship this one",
            args.remote_hangscope
        ),
        HopFailureKind::NotFound => "hangscope there found no socket of that connection".to_string(),
        _ => match code {
            Some(c) => format!("ssh or hangscope there exited with {c}"),
            None => "ssh was killed by a signal".to_string(),
        },
    };
    (kind, format!("{what}{}", tail(said)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_quoted_for_the_remote_shell() {
        assert_eq!(quote("hangscope"), "'hangscope'");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        // What sh makes of the quoted words is the words themselves.
        let words = ["x y", "it's", "$HOME", "`id`", "\"q\"", "a\nb", ""];
        let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "for w in {}; do printf '%s\\0' \"$w\"; done",
                line.join(" ")
            ))
            .output()
            .expect("sh");
        let back: Vec<&str> = std::str::from_utf8(&out.stdout)
            .expect("utf-8")
            .split_terminator('\0')
            .collect();
        assert_eq!(back, words);
    }

    #[test]
    fn failures_are_told_apart() {
        let args = FollowArgs::default();
        let c = |code, said: &str| classify(Some(code), said, &args).0;
        assert_eq!(
            c(255, "root@198.18.0.2: Permission denied (publickey)."),
            HopFailureKind::Auth
        );
        assert_eq!(
            c(255, "Host key verification failed."),
            HopFailureKind::HostKey
        );
        assert_eq!(
            c(
                255,
                "ssh: connect to host 198.18.0.2 port 22: Connection refused"
            ),
            HopFailureKind::Unreachable
        );
        assert_eq!(
            c(127, "bash: line 1: hangscope: command not found"),
            HopFailureKind::NoHangscope
        );
        assert_eq!(
            c(
                125,
                "hangscope: this host is aarch64, the shipped hangscope is x86_64"
            ),
            HopFailureKind::NoHangscope
        );
        assert_eq!(
            c(2, "error: unrecognized subcommand 'peer'"),
            HopFailureKind::NoHangscope
        );
        assert!(
            classify(Some(2), "error: unrecognized subcommand 'peer'", &args)
                .1
                .contains("too old")
        );
        assert_eq!(
            c(
                3,
                "hangscope: no socket of 198.18.0.2:10100 connected to ..."
            ),
            HopFailureKind::NotFound
        );
    }
}
