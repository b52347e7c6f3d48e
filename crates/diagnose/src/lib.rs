//! Diagnosis: rules over a snapshot, no live access, so every rule is tested on built or
//! recorded snapshots. Each rule lives in `rules/`, one file named after what it finds.

use hangscope_model::{Finding, Snapshot};

/// Runs every rule and ranks the findings: causes first, then warnings, then context.
pub fn diagnose(snap: &Snapshot) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    let _ = snap;
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}
