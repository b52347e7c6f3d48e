//! The NOT READ section: what could not be read, why, and what would allow it.

use std::fmt::Write;

use hangscope_model::Snapshot;

use super::Style;

pub(super) fn gaps(out: &mut String, snap: &Snapshot, st: &Style) {
    if snap.gaps.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("NOT READ"));
    for g in &snap.gaps {
        let needs = g
            .needs
            .as_ref()
            .map(|n| format!("needs {}", st.show(n)))
            .unwrap_or_default();
        let detail = st.show(&g.detail);
        let paren = match (detail.is_empty(), needs.is_empty()) {
            (true, true) => String::new(),
            (true, false) => format!(" ({needs})"),
            (false, true) => format!(" ({detail})"),
            (false, false) => format!(" ({detail}; {needs})"),
        };
        let _ = writeln!(out, "  {}: {}{paren}", st.show(&g.what), g.reason.as_str());
    }
}
