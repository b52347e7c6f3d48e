//! `--json` and `--save`: the one document, streamed to the writer.
//!
//! Streamed rather than built as a string: a 19,000-fd target makes a document of several
//! megabytes, and a growing string doubled the tool's peak memory. Compact by default, like
//! `ip -j`; `--pretty` indents it.
//!
//! serde_json escapes the C0 controls in strings; DEL, the C1 controls and the characters that
//! reorder or split a line (see `hangscope_model::text`) are escaped too, as `\u007f` etc., so
//! `--json` on a terminal cannot drive it either. It is the same JSON: a reader sees the same
//! strings.

use std::io::{self, Write};

use hangscope_model::Document;
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

pub fn write_json(doc: &Document, out: impl Write, pretty: bool) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    write_with(doc, &mut out, pretty, false)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The document as JSON that may sit inside an HTML script element: `<`, `>` and `&` are
/// escaped as well, so nothing in it can end the element or open a comment.
pub fn to_script_json(doc: &Document) -> String {
    let mut out = Vec::new();
    // Writing plain data with string keys to memory cannot fail.
    let _ = write_with(doc, &mut out, false, true);
    String::from_utf8(out).unwrap_or_default()
}

fn write_with(doc: &Document, out: impl Write, pretty: bool, html: bool) -> io::Result<()> {
    if pretty {
        let f = Safe {
            inner: PrettyFormatter::new(),
            html,
        };
        doc.serialize(&mut serde_json::Serializer::with_formatter(out, f))?;
    } else {
        let f = Safe {
            inner: CompactFormatter,
            html,
        };
        doc.serialize(&mut serde_json::Serializer::with_formatter(out, f))?;
    }
    Ok(())
}

/// A formatter that escapes what serde_json leaves raw; layout is the inner one's.
struct Safe<F> {
    inner: F,
    html: bool,
}

impl<F> Safe<F> {
    fn escapes(&self, c: char) -> bool {
        matches!(c,
            '\x7f' | '\u{80}'..='\u{9f}' | '\u{061c}' | '\u{200e}' | '\u{200f}'
            | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            || (self.html && matches!(c, '<' | '>' | '&'))
    }
}

impl<F: Formatter> Formatter for Safe<F> {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        // Every character escaped here is DEL or beyond ASCII, but for the HTML three.
        // Every key and value passes here (26 MB for a 19,000-fd target): the common case,
        // ASCII with no DEL, is told by the word-at-a-time `is_ascii` and a memchr.
        let plain = s.is_ascii()
            && !s.as_bytes().contains(&0x7f)
            && !(self.html && s.bytes().any(|b| matches!(b, b'<' | b'>' | b'&')));
        if plain {
            return w.write_all(s.as_bytes());
        }
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if self.escapes(c) {
                w.write_all(&s.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&s.as_bytes()[start..])
    }

    /// Measured values are said to the thousandth (a millisecond of an age in seconds, a
    /// microsecond of a time in milliseconds): `57.120000000000005` is binary noise, not data.
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        let rounded = (value * 1000.0).round() / 1000.0;
        self.inner
            .write_f64(w, if rounded.is_finite() { rounded } else { value })
    }
    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::Snapshot;

    #[test]
    fn compact_and_pretty_read_back_the_same() {
        let mut snap = Snapshot::default();
        snap.process.pid = 7;
        let doc = Document::new("t", snap, vec![]);
        let mut compact = Vec::new();
        write_json(&doc, &mut compact, false).unwrap();
        let mut pretty = Vec::new();
        write_json(&doc, &mut pretty, true).unwrap();
        assert_eq!(compact.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(pretty.len() > compact.len());
        let a = Document::from_json(std::str::from_utf8(&compact).unwrap()).unwrap();
        let b = Document::from_json(std::str::from_utf8(&pretty).unwrap()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, doc);
    }

    #[test]
    fn escapes_what_a_terminal_or_a_script_element_would_act_on() {
        let mut snap = Snapshot::default();
        snap.process.name = "a\x1b\x7f\u{9b}\u{202e}\u{2028}</script><!--&".into();
        let doc = Document::new("t", snap, vec![]);
        for pretty in [false, true] {
            let mut out = Vec::new();
            write_json(&doc, &mut out, pretty).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains(r#""a\u001b\u007f\u009b\u202e\u2028</script><!--&""#),
                "{text}"
            );
            assert_eq!(Document::from_json(&text).unwrap(), doc);
        }
        let script = to_script_json(&doc);
        assert!(
            script.contains(r#"\u003c/script\u003e\u003c!--\u0026"#),
            "{script}"
        );
        assert!(!script.contains(['<', '>', '&']));
        assert_eq!(Document::from_json(&script).unwrap(), doc);
    }

    #[test]
    fn measured_floats_are_said_to_the_thousandth() {
        let mut snap = Snapshot::default();
        snap.process.age_s = Some(57.120000000000005);
        snap.threads.push(hangscope_model::Thread {
            last_ran_ms_ago: Some(0.000_4),
            ..Default::default()
        });
        let doc = Document::new("t", snap, vec![]);
        let mut out = Vec::new();
        write_json(&doc, &mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r#""age_s":57.12,"#), "{text}");
        assert!(text.contains(r#""last_ran_ms_ago":0.0"#), "{text}");
        assert!(!text.contains("0000"), "{text}");
    }
}
