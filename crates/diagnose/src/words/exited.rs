//! The words of an exited process (`rules/exited.rs`).

use hangscope_model::Evidence;

use crate::facts::exited::Exited;
use crate::words::Words;

pub(crate) fn words(f: &Exited) -> Words {
    let parent = match &f.parent_name {
        Some(name) => format!("process {} ({name})", f.ppid),
        None => format!("process {}", f.ppid),
    };
    Words {
        summary: format!(
            "Process {} ({}) has exited: it is a zombie that its parent, {parent}, has not \
             reaped. It runs no code and answers nothing.",
            f.pid, f.name
        ),
        evidence: vec![Evidence::new(
            "state",
            format!("Z (zombie), parent {}", f.ppid),
            format!("/proc/{}/stat", f.pid),
        )],
        ruled_out: vec![],
        next_step: format!(
            "Look at the parent, {parent}: why it does not call wait() for its child \
             (hangscope {}); the exit status and any core dump tell why the process died.",
            f.ppid
        ),
    }
}
