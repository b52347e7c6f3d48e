//! `hangscope scan`: one cheap look at every thread of the host (collect's `host_scan`), then the
//! full look (collect + diagnose + chain walk) only at the suspects, and one ranked line per
//! stuck process.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use hangscope_collect::host_scan::{self, HostLook, Scope, Suspect};
use hangscope_collect::{Deadline, ProcRoot};
use hangscope_model::{
    Container, Document, EntryStatus, SCAN_SCHEMA_VERSION, ScanEntry, ScanReport, Severity, Text,
};

use crate::common::{exit, parse_duration};

#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// Time between the two looks at every thread: a thread that did not move over it, in a
    /// wait that should end, is a suspect (0: one look, and every such wait is).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub window: Duration,
    /// Stop reading after this long and report what was read; suspects not read in full by
    /// then are listed as not diagnosed.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// Print the report as JSON (docs/scan-format.md).
    #[arg(long)]
    pub json: bool,
    /// Indent the JSON.
    #[arg(long)]
    pub pretty: bool,
    /// Also list the processes where nothing looks stuck.
    #[arg(long)]
    pub all: bool,
    /// How many suspects are read in full at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
}

/// Each suspect's own window: what moved over it and how long a thread has waited are what
/// most rules need (as for a chain's hop, see `follow`).
const SUSPECT_WINDOW: Duration = Duration::from_millis(300);
/// A full look at a process takes tens of milliseconds, more with many fds.
const LOOK_TIME: Duration = Duration::from_millis(150);

pub fn run(args: &ScanArgs) -> i32 {
    if args.window + Duration::from_secs(1) > args.deadline {
        // The flags' own syntax, so the operator can type the values back.
        eprintln!(
            "hangscope: --window {:.1}s does not fit in --deadline {:.1}s; raise --deadline",
            args.window.as_secs_f64(),
            args.deadline.as_secs_f64()
        );
        return exit::USAGE;
    }
    let deadline = Deadline::after(args.deadline);
    let watchdog = crate::start_watchdog(args.deadline);
    let report = scan(args, deadline);
    drop(watchdog);
    let code = if report
        .entries
        .iter()
        .any(|e| e.status == EntryStatus::Cause)
    {
        exit::CAUSE_FOUND
    } else {
        exit::OK
    };
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let json = if args.pretty {
            serde_json::to_string_pretty(&report)
        } else {
            serde_json::to_string(&report)
        };
        json.map_err(std::io::Error::other)
            .and_then(|j| writeln!(out, "{j}"))
    } else {
        out.write_all(render(&report).as_bytes())
    }
    .and_then(|_| out.flush());
    match written {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            crate::say(&format!("cannot write the report: {e}"));
            exit::FAILURE
        }
    }
}

/// CPU time of the whole process (user + system), for the cost of the looks alone: a look
/// runs on several threads, and nothing else works while it does (the watchdog sleeps).
pub(crate) fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn scan(args: &ScanArgs, deadline: Deadline) -> ScanReport {
    let root = ProcRoot::default();
    let own = std::process::id() as i32;
    let taken_at_ms = now_ms();
    // The looks may use at most half the run: the suspects need the rest.
    let looks_deadline = Deadline::after(deadline.remaining() / 2 + args.window / 2);
    let cpu_before = process_cpu();
    let first = host_scan::look(
        &root,
        Scope::All,
        None,
        !args.window.is_zero(),
        looks_deadline,
    );
    let (before, now, window_ms) = if args.window.is_zero() {
        (None, first, 0)
    } else {
        let wait = args.window.min(looks_deadline.remaining());
        std::thread::sleep(wait);
        let mut first = first;
        let second = host_scan::look(&root, Scope::All, Some(&first), false, looks_deadline);
        // Taken: not held over the suspects' reads.
        first.close_kept();
        let ms = second.mono_ns.saturating_sub(first.mono_ns) / 1_000_000;
        (Some(first), second, ms)
    };
    let look_cpu_ms = (process_cpu().saturating_sub(cpu_before)).as_millis() as u64;
    let suspects = host_scan::suspects(before.as_ref(), &now, own);
    let diagnosed = diagnose_all(&suspects, args.jobs, deadline);

    let mut entries = entries_of(&suspects, &diagnosed);
    if args.all {
        add_healthy(&mut entries, before.as_ref(), &now, own);
    } else {
        entries.retain(|e| e.status != EntryStatus::Healthy);
    }
    rank(&mut entries);
    for e in &mut entries {
        e.container = host_scan::container_of(&root, e.pid).map(|c| Container {
            cgroup: c.cgroup,
            id: c.id,
            runtime: c.runtime,
        });
    }
    ScanReport {
        scan_schema_version: SCAN_SCHEMA_VERSION.to_string(),
        generator: crate::generator(),
        host: hangscope_collect::host(),
        taken_at_ms,
        window_ms,
        processes: now.procs.len() as u32,
        threads: now.threads() as u32,
        look_cpu_ms,
        suspects: suspects.len() as u32,
        diagnosed: diagnosed.len() as u32,
        cut_short: now.cut_short || diagnosed.len() < suspects.len(),
        entries,
    }
}

/// What the full look said of one suspect.
struct Diagnosed {
    doc: Document,
}

/// Reads the suspects in full, `jobs` at a time, most suspicious first, until the deadline.
///
/// The workers are not joined: a suspect whose full read overruns the deadline (a busy host, a
/// read the kernel holds) is left to its worker, and the report goes out with the others, that
/// one marked as not read in full. Joining them would let one slow suspect take the whole
/// report past the watchdog, which exits without one.
fn diagnose_all(suspects: &[Suspect], jobs: usize, deadline: Deadline) -> BTreeMap<i32, Diagnosed> {
    /// How long after the deadline a suspect's read still counts.
    const GRACE: Duration = Duration::from_millis(500);
    let queue: Arc<Mutex<VecDeque<i32>>> =
        Arc::new(Mutex::new(suspects.iter().map(|s| s.pid).collect()));
    let (tx, rx) = std::sync::mpsc::channel::<(i32, Diagnosed)>();
    let workers = jobs.clamp(1, 16).min(suspects.len());
    for _ in 0..workers {
        let queue = Arc::clone(&queue);
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("scan-suspect".into())
            .spawn(move || {
                // The guard is consumed by and_then: the lock is not held over a read.
                while let Some(pid) = queue.lock().ok().and_then(|mut q| q.pop_front()) {
                    if deadline.remaining() < SUSPECT_WINDOW + LOOK_TIME * 2 {
                        break;
                    }
                    if let Some(d) = diagnose_one(pid, deadline) {
                        if tx.send((pid, d)).is_err() {
                            break;
                        }
                    }
                }
            });
        // A worker that cannot start leaves its share to the others, or to "not read in full".
        drop(spawned);
    }
    drop(tx);
    let until = std::time::Instant::now() + deadline.remaining() + GRACE;
    let mut done = BTreeMap::new();
    // Ends when every worker has ended (the channel closes) or at `until`.
    while let Ok((pid, d)) =
        rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now()))
    {
        done.insert(pid, d);
    }
    done
}

fn diagnose_one(pid: i32, deadline: Deadline) -> Option<Diagnosed> {
    let opts = hangscope_collect::Options {
        deadline,
        window: SUSPECT_WINDOW,
        reader: Some("/proc/self/exe".into()),
        // A scan reads many processes: the runtimes' own tools and servers' sessions are for
        // the look at one (`hangscope PID`), which the next step names.
        runtime_tools: hangscope_collect::runtime::Tools {
            enabled: false,
            jvm_signal: false,
        },
        app_introspection: false,
        ..hangscope_collect::Options::default()
    };
    let snap = hangscope_collect::collect(&ProcRoot::default(), pid, &opts).ok()?;
    let findings = hangscope_diagnose::diagnose(&snap);
    let (chain, others) = crate::follow(&snap, &findings, &opts);
    let mut doc = Document::new(crate::generator(), snap, findings);
    doc.set_chain(chain, others);
    Some(Diagnosed { doc })
}

fn entries_of(suspects: &[Suspect], diagnosed: &BTreeMap<i32, Diagnosed>) -> Vec<ScanEntry> {
    let mut entries: Vec<ScanEntry> = Vec::new();
    let mut roots: Vec<ScanEntry> = Vec::new();
    for s in suspects {
        let picked = s.reasons.iter().map(|r| r.describe()).collect();
        let Some(d) = diagnosed.get(&s.pid) else {
            entries.push(ScanEntry {
                pid: s.pid,
                name: s.name.clone(),
                status: EntryStatus::NotDiagnosed,
                picked,
                summary: "not read in full before the deadline (or it exited)".into(),
                next_step: format!("hangscope {}", s.pid),
                ..ScanEntry::default()
            });
            continue;
        };
        let doc = &d.doc;
        let v = &doc.verdict;
        let top = v.finding.and_then(|i| doc.findings.get(i));
        let chain: Vec<i32> = doc
            .chain
            .as_ref()
            .map(|c| c.hops.iter().map(|h| h.pid).collect())
            .filter(|h: &Vec<i32>| h.len() > 1)
            .unwrap_or_default();
        let root_hop = doc
            .chain
            .as_ref()
            .and_then(|c| c.root())
            .filter(|h| h.pid != s.pid);
        let status = if v.cause_found {
            EntryStatus::Cause
        } else if !v.rule.is_empty() {
            EntryStatus::Suspect
        } else {
            EntryStatus::Healthy
        };
        entries.push(ScanEntry {
            pid: s.pid,
            name: doc.snapshot.process.name.clone(),
            status,
            picked,
            rule: v.rule.clone(),
            severity: top.map(|f| f.severity),
            cause: top
                .filter(|f| f.severity == Severity::Cause)
                .map(|f| f.cause),
            summary: v.summary.clone(),
            next_step: v.next_step.clone(),
            stuck_ms: top.and_then(|f| f.stuck_ms),
            root_pid: root_hop.map(|h| h.pid),
            chain,
            ..ScanEntry::default()
        });
        // The root heads its group even when the cheap look did not pick it (an idle server
        // that never answers, a lock holder asleep), but only for a member with a cause: a
        // reader of an idle process's pipe (a supervisor reading its child's output) is at most
        // a warning, and its idle writer is not stuck; the member's next step names it.
        if let Some(h) = root_hop
            .filter(|h| h.pid != std::process::id() as i32)
            .filter(|_| status == EntryStatus::Cause)
        {
            if !suspects.iter().any(|s| s.pid == h.pid) && !roots.iter().any(|r| r.pid == h.pid) {
                roots.push(ScanEntry {
                    pid: h.pid,
                    name: h.name.clone(),
                    status: if h.severity == Some(Severity::Cause) {
                        EntryStatus::Cause
                    } else {
                        EntryStatus::Suspect
                    },
                    rule: h.rule.clone(),
                    severity: h.severity,
                    cause: h.cause,
                    summary: format!("root of a wait chain: {}", h.summary),
                    next_step: h.next_step.clone(),
                    stuck_ms: h.stuck_ms,
                    ..ScanEntry::default()
                });
            }
        }
    }
    entries.extend(roots);
    entries
}

fn add_healthy(entries: &mut Vec<ScanEntry>, before: Option<&HostLook>, now: &HostLook, own: i32) {
    let listed: BTreeSet<i32> = entries.iter().map(|e| e.pid).collect();
    let moving = before.map(|b| host_scan::moving_threads(b, now));
    for p in &now.procs {
        if p.pid == own || listed.contains(&p.pid) {
            continue;
        }
        let summary = match moving.as_ref().and_then(|m| m.get(&p.pid)) {
            Some(n) => format!("{} thread(s), {n} ran in the window", p.threads.len()),
            None => format!("{} thread(s)", p.threads.len()),
        };
        entries.push(ScanEntry {
            pid: p.pid,
            name: p.name.clone(),
            status: EntryStatus::Healthy,
            summary,
            ..ScanEntry::default()
        });
    }
}

/// The roots a chain's members are listed under: those listed as something other than
/// healthy. A member whose root is not listed, or is healthy (a supervisor reading an idle
/// child's output: the child is not what is wrong), heads its own group.
fn group_roots(entries: &[ScanEntry]) -> BTreeSet<i32> {
    entries
        .iter()
        .filter(|e| e.status != EntryStatus::Healthy)
        .map(|e| e.pid)
        .collect()
}

/// Causes first, longest stuck first; a chain's members right after their root.
fn rank(entries: &mut Vec<ScanEntry>) {
    let roots = group_roots(entries);
    let group_of = |e: &ScanEntry| e.root_pid.filter(|r| roots.contains(r)).unwrap_or(e.pid);
    let mut groups: BTreeMap<i32, Vec<ScanEntry>> = BTreeMap::new();
    for e in entries.drain(..) {
        groups.entry(group_of(&e)).or_default().push(e);
    }
    let mut groups: Vec<(i32, Vec<ScanEntry>)> = groups.into_iter().collect();
    for (root, members) in &mut groups {
        let root = *root;
        members.sort_by_key(|e| {
            (
                e.pid != root,
                e.status,
                std::cmp::Reverse(e.stuck_ms.unwrap_or(0)),
                e.pid,
            )
        });
    }
    let key = |(root, g): &(i32, Vec<ScanEntry>)| {
        // A group ranks as its most serious member: a suspect root stuck longer than its
        // member's cause must not lift the group above a longer-stuck cause elsewhere.
        let best = g
            .iter()
            .map(|e| (e.status, std::cmp::Reverse(e.stuck_ms.unwrap_or(0))))
            .min()
            .unwrap_or_default();
        (best, *root)
    };
    groups.sort_by_key(key);
    entries.extend(groups.into_iter().flat_map(|(_, g)| g));
}

fn label(s: EntryStatus) -> &'static str {
    match s {
        EntryStatus::Cause => "CAUSE",
        EntryStatus::Suspect => "SUSPECT",
        EntryStatus::NotDiagnosed => "UNREAD",
        EntryStatus::Healthy => "ok",
    }
}

fn render(r: &ScanReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let listed = r
        .entries
        .iter()
        .filter(|e| e.status != EntryStatus::Healthy)
        .count();
    let _ = writeln!(
        out,
        "SCAN   {} processes, {} threads on {}, looked at {} apart ({} ms CPU); {} suspects, {} read in full{}",
        r.processes,
        r.threads,
        Text::from(r.host.hostname.as_str()).escaped(),
        hangscope_model::units::duration_short(r.window_ms),
        r.look_cpu_ms,
        r.suspects,
        r.diagnosed,
        if r.cut_short {
            " (cut short by the deadline)"
        } else {
            ""
        }
    );
    if listed == 0 {
        let _ = writeln!(out, "Nothing looks stuck on this host.");
    }
    let roots = group_roots(&r.entries);
    for e in &r.entries {
        let member = e
            .root_pid
            .is_some_and(|root| roots.contains(&root) && root != e.pid);
        let indent = if member { "  └ " } else { "" };
        let stuck = e
            .stuck_ms
            .map(hangscope_model::units::duration_short)
            .unwrap_or_else(|| "-".into());
        let container = e
            .container
            .as_ref()
            .map(|c| match &c.id {
                Some(id) => format!(
                    " [{} {}]",
                    c.runtime.as_deref().unwrap_or("container"),
                    id.get(..12).unwrap_or(id)
                ),
                None if c.cgroup.is_empty() || c.cgroup == "/" => String::new(),
                None => format!(" [{}]", hangscope_model::text::escape(&c.cgroup)),
            })
            .unwrap_or_default();
        let next = if e.next_step.is_empty() {
            String::new()
        } else {
            format!("  → {}", hangscope_model::text::escape(&e.next_step))
        };
        let _ = writeln!(
            out,
            "{indent}{:<7} {:>7} {:<15} {:>7}  {}{}{}",
            label(e.status),
            e.pid,
            e.name.escaped_cut(15),
            stuck,
            hangscope_model::text::escape(first_sentence(&e.summary)),
            container,
            next
        );
    }
    out
}

/// A line per process: the summary's first sentence; the rest is in `hangscope PID` and the JSON.
fn first_sentence(s: &str) -> &str {
    match s.find(". ") {
        Some(i) => &s[..=i],
        None => s,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i32, status: EntryStatus, stuck: u64, root: Option<i32>) -> ScanEntry {
        ScanEntry {
            pid,
            status,
            stuck_ms: Some(stuck),
            root_pid: root,
            ..ScanEntry::default()
        }
    }

    #[test]
    fn causes_first_longest_first_members_under_their_root() {
        let mut e = vec![
            entry(1, EntryStatus::Suspect, 99_000, None),
            entry(2, EntryStatus::Cause, 1_000, None),
            entry(3, EntryStatus::Cause, 5_000, Some(4)),
            entry(4, EntryStatus::Suspect, 0, None),
            entry(5, EntryStatus::Cause, 2_000, Some(4)),
            entry(6, EntryStatus::NotDiagnosed, 0, Some(77)),
        ];
        rank(&mut e);
        let order: Vec<i32> = e.iter().map(|e| e.pid).collect();
        assert_eq!(order, [4, 3, 5, 2, 1, 6]);
    }

    /// A reader of an idle child's pipe (a test harness, a supervisor) is a suspect whose
    /// root is healthy: listed among the suspects, not after its healthy root.
    #[test]
    fn a_member_of_a_healthy_root_is_ranked_by_itself() {
        let mut e = vec![
            entry(9, EntryStatus::Healthy, 0, None),
            entry(1, EntryStatus::Healthy, 0, None),
            entry(7, EntryStatus::Suspect, 3_000, Some(1)),
            entry(2, EntryStatus::Cause, 1_000, None),
        ];
        rank(&mut e);
        let order: Vec<i32> = e.iter().map(|e| e.pid).collect();
        assert_eq!(order, [2, 7, 1, 9]);
        let report = ScanReport {
            entries: e,
            ..ScanReport::default()
        };
        let text = render(&report);
        assert!(
            text.lines()
                .any(|l| l.starts_with("SUSPECT") && l.contains(" 7 ")),
            "not shown under its healthy root:\n{text}"
        );
    }
}
