//! The command line. Inspection is the default (`hangscope PID|TID|NAME`); everything else is a
//! subcommand, and `--name` reaches a process whose name is also a subcommand's.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Exit codes, also in README.md.
pub mod exit {
    /// The report was printed and no cause was found.
    pub const OK: i32 = 0;
    /// The report was printed and names at least one cause.
    pub const CAUSE_FOUND: i32 = 1;
    /// The command line was wrong, or a name matched several processes.
    pub const USAGE: i32 = 2;
    /// Nothing could be read: no such process; a process that could not be seen (the report
    /// is printed, with the verdict NOT SEEN); a PID taken by another process while it was
    /// watched; or a snapshot file that cannot be read, is not a regular file or is too large.
    pub const NOTHING_READABLE: i32 = 3;
    /// Anything else went wrong (e.g. the demo could not start its processes).
    pub const FAILURE: i32 = 4;
}

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
    /// Diagnose and print a snapshot saved earlier with --save.
    Replay {
        file: PathBuf,
        /// Refuse a file larger than this (e.g. 256MiB, 2GiB): reading costs a few times its
        /// size in memory. A snapshot of 19,000 fds is 15 MB.
        #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
        max_size: u64,
        #[command(flatten)]
        output: OutputArgs,
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
    /// Also save the JSON document to FILE (read it back with `hangscope replay FILE`).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Also write a self-contained HTML page (verdict, findings, report, JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Never colour the text report (it is coloured only on a terminal anyway).
    #[arg(long)]
    pub no_color: bool,
    /// Show every detail: TCP_INFO of each connection, full kernel stacks.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// Stop reading after this long and report what was read (e.g. 5s, 800ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// Read fdinfo of every fd: sockets too, and every file of a target with more than 1,024
    /// files open, not only stdio and files deleted, named like logs, locked or waited on.
    #[arg(long)]
    pub all_fdinfo: bool,
    /// Watch the process this long, looking every ~150 ms, to see what moves (0: one look).
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
}

/// "5s", "800ms", "2m", or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 5s or 800ms"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        other => return Err(format!("unknown unit {other:?} in {s:?}; use ms, s or m")),
    };
    if !secs.is_finite() || !(0.0..=86400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
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
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("800ms").unwrap(), Duration::from_millis(800));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
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
    }
}
