//! Not visible: the kernel refused the fd table or what the threads wait in. Every other rule
//! reads those, so finding nothing then says nothing about the process; the report must not
//! read "Nothing looks stuck". The gaps carry the privilege that was missing (collect computes
//! it from the credentials of both processes).

use hangscope_model::{Cause, Evidence, Finding, Gap, GapReason, Severity, Subject};

use crate::{Ctx, Found};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let p = &ctx.snap.process;
    let denied = |g: &&Gap| g.reason == GapReason::Permission;
    let fd_table = ctx
        .snap
        .gaps
        .iter()
        .filter(denied)
        .find(|g| g.what == format!("/proc/{}/fd", p.pid));
    let syscalls =
        ctx.snap.gaps.iter().filter(denied).find(|g| {
            g.what.starts_with("syscall of ") || g.what == format!("/proc/{}/task", p.pid)
        });
    let unseen: Vec<(&Gap, &str)> = [
        fd_table.map(|g| (g, "its fd table")),
        syscalls.map(|g| (g, "what its threads wait in")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if unseen.is_empty() {
        return vec![];
    }
    let parts: Vec<&str> = unseen.iter().map(|(_, words)| *words).collect();
    let needs: Vec<&str> = unseen
        .iter()
        .filter_map(|(g, _)| g.needs.as_deref())
        .collect();
    // The fd table's needs name the most (both checks), so they lead.
    let first_needs = needs.first().copied().unwrap_or("root");
    vec![Found {
        finding: Finding {
            severity: Severity::Warning,
            cause: Cause::NotVisible,
            summary: format!(
                "Could not see inside process {} ({}): {} could not be read (permission \
                 denied), so this report cannot tell whether it is stuck; finding nothing here \
                 does not mean it is healthy. Missing: {first_needs}.",
                p.pid,
                p.name,
                parts.join(" and ")
            ),
            subject: Subject::default(),
            evidence: unseen
                .iter()
                .map(|(g, _)| Evidence::new("not readable", g.detail.clone(), g.what.clone()))
                .collect(),
            ruled_out: vec![],
            next_step: format!(
                "Run hangscope again with that privilege, e.g. as root: sudo hangscope {}.",
                p.pid
            ),
            ..Finding::default()
        },
        stuck_ms: 0,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn a_denied_fd_table_is_not_a_healthy_process() {
        let mut snap = base(700, "worker");
        snap.gaps.push(
            Gap::new(
                "/proc/700/fd",
                GapReason::Permission,
                "Permission denied (os error 13)",
            )
            .needing("root, or CAP_DAC_READ_SEARCH (the entry is for uid 0 only)"),
        );
        snap.gaps.push(Gap::new(
            "syscall of 1 threads",
            GapReason::Permission,
            "Permission denied (os error 13)",
        ));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0].finding;
        assert_eq!(f.cause, Cause::NotVisible);
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary
                .contains("its fd table and what its threads wait in")
                && f.summary.contains("CAP_DAC_READ_SEARCH"),
            "{}",
            f.summary
        );
        assert_eq!(f.evidence.len(), 2);
    }

    #[test]
    fn other_gaps_do_not_make_it_unseen() {
        let mut snap = base(700, "worker");
        snap.gaps.push(Gap::new(
            "kernel stacks of 3 threads",
            GapReason::Permission,
            "Permission denied (os error 13)",
        ));
        snap.gaps
            .push(Gap::new("/proc/700/fd", GapReason::Deadline, "not read"));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
