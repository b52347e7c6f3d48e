//! `hangscope replay FILE` on a hostile file: the document reader, then everything replay does
//! with a document that parses (diagnosis, the text report plain and verbose, HTML, JSON).

#![no_main]

use hangscope_model::Document;
use hangscope_render::text::{TextOptions, render_text};

/// Larger inputs only slow the fuzzer down; sizes are replay's own concern.
const MAX_INPUT: usize = 256 * 1024;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut doc) = Document::from_json(text) else {
        return;
    };
    doc.findings = hangscope_diagnose::diagnose(&doc.snapshot);
    for verbose in [false, true] {
        let opts = TextOptions {
            color: verbose,
            verbose,
        };
        std::hint::black_box(render_text(&doc, &opts));
    }
    std::hint::black_box(hangscope_render::html::render_html(&doc));
    let mut json = Vec::new();
    let _ = hangscope_render::json::write_json(&doc, &mut json, false);
});
