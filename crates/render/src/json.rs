//! `--json` and `--save`: the one document, pretty-printed.

use hangscope_model::Document;

pub fn render_json(doc: &Document) -> String {
    let mut s = doc.to_json_pretty();
    s.push('\n');
    s
}
