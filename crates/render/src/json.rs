//! `--json` and `--save`: the one document, streamed to the writer.
//!
//! Streamed rather than built as a string: a 19,000-fd target makes a document of several
//! megabytes, and a growing string doubled the tool's peak memory. Compact by default, like
//! `ip -j`; `--pretty` indents it.

use std::io::{self, Write};

use hangscope_model::Document;

pub fn write_json(doc: &Document, out: impl Write, pretty: bool) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    if pretty {
        serde_json::to_writer_pretty(&mut out, doc)?;
    } else {
        serde_json::to_writer(&mut out, doc)?;
    }
    out.write_all(b"\n")?;
    out.flush()
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
}
