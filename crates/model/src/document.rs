//! The one JSON document hangscope writes (`--json`, `--save`) and reads back (`replay`).

use serde::{Deserialize, Serialize};

use crate::{Cause, Chain, ChainEnd, Finding, Severity, Snapshot};

/// "MAJOR.MINOR". MINOR grows with additive changes; MAJOR changes break readers.
pub const SCHEMA_VERSION: &str = "1.13";

/// The document `--json` prints and `--save` writes: what was read, and what was found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Document {
    /// The schema's "MAJOR.MINOR" (see docs/snapshot-schema.md): a reader refuses another MAJOR.
    pub schema_version: String,
    /// The program and version that wrote the document, e.g. "hangscope 0.1.0".
    #[serde(default)]
    pub generator: String,
    /// What hangscope read of the target.
    pub snapshot: Snapshot,
    /// The verdict in one place, for `jq .verdict`: the top finding's words, or that no cause
    /// was found (since 1.3; made from `findings` when a document is read).
    #[serde(default)]
    pub verdict: Verdict,
    /// Ranked findings, most important first. Empty when nothing looks stuck.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// The wait followed from the target, process to process, to its root (since 1.5; absent
    /// when not walked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Chain>,
    /// The snapshots of the chain's processes after the target, in the chain's order, so a
    /// saved document replays the whole chain (since 1.5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<Snapshot>,
    /// The hosts the chain was followed to over ssh (`--follow`), in order, each with its own
    /// document or why there is none (since 1.6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::HostHop>,
    /// In a document of `hangscope peer`: the connection whose process this is, and how it was
    /// found (since 1.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<crate::Served>,
}

/// What the report's VERDICT and NEXT lines say (since 1.3, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Verdict {
    /// Whether a cause was found (a finding of severity `cause`).
    pub cause_found: bool,
    /// With no cause, whether the process could not be seen (a `not_visible` finding): the
    /// report then says so instead of "nothing stuck" (since 1.3).
    #[serde(skip_serializing_if = "crate::is_false")]
    pub not_seen: bool,
    /// The verdict in words: the top cause's summary; with no cause, the summary of a
    /// `not_visible` finding, else the top warning's summary after "No cause found, but: "; or
    /// "Nothing looks stuck: ...", followed by a wait by design's summary (cause `by_design`,
    /// since 1.6) when there is one.
    pub summary: String,
    /// Where to look next; empty when nothing looks stuck.
    pub next_step: String,
    /// The rule of the finding the verdict comes from; empty when none.
    pub rule: String,
    /// That finding's place in `findings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<usize>,
    /// When the wait leads through other processes (`chain`), the one at its end and what
    /// holds it; `next_step` is then the root's (since 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<RootVerdict>,
}

/// The root of a wait chain, as the verdict tells it (since 1.5, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RootVerdict {
    /// The root's PID (on its own host).
    pub pid: i32,
    /// The root's `comm`.
    pub name: crate::Text,
    /// The root's own words: its finding's summary, or what it does when it is idle.
    pub summary: String,
    /// How many processes the wait passes through before the root.
    pub hops: usize,
    /// The chain ends in a cycle.
    #[serde(skip_serializing_if = "crate::is_false")]
    pub cycle: bool,
    /// The root is on another host: the address it was reached at; `pid` is its PID there
    /// (since 1.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The verdict when no finding is a cause or a warning.
pub const NOTHING_STUCK: &str = "Nothing looks stuck: no wait that should have ended was found.";

impl Verdict {
    /// The verdict of ranked findings: the first cause, else the first warning (said as "no
    /// cause, but", so it is not read as "fine"), else nothing stuck.
    pub fn of(findings: &[Finding]) -> Verdict {
        let pick = |sev: Severity| findings.iter().position(|f| f.severity == sev);
        if let Some(i) = pick(Severity::Cause) {
            let f = &findings[i];
            return Verdict {
                cause_found: true,
                not_seen: false,
                summary: f.summary.clone(),
                next_step: f.next_step.clone(),
                rule: f.rule.clone(),
                finding: Some(i),
                root: None,
            };
        }
        // Before any warning: what was not seen makes every other absence meaningless.
        if let Some(i) = findings.iter().position(|f| f.cause == Cause::NotVisible) {
            let f = &findings[i];
            return Verdict {
                cause_found: false,
                not_seen: true,
                summary: f.summary.clone(),
                next_step: f.next_step.clone(),
                rule: f.rule.clone(),
                finding: Some(i),
                root: None,
            };
        }
        if let Some(i) = pick(Severity::Warning) {
            let f = &findings[i];
            return Verdict {
                cause_found: false,
                not_seen: false,
                summary: format!("No cause found, but: {}", f.summary),
                next_step: f.next_step.clone(),
                rule: f.rule.clone(),
                finding: Some(i),
                root: None,
            };
        }
        // A wait the program asked for (a client in BLPOP) is the one thing worth saying.
        if let Some(i) = findings.iter().position(|f| f.cause == Cause::ByDesign) {
            let f = &findings[i];
            return Verdict {
                summary: format!("Nothing looks stuck: {}", f.summary),
                next_step: f.next_step.clone(),
                rule: f.rule.clone(),
                finding: Some(i),
                ..Verdict::default()
            };
        }
        Verdict {
            summary: NOTHING_STUCK.to_string(),
            ..Verdict::default()
        }
    }
}

impl Verdict {
    /// With a chain that reaches past the target, the root and where to look are the root's.
    fn apply_chain(&mut self, chain: &Chain) {
        if chain.followed() == 0 {
            return;
        }
        let Some(root) = chain.root() else { return };
        self.root = Some(RootVerdict {
            pid: root.pid,
            name: root.name.clone(),
            summary: root.summary.clone(),
            hops: chain.followed(),
            cycle: matches!(chain.end, ChainEnd::Cycle { .. }),
            host: root.reached_at.clone(),
        });
        // An idle root has no step of its own: the step is that of the hop that waits on it
        // (a session idle in transaction: end it).
        if let Some(step) = chain
            .hops
            .iter()
            .skip(1)
            .rev()
            .map(|h| &h.next_step)
            .find(|s| !s.is_empty())
        {
            self.next_step = step.clone();
        }
    }
}

/// The sampling window over which the snapshot's activity fields were measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Window {
    /// Number of looks taken, the first included.
    pub looks: u32,
    /// Time from the first look to the last, in milliseconds.
    pub duration_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("not a hangscope snapshot: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("not a hangscope snapshot: no schema_version field")]
    NoVersion,
    #[error(
        "snapshot has schema version {found}, this hangscope reads {expected}.x; \
         use a hangscope release of that major version to read it"
    )]
    MajorMismatch { found: String, expected: String },
}

/// A missing version is not a hangscope document; another major version is refused by name.
fn check_version(found: Option<&str>) -> Result<(), DocumentError> {
    let found = found.ok_or(DocumentError::NoVersion)?;
    if major(found) != major(SCHEMA_VERSION) {
        return Err(DocumentError::MajorMismatch {
            found: found.to_string(),
            expected: major(SCHEMA_VERSION).to_string(),
        });
    }
    Ok(())
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

impl Document {
    pub fn new(generator: impl Into<String>, snapshot: Snapshot, findings: Vec<Finding>) -> Self {
        Document {
            schema_version: SCHEMA_VERSION.to_string(),
            generator: generator.into(),
            snapshot,
            verdict: Verdict::of(&findings),
            findings,
            chain: None,
            others: Vec::new(),
            hosts: Vec::new(),
            served: None,
        }
    }

    /// Adds the wait chain and the snapshots it read, and tells the verdict its root.
    pub fn set_chain(&mut self, chain: Chain, others: Vec<Snapshot>) {
        self.verdict = Verdict::of(&self.findings);
        self.verdict.apply_chain(&chain);
        self.chain = Some(chain);
        self.others = others;
    }

    /// Replaces the findings, and the verdict made from them.
    pub fn set_findings(&mut self, findings: Vec<Finding>) {
        self.verdict = Verdict::of(&findings);
        if let Some(chain) = &self.chain {
            self.verdict.apply_chain(chain);
        }
        self.findings = findings;
    }

    /// Reads a document, checking the major version before anything else so a file from an
    /// incompatible release gets a message about versions, not about a missing field.
    pub fn from_json(text: &str) -> Result<Document, DocumentError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        check_version(value.get("schema_version").and_then(|v| v.as_str()))?;
        Ok(serde_json::from_value::<Document>(value)?.upgraded())
    }

    /// Reads a document from a file or anything seekable, streaming: a parsed
    /// `serde_json::Value` costs about ten times the text, the document itself a few times.
    /// Two passes, the first keeping only `schema_version` (wherever it is in the object), so
    /// the version is checked before the rest is read, as [`Document::from_json`] does.
    pub fn from_reader<R: std::io::Read + std::io::Seek>(
        mut reader: R,
    ) -> Result<Document, DocumentError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            schema_version: Option<String>,
        }
        let probe: VersionOnly = serde_json::from_reader(std::io::BufReader::new(&mut reader))?;
        check_version(probe.schema_version.as_deref())?;
        reader
            .rewind()
            .map_err(|e| DocumentError::Malformed(serde_json::Error::io(e)))?;
        Ok(serde_json::from_reader::<_, Document>(std::io::BufReader::new(reader))?.upgraded())
    }

    /// Fills what a document of an older minor version left to be read from its words: the
    /// error names of log entries (1.7), the topics of gaps (1.9), a runtime view's command
    /// (1.10), a gap's error number (1.12).
    fn upgraded(mut self) -> Document {
        let minor = self
            .schema_version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(u32::MAX);
        if minor < 7 {
            let snapshots = std::iter::once(&mut self.snapshot).chain(self.others.iter_mut());
            for snap in snapshots {
                for entry in snap.logs.iter_mut().flat_map(|l| l.entries.iter_mut()) {
                    if entry.error.is_none() {
                        entry.error = crate::log::error_name_in(&entry.message);
                    }
                }
            }
        }
        if minor < 9 {
            let snapshots = std::iter::once(&mut self.snapshot).chain(self.others.iter_mut());
            for snap in snapshots {
                let pid = snap.process.pid;
                for g in snap.gaps.iter_mut().filter(|g| g.topic.is_none()) {
                    g.topic = crate::gap::GapTopic::of_words(&g.what, pid);
                }
            }
        }
        if minor < 10 {
            let snapshots = std::iter::once(&mut self.snapshot).chain(self.others.iter_mut());
            for v in snapshots.filter_map(|s| s.process.runtime.as_mut()?.view.as_mut()) {
                if v.command.is_empty() {
                    // "jcmd 4242 Thread.print (HotSpot attach API, ...)": the command, then
                    // how it was reached.
                    let tool = v.tool.escaped();
                    v.command = tool.split(" (").next().unwrap_or_default().to_string();
                }
            }
        }
        if minor < 12 {
            let snapshots = std::iter::once(&mut self.snapshot).chain(self.others.iter_mut());
            for g in snapshots.flat_map(|s| s.gaps.iter_mut()) {
                g.upgrade_errno();
            }
        }
        self
    }

    pub fn to_json_pretty(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The JSON Schema of [`Document`], generated from these types and their doc comments; the
/// copy in docs/snapshot-schema.json is checked against it by a test.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Document);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_error_names_are_filled_in_a_document_before_1_7_only() {
        let mut snap = Snapshot::default();
        snap.logs.push(crate::LogSource {
            entries: vec![crate::LogEntry {
                message: "Fail to dump meta st: [ETimedOut]: failed to read".into(),
                ..crate::LogEntry::default()
            }],
            ..crate::LogSource::default()
        });
        let mut json = serde_json::to_value(Document::new("t", snap, vec![])).expect("json");
        let error_of = |d: &Document| d.snapshot.logs[0].entries[0].error.clone();
        // A 1.7 document says what collect found: nothing here, and it is not re-read.
        let now = Document::from_json(&json.to_string()).expect("reads");
        assert_eq!(error_of(&now), None);
        json["schema_version"] = "1.6".into();
        let old = Document::from_json(&json.to_string()).expect("reads");
        assert_eq!(error_of(&old).as_deref(), Some("ETimedOut"));
        let streamed =
            Document::from_reader(std::io::Cursor::new(json.to_string())).expect("reads");
        assert_eq!(error_of(&streamed).as_deref(), Some("ETimedOut"));
    }

    #[test]
    fn gap_topics_are_filled_in_a_document_before_1_9_only() {
        let mut snap = Snapshot::default();
        snap.process.pid = 7;
        for what in [
            "/proc/7/fd",
            "/proc/7/task",
            "syscall of 2 threads",
            "/proc/7/exe",
        ] {
            snap.gaps.push(crate::Gap::new(
                what,
                crate::GapReason::Permission,
                "EACCES",
            ));
        }
        let mut json = serde_json::to_value(Document::new("t", snap, vec![])).expect("json");
        let topics = |d: &Document| d.snapshot.gaps.iter().map(|g| g.topic).collect::<Vec<_>>();
        // A document of 1.9 or later says what collect set: nothing here, and the words are
        // not read.
        let now = Document::from_json(&json.to_string()).expect("reads");
        assert_eq!(topics(&now), vec![None; 4]);
        json["schema_version"] = "1.7".into();
        let old = Document::from_json(&json.to_string()).expect("reads");
        use crate::GapTopic::*;
        assert_eq!(
            topics(&old),
            vec![Some(FdTable), Some(ThreadList), Some(ThreadSyscalls), None]
        );
    }

    #[test]
    fn a_runtime_view_s_command_is_filled_in_a_document_before_1_10_only() {
        let mut snap = Snapshot::default();
        snap.process.runtime = Some(crate::Runtime {
            view: Some(crate::RuntimeView {
                tool: "jcmd 42 Thread.print (HotSpot attach API, /proc/42/root/tmp/.java_pid42)"
                    .into(),
                ..crate::RuntimeView::default()
            }),
            ..crate::Runtime::default()
        });
        let mut json = serde_json::to_value(Document::new("t", snap, vec![])).expect("json");
        let command = |d: &Document| {
            let v = d
                .snapshot
                .process
                .runtime
                .as_ref()
                .and_then(|r| r.view.as_ref());
            v.map(|v| v.command.clone()).unwrap_or_default()
        };
        let now = Document::from_json(&json.to_string()).expect("reads");
        assert_eq!(command(&now), "");
        json["schema_version"] = "1.9".into();
        let old = Document::from_json(&json.to_string()).expect("reads");
        assert_eq!(command(&old), "jcmd 42 Thread.print");
    }

    #[test]
    fn a_gap_s_errno_is_read_from_the_words_of_a_document_before_1_12_only() {
        use crate::{Gap, GapReason};
        let snap = Snapshot {
            gaps: vec![
                Gap::new(
                    "fd",
                    GapReason::Permission,
                    "Permission denied (os error 13)",
                ),
                Gap::new(
                    "maps",
                    GapReason::Permission,
                    "Operation not permitted (os error 1)",
                ),
                Gap::new(
                    "net",
                    GapReason::Other,
                    "/proc/7/net/tcp: busy (os error 16)",
                ),
                Gap::new("ns", GapReason::Unsupported, "setns: EINVAL"),
            ],
            ..Snapshot::default()
        };
        let mut json = serde_json::to_value(Document::new("t", snap, vec![])).expect("json");
        let seen = |d: &Document| -> Vec<(Option<i32>, String)> {
            let gaps = d.snapshot.gaps.iter();
            gaps.map(|g| (g.errno, g.detail.clone())).collect()
        };
        let now = Document::from_json(&json.to_string()).expect("reads");
        assert!(now.snapshot.gaps.iter().all(|g| g.errno.is_none()));
        json["schema_version"] = "1.11".into();
        let old = Document::from_json(&json.to_string()).expect("reads");
        assert_eq!(
            seen(&old),
            vec![
                (Some(13), String::new()),
                (Some(1), "Operation not permitted (os error 1)".into()),
                (Some(16), "/proc/7/net/tcp: busy (os error 16)".into()),
                (None, "setns: EINVAL".into()),
            ]
        );
    }

    #[test]
    fn a_process_not_seen_has_a_verdict_of_its_own() {
        let finding = |severity, cause, summary: &str| Finding {
            severity,
            cause,
            summary: summary.into(),
            ..Finding::default()
        };
        let other = finding(Severity::Warning, Cause::WaitingLoop, "a loop");
        let unseen = finding(Severity::Warning, Cause::NotVisible, "Could not see");
        let v = Verdict::of(&[other.clone(), unseen.clone()]);
        assert!(v.not_seen && !v.cause_found);
        assert_eq!(v.summary, "Could not see");
        assert_eq!(v.finding, Some(1));
        let cause = finding(Severity::Cause, Cause::PeerSilent, "silent");
        let v = Verdict::of(&[cause, unseen]);
        assert!(v.cause_found && !v.not_seen);
        assert!(!Verdict::of(&[other]).not_seen);
    }

    #[test]
    fn round_trips() {
        let mut snap = Snapshot::default();
        snap.process.pid = 42;
        let doc = Document::new("hangscope test", snap, vec![]);
        let back = Document::from_json(&doc.to_json_pretty()).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn accepts_unknown_fields_and_newer_minor() {
        let text = r#"{"schema_version":"1.99","generator":"future","snapshot":
            {"process":{"pid":7,"name":"x","brand_new":true},"also_new":[1,2]},
            "findings":[],"extra":{}}"#;
        let doc = Document::from_json(text).unwrap();
        assert_eq!(doc.snapshot.process.pid, 7);
        assert_eq!(doc.snapshot.process.name, "x");
    }

    #[test]
    fn refuses_other_major() {
        let err = Document::from_json(r#"{"schema_version":"2.0","snapshot":{}}"#).unwrap_err();
        assert!(matches!(err, DocumentError::MajorMismatch { .. }));
        assert!(err.to_string().contains("2.0"), "{err}");
    }

    #[test]
    fn reads_from_a_reader_like_from_text() {
        let mut snap = Snapshot::default();
        snap.process.pid = 42;
        let doc = Document::new("hangscope test", snap, vec![]);
        let text = doc.to_json_pretty();
        let back = Document::from_reader(std::io::Cursor::new(text.as_bytes())).unwrap();
        assert_eq!(back, doc);
        // The version is found wherever it is, and checked before the rest is read.
        let late = r#"{"snapshot":{"process":{"pid":"not a number"}},"schema_version":"2.0"}"#;
        let err = Document::from_reader(std::io::Cursor::new(late)).unwrap_err();
        assert!(matches!(err, DocumentError::MajorMismatch { .. }), "{err}");
        let none = Document::from_reader(std::io::Cursor::new(r#"{"snapshot":{}}"#));
        assert!(matches!(none, Err(DocumentError::NoVersion)));
        let bad = Document::from_reader(std::io::Cursor::new(b"\x00\xffnot json"));
        assert!(matches!(bad, Err(DocumentError::Malformed(_))));
    }

    #[test]
    fn refuses_garbage_without_panic() {
        assert!(matches!(
            Document::from_json("not json"),
            Err(DocumentError::Malformed(_))
        ));
        assert!(matches!(
            Document::from_json("{}"),
            Err(DocumentError::NoVersion)
        ));
    }
}
