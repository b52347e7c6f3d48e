//! The words of a process held from running (`rules/stopped.rs`).

use hangscope_model::{Evidence, Tracer};

use crate::facts::stopped::{Hold, Stopped, thaw_command};
use crate::wording::duration;
use crate::words::Words;

fn tracer_words(t: &Tracer) -> String {
    match &t.name {
        Some(name) => format!("process {} ({name})", t.pid),
        None => format!("process {}", t.pid),
    }
}

pub(crate) fn words(f: &Stopped) -> Words {
    let who = format!("Process {} ({})", f.pid, f.name);
    let for_how_long = match f.not_run_ms {
        Some(ms) => format!(" and has not run for {}", duration(ms)),
        None => String::new(),
    };
    let parent = match &f.parent_name {
        Some(name) => format!("process {} ({name})", f.ppid),
        None => format!("process {}", f.ppid),
    };
    let mut evidence = vec![Evidence::new(
        "state",
        match f.state.as_str() {
            "T" => "T (stopped)".to_string(),
            "t" => "t (tracing stop)".to_string(),
            s => s.to_string(),
        },
        format!("/proc/{}/stat", f.pid),
    )];
    if f.threads > 0 {
        evidence.push(Evidence::new(
            "threads",
            format!("{} of {} in a stop", f.threads_stopped, f.threads),
            format!("/proc/{}/task/*/stat", f.pid),
        ));
    }
    if let Some(ms) = f.not_run_ms {
        evidence.push(Evidence::new(
            "last ran",
            format!("{} ago (the most recent of its threads)", duration(ms)),
            format!("/proc/{}/task/*/sched: se.exec_start", f.pid),
        ));
    }
    let tracer_evidence = |t: &Tracer| {
        Evidence::new(
            "tracer",
            format!(
                "{}{}",
                tracer_words(t),
                t.state
                    .as_ref()
                    .map(|s| format!(", state {s}"))
                    .unwrap_or_default()
            ),
            format!("/proc/{}/status: TracerPid {}", f.pid, t.pid),
        )
    };
    let (summary, next_step) = match &f.hold {
        Hold::Signal { tracer } => {
            evidence.extend(tracer.as_ref().map(tracer_evidence));
            (
                format!(
                    "{who} is stopped by a signal (SIGSTOP, or job control: Ctrl-Z, SIGTTIN, \
                     SIGTTOU){for_how_long}: none of its threads runs until it gets SIGCONT, so \
                     nothing it should do or answer happens."
                ),
                format!(
                    "Resume it: kill -CONT {} (or fg in the shell that stopped it, if its \
                     parent {parent} is one); then find what stopped it.",
                    f.pid
                ),
            )
        }
        Hold::Debugger { tracer } => {
            evidence.push(tracer_evidence(tracer));
            (
                format!(
                    "{who} is held in a tracing stop by {}, which is attached with \
                     ptrace{for_how_long}: a debugger (or tracer) left attached, and nothing in \
                     the process runs until it resumes or detaches it.",
                    tracer_words(tracer)
                ),
                format!(
                    "Look at {}: continue or detach there (in gdb, `detach` or quit); when the \
                     tracer exits, the kernel detaches the process.",
                    tracer_words(tracer)
                ),
            )
        }
        Hold::Frozen { freezer } => {
            let state = if freezer.frozen { "frozen" } else { "freezing" };
            evidence.push(Evidence::new(
                "cgroup",
                format!("{} (cgroup v{}), {state}", freezer.cgroup, freezer.version),
                if freezer.version == 1 {
                    format!("freezer.state of {}", freezer.cgroup)
                } else {
                    format!("cgroup.events of {}: frozen", freezer.cgroup)
                },
            ));
            for file in &freezer.set_in {
                evidence.push(Evidence::new(
                    "frozen by",
                    file.clone(),
                    if freezer.version == 1 {
                        "freezer.self_freezing 1".to_string()
                    } else {
                        "cgroup.freeze 1".to_string()
                    },
                ));
            }
            let next = match freezer.set_in.first() {
                Some(file) => format!(
                    "Thaw it when it should run: {} (whoever froze it — a job scheduler, a \
                     container runtime's pause — may do it again).",
                    thaw_command(freezer, file)
                ),
                None => format!(
                    "Find which cgroup above {} is frozen and thaw it.",
                    freezer.cgroup
                ),
            };
            (
                format!(
                    "{who} is {state} by its cgroup {} (cgroup v{} freezer){for_how_long}: its \
                     threads look asleep in their calls, but none can run until the cgroup is \
                     thawed.",
                    freezer.cgroup, freezer.version
                ),
                next,
            )
        }
        Hold::Traced { tracer } => {
            evidence.push(tracer_evidence(tracer));
            (
                format!(
                    "{who} is traced by {}: each traced event stops it until the tracer lets it \
                     go, which slows it but does not hold it.",
                    tracer_words(tracer)
                ),
                format!("Look at {} if the process is slow.", tracer_words(tracer)),
            )
        }
    };
    Words {
        summary,
        evidence,
        ruled_out: vec![],
        next_step,
    }
}
