//! Child wait: a thread waits in wait4/waitid for a child to exit. That is how a shell, a
//! supervisor or a job runner spends its life, so alone it is context, not a cause; but in a
//! wait chain it is the edge from a process that holds something (a lock, a connection) to
//! the child it waits for, which is where the chain goes next.
//!
//! Facts: the thread's syscall (/proc/PID/task/TID/syscall, its pid argument) and the
//! children it can mean (/proc/PID/task/TID/children, states from their stat).

use hangscope_model::{Cause, Child, Next, Severity, Subject, WaitObject};

use crate::Ctx;
use crate::facts::child_wait::ChildWait;
use crate::facts::{RuleFacts, ThreadRef};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<ChildWait> {
    let snap = ctx.snap;
    let pid = snap.process.pid;
    snap.threads
        .iter()
        .filter_map(|t| {
            let s = t.syscall.as_ref()?;
            let waits_for = s.waits_on.iter().find_map(|w| match w {
                WaitObject::Process { pid } => Some(*pid),
                _ => None,
            })?;
            // Only children the collector found for this wait; none means none to follow.
            let children: Vec<Child> = snap
                .process
                .children
                .iter()
                .filter(|c| waits_for <= 0 || c.pid == waits_for)
                .cloned()
                .collect();
            if children.is_empty() {
                return None;
            }
            Some(ChildWait {
                pid,
                waiter: ThreadRef::of(t),
                syscall: s.name.clone(),
                waits_for,
                children,
                blocked_ms: t.activity.as_ref().and_then(|a| a.blocked_at_least_ms),
            })
        })
        .collect()
}

impl RuleFacts for ChildWait {
    const RULE: &'static str = "child_wait";

    fn cause(&self) -> Cause {
        Cause::ChildWait
    }

    /// Waiting for a child is what parents do; the child is where a chain goes on.
    fn severity(&self) -> Severity {
        Severity::Info
    }

    fn stuck_ms(&self) -> u64 {
        self.blocked_ms.unwrap_or(0)
    }

    fn subject(&self) -> Subject {
        self.waiter.subject()
    }

    fn next(&self) -> Option<Next> {
        self.child().map(|c| Next::process(c.pid))
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

    fn waiting(pid_arg: i32, children: &[(i32, &str)]) -> hangscope_model::Snapshot {
        let mut snap = base(500, "runner");
        snap.threads = vec![thread(
            500,
            "runner",
            "wait4",
            vec![WaitObject::Process { pid: pid_arg }],
            Some(5000),
        )];
        snap.process.children = children
            .iter()
            .map(|&(pid, state)| Child {
                pid,
                name: "job".into(),
                state: state.into(),
            })
            .collect();
        snap
    }

    #[test]
    fn a_wait_for_any_child_points_at_the_one_alive() {
        let snap = waiting(-1, &[(501, "Z"), (502, "S")]);
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Info);
        assert_eq!(found[0].next, Some(Next::process(502)));
        assert!(found[0].summary.contains("502"), "{}", found[0].summary);
    }

    #[test]
    fn several_children_alive_name_no_one_unless_one_is_waited_for() {
        let snap = waiting(-1, &[(501, "S"), (502, "S")]);
        assert_eq!(find(&Ctx::new(&snap))[0].next, None);
        let snap = waiting(502, &[(502, "S")]);
        assert_eq!(find(&Ctx::new(&snap))[0].next, Some(Next::process(502)));
    }

    #[test]
    fn no_child_read_no_finding() {
        let snap = waiting(-1, &[]);
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
