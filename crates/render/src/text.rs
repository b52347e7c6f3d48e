//! The report a person reads: header, verdict and findings first, then the tables.
//!
//! Every value that came from the target (names, paths, arguments, log lines) and every
//! sentence that embeds one (a finding's summary) goes through [`Style::show`] as it is put into
//! the text: escaped by the rule of `hangscope_model::text` and cut to a bound, so the report
//! cannot move the operator's cursor, retitle the terminal, or break a row. Colour is added
//! after, around escaped text.

use hangscope_model::Document;

mod app;
mod fds;
mod gaps;
mod header;
mod locks;
mod logs;
mod sockets;
mod stacks;
mod style;
mod threads;
mod verdict;

use fds::{keep_rows, notable_fds};
use style::{Style, wrap};

pub(crate) use header::captured_at;

#[derive(Debug, Clone, Default)]
pub struct TextOptions {
    /// ANSI colour; only on a terminal, never with --no-color.
    pub color: bool,
    /// Show every detail (TCP_INFO, full stacks).
    pub verbose: bool,
    /// Columns to wrap sentences to; 0 is [`DEFAULT_WIDTH`].
    pub width: usize,
    /// Where the report was captured, seen from the reader: the offset of local time from UTC
    /// at the capture time, and the zone's abbreviation. None: UTC only.
    pub local_time: Option<(i64, String)>,
    /// `replay`: the file the snapshot was read from, said in the header.
    pub replayed_from: Option<String>,
}

/// The width when it is not known (not a terminal): what the recorded reports were written at.
pub const DEFAULT_WIDTH: usize = 88;

pub fn render_text(doc: &Document, opts: &TextOptions) -> String {
    let st = Style::new(opts);
    let snap = &doc.snapshot;
    let mut out = String::new();
    header::header(&mut out, snap, &st);
    header::provenance(&mut out, doc, opts, &st);
    verdict::findings(&mut out, doc, &st);
    threads::threads(&mut out, snap, &threads::flagged(doc), opts.verbose, &st);
    fds::files(&mut out, snap, &st, opts.verbose);
    sockets::sockets(&mut out, snap, &st, opts.verbose);
    fds::anonymous(&mut out, snap, &st);
    fds::unreadable(&mut out, snap, &st);
    locks::locks(&mut out, snap, &st);
    app::app(&mut out, snap, &st);
    logs::logs(&mut out, snap, &st);
    gaps::gaps(&mut out, snap, &st);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{Fd, FdInfo, FdKind, Gap, GapReason, Severity, Snapshot};

    fn fd(n: i32, link: &str, kind: FdKind) -> Fd {
        Fd::new(n, kind, link)
    }

    /// THREADS lists the thread a cause names before the others, whatever their order.
    #[test]
    fn threads_a_finding_names_come_first() {
        use hangscope_model::{Cause, Finding, Subject, Thread};
        let mut snap = Snapshot::default();
        // Each in its own state, so none are grouped.
        for (tid, name, state) in [(1, "main", "S"), (2, "idle", "I"), (3, "worker", "D")] {
            snap.threads.push(Thread {
                tid,
                name: name.into(),
                state: state.into(),
                ..Thread::default()
            });
        }
        let doc = Document::new(
            "t",
            snap,
            vec![Finding {
                severity: Severity::Cause,
                cause: Cause::PeerSilent,
                summary: "Thread 3 waits.".into(),
                subject: Subject {
                    tid: Some(3),
                    ..Subject::default()
                },
                ..Finding::default()
            }],
        );
        let text = render_text(&doc, &TextOptions::default());
        let table = &text[text.find("THREADS").unwrap()..];
        let order: Vec<usize> = ["worker", "main", "idle"]
            .iter()
            .map(|n| table.find(&format!(" {n} ")).unwrap())
            .collect();
        assert!(order[0] < order[1] && order[1] < order[2], "{table}");
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
}

#[cfg(test)]
mod hostile;
