//! The words of a wait for a child (`rules/child_wait.rs`).

use hangscope_model::Evidence;

use crate::facts::child_wait::ChildWait;
use crate::words::Words;

pub(crate) fn words(f: &ChildWait) -> Words {
    let who = format!("Thread {} ({})", f.waiter.tid, f.waiter.name);
    let how_long = f
        .blocked_ms
        .map(|ms| format!(" for at least {}", crate::wording::duration(ms)))
        .unwrap_or_default();
    let children: Vec<String> = f
        .children
        .iter()
        .map(|c| format!("{} ({}, state {})", c.pid, c.name, c.state))
        .collect();
    let (summary, next_step) = match f.child() {
        Some(c) => (
            format!(
                "{who} has waited{how_long} in {}() for its child, process {} ({}), to exit.",
                f.syscall, c.pid, c.name
            ),
            format!("Look at the child: hangscope {}.", c.pid),
        ),
        None => (
            format!(
                "{who} has waited{how_long} in {}() for one of its children to exit: {}.",
                f.syscall,
                children.join(", ")
            ),
            "Look at the children it waits for: hangscope PID for each.".to_string(),
        ),
    };
    Words {
        summary,
        evidence: vec![
            Evidence::new(
                "waits for",
                match f.waits_for {
                    -1 => "any child".to_string(),
                    0 => "any child in its process group".to_string(),
                    p if p < 0 => format!("any child in process group {}", -p),
                    p => format!("child {p}"),
                },
                format!("/proc/{}/task/{}/syscall", f.pid, f.waiter.tid),
            ),
            Evidence::new(
                "children",
                children.join(", "),
                format!("/proc/{}/task/*/children", f.pid),
            ),
        ],
        ruled_out: vec![],
        next_step,
    }
}
