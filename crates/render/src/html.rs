//! `--html FILE`: one self-contained page to attach to a ticket — where and when, the verdict
//! and next step once, timelines of the threads and connections over the window (inline SVG),
//! the findings with their evidence, the tables (collapsed, with a filter box; they take the
//! place of the text report, which would say the verdict again), and the JSON document for tools (compressed when large), with a link to save it.
//! Light and dark follow the reader's setting; nothing is fetched.
//!
//! Values are escaped twice over: by the text rule (`hangscope_model::text`, so a control
//! character is visible as `\e` rather than hidden) and then for HTML. The embedded JSON has
//! `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`-style escapes: still the same JSON, and no
//! `</script>` or `<!--` can end or hide the element early.

use std::fmt::Write;

use hangscope_model::{Document, Escape, Severity, Text};

use crate::human_ms;

mod stacks;
mod tables;
mod timeline;

pub(crate) fn esc(s: &str) -> String {
    let s = s.escaped();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Above this, the embedded document is compressed (zstd, base64): a 6,000-fd document is
/// 6 MB of JSON and a few hundred KB compressed, and the page is meant to be attached.
const EMBED_PLAIN_MAX: usize = 512 * 1024;
/// Rows of a table written into the page at most; the rest is in the embedded document.
const TABLE_ROWS_MAX: usize = 2000;

const STYLE: &str = "\
:root{--fg:#1d1d1f;--bg:#fff;--muted:#666;--line:#ddd;--code:#f5f5f7;--cause:#b00020;\
--warn:#8a5a00;--run:#2e8b57;--sys:#7a8ca8;--d:#c0392b;--usr:#c8c8c8;--moved:#2e8b57;\
--idle:#c8c8c8;--retr:#d35400;--stuck:#e0a800}\
@media (prefers-color-scheme:dark){:root{--fg:#e6e6e6;--bg:#16181c;--muted:#9aa;--line:#333;\
--code:#22252b;--cause:#ff6b6b;--warn:#f0b84a;--run:#4cc38a;--sys:#6c7f9f;--d:#ff6b6b;\
--usr:#555;--moved:#4cc38a;--idle:#444;--retr:#ff9f43;--stuck:#ffd166}}\
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:80em;padding:0 1em;\
color:var(--fg);background:var(--bg)}\
header .meta{color:var(--muted);margin:.2em 0}\
.verdict{border-left:.35em solid var(--line);padding:.2em 1em;margin:1em 0}\
.verdict.v-cause{border-color:var(--cause)}.verdict.v-warning{border-color:var(--warn)}\
.cause{color:var(--cause)}.warning{color:var(--warn)}.info{color:var(--muted)}\
pre,code{background:var(--code);font-size:90%}pre{padding:1em;overflow-x:auto}\
table{border-collapse:collapse;font-size:85%;width:100%}\
th,td{border-bottom:1px solid var(--line);padding:.15em .5em;text-align:left;\
vertical-align:top}th{position:sticky;top:0;background:var(--bg)}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
details{margin:.6em 0}summary{cursor:pointer;font-weight:bold}\
.timeline{max-width:100%;font:11px system-ui,sans-serif}.timeline text{fill:var(--fg)}\
.timeline .axis{fill:var(--muted)}\
.run{fill:var(--run)}.sys{fill:var(--sys)}.d{fill:var(--d)}.usr{fill:var(--usr)}\
.moved{fill:var(--moved)}.idle{fill:var(--idle)}.retr{fill:var(--retr)}\
.track.stuck text{font-weight:bold;fill:var(--stuck)}\
.track.stuck rect{stroke:var(--stuck);stroke-width:1}\
.legend .k{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin:0 .2em}\
.legend .k.run{background:var(--run)}.legend .k.sys{background:var(--sys)}\
.legend .k.d{background:var(--d)}.legend .k.usr{background:var(--usr)}\
.legend .k.moved{background:var(--moved)}.legend .k.idle{background:var(--idle)}\
.legend .k.retr{background:var(--retr)}\
tr.stuck td{background:color-mix(in srgb,var(--stuck) 20%,transparent)}\
#filter{width:20em;padding:.3em;margin:.5em 0}.hidden{display:none}\
";

/// The filter box hides table rows without the text (and opens the sections with some); the
/// download link hands out the embedded document, as JSON or, when compressed, as .json.zst.
const SCRIPT: &str = "\
(function(){\
var f=document.getElementById('filter');\
if(f){f.addEventListener('input',function(){var q=f.value.toLowerCase();\
document.querySelectorAll('table.rows').forEach(function(t){var any=false;\
t.querySelectorAll('tbody tr').forEach(function(r){var on=!q||r.textContent.toLowerCase().indexOf(q)>=0;\
r.classList.toggle('hidden',!on);any=any||on;});\
var d=t.closest('details');if(d&&q){d.open=any;}});});}\
var a=document.getElementById('download');if(!a){return;}\
var j=document.getElementById('hangscope-document'),z=document.getElementById('hangscope-document-zst'),b;\
if(j){b=new Blob([j.textContent],{type:'application/json'});}\
else if(z){var s=atob(z.textContent.trim()),u=new Uint8Array(s.length);\
for(var i=0;i<s.length;i++){u[i]=s.charCodeAt(i);}b=new Blob([u],{type:'application/zstd'});}\
if(b){a.href=URL.createObjectURL(b);}\
})();";

pub fn render_html(doc: &Document) -> String {
    let snap = &doc.snapshot;
    let p = &snap.process;
    let mut out = String::new();
    let title = format!("hangscope: {} (pid {})", p.name.escaped(), p.pid);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{}</title>\n<style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    header(&mut out, doc);
    verdict(&mut out, doc);
    timeline::timelines(&mut out, doc);
    findings(&mut out, doc);
    out.push_str(
        "<h2>Tables</h2>\n<input id=\"filter\" type=\"search\" placeholder=\"Filter the rows \
         (a tid, an fd, a path, an address)\" aria-label=\"Filter the rows\">\n",
    );
    tables::all(&mut out, doc);
    stacks::section(&mut out, doc);
    embed(&mut out, doc);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

const PLAIN_START: &str = "<script type=\"application/json\" id=\"hangscope-document\">";
const ZST_START: &str = "<script type=\"application/zstd+base64\" id=\"hangscope-document-zst\">";

/// Why a page's embedded document could not be had back.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "an HTML page without a hangscope document in it: replay reads a page written with \
         --html"
    )]
    NoDocument,
    #[error("the page's embedded document is damaged: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the page's embedded document is damaged: {0}")]
    Zstd(#[from] std::io::Error),
    #[error("the page's document expands past --max-size {}", crate::human_bytes(*.0))]
    TooLarge(u64),
    #[error("the page's embedded document: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

/// The JSON document a page embeds (plain or compressed), for `replay`; at most `max` bytes
/// of it once expanded.
pub fn embedded_document(page: &str, max: u64) -> Result<String, EmbeddedError> {
    let inner = |start: &str| {
        page.find(start)
            .map(|i| &page[i + start.len()..])
            .and_then(|rest| rest.find("</script>").map(|end| &rest[..end]))
    };
    if let Some(json) = inner(PLAIN_START) {
        return Ok(json.to_string());
    }
    let Some(b64) = inner(ZST_START) else {
        return Err(EmbeddedError::NoDocument);
    };
    use base64::Engine;
    use std::io::Read;
    let z = base64::engine::general_purpose::STANDARD.decode(b64.trim())?;
    let mut json = Vec::new();
    zstd::stream::read::Decoder::new(z.as_slice())
        .and_then(|d| d.take(max.saturating_add(1)).read_to_end(&mut json))?;
    if json.len() as u64 > max {
        return Err(EmbeddedError::TooLarge(max));
    }
    Ok(String::from_utf8(json)?)
}

/// What, where, when and by what: the lines a ticket needs to place the page.
fn header(out: &mut String, doc: &Document) {
    let snap = &doc.snapshot;
    let p = &snap.process;
    let _ = writeln!(
        out,
        "<header><h1>{} <small>pid {}</small></h1>",
        esc(p.name.as_ref()),
        p.pid
    );
    let mut meta = Vec::new();
    if snap.taken_at_ms > 0 {
        meta.push(format!(
            "captured {}",
            esc(&crate::text::captured_at(snap.taken_at_ms, None))
        ));
    }
    if !snap.host.hostname.is_empty() {
        meta.push(format!(
            "on {} ({}, {})",
            esc(&snap.host.hostname),
            esc(&snap.host.kernel),
            esc(&snap.host.arch)
        ));
    }
    if let Some(w) = &snap.window {
        meta.push(format!(
            "watched {} ({} looks)",
            human_ms(w.duration_ms as f64),
            w.looks
        ));
    }
    if !doc.generator.is_empty() {
        meta.push(format!("by {}", esc(&doc.generator)));
    }
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", meta.join(" · "));
    if !p.cmdline.is_empty() {
        let args: Vec<&[u8]> = p.cmdline.iter().map(Text::as_bytes).collect();
        let cmd = Text::from_bytes(args.join(&b' '));
        let _ = writeln!(
            out,
            "<p class=\"meta\">target <code>{}</code></p>",
            esc(&cmd.escaped_cut(2048))
        );
    }
    out.push_str("</header>\n");
}

/// The verdict, the wait chain under it and the next step: once, at the top.
fn verdict(out: &mut String, doc: &Document) {
    let v = &doc.verdict;
    let (class, heading) = if v.cause_found {
        ("cause", "Verdict")
    } else if v.not_seen {
        ("warning", "Not seen")
    } else {
        ("", "Verdict")
    };
    let _ = writeln!(
        out,
        "<section class=\"verdict v-{class}\" id=\"verdict\"><h2 class=\"{class}\">{heading}</h2>\n\
         <p>{}</p>",
        esc(&v.summary)
    );
    if let Some(chain) = doc.chain.as_ref().filter(|c| c.hops.len() > 1) {
        // The target's own words are the verdict's; each process after it says its own.
        out.push_str("<h3>Wait chain</h3>\n<ol>\n");
        for (i, h) in chain.hops.iter().enumerate() {
            let words = if i == 0 {
                String::new()
            } else {
                format!(": {}", esc(&h.summary))
            };
            let _ = writeln!(
                out,
                "<li><b>{} {}</b>{words}</li>",
                esc(h.name.as_ref()),
                h.pid
            );
        }
        out.push_str("</ol>\n");
        if let hangscope_model::ChainEnd::Cycle { back_to } = chain.end {
            let _ = writeln!(
                out,
                "<p>The last waits on process {}: a cycle.</p>",
                chain.hops.get(back_to).map_or(0, |h| h.pid)
            );
        }
    }
    if !v.next_step.is_empty() {
        let _ = writeln!(out, "<p><b>Next:</b> {}</p>", esc(&v.next_step));
    }
    out.push_str("</section>\n");
}

/// Each finding with its evidence; the verdict's own words and step are not repeated, and
/// context findings have no step.
fn findings(out: &mut String, doc: &Document) {
    if doc.findings.is_empty() {
        return;
    }
    let v = &doc.verdict;
    let _ = writeln!(
        out,
        "<details open id=\"findings\"><summary>Findings ({})</summary>\n<ol>",
        doc.findings.len()
    );
    for (i, f) in doc.findings.iter().enumerate() {
        let class = match f.severity {
            Severity::Cause => "cause",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        let is_verdict = v.finding == Some(i);
        let mut subject = Vec::new();
        if let Some(tid) = f.subject.tid {
            let name = f
                .subject
                .thread_name
                .as_ref()
                .map(|n| format!(" ({})", esc(n)))
                .unwrap_or_default();
            subject.push(format!("thread {tid}{name}"));
        }
        if let Some(fd) = f.subject.fd {
            subject.push(format!("fd {fd}"));
        }
        if let Some(c) = &f.subject.connection {
            subject.push(esc(c));
        }
        let _ = write!(
            out,
            "<li><b class=\"{class}\">{}</b> {}",
            esc(f.cause.label()),
            subject.join(" · ")
        );
        if is_verdict {
            out.push_str(" <small>(the verdict above)</small>");
        } else {
            let _ = write!(out, "<p>{}</p>", esc(&f.summary));
        }
        out.push_str("<ul>\n");
        for e in &f.evidence {
            let _ = writeln!(
                out,
                "<li>{}: {} <small>({})</small></li>",
                esc(&e.label),
                esc(&e.value),
                esc(&e.source)
            );
        }
        for r in &f.ruled_out {
            let _ = writeln!(out, "<li>ruled out: {}</li>", esc(r));
        }
        out.push_str("</ul>");
        if !is_verdict && f.severity != Severity::Info && !f.next_step.is_empty() {
            let _ = write!(out, "<p><b>Next:</b> {}</p>", esc(&f.next_step));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol></details>\n");
}

/// The document itself, for tools and for `hangscope replay PAGE`, with the link to save it.
fn embed(out: &mut String, doc: &Document) {
    let json = crate::json::to_script_json(doc);
    let p = &doc.snapshot.process;
    let name = format!("hangscope-{}", p.pid);
    if json.len() <= EMBED_PLAIN_MAX {
        let _ = write!(
            out,
            "<p><a id=\"download\" download=\"{name}.json\" href=\"#\">Download the JSON \
             document</a> (read it with <code>hangscope replay</code> or jq).</p>\n\
             {PLAIN_START}{json}</script>\n"
        );
        return;
    }
    match zstd::encode_all(json.as_bytes(), 9) {
        Ok(z) => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(z);
            let _ = write!(
                out,
                "<p><a id=\"download\" download=\"{name}.json.zst\" href=\"#\">Download the JSON \
                 document</a> ({} compressed with zstd: <code>hangscope replay</code> reads it, \
                 and this page too; <code>zstd -d</code> gives the JSON).</p>\n\
                 <script type=\"application/zstd+base64\" \
                 id=\"hangscope-document-zst\">{b64}</script>\n",
                crate::human_bytes(json.len() as u64)
            );
        }
        // Compressing memory into memory does not fail; if it did, the page still has it all.
        Err(_) => {
            let _ = writeln!(out, "{PLAIN_START}{json}</script>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TextOptions, render_text};
    use hangscope_model::{Cause, Finding, Snapshot, Subject};

    #[test]
    fn escapes_and_embeds_the_document() {
        let mut snap = Snapshot::default();
        snap.process.name = "a<b>&\"c".into();
        snap.process.pid = 9;
        let doc = Document::new(
            "t",
            snap,
            vec![Finding {
                severity: Severity::Cause,
                cause: Cause::PeerSilent,
                summary: "Thread 1 waits for </script> 10.0.0.1:80".into(),
                subject: Subject::default(),
                evidence: vec![],
                ruled_out: vec![],
                next_step: "Look at 10.0.0.1".into(),
                ..Finding::default()
            }],
        );
        let html = render_html(&doc);
        assert!(html.contains("<title>hangscope: a&lt;b&gt;&amp;&quot;c (pid 9)</title>"));
        assert!(html.contains("<h2 class=\"cause\">Verdict</h2>"));
        assert!(html.contains("waits for &lt;/script&gt;"));
        assert_eq!(
            html.matches("</script>").count(),
            2,
            "only the real end tags: the document's and the page's script's"
        );
        let json = embedded_document(&html, 1 << 20).unwrap();
        assert!(!json.contains('<'), "{json}");
        assert_eq!(Document::from_json(&json).unwrap(), doc);
    }

    /// The verdict and its step once; no internal value ("next: None: ...") leaks; the
    /// timelines have a track per thread and per connection that has looks.
    #[test]
    fn verdict_once_timelines_per_thread_and_no_leaked_values() {
        use hangscope_model::{
            Activity, ConnectionLook, ConnectionWindow, InetSocket, Socket, SocketDetail,
            SocketFamily, Thread, ThreadLook, Window,
        };
        let mut snap = Snapshot::default();
        snap.process.pid = 9;
        snap.taken_at_ms = 1_796_138_548_500;
        snap.host.hostname = "db7".into();
        snap.window = Some(Window {
            looks: 3,
            duration_ms: 300,
        });
        let look = |at_ms, call: &str| ThreadLook {
            at_ms,
            state: "S".into(),
            call: call.into(),
            ..ThreadLook::default()
        };
        for tid in [9, 10, 11] {
            snap.threads.push(Thread {
                tid,
                name: format!("t{tid}").as_str().into(),
                state: "S".into(),
                activity: Some(Activity {
                    looks: vec![look(0, "poll"), look(150, "poll"), look(300, "poll")],
                    ..Activity::default()
                }),
                ..Thread::default()
            });
        }
        let sample = |at_ms, bytes| ConnectionLook {
            at_ms,
            bytes_received: Some(bytes),
            ..ConnectionLook::default()
        };
        snap.sockets.push(Socket {
            inode: 77,
            fds: vec![5],
            family: SocketFamily::Inet,
            detail: SocketDetail::Tcp(InetSocket {
                window: Some(Box::new(ConnectionWindow {
                    samples: vec![sample(0, 0), sample(150, 0), sample(300, 10)],
                    ..ConnectionWindow::default()
                })),
                ..InetSocket::default()
            }),
            source: "sock_diag".into(),
            not_found_reason: None,
            fds_changed: Vec::new(),
        });
        let finding = |severity, cause, summary: &str, next: &str| Finding {
            severity,
            cause,
            summary: summary.into(),
            subject: Subject {
                tid: Some(10),
                socket_inode: Some(77),
                ..Subject::default()
            },
            next_step: next.into(),
            ..Finding::default()
        };
        let doc = Document::new(
            "hangscope 0.1.0",
            snap,
            vec![
                finding(
                    Severity::Cause,
                    Cause::PeerSilent,
                    "Thread 10 waits.",
                    "Look at 7.",
                ),
                finding(
                    Severity::Info,
                    Cause::SameHostAlive,
                    "Others answer.",
                    "None: this rules out the host.",
                ),
            ],
        );
        let html = render_html(&doc);
        // What a reader sees: the page before the embedded document.
        let seen = &html[..html.find(PLAIN_START).unwrap()];
        assert_eq!(seen.matches("Thread 10 waits.").count(), 1, "{seen}");
        assert_eq!(seen.matches("Look at 7.").count(), 1, "{seen}");
        assert!(!seen.contains("None:"), "{seen}");
        assert!(html.contains("captured 2026-12-01 15:22:28 UTC"), "{html}");
        assert!(html.contains("on db7"), "{html}");
        let threads = html
            .split("data-kind=\"threads\"")
            .nth(1)
            .and_then(|s| s.split("</svg>").next())
            .unwrap();
        assert_eq!(threads.matches("<g class=\"track").count(), 3);
        assert_eq!(
            threads
                .matches("<g class=\"track stuck\" data-tid=\"10\"")
                .count(),
            1
        );
        let conns = html.split("data-kind=\"connections\"").nth(1).unwrap();
        assert!(conns.contains("<g class=\"track stuck\" data-inode=\"77\""));
        assert!(conns.contains("class=\"moved\"") && conns.contains("class=\"idle\""));
        assert!(html.contains("prefers-color-scheme:dark"));
        assert!(html.contains("id=\"filter\"") && html.contains("id=\"download\""));
    }

    /// A large document is embedded compressed, the tables are capped, and the page reads back.
    #[test]
    fn a_large_target_makes_a_small_page_that_reads_back() {
        let mut snap = Snapshot::default();
        snap.process.pid = 9;
        for n in 0..6000 {
            let mut f = hangscope_model::Fd::new(
                n,
                hangscope_model::FdKind::Regular,
                format!("/srv/data/volume-{}/chunk-{n:08}.dat", n % 16),
            );
            f.info = Some(Box::new(hangscope_model::FdInfo {
                flags_decoded: vec!["O_RDWR".into(), "O_LARGEFILE".into()],
                pos: n as u64 * 4096,
                ino: Some(1_000_000 + n as u64),
                ..hangscope_model::FdInfo::default()
            }));
            snap.fds.push(f);
        }
        let doc = Document::new("t", snap, vec![]);
        let json = crate::json::to_script_json(&doc);
        let html = render_html(&doc);
        assert!(json.len() > EMBED_PLAIN_MAX, "{} bytes", json.len());
        assert!(html.len() < 600 * 1024, "page of {} bytes", html.len());
        assert!(html.contains("hangscope-document-zst"));
        assert!(html.contains("… 4000 more in the embedded document"));
        let back = embedded_document(&html, 64 << 20).unwrap();
        assert_eq!(Document::from_json(&back).unwrap(), doc);
        assert!(
            matches!(
                embedded_document(&html, 1000),
                Err(EmbeddedError::TooLarge(1000))
            ),
            "bounded"
        );
    }

    #[test]
    fn a_process_not_seen_is_not_said_to_be_fine() {
        let mut snap = Snapshot::default();
        snap.process.pid = 9;
        let doc = Document::new(
            "t",
            snap,
            vec![Finding {
                severity: Severity::Warning,
                cause: Cause::NotVisible,
                summary: "Could not see inside process 9".into(),
                subject: Subject::default(),
                evidence: vec![],
                ruled_out: vec![],
                next_step: "Run as root".into(),
                ..Finding::default()
            }],
        );
        let html = render_html(&doc);
        assert!(html.contains("Not seen</h2>\n<p>Could not see inside process 9</p>"));
        assert!(!html.contains("Nothing looks stuck"));
        let text = render_text(
            &doc,
            &TextOptions {
                color: false,
                verbose: false,
                ..TextOptions::default()
            },
        );
        assert!(
            text.contains("NOT SEEN  Could not see inside process 9"),
            "{text}"
        );
        assert!(!text.contains("Nothing looks stuck"), "{text}");
    }
}
