//! Rendering: the snapshot and its findings as text for a person, JSON for a program, HTML for
//! a ticket. Renderers only format; they never read the system.

pub mod html;
pub mod json;
mod table;
pub mod text;

pub use text::{TextOptions, render_text};

/// Human durations: "850 ms", "7.9 s", "3 min 20 s", "2 h 5 min" (the workspace's one
/// formatter, `hangscope_model::units`).
pub fn human_ms(ms: f64) -> String {
    hangscope_model::units::duration_ms(ms)
}

/// Human sizes with lsof's habit of exact bytes below a KiB.
pub fn human_bytes(n: u64) -> String {
    hangscope_model::units::bytes_short(n)
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
