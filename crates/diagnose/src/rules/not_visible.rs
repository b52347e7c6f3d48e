//! Not visible: the kernel refused the fd table or what the threads wait in. Every other rule
//! reads those, so finding nothing then says nothing about the process; the report must not
//! read "Nothing looks stuck". The gaps carry the privilege that was missing (collect computes
//! it from the credentials of both processes). Words in `words/not_visible.rs`.

use hangscope_model::{Cause, Gap, GapReason, GapTopic, Next, Severity, Subject};

use crate::Ctx;
use crate::facts::RuleFacts;
use crate::facts::not_visible::{NotVisible, Part, Unseen};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<NotVisible> {
    let p = &ctx.snap.process;
    let denied = |g: &&Gap| g.reason == GapReason::Permission;
    let fd_table = ctx
        .snap
        .gaps
        .iter()
        .filter(denied)
        .find(|g| g.topic == Some(GapTopic::FdTable));
    let syscalls = ctx.snap.gaps.iter().filter(denied).find(|g| {
        matches!(
            g.topic,
            Some(GapTopic::ThreadSyscalls | GapTopic::ThreadList)
        )
    });
    let unseen: Vec<Unseen> = [
        fd_table.map(|g| (g, Part::FdTable)),
        syscalls.map(|g| (g, Part::Syscalls)),
    ]
    .into_iter()
    .flatten()
    .map(|(g, part)| Unseen {
        part,
        what: g.what.clone(),
        detail: g.detail.clone(),
        errno: g.errno,
        needs: g.needs.clone(),
    })
    .collect();
    if unseen.is_empty() {
        return vec![];
    }
    vec![NotVisible {
        pid: p.pid,
        name: p.name.clone(),
        unseen,
    }]
}

impl RuleFacts for NotVisible {
    const RULE: &'static str = "not_visible";

    fn cause(&self) -> Cause {
        Cause::NotVisible
    }

    fn severity(&self) -> Severity {
        Severity::Warning
    }

    fn stuck_ms(&self) -> u64 {
        0
    }

    fn subject(&self) -> Subject {
        Subject::default()
    }

    fn next(&self) -> Option<Next> {
        Some(Next::command(format!("sudo hangscope {}", self.pid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::Finding;

    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

    #[test]
    fn a_denied_fd_table_is_not_a_healthy_process() {
        let mut snap = base(700, "worker");
        snap.gaps.push(
            Gap::new(
                "/proc/700/fd",
                GapReason::Permission,
                "Permission denied (os error 13)",
            )
            .needing("root, or CAP_DAC_READ_SEARCH (the entry is for uid 0 only)")
            .about(GapTopic::FdTable),
        );
        snap.gaps.push(
            Gap::new(
                "syscall of 1 threads",
                GapReason::Permission,
                "Permission denied (os error 13)",
            )
            .about(GapTopic::ThreadSyscalls),
        );
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.facts["unseen"][0]["part"], "fd_table");
        assert_eq!(
            f.next.as_ref().and_then(|n| n.command.as_deref()),
            Some("sudo hangscope 700")
        );
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
        snap.gaps.push(
            Gap::new("/proc/700/fd", GapReason::Deadline, "not read").about(GapTopic::FdTable),
        );
        // The topic, not the words: a refused read that names the fd table but is not of it.
        snap.gaps.push(Gap::new(
            "/proc/700/fd",
            GapReason::Permission,
            "Permission denied (os error 13)",
        ));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
