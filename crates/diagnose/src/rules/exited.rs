//! Exited: the process is a zombie (state Z in /proc/PID/stat). It does not hang — it is dead,
//! and its parent has not collected its exit status (wait4). Whatever waits for it, a client or
//! a supervisor, waits for nothing; the parent is where to look.

use hangscope_model::{Cause, Evidence, Finding, Severity, Subject};

use crate::{Ctx, Found};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let p = &ctx.snap.process;
    if p.state != "Z" {
        return vec![];
    }
    let parent = match &p.parent_name {
        Some(name) => format!("process {} ({name})", p.ppid),
        None => format!("process {}", p.ppid),
    };
    vec![Found {
        finding: Finding {
            severity: Severity::Cause,
            cause: Cause::Exited,
            summary: format!(
                "Process {} ({}) has exited: it is a zombie that its parent, {parent}, has not \
                 reaped. It runs no code and answers nothing.",
                p.pid, p.name
            ),
            subject: Subject::default(),
            evidence: vec![Evidence::new(
                "state",
                format!("Z (zombie), parent {}", p.ppid),
                format!("/proc/{}/stat", p.pid),
            )],
            ruled_out: vec![],
            next_step: format!(
                "Look at the parent, {parent}: why it does not call wait() for its child \
                 (hangscope {}); the exit status and any core dump tell why the process died.",
                p.ppid
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
    fn a_zombie_names_its_parent() {
        let mut snap = base(700, "worker");
        snap.process.state = "Z".into();
        snap.process.ppid = 650;
        snap.process.parent_name = Some("supervisor".into());
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0].finding;
        assert_eq!(f.cause, Cause::Exited);
        assert_eq!(
            f.summary,
            "Process 700 (worker) has exited: it is a zombie that its parent, process 650 \
             (supervisor), has not reaped. It runs no code and answers nothing."
        );
        assert!(f.next_step.contains("hangscope 650"));
    }

    #[test]
    fn a_live_process_is_not_exited() {
        let mut snap = base(700, "worker");
        snap.process.state = "S".into();
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
