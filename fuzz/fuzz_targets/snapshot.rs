//! `hangscope replay FILE` on a hostile file: the document reader, then everything replay does
//! with a document that parses (diagnosis, the text report plain and verbose, HTML, JSON).
//!
//! Byte mutations of JSON rarely keep it a document, so most of the mutations here are made on
//! the parsed JSON instead: a number becomes an extreme, a string a control sequence or a very
//! long one, an array is emptied or grown, a field dropped. The rest are libFuzzer's own, which
//! also keep exercising the reader on broken text.

#![no_main]

use hangscope_model::Document;
use hangscope_render::text::{TextOptions, render_text};
use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};
use serde_json::Value;

/// Larger inputs only slow the fuzzer down; sizes are replay's own concern.
const MAX_INPUT: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    // replay reads the file as UTF-8 text.
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
            ..TextOptions::default()
        };
        std::hint::black_box(render_text(&doc, &opts));
    }
    std::hint::black_box(hangscope_render::html::render_html(&doc));
    let mut json = Vec::new();
    let _ = hangscope_render::json::write_json(&doc, &mut json, false);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let mut rng = Rng(u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    if rng.below(4) == 0 {
        return fuzzer_mutate(data, size, max_size);
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&data[..size]) else {
        return fuzzer_mutate(data, size, max_size);
    };
    let nodes = count(&v);
    let mut pick = rng.below(nodes);
    mutate_nth(&mut v, &mut pick, &mut rng);
    match serde_json::to_vec(&v) {
        Ok(out) if out.len() <= max_size => {
            data[..out.len()].copy_from_slice(&out);
            out.len()
        }
        _ => fuzzer_mutate(data, size, max_size),
    }
});

/// xorshift64: the mutation must follow from `seed` alone, for libFuzzer to replay it.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// Mutates the `pick`-th node in pre-order.
fn mutate_nth(v: &mut Value, pick: &mut usize, rng: &mut Rng) -> bool {
    if *pick == 0 {
        mutate(v, rng);
        return true;
    }
    *pick -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| mutate_nth(c, pick, rng)),
        Value::Object(o) => o.values_mut().any(|c| mutate_nth(c, pick, rng)),
        _ => false,
    }
}

fn mutate(v: &mut Value, rng: &mut Rng) {
    match v {
        Value::Number(_) | Value::Null => {
            let numbers: [Value; 12] = [
                0.into(),
                1.into(),
                (-1).into(),
                i32::MAX.into(),
                i32::MIN.into(),
                u32::MAX.into(),
                i64::MAX.into(),
                i64::MIN.into(),
                u64::MAX.into(),
                1e300.into(),
                (-0.5).into(),
                Value::Null,
            ];
            *v = numbers[rng.below(numbers.len())].clone();
        }
        Value::String(s) => {
            let strings = [
                String::new(),
                "\u{1b}]0;pwned\u{7}".into(),
                "a\nb\r\tc\u{0}".into(),
                "<!--<script></script>".into(),
                "x".repeat(5000),
                "\u{202e}\u{fffd}é".into(),
                "-1".into(),
                "18446744073709551616".into(),
                format!("{s}{s}"),
            ];
            *s = strings[rng.below(strings.len())].clone();
        }
        Value::Bool(b) => *b = !*b,
        Value::Array(a) => match rng.below(4) {
            0 => a.clear(),
            1 if !a.is_empty() => {
                let i = rng.below(a.len());
                a.remove(i);
            }
            _ if !a.is_empty() => {
                let i = rng.below(a.len());
                let copies = 1 + rng.below(64);
                let item = a[i].clone();
                a.extend(std::iter::repeat_n(item, copies));
            }
            _ => a.push(Value::Null),
        },
        Value::Object(o) => {
            if !o.is_empty() {
                let key = o.keys().nth(rng.below(o.len())).cloned();
                if let Some(k) = key {
                    o.remove(&k);
                }
            }
        }
    }
}
