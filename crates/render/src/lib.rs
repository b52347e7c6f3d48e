//! Rendering: the snapshot and its findings as text for a person, JSON for a program, HTML for
//! a ticket. Renderers only format; they never read the system.

pub mod html;
pub mod json;
mod table;
pub mod text;

pub use text::{TextOptions, render_text};

/// Human durations: "850 ms", "7.9 s", "3 min 20 s", "2 h 5 min".
pub fn human_ms(ms: f64) -> String {
    if ms < 0.0 {
        return "?".into();
    }
    if ms < 1000.0 {
        return format!("{} ms", ms.round() as u64);
    }
    let s = ms / 1000.0;
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let s = s.round() as u64;
    if s < 3600 {
        return format!("{} min {} s", s / 60, s % 60);
    }
    if s < 86400 {
        return format!("{} h {} min", s / 3600, (s % 3600) / 60);
    }
    format!("{} d {} h", s / 86400, (s % 86400) / 3600)
}

/// Human sizes with lsof's habit of exact bytes below a KiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_ms(850.0), "850 ms");
        assert_eq!(human_ms(7878.0), "7.9 s");
        assert_eq!(human_ms(200_000.0), "3 min 20 s");
        assert_eq!(human_ms(7_500_000.0), "2 h 5 min");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(33), "33 B");
        assert_eq!(human_bytes(7_907_320), "7.5 MiB");
    }
}
