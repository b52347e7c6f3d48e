//! The words of a process hangscope could not see inside (`rules/not_visible.rs`).

use hangscope_model::Evidence;

use crate::facts::not_visible::{NotVisible, Part, Unseen};
use crate::words::Words;

pub(crate) fn words(f: &NotVisible) -> Words {
    let parts: Vec<&str> = f
        .unseen
        .iter()
        .map(|u| match u.part {
            Part::FdTable => "its fd table",
            Part::Syscalls => "what its threads wait in",
        })
        .collect();
    // The fd table's needs name the most (both checks), so they lead.
    let needs = f
        .unseen
        .iter()
        .find_map(|u| u.needs.as_deref())
        .unwrap_or("root");
    Words {
        summary: format!(
            "Could not see inside process {} ({}): {} could not be read (permission denied), \
             so this report cannot tell whether it is stuck; finding nothing here does not mean \
             it is healthy. Missing: {needs}.",
            f.pid,
            f.name,
            parts.join(" and ")
        ),
        evidence: f
            .unseen
            .iter()
            .map(|u| Evidence::new("not readable", refusal(u), u.what.clone()))
            .collect(),
        ruled_out: vec![],
        next_step: format!(
            "Run hangscope again with that privilege, e.g. as root: sudo hangscope {}.",
            f.pid
        ),
    }
}

/// The error as the OS gave it; "permission denied (os error 13)" where the gap kept only its
/// number (the detail would have repeated the reason).
fn refusal(u: &Unseen) -> String {
    match (u.detail.is_empty(), u.errno) {
        (false, _) => u.detail.clone(),
        (true, Some(n)) => format!("permission denied (os error {n})"),
        (true, None) => "permission denied".to_string(),
    }
}
