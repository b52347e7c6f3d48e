//! Exited: the process is a zombie (state Z in /proc/PID/stat). It does not hang — it is dead,
//! and its parent has not collected its exit status (wait4). Whatever waits for it, a client or
//! a supervisor, waits for nothing; the parent is where to look.

use hangscope_model::{Cause, Next, Severity, Subject};

use crate::Ctx;
use crate::facts::RuleFacts;
use crate::facts::exited::Exited;

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Exited> {
    let p = &ctx.snap.process;
    if p.state != "Z" {
        return vec![];
    }
    vec![Exited {
        pid: p.pid,
        name: p.name.clone(),
        ppid: p.ppid,
        parent_name: p.parent_name.clone(),
    }]
}

impl RuleFacts for Exited {
    const RULE: &'static str = "exited";

    fn cause(&self) -> Cause {
        Cause::Exited
    }

    fn severity(&self) -> Severity {
        Severity::Cause
    }

    fn stuck_ms(&self) -> u64 {
        0
    }

    fn subject(&self) -> Subject {
        Subject::default()
    }

    fn next(&self) -> Option<Next> {
        Some(Next::process(self.ppid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Finding, NextKind};

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

    #[test]
    fn a_zombie_names_its_parent() {
        let mut snap = base(700, "worker");
        snap.process.state = "Z".into();
        snap.process.ppid = 650;
        snap.process.parent_name = Some("supervisor".into());
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.cause, Cause::Exited);
        assert_eq!(
            f.summary,
            "Process 700 (worker) has exited: it is a zombie that its parent, process 650 \
             (supervisor), has not reaped. It runs no code and answers nothing."
        );
        assert!(f.next_step.contains("hangscope 650"));
    }

    #[test]
    fn facts_name_the_parent_and_next_is_it() {
        let mut snap = base(700, "worker");
        snap.process.state = "Z".into();
        snap.process.ppid = 650;
        snap.process.parent_name = Some("supervisor".into());
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.rule, "exited");
        assert_eq!(f.facts["pid"], 700);
        assert_eq!(f.facts["name"], "worker");
        assert_eq!(f.facts["ppid"], 650);
        assert_eq!(f.facts["parent_name"], "supervisor");
        let next = f.next.as_ref().unwrap();
        assert_eq!((next.kind, next.pid), (NextKind::Process, Some(650)));
    }

    #[test]
    fn a_live_process_is_not_exited() {
        let mut snap = base(700, "worker");
        snap.process.state = "S".into();
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
