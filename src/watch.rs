//! `hangscope watch`: the cheap look of `scan` (collect's `host_scan`) at the targets every
//! `--every`; a process that stays a suspect for `--for` gets the full look, and a cause found
//! there opens an incident: one line, one saved snapshot, the `--exec` hook. The incident
//! closes (one line) when the process moves again or exits. A target named by name (or a PID,
//! by the name it had) that exits is looked for again under that name, so a restarted service
//! is picked up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use hangscope_collect::host_scan::{self, HostLook, Scope};
use hangscope_collect::{Deadline, ProcRoot, resolve};
use hangscope_model::{Document, Text};

use crate::common::{exit, parse_duration};

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["target", "all"])))]
pub struct WatchArgs {
    /// PID or process name; a process that exits is looked for again under its name.
    pub target: Option<String>,
    /// Watch every process of the host.
    #[arg(long)]
    pub all: bool,
    /// Time between two looks.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub every: Duration,
    /// How long a process must look stuck before it is read in full.
    #[arg(long = "for", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Where each incident's snapshot is saved (`hangscope replay FILE` reads it back).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub save_dir: PathBuf,
    /// Run this command for each incident, with the snapshot's path as its first argument
    /// ($1 under `sh -c`); nothing from the target is put into the command line.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Exit with status 1 after the first incident (for scripts and alerting).
    #[arg(long)]
    pub exit_on_cause: bool,
    /// Stop after this long (0: until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
    pub duration: Duration,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handlers() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// Which processes are watched.
enum Targets {
    All,
    /// By name (pidof's match), with the PIDs it matched last. `refresh`: looked for again
    /// now and then for new instances (a name given); else only once none is left (a PID
    /// given, watched under its name after it exits).
    Named {
        name: String,
        pids: Vec<i32>,
        refresh: bool,
    },
}

impl Targets {
    fn pids(&self) -> Option<&[i32]> {
        match self {
            Targets::All => None,
            Targets::Named { pids, .. } => Some(pids),
        }
    }
}

/// A process that looks stuck, and what came of it.
struct Watched {
    name: Text,
    start_ticks: u64,
    since: Instant,
    /// When it was last read in full without a cause: not again before `RECHECK`.
    cleared_at: Option<Instant>,
    /// The incident's snapshot, while one is open.
    incident: Option<PathBuf>,
}

/// A suspect read in full and cleared is read again after this long if it still looks stuck.
const RECHECK: Duration = Duration::from_secs(30);
/// The least time a look gives to full reads, however short `--every` is.
const MIN_READ_BUDGET: Duration = Duration::from_secs(1);

/// A suspect due for a full read.
#[derive(Debug, Clone, PartialEq)]
struct Due {
    pid: i32,
    /// Read before and cleared, now read again.
    recheck: bool,
    /// [`host_scan::Suspect::rank`]: 0 for stopped, D-state or frozen.
    rank: u8,
    stuck: Duration,
}

/// The order in which due suspects are read: those never read first, then the strongest
/// reason, then the longest stuck.
fn read_order(mut due: Vec<Due>) -> Vec<i32> {
    due.sort_by(|a, b| {
        (a.recheck, a.rank)
            .cmp(&(b.recheck, b.rank))
            .then(b.stuck.cmp(&a.stuck))
    });
    due.into_iter().map(|d| d.pid).collect()
}

/// A full read's own sampling window.
const FULL_WINDOW: Duration = Duration::from_millis(300);
/// The full read's deadline.
const FULL_DEADLINE: Duration = Duration::from_secs(5);

pub fn run(args: &WatchArgs) -> i32 {
    if args.every.is_zero() {
        eprintln!("hangscope: --every must be more than 0");
        return exit::USAGE;
    }
    let root = ProcRoot::default();
    let mut targets = match (&args.target, args.all) {
        (_, true) => Targets::All,
        (Some(t), false) => match t.parse::<i32>() {
            Ok(pid) if pid > 0 => match resolve::by_id(&root, pid) {
                Ok(r) => Targets::Named {
                    name: root
                        .comm(r.pid)
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                    pids: vec![r.pid],
                    refresh: false,
                },
                Err(e) => {
                    crate::say(&e);
                    return exit::NOTHING_READABLE;
                }
            },
            _ => Targets::Named {
                name: t.clone(),
                pids: by_name(&root, t, std::process::id() as i32),
                refresh: true,
            },
        },
        (None, false) => return exit::USAGE,
    };
    if let Err(e) = std::fs::create_dir_all(&args.save_dir) {
        crate::say(&format!("cannot create {}: {e}", args.save_dir.display()));
        return exit::FAILURE;
    }
    install_stop_handlers();
    let started = Instant::now();
    let own = std::process::id() as i32;
    let mut out = Printer { started };
    match &targets {
        Targets::All => out.line("watching every process"),
        Targets::Named { name, pids, .. } if pids.is_empty() => out.line(&format!(
            "waiting for a process named {}",
            Text::from(name.as_str()).escaped()
        )),
        Targets::Named { name, pids, .. } => out.line(&format!(
            "watching {} {}",
            Text::from(name.as_str()).escaped(),
            list(pids)
        )),
    }
    let mut prev: Option<HostLook> = None;
    let mut watched: BTreeMap<i32, Watched> = BTreeMap::new();
    let mut hooks: Vec<Child> = Vec::new();
    let mut tick = 0u64;
    let code = loop {
        if STOP.load(Ordering::SeqCst)
            || (!args.duration.is_zero() && started.elapsed() >= args.duration)
        {
            break exit::OK;
        }
        if let Targets::Named {
            name,
            pids,
            refresh,
        } = &mut targets
        {
            // Looked for again when none is alive, and now and then for new instances.
            if pids.is_empty() || (*refresh && tick % 10 == 0) {
                let now = by_name(&root, name, own);
                if now != *pids {
                    let (gone, new): (Vec<i32>, Vec<i32>) = (
                        pids.iter().copied().filter(|p| !now.contains(p)).collect(),
                        now.iter().copied().filter(|p| !pids.contains(p)).collect(),
                    );
                    let n = Text::from(name.as_str());
                    if !gone.is_empty() {
                        out.line(&format!("{} {} gone", n.escaped(), list(&gone)));
                    }
                    if !new.is_empty() {
                        out.line(&format!("watching {} {}", n.escaped(), list(&new)));
                    }
                    *pids = now;
                }
            }
        }
        let deadline = Deadline::after(args.every.max(Duration::from_millis(500)));
        let scope = match targets.pids() {
            None => Scope::All,
            Some(p) => Scope::Pids(p),
        };
        let now = host_scan::look(&root, scope, prev.as_ref(), prev.is_none(), deadline);
        if let Targets::Named { name, pids, .. } = &mut targets {
            let alive: Vec<i32> = pids
                .iter()
                .copied()
                .filter(|p| now.get(*p).is_some())
                .collect();
            if alive.len() < pids.len() {
                let gone: Vec<i32> = pids
                    .iter()
                    .copied()
                    .filter(|p| !alive.contains(p))
                    .collect();
                out.line(&format!(
                    "{} {} gone",
                    Text::from(name.as_str()).escaped(),
                    list(&gone)
                ));
                *pids = alive;
            }
        }
        if prev.is_some() {
            let suspects = host_scan::suspects(prev.as_ref(), &now, own);
            let stuck: BTreeMap<i32, &host_scan::Suspect> =
                suspects.iter().map(|s| (s.pid, s)).collect();
            // Those that moved or exited: an open incident closes.
            watched.retain(|pid, w| {
                let same = now
                    .get(*pid)
                    .is_some_and(|p| p.start_ticks == w.start_ticks);
                let keep = same && stuck.contains_key(pid);
                if !keep && let Some(file) = &w.incident {
                    out.line(&format!(
                        "RESOLVED pid {pid} ({}) {} after {}; snapshot {}",
                        w.name.escaped(),
                        if same { "moves again" } else { "exited" },
                        hangscope_model::units::duration(w.since.elapsed()),
                        file.display()
                    ));
                }
                keep
            });
            for s in &suspects {
                if let Some(p) = now.get(s.pid) {
                    watched.entry(s.pid).or_insert_with(|| Watched {
                        name: p.name.clone(),
                        start_ticks: p.start_ticks,
                        since: Instant::now(),
                        cleared_at: None,
                        incident: None,
                    });
                }
            }
            let due: Vec<Due> = suspects
                .iter()
                .filter_map(|s| {
                    let w = watched.get(&s.pid)?;
                    let is_due = w.incident.is_none()
                        && w.since.elapsed() >= args.hold
                        && w.cleared_at.is_none_or(|t| t.elapsed() >= RECHECK);
                    is_due.then(|| Due {
                        pid: s.pid,
                        recheck: w.cleared_at.is_some(),
                        rank: s.rank(),
                        stuck: w.since.elapsed(),
                    })
                })
                .collect();
            // Full reads take up to FULL_DEADLINE each and --all may have many due at once (a
            // busy host's first look, the rechecks of those cleared): this look reads what it
            // can in its budget, first what was never read, so a hang that starts later waits
            // for at most one budget, not for every recheck before it.
            let budget = Instant::now() + args.every.max(MIN_READ_BUDGET);
            for (i, pid) in read_order(due).into_iter().enumerate() {
                if STOP.load(Ordering::SeqCst) || (i > 0 && Instant::now() >= budget) {
                    break;
                }
                let Some(w) = watched.get_mut(&pid) else {
                    continue;
                };
                match full_look(pid) {
                    Some(doc) if doc.verdict.cause_found => {
                        let file = args.save_dir.join(format!(
                            "hangscope-{}-{}.json",
                            pid, doc.snapshot.taken_at_ms
                        ));
                        let saved = std::fs::File::create(&file)
                            .and_then(|f| hangscope_render::json::write_json(&doc, f, false));
                        let saved_note = match &saved {
                            Ok(()) => format!("saved {}", file.display()),
                            Err(e) => format!("NOT saved to {}: {e}", file.display()),
                        };
                        out.line(&format!(
                            "CAUSE pid {} ({}) stuck {}: {}  → {}  [{saved_note}]",
                            pid,
                            w.name.escaped(),
                            hangscope_model::units::duration(w.since.elapsed()),
                            hangscope_model::text::escape(&doc.verdict.summary),
                            hangscope_model::text::escape(&doc.verdict.next_step),
                        ));
                        if saved.is_ok()
                            && let Some(cmd) = &args.exec
                        {
                            match hook(cmd, &file, pid) {
                                Ok(child) => hooks.push(child),
                                Err(e) => crate::say(&format!("--exec {cmd:?}: {e}")),
                            }
                        }
                        w.incident = Some(file);
                        if args.exit_on_cause {
                            break;
                        }
                    }
                    _ => w.cleared_at = Some(Instant::now()),
                }
            }
            if args.exit_on_cause && watched.values().any(|w| w.incident.is_some()) {
                break exit::CAUSE_FOUND;
            }
        }
        hooks.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        prev = Some(now);
        tick += 1;
        sleep_until_next(args.every);
    };
    // A hook started for the last incident is given a moment to finish, not waited on forever.
    let until = Instant::now() + Duration::from_secs(10);
    while !hooks.is_empty() && Instant::now() < until {
        hooks.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        std::thread::sleep(Duration::from_millis(50));
    }
    out.line("stopped");
    code
}

/// Sleeps `every` in short steps, so Ctrl-C stops the watch at once.
fn sleep_until_next(every: Duration) {
    let end = Instant::now() + every;
    while !STOP.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The processes matching `name` as `hangscope NAME` does, this one left out.
fn by_name(root: &ProcRoot, name: &str, own: i32) -> Vec<i32> {
    match resolve::by_name(root, name) {
        Ok(r) => vec![r.pid],
        Err(resolve::ResolveError::Ambiguous { candidates, .. }) => {
            let mut p: Vec<i32> = candidates
                .into_iter()
                .map(|(pid, _)| pid)
                .filter(|&p| p != own)
                .collect();
            p.sort_unstable();
            p
        }
        Err(_) => Vec::new(),
    }
    .into_iter()
    .filter(|&p| p != own)
    .collect()
}

/// The full look of `hangscope PID` (collect, diagnose, the chain), for an incident.
fn full_look(pid: i32) -> Option<Document> {
    let opts = hangscope_collect::Options {
        deadline: Deadline::after(FULL_DEADLINE),
        window: FULL_WINDOW,
        reader: Some("/proc/self/exe".into()),
        ..hangscope_collect::Options::default()
    };
    let snap = hangscope_collect::collect(&ProcRoot::default(), pid, &opts).ok()?;
    let findings = hangscope_diagnose::diagnose(&snap);
    let (chain, others) = crate::follow(&snap, &findings, &opts);
    let mut doc = Document::new(crate::generator(), snap, findings);
    doc.set_chain(chain, others);
    Some(doc)
}

/// `sh -c CMD hangscope-hook FILE`: the user's command, the snapshot's path as `$1` and in
/// HANGSCOPE_SNAPSHOT, the PID in HANGSCOPE_PID; the target's name is in the file only.
fn hook(cmd: &str, file: &std::path::Path, pid: i32) -> std::io::Result<Child> {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .arg("hangscope-hook")
        .arg(file)
        .env("HANGSCOPE_SNAPSHOT", file)
        .env("HANGSCOPE_PID", pid.to_string())
        .stdin(std::process::Stdio::null())
        .spawn()
}

fn list(pids: &[i32]) -> String {
    let words: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    format!("(pid {})", words.join(", "))
}

struct Printer {
    started: Instant,
}

impl Printer {
    /// One line per change, with the time since the watch began; flushed at once, for a pipe.
    fn line(&mut self, text: &str) {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        // A fixed-width clock column (as dmesg's), not a duration in words: lines stay aligned.
        let _ = writeln!(o, "+{:7.1}s  {text}", self.started.elapsed().as_secs_f64());
        let _ = o.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(pid: i32, recheck: bool, rank: u8, stuck_s: u64) -> Due {
        Due {
            pid,
            recheck,
            rank,
            stuck: Duration::from_secs(stuck_s),
        }
    }

    #[test]
    fn a_suspect_never_read_goes_before_every_recheck() {
        // Three cleared suspects stuck for minutes, one D-state among them, and one that
        // became a suspect 5 s ago: it is read first.
        let order = read_order(vec![
            due(10, true, 1, 300),
            due(11, true, 0, 200),
            due(12, true, 2, 400),
            due(40, false, 2, 5),
        ]);
        assert_eq!(order, vec![40, 11, 10, 12]);
    }

    #[test]
    fn among_first_reads_the_strongest_reason_then_the_longest_stuck() {
        let order = read_order(vec![
            due(1, false, 2, 60),
            due(2, false, 1, 10),
            due(3, false, 1, 30),
            due(4, false, 0, 6),
        ]);
        assert_eq!(order, vec![4, 3, 2, 1]);
    }
}
