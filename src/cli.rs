//! The command line. Inspection is the default (`hangscope PID|TID|NAME`); everything else is a
//! subcommand, and `--name` reaches a process whose name is also a subcommand's.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use crate::common::exit;
use crate::common::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "hangscope",
    version,
    about = "Tells why a Linux process is stuck: threads, fds, sockets, logs, and a verdict.",
    args_conflicts_with_subcommands = true,
    after_help = "Exit codes: 0 no cause found, 1 a cause was found, 2 usage error, \
                  3 nothing readable (or the process could not be seen), 4 other failure."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// PID, thread id (e.g. from a log line), or process name.
    pub target: Option<String>,

    /// Process name, matched like pidof (for names that are also subcommands, e.g. "demo").
    #[arg(long, conflicts_with = "target")]
    pub name: Option<String>,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub collect: CollectArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a small process stuck on a silent loopback peer, report on it, clean up.
    Demo {
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        collect: CollectArgs,
    },
    /// Inspect a process by PID, thread id or name (the same as giving it without a subcommand).
    Inspect {
        target: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        collect: CollectArgs,
    },
    /// Diagnose and print a snapshot saved earlier with --save (JSON or .zst) or --html.
    Replay {
        file: PathBuf,
        /// Refuse a file larger than this (e.g. 256MiB, 2GiB): reading costs a few times its
        /// size in memory. A snapshot of 19,000 fds is 15 MB.
        #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
        max_size: u64,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) or the man page
    /// (man), generated from this command line's definition.
    #[command(name = "__generate", hide = true)]
    Generate {
        /// bash, zsh, fish, elvish, powershell, or man.
        what: String,
    },
    /// On the host at the far end of a connection: find that connection's socket, in every
    /// network namespace of this host, and report on the process holding it (its chain
    /// included); with no such socket (NAT, a proxy), the listener on the port. `--follow`
    /// runs this over ssh.
    Peer {
        /// This host's end of the connection, ADDR:PORT (e.g. 198.18.0.2:10100).
        #[arg(long, value_name = "ADDR:PORT")]
        local: std::net::SocketAddr,
        /// The other host's end, ADDR:PORT, as that host sees it.
        #[arg(long, value_name = "ADDR:PORT")]
        remote: std::net::SocketAddr,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        collect: CollectArgs,
    },
    /// Look at every thread of the host, then read in full only the processes that look
    /// stuck: one ranked line per stuck process, with its cause and the next command.
    Scan(crate::scan::ScanArgs),
    /// Look at a process (or every one) again and again at low cost; when one stays stuck,
    /// read it in full, and on a cause save one snapshot per incident and run a hook.
    Watch(crate::watch::WatchArgs),
    /// Processes used by the demo and the test suite. Not for users.
    #[command(name = "__scenario", hide = true)]
    Scenario {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, Args, Default)]
pub struct OutputArgs {
    /// Print the snapshot and findings as one JSON document instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Indent the JSON (with --json or --save); compact by default, like `ip -j`.
    #[arg(long)]
    pub pretty: bool,
    /// Also save the JSON document to FILE, compressed with zstd when FILE ends in .zst (read
    /// it back with `hangscope replay FILE`).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// In what is saved (--save, --html) and in --json, replace addresses, host names, paths
    /// and log text with tokens (addr-1, host-1, /path-1, log-1), to share outside the company.
    #[arg(long)]
    pub redact: bool,
    /// Also write a self-contained HTML page (verdict, findings, report, JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Never colour the text report (it is coloured only on a terminal anyway, and follows
    /// NO_COLOR and CLICOLOR_FORCE).
    #[arg(long)]
    pub no_color: bool,
    /// Print a long report straight to the terminal instead of through $PAGER (less).
    #[arg(long)]
    pub no_pager: bool,
    /// Show every detail: TCP_INFO of each connection, full kernel stacks.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// Stop reading after this long and report what was read (e.g. 5s, 800ms, 1m30s; default
    /// 5s, or the --window and 3s more when the window is longer).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Read fdinfo of every fd: sockets too, and every file of a target with more than 1,024
    /// files open, not only stdio and files deleted, named like logs, locked or waited on.
    #[arg(long)]
    pub all_fdinfo: bool,
    /// Watch the process this long, looking every ~150 ms, to see what moves (e.g. 2s, 1m;
    /// 0: one look).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub window: Duration,
    /// Also read this log file (repeatable); logs the process has open are found anyway.
    #[arg(long = "log", value_name = "PATH")]
    pub log: Vec<PathBuf>,
    /// Stop at the target: do not follow its wait to the processes it waits on.
    #[arg(long)]
    pub no_chain: bool,
    /// Do not ask a managed runtime for its own view of its threads (a JVM's thread dump over
    /// its attach socket, a Go program's pprof goroutine dump, py-spy for CPython).
    #[arg(long)]
    pub no_runtime_tools: bool,
    /// When a JVM's attach listener is not running, start it as jcmd does, by sending the JVM
    /// SIGQUIT; only when the JVM catches SIGQUIT (not with -Xrs, where it would kill it).
    /// Off by default: by default nothing is sent to the target.
    #[arg(long, conflicts_with = "no_runtime_tools")]
    pub jvm_attach: bool,
    /// Do not ask a server the process belongs to about its sessions (PostgreSQL's
    /// pg_stat_activity, over its unix socket as its OS user).
    #[arg(long)]
    pub no_app_introspection: bool,
    /// User-space stacks of the threads blocked in a syscall: `copy` unwinds a copy of each
    /// stack, never stopping a thread; `stop` also stops each thread the copy cannot unwind
    /// (running, or its walk failed) for a few microseconds with ptrace to take its
    /// registers; `off` reads none.
    #[arg(long, value_name = "MODE", default_value = "copy", value_parser = ["copy", "stop", "off"])]
    pub stacks: String,
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// Following the chain to other hosts, over ssh.
#[derive(Debug, Clone, Args)]
pub struct FollowArgs {
    /// When the wait ends at a peer on another host, run hangscope there over ssh (`hangscope
    /// peer`) and follow the chain on, within --deadline; the hosts' documents are kept with
    /// --save.
    #[arg(long)]
    pub follow: bool,
    /// The ssh command, split into words like a shell would (but run without one); the host
    /// ([USER@]ADDR) and the remote command are appended. Your ssh config, keys, known_hosts
    /// and ProxyJump apply. hangscope never asks for a password.
    #[arg(long, value_name = "CMD", default_value = "ssh -o BatchMode=yes")]
    pub ssh: String,
    /// The user to log in as on the other hosts.
    #[arg(long, value_name = "USER", value_parser = parse_user)]
    pub ssh_user: Option<String>,
    /// hangscope on the other hosts: a name on their PATH, or an absolute path.
    #[arg(long, value_name = "PATH", default_value = "hangscope")]
    pub remote_hangscope: String,
    /// Copy this binary to a private temp file on the other host, run it, remove it (same
    /// architecture only), instead of --remote-hangscope.
    #[arg(long)]
    pub ship: bool,
    /// Follow at most this many other hosts.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub hops: usize,
}

impl Default for FollowArgs {
    fn default() -> Self {
        FollowArgs {
            follow: false,
            ssh: "ssh -o BatchMode=yes".into(),
            ssh_user: None,
            remote_hangscope: "hangscope".into(),
            ship: false,
            hops: 3,
        }
    }
}

/// A login name: never an option to ssh, nor a second host.
fn parse_user(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a user name"))
    }
}

/// The default `--deadline`.
pub const DEADLINE: Duration = Duration::from_secs(5);

impl CollectArgs {
    /// `--deadline`, or the default one, raised to fit a longer `--window`.
    pub fn deadline(&self) -> Duration {
        self.deadline.unwrap_or_else(|| {
            if self.window.is_zero() {
                DEADLINE
            } else {
                DEADLINE.max(self.window + Duration::from_secs(3))
            }
        })
    }
}

/// "256MiB", "2GiB", "500M" (powers of 1024 either way, as `ls -h` counts), or bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 256MiB or 2GiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}; use KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("4 KiB").unwrap(), 4096);
        assert!(parse_size("big").is_err());
        assert!(parse_size("5 lb").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn demo_is_a_subcommand_but_a_process_named_demo_is_reachable() {
        let c = Cli::try_parse_from(["hangscope", "demo"]).unwrap();
        assert!(matches!(c.command, Some(Command::Demo { .. })));
        let c = Cli::try_parse_from(["hangscope", "--name", "demo"]).unwrap();
        assert_eq!(c.name.as_deref(), Some("demo"));
        let c = Cli::try_parse_from(["hangscope", "31516", "--json"]).unwrap();
        assert_eq!(c.target.as_deref(), Some("31516"));
        assert!(c.output.json);
        let c = Cli::try_parse_from(["hangscope", "inspect", "demo"]).unwrap();
        assert!(matches!(c.command, Some(Command::Inspect { ref target, .. }) if target == "demo"));
        let c = Cli::try_parse_from(["hangscope", "7", "--window", "0"]).unwrap();
        assert_eq!(c.collect.window, Duration::ZERO);
        let c = Cli::try_parse_from(["hangscope", "7"]).unwrap();
        assert_eq!(c.collect.window, Duration::from_secs(2));
        assert_eq!(c.collect.deadline(), DEADLINE);
        // A window longer than the default deadline raises it; a deadline given is kept.
        let c = Cli::try_parse_from(["hangscope", "7", "--window", "1m"]).unwrap();
        assert_eq!(c.collect.deadline(), Duration::from_secs(63));
        let c =
            Cli::try_parse_from(["hangscope", "7", "--window", "1m", "--deadline", "10s"]).unwrap();
        assert_eq!(c.collect.deadline(), Duration::from_secs(10));
    }
}
