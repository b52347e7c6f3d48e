//! The report a person reads: header, verdict and findings first, then the tables.
//!
//! Every value that came from the target (names, paths, arguments, log lines) and every
//! sentence that embeds one (a finding's summary) goes through [`Style::show`] as it is put into
//! the text: escaped by the rule of `hangscope_model::text` and cut to a bound, so the report
//! cannot move the operator's cursor, retitle the terminal, or break a row. Colour is added
//! after, around escaped text.

use std::fmt::Write;

use hangscope_model::{
    Access, Chain, ChainEnd, Document, Escape, Fd, FdKind, FileLock, Hop, LockAccess, LockClass,
    Severity, Snapshot, Text,
};

mod stacks;
mod threads;

use crate::table::Table;

mod app;
mod logs;
use crate::{human_bytes, human_ms};

mod sockets;

#[derive(Debug, Clone, Default)]
pub struct TextOptions {
    /// ANSI colour; only on a terminal, never with --no-color.
    pub color: bool,
    /// Show every detail (TCP_INFO, full stacks).
    pub verbose: bool,
}

struct Style {
    on: bool,
    /// Longest value shown, in characters of its escaped form.
    max: usize,
}

/// A value is cut after this many characters, with -v after `VALUE_MAX_VERBOSE`: a path fits
/// whole in the first, PATH_MAX bytes escaped in the second; a 1 MB argv fits in neither.
const VALUE_MAX: usize = 512;
const VALUE_MAX_VERBOSE: usize = 16 * 1024;
/// A sentence holds this many values' worth.
const SENTENCE_VALUES: usize = 4;

impl Style {
    fn new(opts: &TextOptions) -> Style {
        Style {
            on: opts.color,
            max: if opts.verbose {
                VALUE_MAX_VERBOSE
            } else {
                VALUE_MAX
            },
        }
    }

    /// A value from the target, or a sentence embedding one, as it may be printed.
    fn show(&self, value: &(impl Escape + ?Sized)) -> String {
        value.escaped_cut(self.max)
    }

    /// One of hangscope's own sentences (a summary, a next step): its words are not cut at a
    /// value's bound, only the whole is bounded, for the values it embeds.
    fn sentence(&self, value: &(impl Escape + ?Sized)) -> String {
        value.escaped_cut(self.max * SENTENCE_VALUES)
    }

    #[cfg(test)]
    fn plain() -> Style {
        Style::new(&TextOptions::default())
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    fn header(&self) -> (&'static str, &'static str) {
        if self.on {
            ("\x1b[2m", "\x1b[0m")
        } else {
            ("", "")
        }
    }
}

pub fn render_text(doc: &Document, opts: &TextOptions) -> String {
    let st = Style::new(opts);
    let snap = &doc.snapshot;
    let mut out = String::new();
    header(&mut out, snap, &st);
    findings(&mut out, doc, &st);
    threads::threads(&mut out, snap, opts.verbose, &st);
    files(&mut out, snap, &st, opts.verbose);
    sockets::sockets(&mut out, snap, &st, opts.verbose);
    anonymous(&mut out, snap, &st);
    unreadable(&mut out, snap, &st);
    locks(&mut out, snap, &st);
    app::app(&mut out, snap, &st);
    logs::logs(&mut out, snap, &st);
    gaps(&mut out, snap, &st);
    out
}

fn header(out: &mut String, snap: &Snapshot, st: &Style) {
    let p = &snap.process;
    let netns = match p.netns_same_as_tool {
        Some(true) => "netns host".to_string(),
        Some(false) => format!("netns {}", p.netns_inode.unwrap_or(0)),
        None => "netns ?".to_string(),
    };
    // An fd table the kernel refused is not an empty one.
    let fd_table_denied = snap.gaps.iter().any(|g| {
        g.reason == hangscope_model::GapReason::Permission
            && g.what == format!("/proc/{}/fd", p.pid)
    });
    let fds = if fd_table_denied {
        "?".to_string()
    } else {
        snap.fds.len().to_string()
    };
    let mut line = format!(
        "{}  pid {}  state {}  threads {}  fds {}  {}",
        st.bold(&st.show(&p.name)),
        p.pid,
        st.show(&p.state),
        p.num_threads,
        fds,
        netns
    );
    if let Some(w) = &snap.window {
        let _ = write!(
            line,
            "  watched {:.1} s ({} looks)",
            w.duration_ms as f64 / 1000.0,
            w.looks
        );
    }
    let _ = writeln!(out, "{line}");
    let mut sub = Vec::new();
    if !p.cmdline.is_empty() {
        // Joined as bytes and cut as one value: the arguments of a `python3 -c` script are
        // not each a few words.
        let args: Vec<&[u8]> = p.cmdline.iter().map(Text::as_bytes).collect();
        sub.push(format!(
            "cmd {}",
            st.show(&Text::from_bytes(args.join(&b' ')))
        ));
    }
    if let Some(age) = p.age_s {
        sub.push(format!("up {}", human_ms(age * 1000.0)));
    }
    // Its locks are the runtime's: the kernel's view below does not show them.
    if let Some(rt) = &p.runtime {
        let version = rt
            .version
            .as_ref()
            .map(|v| format!(" {}", st.show(v)))
            .unwrap_or_default();
        sub.push(format!("runtime {}{version}", rt.kind.label()));
    }
    if !snap.host.hostname.is_empty() {
        sub.push(format!(
            "host {} ({})",
            st.show(&snap.host.hostname),
            st.show(&snap.host.kernel)
        ));
    }
    if !sub.is_empty() {
        let _ = writeln!(out, "{}", st.dim(&sub.join("  ")));
    }
    out.push('\n');
}

/// The wait chain under the verdict: the processes in a line, then each one after the target
/// with its own words (the target's are the verdict's).
fn chain_lines(out: &mut String, chain: &Chain, indent: usize, st: &Style) {
    let name = |h: &Hop| format!("{} {}", st.show(&h.name), h.pid);
    let mut line: Vec<String> = chain.hops.iter().map(name).collect();
    match &chain.end {
        ChainEnd::Here => {}
        ChainEnd::Root { idle, .. } => {
            if let Some(last) = line.last_mut() {
                last.push_str(if *idle { " (root, idle)" } else { " (root)" });
            }
        }
        ChainEnd::Cycle { back_to } => {
            let back = chain.hops.get(*back_to).map(name).unwrap_or_default();
            line.push(format!("back to {back} (a cycle)"));
        }
        ChainEnd::OtherHost { host, port } => line.push(match port {
            Some(p) => format!("{}:{p} (another host)", st.show(host)),
            None => format!("{} (another host)", st.show(host)),
        }),
        ChainEnd::NotSeen { pid, reason } => {
            line.push(format!("{pid} (not read: {})", st.show(reason)))
        }
        ChainEnd::HopLimit { limit } => line.push(format!("… (stopped after {limit} processes)")),
        ChainEnd::Deadline { pid } => line.push(format!("{pid} (not read: the deadline came)")),
    }
    let _ = writeln!(
        out,
        "{}{}{}",
        st.bold("CHAIN"),
        " ".repeat(indent - 5),
        wrap(&line.join(" → "), indent, 88)
    );
    for (i, h) in chain.hops.iter().enumerate().skip(1) {
        let head = format!("{:>2} ", i + 1);
        let _ = writeln!(
            out,
            "{}{head}{}",
            " ".repeat(indent),
            wrap(
                &format!("{}: {}", name(h), st.sentence(&h.summary)),
                indent + head.len(),
                88
            )
        );
    }
}

fn findings(out: &mut String, doc: &Document, st: &Style) {
    // What was ruled out is listed under the finding; the summary already says it in words.
    let v = &doc.verdict;
    // Not "nothing stuck" when nothing could be seen: a label of its own.
    let (label, width) = if v.cause_found {
        (st.red("VERDICT"), 7)
    } else if v.not_seen {
        (st.yellow("NOT SEEN"), 8)
    } else {
        (st.bold("VERDICT"), 7)
    };
    let indent = width + 2;
    let _ = writeln!(
        out,
        "{label}  {}",
        wrap(&st.sentence(&v.summary), indent, 88)
    );
    if let Some(chain) = doc
        .chain
        .as_ref()
        .filter(|c| c.hops.len() > 1 || c.end.unread())
    {
        chain_lines(out, chain, indent, st);
    }
    if !v.next_step.is_empty() {
        let _ = writeln!(
            out,
            "{}{}{}",
            st.bold("NEXT"),
            " ".repeat(indent - 4),
            wrap(&st.sentence(&v.next_step), indent, 88)
        );
    }
    out.push('\n');
    if doc.findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("FINDINGS"));
    for (i, f) in doc.findings.iter().enumerate() {
        let label = match f.severity {
            Severity::Cause => st.red(f.cause.label()),
            Severity::Warning => st.yellow(f.cause.label()),
            Severity::Info => f.cause.label().to_string(),
        };
        let mut subject = Vec::new();
        if let Some(tid) = f.subject.tid {
            let name = f
                .subject
                .thread_name
                .as_ref()
                .map(|n| st.show(n))
                .unwrap_or_default();
            subject.push(format!("thread {tid} {name}").trim_end().to_string());
        }
        if let Some(fd) = f.subject.fd {
            subject.push(format!("fd {fd}"));
        }
        if let Some(c) = &f.subject.connection {
            subject.push(st.show(c));
        }
        // At least one space: "peer not reading" fills the column.
        let pad = 16usize.saturating_sub(f.cause.label().len()).max(1);
        let _ = writeln!(
            out,
            "{:>2} {label}{}{}",
            i + 1,
            " ".repeat(pad),
            subject.join("  ")
        );
        let is_verdict = v.cause_found && v.finding == Some(i);
        // The verdict's summary was printed above; its entry shows only the evidence.
        if !is_verdict {
            let _ = writeln!(
                out,
                "                   {}",
                wrap(&st.sentence(&f.summary), 19, 88)
            );
        }
        for e in &f.evidence {
            let line = format!("{}: {}", st.show(&e.label), st.show(&e.value));
            let _ = writeln!(out, "                   {line}");
            if !e.source.is_empty() {
                let _ = writeln!(out, "                     {}", st.dim(&st.show(&e.source)));
            }
        }
        for r in &f.ruled_out {
            let _ = writeln!(
                out,
                "                   ruled out: {}",
                wrap(&st.show(r), 30, 88)
            );
        }
        // Context findings need no step of their own.
        if !is_verdict && f.severity != Severity::Info {
            let _ = writeln!(
                out,
                "                   next: {}",
                wrap(&st.sentence(&f.next_step), 25, 88)
            );
        }
    }
    out.push('\n');
}

/// Word-wraps `text` to `width` columns, continuation lines indented by `indent`.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut col = indent;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if col > indent && col + 1 + w > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if col > indent {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += w;
    }
    out
}

/// lsof's FD column: number and access letter.
fn fd_col(f: &Fd) -> String {
    match f.access().and_then(Access::letter) {
        Some(letter) => format!("{}{letter}", f.fd),
        None => f.fd.to_string(),
    }
}

fn flags_col(f: &Fd) -> String {
    let Some(info) = &f.info else {
        return String::new();
    };
    info.flags_decoded
        .iter()
        .skip(1)
        .filter(|s| !matches!(s.as_str(), "O_LARGEFILE" | "O_CLOEXEC"))
        .map(|s| s.trim_start_matches("O_"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Rows shown per table before the rest is summarised (all with -v).
const MAX_ROWS: usize = 40;

/// fds a reader must see even in a capped table: waited on, locked, logs, deleted.
pub(super) fn notable_fds(snap: &Snapshot) -> std::collections::HashSet<i32> {
    let mut keep: std::collections::HashSet<i32> = snap
        .threads
        .iter()
        .filter_map(|t| t.syscall.as_ref())
        .flat_map(|s| s.waits_on.iter())
        .filter_map(|w| match w {
            hangscope_model::WaitObject::Fd { fd, .. } => Some(*fd),
            hangscope_model::WaitObject::Lock { fd, .. } => Some(*fd),
            _ => None,
        })
        .collect();
    keep.extend(snap.locks.iter().filter_map(|l| l.fd));
    keep.extend(snap.logs.iter().filter_map(|l| l.fd));
    keep.extend(snap.fds.iter().filter(|f| f.deleted).map(|f| f.fd));
    keep
}

/// Splits a long table's rows into those shown and the rest: every row `must` keeps, then the
/// others in order up to `max` rows in all.
pub(super) fn keep_rows<T>(
    rows: Vec<T>,
    max: usize,
    must: impl Fn(&T) -> bool,
) -> (Vec<T>, Vec<T>) {
    if rows.len() <= max {
        return (rows, Vec::new());
    }
    let mut budget = max.saturating_sub(rows.iter().filter(|r| must(r)).count());
    rows.into_iter().partition(|r| {
        if must(r) {
            true
        } else if budget > 0 {
            budget -= 1;
            true
        } else {
            false
        }
    })
}

/// "… 8,970 more: 8,960 in /srv/data/, 10 in /tmp/ (-v shows all)".
fn summarise_rest(rest: &[&Fd], st: &Style) -> String {
    let mut by_dir: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in rest {
        let dir = match f.target.rfind('/') {
            Some(i) if f.target.starts_with('/') => &f.target[..=i],
            _ => f.kind.as_str(),
        };
        *by_dir.entry(dir).or_default() += 1;
    }
    let mut dirs: Vec<(&str, usize)> = by_dir.into_iter().collect();
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = dirs
        .iter()
        .take(4)
        .map(|(d, n)| format!("{n} in {}", st.show(*d)))
        .collect();
    if dirs.len() > 4 {
        parts.push(format!(
            "{} elsewhere",
            dirs[4..].iter().map(|x| x.1).sum::<usize>()
        ));
    }
    format!("… {} more: {} (-v shows all)", rest.len(), parts.join(", "))
}

fn files(out: &mut String, snap: &Snapshot, st: &Style, verbose: bool) {
    let mut t = Table::new(&["FD", "TYPE", "FLAGS", "SIZE", "OFFSET", "NODE", "NAME"])
        .right(3)
        .right(4);
    let all: Vec<&Fd> = snap
        .fds
        .iter()
        .filter(|f| f.kind.is_path() || f.kind == FdKind::Pipe)
        .collect();
    let (shown, rest): (Vec<&Fd>, Vec<&Fd>) = if verbose {
        (all, Vec::new())
    } else {
        let notable = notable_fds(snap);
        keep_rows(all, MAX_ROWS, |f| notable.contains(&f.fd))
    };
    for f in shown {
        let size = match &f.stat {
            Some(s) if f.kind == FdKind::Regular => human_bytes(s.size),
            _ => String::new(),
        };
        let offset = match &f.info {
            Some(i) if i.pos > 0 => i.pos.to_string(),
            _ => String::new(),
        };
        let node = f
            .info
            .as_ref()
            .and_then(|i| i.ino)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let mut name = st.show(&f.target);
        if f.deleted {
            name.push_str(" (deleted)");
        }
        if let Some(why) = &f.stat_skipped {
            name.push_str(&format!("  [{}]", st.show(why)));
        }
        t.push(vec![
            fd_col(f),
            f.kind.as_str().to_string(),
            flags_col(f),
            size,
            offset,
            node,
            name,
        ]);
    }
    if t.len() > 0 {
        let _ = writeln!(out, "{}", st.bold("FILES"));
        out.push_str(&t.render(2, st.header()));
        if !rest.is_empty() {
            let _ = writeln!(out, "  {}", st.dim(&summarise_rest(&rest, st)));
        }
        out.push('\n');
    }
}

fn anonymous(out: &mut String, snap: &Snapshot, st: &Style) {
    let mut t = Table::new(&["FD", "TYPE", "DETAIL"]);
    for f in snap.fds.iter().filter(|f| f.kind.is_anon()) {
        t.push(vec![
            fd_col(f),
            f.kind.as_str().to_string(),
            st.show(&anon_detail(f)),
        ]);
    }
    if t.len() > 0 {
        let _ = writeln!(out, "{}", st.bold("ANONYMOUS"));
        out.push_str(&t.render(2, st.header()));
        out.push('\n');
    }
}

/// fds whose link could not be read: listed by number, the reason is under NOT READ.
fn unreadable(out: &mut String, snap: &Snapshot, st: &Style) {
    let nums: Vec<i32> = snap
        .fds
        .iter()
        .filter(|f| f.kind == FdKind::Unknown)
        .map(|f| f.fd)
        .collect();
    if nums.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("UNKNOWN"));
    let _ = writeln!(
        out,
        "  {} fds not readable: {}\n",
        nums.len(),
        wrap(&ranges(&nums), 2, 88)
    );
}

/// Sorted numbers as ranges: [0,1,2,5,7,8] → "0-2 5 7-8".
fn ranges(nums: &[i32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(" ")
}

/// Escaped by the caller: it holds the target's anon name or a signal mask as read.
fn anon_detail(f: &Fd) -> String {
    let Some(info) = &f.info else {
        return f.target.to_string();
    };
    match f.kind {
        FdKind::Eventpoll => {
            if info.epoll_watches.is_empty() {
                "watches nothing".into()
            } else {
                let w: Vec<String> = info
                    .epoll_watches
                    .iter()
                    .map(|w| {
                        let ev: Vec<&str> = w
                            .events_decoded
                            .iter()
                            .map(|e| e.trim_start_matches("EPOLL"))
                            .collect();
                        format!("{}({})", w.tfd, ev.join("|"))
                    })
                    .collect();
                format!("watches fds {}", w.join(" "))
            }
        }
        FdKind::Eventfd => format!("count {}", info.eventfd_count.unwrap_or(0)),
        FdKind::Timerfd => match &info.timerfd {
            Some(t) if t.it_value_ns == 0 => "disarmed".into(),
            Some(t) => {
                let next = human_ms(t.it_value_ns as f64 / 1e6);
                if t.it_interval_ns > 0 {
                    format!(
                        "next in {next}, every {}, {} ticks",
                        human_ms(t.it_interval_ns as f64 / 1e6),
                        t.ticks
                    )
                } else {
                    format!("once, in {next}")
                }
            }
            None => f.target.to_string(),
        },
        FdKind::Signalfd => format!("mask {}", info.sigmask.clone().unwrap_or_default()),
        FdKind::Inotify => format!("{} watches", info.inotify_watches.len()),
        FdKind::Pidfd => match info.pidfd_pid {
            Some(p) => format!("process {p}"),
            None => f.target.to_string(),
        },
        _ => f.target.to_string(),
    }
}

fn locks(out: &mut String, snap: &Snapshot, st: &Style) {
    if snap.locks.is_empty() {
        return;
    }
    let mut t = Table::new(&["FD", "LOCK", "ACCESS", "RANGE", "STATE", "FILE"]);
    for l in &snap.locks {
        t.push(vec![
            l.fd.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
            lock_class(l).into(),
            match l.access {
                LockAccess::Read => "READ",
                LockAccess::Write => "WRITE",
                LockAccess::None => "NONE",
                LockAccess::Other => "?",
            }
            .into(),
            match l.end {
                Some(e) => format!("{}-{e}", l.start),
                None => format!("{}-EOF", l.start),
            },
            lock_state(l, snap.process.pid, st),
            match &l.path {
                Some(path) => st.show(path),
                None => st.show(&format!("{} inode {}", l.dev, l.inode)),
            },
        ]);
    }
    let _ = writeln!(out, "{}", st.bold("LOCKS"));
    out.push_str(&t.render(2, st.header()));
    out.push('\n');
}

fn lock_class(l: &FileLock) -> &'static str {
    match l.class {
        LockClass::Posix => "POSIX",
        LockClass::Flock => "FLOCK",
        LockClass::Ofd => "OFD",
        LockClass::Lease => "LEASE",
        LockClass::Delegation => "DELEG",
        LockClass::Other => "?",
    }
}

fn lock_state(l: &FileLock, pid: i32, st: &Style) -> String {
    if l.other_owner {
        return match (l.pid, &l.owner_name) {
            (Some(p), Some(name)) => format!("held by process {p} ({})", st.show(name)),
            (Some(p), None) => format!("held by process {p}"),
            (None, _) => "held by another open file".into(),
        };
    }
    if !l.waiting {
        return "held".into();
    }
    if l.pid == Some(pid) {
        match l.holder_pid {
            Some(h) => format!("WAITING for process {h}"),
            None => "WAITING (holder not named)".into(),
        }
    } else {
        format!("process {} waits for it", l.pid.unwrap_or(-1))
    }
}

fn gaps(out: &mut String, snap: &Snapshot, st: &Style) {
    if snap.gaps.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("NOT READ"));
    for g in &snap.gaps {
        let needs = g
            .needs
            .as_ref()
            .map(|n| format!("; needs {}", st.show(n)))
            .unwrap_or_default();
        // "permission denied (Permission denied (os error 13))" says it twice.
        let detail = if g.detail.to_lowercase().starts_with(g.reason.as_str()) {
            String::new()
        } else {
            st.show(&g.detail)
        };
        let paren = match (detail.is_empty(), needs.is_empty()) {
            (true, true) => String::new(),
            (true, false) => format!(" ({})", needs.trim_start_matches("; ")),
            _ => format!(" ({detail}{needs})"),
        };
        let _ = writeln!(out, "  {}: {}{paren}", st.show(&g.what), g.reason.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{FdInfo, Gap, GapReason};

    fn fd(n: i32, link: &str, kind: FdKind) -> Fd {
        Fd::new(n, kind, link)
    }

    #[test]
    fn groups_and_aligns() {
        let mut snap = Snapshot::default();
        snap.process.name = "zbs-metad".into();
        snap.process.pid = 31516;
        let mut log = fd(7, "/var/log/zbs/zbs-metad.log", FdKind::Regular);
        log.info = Some(Box::new(FdInfo {
            flags: 0o2102001,
            flags_decoded: vec!["O_WRONLY".into(), "O_APPEND".into(), "O_LARGEFILE".into()],
            pos: 4096,
            ino: Some(12),
            ..FdInfo::default()
        }));
        let mut ev = fd(9, "anon_inode:[eventfd]", FdKind::Eventfd);
        ev.info = Some(Box::new(FdInfo {
            eventfd_count: Some(3),
            flags: 2,
            ..FdInfo::default()
        }));
        snap.fds = vec![log, ev];
        snap.gaps.push(
            Gap::new(
                "/proc/31516/task/31576/stack",
                GapReason::Permission,
                "EACCES",
            )
            .needing("root"),
        );
        let text = render_text(&Document::new("t", snap, vec![]), &TextOptions::default());
        assert!(text.starts_with("zbs-metad  pid 31516"), "{text}");
        assert!(
            text.contains("  FD  TYPE  FLAGS   SIZE  OFFSET  NODE  NAME\n"),
            "{text}"
        );
        assert!(
            text.contains("  7w  REG   APPEND          4096  12    /var/log/zbs/zbs-metad.log\n"),
            "{text}"
        );
        assert!(text.contains("  9u  eventfd  count 3\n"), "{text}");
        assert!(
            text.contains("/proc/31516/task/31576/stack: permission denied (EACCES; needs root)"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn a_long_file_table_is_capped_but_keeps_what_matters() {
        let mut snap = Snapshot::default();
        for n in 0..200 {
            let mut f = fd(n, &format!("/srv/data/f{n}"), FdKind::Regular);
            f.deleted = n == 150;
            snap.fds.push(f);
        }
        let text = render_text(
            &Document::new("t", snap.clone(), vec![]),
            &TextOptions::default(),
        );
        assert!(text.contains("/srv/data/f150 (deleted)"), "{text}");
        assert!(
            text.contains("… 160 more: 160 in /srv/data/ (-v shows all)"),
            "{text}"
        );
        let all = render_text(
            &Document::new("t", snap, vec![]),
            &TextOptions {
                verbose: true,
                ..TextOptions::default()
            },
        );
        assert!(all.contains("/srv/data/f199") && !all.contains("more:"));
    }

    #[test]
    fn a_warning_without_a_cause_is_named_in_the_verdict() {
        use hangscope_model::{Cause, Finding, Subject};
        let doc = Document::new(
            "t",
            Snapshot::default(),
            vec![Finding {
                severity: Severity::Warning,
                cause: Cause::PipeWait,
                summary: "Thread 8 waits for process 9 to write.".into(),
                subject: Subject::default(),
                evidence: vec![],
                ruled_out: vec![],
                next_step: "Look at process 9.".into(),
                ..Finding::default()
            }],
        );
        let text = render_text(&doc, &TextOptions::default());
        assert!(
            text.contains(
                "VERDICT  No cause found, but: Thread 8 waits for process 9 to write.\nNEXT     \
                 Look at process 9.\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn number_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2 5 7-8");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn verdict_first_then_evidence_without_repeating_it() {
        use hangscope_model::{Cause, Evidence, Finding, Subject};
        let finding = |severity, cause, summary: &str| Finding {
            severity,
            cause,
            summary: summary.into(),
            subject: Subject {
                tid: Some(7),
                thread_name: Some("io".into()),
                fd: Some(3),
                ..Subject::default()
            },
            evidence: vec![Evidence::new(
                "reply",
                "0 bytes back",
                "ss: bytes_received:0",
            )],
            ruled_out: vec!["host down: its kernel ACKed 1 s ago".into()],
            next_step: "Look at the peer.".into(),
            ..Finding::default()
        };
        let doc = Document::new(
            "t",
            Snapshot::default(),
            vec![
                finding(Severity::Cause, Cause::PeerSilent, "Thread 7 (io) waits."),
                finding(Severity::Info, Cause::WaitingLoop, "Thread 8 loops."),
            ],
        );
        let text = render_text(&doc, &TextOptions::default());
        assert!(
            text.contains("VERDICT  Thread 7 (io) waits.\nNEXT     Look at the peer.\n"),
            "{text}"
        );
        assert_eq!(text.matches("Thread 7 (io) waits.").count(), 1, "{text}");
        assert!(
            text.contains(" 1 peer silent     thread 7 io  fd 3\n"),
            "{text}"
        );
        assert!(
            text.contains("                   reply: 0 bytes back\n                     ss: bytes_received:0\n"),
            "{text}"
        );
        assert!(
            text.contains("ruled out: host down: its kernel ACKed 1 s ago"),
            "{text}"
        );
        assert!(
            text.contains("                   Thread 8 loops.\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("Look at the peer.").count(),
            1,
            "context has no next step"
        );
    }

    #[test]
    fn wraps_words() {
        assert_eq!(wrap("a bb ccc", 2, 6), "a bb\n  ccc");
    }
}

#[cfg(test)]
mod hostile {
    //! Every string of a real snapshot made hostile: whatever field a renderer prints, nothing
    //! raw may reach the terminal.

    use super::*;

    const HOSTILE: &str = "\x1b]0;pwned\x07\r\nZZ\u{9b}2J\u{202e}\x7f";

    /// Appends `HOSTILE` to every string that is data, not a tag the types are told apart by.
    fn poison(v: &mut serde_json::Value, key: &str) {
        const TAGS: &[&str] = &[
            "schema_version",
            "kind",
            "type",
            "severity",
            "cause",
            "reason",
            "format",
            "level",
            "class",
            "access",
            "link_access",
            "outcome",
            "event",
            "family",
        ];
        match v {
            // A log message's own lines are shown as its continuation lines, by design.
            serde_json::Value::String(s) if key == "message" => {
                s.push_str(&HOSTILE.replace("\r\n", " "));
            }
            serde_json::Value::String(s) if !TAGS.contains(&key) => s.push_str(HOSTILE),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| poison(x, key)),
            serde_json::Value::Object(o) => o.iter_mut().for_each(|(k, x)| poison(x, k)),
            _ => {}
        }
    }

    fn assert_clean(text: &str) {
        for (n, line) in text.lines().enumerate() {
            for c in line.chars() {
                assert!(
                    !(c.is_control() || matches!(c, '\u{202a}'..='\u{202e}')),
                    "raw {c:?} on line {n}: {line:?}"
                );
            }
            // The newline after the BEL was escaped: no line starts with what followed it.
            assert!(!line.trim_start().starts_with("ZZ"), "line {n}: {line:?}");
        }
    }

    /// What the fixtures lack: a pipe with a writer, a unix peer, a local TCP peer, a lock, a
    /// waiting thread with a stack, gaps and findings with every part.
    fn the_rest(v: &mut serde_json::Value) {
        let extra = serde_json::json!({
            "threads": [{
                "tid": 90, "name": "w", "state": "S", "wchan": "pipe_read",
                "stack": ["pipe_read+0x1/0x2"], "stack_unavailable": null, "focus": true,
                "syscall": { "nr": 0, "name": "read", "summary": "read(40, \"x\", 1)",
                    "decode_error": "partial", "timeout_ms": -1,
                    "waits_on": [{ "kind": "fd", "fd": 40, "events": ["POLLIN"] },
                                 { "kind": "fd", "fd": 41 }, { "kind": "fd", "fd": 42 }] }
            }, {
                "tid": 91, "name": "m", "state": "S",
                "syscall": { "nr": 202, "name": "futex", "waits_on": [{ "kind": "futex",
                    "addr": 1, "owner_tid": 90, "waiters": 2 }] }
            }, {
                "tid": 92, "name": "l", "state": "S",
                "syscall": { "nr": 73, "name": "flock", "waits_on": [{ "kind": "lock",
                    "fd": 43, "op": "LOCK_EX" }] }
            }],
            "fds": [
                { "fd": 40, "kind": "pipe", "target": "pipe:[7]", "pipe_inode": 7,
                  "pipe_peers": [{ "pid": 5, "name": "writer", "fd": 1, "access": "write" }] },
                { "fd": 41, "kind": "socket", "target": "socket:[8]", "socket_inode": 8 },
                { "fd": 42, "kind": "socket", "target": "socket:[9]", "socket_inode": 9 },
                { "fd": 43, "kind": "regular", "target": "/l", "stat_skipped": "on fuse" },
                { "fd": 44, "kind": "anon_inode", "target": "anon_inode:[x]" }
            ],
            "sockets": [
                { "inode": 8, "fds": [41], "family": "unix", "source": "sock_diag",
                  "detail": { "type": "unix", "sock_type": "STREAM", "state": "ESTAB",
                    "path": "/s", "peer_inode": 10, "peer_unresolved": "gone",
                    "peer": { "pid": 6, "name": "peer", "fd": 3, "path": "/p" } } },
                { "inode": 9, "fds": [42], "family": "inet", "source": "sock_diag",
                  "detail": { "type": "tcp", "state": "ESTAB",
                    "local": { "addr": "127.0.0.1", "port": 1, "service": "svc" },
                    "peer": { "addr": "127.0.0.1", "port": 2 }, "congestion": "cubic",
                    "tcp_info": { "len": 200 },
                    "local_peer": { "inode": 11, "state": "ESTAB", "recv_q": 3,
                      "holder": { "pid": 7, "name": "srv", "fd": 4 } } } },
                { "inode": 12, "fds": [45], "family": "other", "source": "none",
                  "detail": { "type": "unknown" }, "not_found_reason": "raced" }
            ],
            "locks": [{ "id": 1, "class": "flock", "access": "write", "mode": "ADVISORY",
                        "dev": "0:1", "inode": 2, "start": 0, "waiting": true, "fd": 43,
                        "pid": 1, "holder_pid": 3, "path": "/l" }],
            "gaps": [{ "what": "/proc/1/x", "reason": "other", "detail": "d", "needs": "n" }]
        });
        let snap = &mut v["snapshot"];
        // A PostgreSQL server's view: statements, states, names, all the server's (and its
        // clients') choice. The target is the postmaster, so every client backend is listed.
        let pid = snap["process"]["pid"].clone();
        snap["app"] = serde_json::json!({
            "kind": "postgres",
            "server": { "postmaster_pid": pid, "port": 5432, "socket_dir": "/run/pg",
                        "version": "15" },
            "backends": [{ "pid": 7, "backend_type": "client backend", "state": "active",
                "wait_event_type": "Lock", "wait_event": "tuple", "query": "UPDATE x",
                "client_addr": "10.0.0.1", "client_port": 5, "usename": "u", "datname": "d",
                "application_name": "a", "blocked_by": [8],
                "lock_wait": { "locktype": "tuple", "mode": "m", "relation": "r" } },
              { "pid": 8, "backend_type": "client backend", "state": "idle in transaction",
                "query": "SELECT 1" }]
        });
        for key in ["threads", "fds", "sockets", "locks", "gaps"] {
            if let (Some(to), Some(from)) = (snap[key].as_array_mut(), extra[key].as_array()) {
                to.extend(from.iter().cloned());
            }
        }
        let finding = serde_json::json!({
            "severity": "cause", "cause": "pipe_wait", "summary": "s", "next_step": "n",
            "subject": { "tid": 90, "thread_name": "w", "fd": 40, "connection": "c" },
            "evidence": [{ "label": "l", "value": "v", "source": "src" }],
            "ruled_out": ["r"]
        });
        let mut second = finding.clone();
        second["severity"] = "warning".into();
        v["findings"] = serde_json::json!([finding, second]);
    }

    #[test]
    fn no_field_reaches_the_terminal_raw() {
        for fixture in [
            include_str!("../../../tests/fixtures/snapshots/seed-zbs-metad-peer-silent.json"),
            include_str!("../../../tests/fixtures/snapshots/busy-echo-server.json"),
            include_str!("../../../tests/fixtures/snapshots/idle-server.json"),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(fixture).unwrap();
            the_rest(&mut v);
            poison(&mut v, "");
            let doc = Document::from_json(&v.to_string()).unwrap();
            assert!(doc.snapshot.process.name.ends_with(HOSTILE));
            for verbose in [false, true] {
                let opts = TextOptions {
                    color: true,
                    verbose,
                };
                let text = render_text(&doc, &opts);
                // Colour codes are hangscope's own; they are all this may contain of ESC.
                let text = text
                    .replace("\x1b[0m", "")
                    .replace("\x1b[1;31m", "")
                    .replace("\x1b[1m", "")
                    .replace("\x1b[2m", "")
                    .replace("\x1b[33m", "");
                assert_clean(&text);
                assert!(text.contains("\\e]0;pwned\\a\\r\\nZZ\\u{9b}2J\\u{202e}\\x7f"));
                assert!(text.contains("POSTGRESQL"), "{text}");
            }
        }
    }
}
