//! The user-space stacks on the page: each distinct stack once, with the threads that share it
//! (their count and tids) and, for `--stacks=stop`, the longest stop among them; its frames
//! one per line, innermost first. Function, file and module names come from the target's
//! binaries: every one is escaped.

use std::fmt::Write;

use hangscope_model::{Document, UserStack};

use super::{TABLE_ROWS_MAX, esc};

/// Frames listed per stack; the rest are counted.
const FRAMES_MAX: usize = 64;

pub(super) fn section(out: &mut String, doc: &Document) {
    let mut distinct: Vec<(&UserStack, Vec<i32>, Option<u64>)> = Vec::new();
    for t in &doc.snapshot.threads {
        let Some(s) = t.user_stack.as_ref().filter(|s| !s.frames.is_empty()) else {
            continue;
        };
        match distinct.iter_mut().find(|(d, ..)| d.frames == s.frames) {
            Some((_, tids, us)) => {
                tids.push(t.tid);
                *us = (*us).max(s.stopped_us);
            }
            None => distinct.push((s, vec![t.tid], s.stopped_us)),
        }
    }
    if distinct.is_empty() {
        return;
    }
    // The stacks most threads share first: a pool's wait is what the reader looks for.
    distinct.sort_by_key(|(_, tids, _)| std::cmp::Reverse(tids.len()));
    let _ = write!(
        out,
        "<details id=\"stacks\"><summary>User-space stacks ({} distinct)</summary>\n\
         <table class=\"rows\"><thead><tr><th>threads</th><th>frames, innermost first</th>\
         </tr></thead><tbody>\n",
        distinct.len()
    );
    for (s, tids, us) in distinct.iter().take(TABLE_ROWS_MAX) {
        let shown: Vec<String> = tids.iter().take(32).map(i32::to_string).collect();
        let more = if tids.len() > shown.len() { " …" } else { "" };
        let stop = match us {
            Some(us) => format!("<br>stopped ≤{us} µs"),
            None => String::new(),
        };
        let _ = write!(
            out,
            "<tr><td>{} × {}{more}{stop}</td><td><pre>",
            tids.len(),
            shown.join(", ")
        );
        for f in s.frames.iter().take(FRAMES_MAX) {
            let inl = if f.inlined { " (inlined)" } else { "" };
            let _ = writeln!(out, "{}{inl}", esc(&f.short()));
        }
        if s.frames.len() > FRAMES_MAX {
            let _ = writeln!(out, "… {} more frames", s.frames.len() - FRAMES_MAX);
        }
        if let Some(why) = &s.incomplete {
            let _ = writeln!(out, "(stopped: {})", esc(why));
        }
        out.push_str("</pre></td></tr>\n");
    }
    out.push_str("</tbody></table></details>\n");
}

#[cfg(test)]
mod tests {
    use hangscope_model::{Frame, Snapshot, Text, Thread};

    use super::*;

    fn thread(tid: i32, function: &str) -> Thread {
        Thread {
            tid,
            user_stack: Some(UserStack {
                frames: vec![Frame {
                    function: Some(Text::from(function)),
                    module: Some(Text::from("/srv/app")),
                    ..Frame::default()
                }],
                ..UserStack::default()
            }),
            ..Thread::default()
        }
    }

    #[test]
    fn a_shared_stack_once_with_its_count_and_names_escaped() {
        let snap = Snapshot {
            threads: vec![
                thread(11, "wait<int>()"),
                thread(12, "wait<int>()"),
                thread(13, "other</pre><script>"),
            ],
            ..Snapshot::default()
        };
        let doc = Document::new("t", snap, vec![]);
        let mut out = String::new();
        section(&mut out, &doc);
        assert!(out.contains("(2 distinct)"), "{out}");
        assert_eq!(out.matches("wait&lt;int&gt;()").count(), 1, "{out}");
        assert!(out.contains("2 × 11, 12"), "{out}");
        assert!(out.contains("1 × 13"), "{out}");
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("other&lt;/pre&gt;&lt;script&gt;"), "{out}");
    }
}
