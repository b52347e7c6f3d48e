//! `--html FILE`: one self-contained page to attach to a ticket — the verdict and findings as
//! HTML, then the full text report, then the JSON document for tools.
//!
//! Values are escaped twice over: by the text rule (`hangscope_model::text`, so a control
//! character is visible as `\e` rather than hidden) and then for HTML. The embedded JSON has
//! `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`-style escapes: still the same JSON, and no
//! `</script>` or `<!--` can end or hide the element early.

use std::fmt::Write;

use hangscope_model::{Document, Escape, Severity};

use crate::{TextOptions, render_text};

fn esc(s: &str) -> String {
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

pub fn render_html(doc: &Document) -> String {
    let p = &doc.snapshot.process;
    let mut out = String::new();
    let title = format!("hangscope: {} (pid {})", p.name.escaped(), p.pid);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title>\n<style>\
         body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}\
         pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:90%}}\
         .cause{{color:#b00020}} .warning{{color:#8a5a00}} .info{{color:#555}}\
         dt{{font-weight:bold;margin-top:1em}} dd{{margin-left:1.5em}}\
         </style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let v = &doc.verdict;
    let heading = if v.cause_found {
        "<h2 class=\"cause\">Verdict</h2>"
    } else if v.not_seen {
        "<h2 class=\"warning\">Not seen</h2>"
    } else {
        "<h2>Verdict</h2>"
    };
    let _ = writeln!(out, "{heading}\n<p>{}</p>", esc(&v.summary));
    if let Some(chain) = doc.chain.as_ref().filter(|c| c.hops.len() > 1) {
        // The target's own words are the verdict's; each process after it says its own.
        out.push_str("<h3>Wait chain</h3>\n<ol>\n");
        for h in &chain.hops {
            let _ = writeln!(
                out,
                "<li><b>{} {}</b>: {}</li>",
                esc(h.name.as_ref()),
                h.pid,
                esc(&h.summary)
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
    if !doc.findings.is_empty() {
        out.push_str("<h2>Findings</h2>\n<dl>\n");
        for (i, f) in doc.findings.iter().enumerate() {
            let class = match f.severity {
                Severity::Cause => "cause",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let _ = write!(
                out,
                "<dt class=\"{class}\">{}. {}</dt>\n<dd>{}<ul>\n",
                i + 1,
                esc(f.cause.label()),
                esc(&f.summary)
            );
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
            let _ = writeln!(out, "</ul>next: {}</dd>", esc(&f.next_step));
        }
        out.push_str("</dl>\n");
    }
    let text = render_text(
        doc,
        &TextOptions {
            color: false,
            verbose: true,
            ..TextOptions::default()
        },
    );
    let _ = write!(out, "<h2>Report</h2>\n<pre>{}</pre>\n", esc(&text));
    let json = crate::json::to_script_json(doc);
    let _ = write!(
        out,
        "<script type=\"application/json\" id=\"hangscope-document\">{json}</script>\n</body></html>\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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
            1,
            "only the real end tag"
        );
        let start = html.find("id=\"hangscope-document\">").unwrap() + 24;
        let end = html.rfind("</script>").unwrap();
        let json = &html[start..end];
        assert!(!json.contains('<'), "{json}");
        assert_eq!(Document::from_json(json).unwrap(), doc);
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
