//! Diagnosis and rendering on snapshots with extreme values: each number of the recorded
//! snapshots in turn set to 0, 1, u32::MAX, u64::MAX or -1 (where its type takes it). A
//! snapshot file can come from anywhere; nothing in it may panic hangscope (tests build with
//! overflow checks on, so an unchecked sum or difference fails here).

#![allow(clippy::unwrap_used)]

use hangscope_model::Document;
use hangscope_render::{TextOptions, html::render_html, render_text};
use serde_json::Value;

const FIXTURES: &[&str] = &[
    "seed-zbs-metad-peer-silent.json",
    "idle-server.json",
    "busy-echo-server.json",
];

/// Paths (as JSON pointers) of every number in `v`.
fn numbers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Number(_) => out.push(at),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                numbers(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                numbers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
}

#[test]
fn extreme_numbers_do_not_panic_diagnosis_or_rendering() {
    let extremes: [Value; 5] = [
        0.into(),
        1.into(),
        u32::MAX.into(),
        u64::MAX.into(),
        (-1).into(),
    ];
    let mut tried = 0;
    for name in FIXTURES {
        let path = format!(
            "{}/tests/fixtures/snapshots/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let base: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut paths = Vec::new();
        numbers(&base["snapshot"], "/snapshot".into(), &mut paths);
        assert!(!paths.is_empty());
        for p in &paths {
            for x in &extremes {
                let mut v = base.clone();
                *v.pointer_mut(p).unwrap() = x.clone();
                // Values the field's type cannot hold are refused by the reader: fine.
                let Ok(mut doc) = Document::from_json(&v.to_string()) else {
                    continue;
                };
                doc.findings = hangscope_diagnose::diagnose(&doc.snapshot);
                let _ = render_text(
                    &doc,
                    &TextOptions {
                        color: true,
                        verbose: true,
                        ..TextOptions::default()
                    },
                );
                let _ = render_text(&doc, &TextOptions::default());
                let _ = render_html(&doc);
                tried += 1;
            }
        }
    }
    assert!(tried > 1000, "only {tried} variants were readable");
}
