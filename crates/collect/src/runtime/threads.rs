//! What each thread is to the managed runtime: for Go every thread runs goroutines; HotSpot
//! names its own threads (compilers, GC, the VM thread), the others run Java code, whose
//! JIT-compiled frames are anonymous executable memory the native unwinding cannot name;
//! CPython's threads get their interpreter frames from py-spy ([`super::python`]).

use hangscope_model::{RuntimeKind, Snapshot, Text, ThreadRuntime};

/// Sets `runtime` on every thread of a process whose runtime was recognised; after the
/// user-space stacks, which the JIT frames are counted on.
pub fn label(snap: &mut Snapshot) {
    let Some(kind) = snap.process.runtime.as_ref().map(|r| r.kind) else {
        return;
    };
    for t in &mut snap.threads {
        let role = match kind {
            RuntimeKind::Go => "Go",
            RuntimeKind::Cpython => "Python",
            RuntimeKind::Jvm => hotspot_role(t.name.as_str()),
            RuntimeKind::Other => continue,
        };
        let jit_frames = t.user_stack.as_ref().map_or(0, |s| {
            s.frames.iter().filter(|f| f.module.is_none()).count() as u32
        });
        let r = t.runtime.get_or_insert_with(ThreadRuntime::default);
        r.role = Text::from(role);
        if kind == RuntimeKind::Jvm {
            r.jit_frames = jit_frames;
        }
    }
}

/// HotSpot's own threads by their names (comm: the first 15 bytes).
fn hotspot_role(name: &str) -> &'static str {
    const COMPILER: [&str; 3] = ["C1 CompilerThre", "C2 CompilerThre", "Sweeper thread"];
    const INTERNAL: [&str; 17] = [
        "VM Thread",
        "VM Periodic Tas",
        "GC Thread#",
        "G1 ",
        "ZGC ",
        "ZWorker",
        "Shenandoah",
        "Signal Dispatch",
        "Service Thread",
        "Monitor Deflati",
        "Reference Handl",
        "Finalizer",
        "Common-Cleaner",
        "Notification Th",
        "Attach Listener",
        "VM JFR Buffer T",
        "JFR ",
    ];
    if COMPILER.iter().any(|p| name.starts_with(p)) {
        "JVM compiler thread"
    } else if INTERNAL.iter().any(|p| name.starts_with(p)) {
        "JVM internal thread"
    } else {
        "Java thread"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{Frame, Runtime, Thread, UserStack};

    #[test]
    fn hotspot_threads_and_jit_frames() {
        let mut snap = Snapshot::default();
        snap.process.runtime = Some(Runtime {
            kind: RuntimeKind::Jvm,
            ..Runtime::default()
        });
        let jit = Frame::default();
        let native = Frame {
            module: Some(Text::from("/usr/lib/jvm/lib/server/libjvm.so")),
            ..Frame::default()
        };
        for (tid, name) in [(1, "C2 CompilerThre"), (2, "GC Thread#0"), (3, "worker-1")] {
            snap.threads.push(Thread {
                tid,
                name: Text::from(name),
                user_stack: Some(UserStack {
                    frames: vec![native.clone(), jit.clone(), jit.clone()],
                    ..UserStack::default()
                }),
                ..Thread::default()
            });
        }
        label(&mut snap);
        let roles: Vec<_> = snap
            .threads
            .iter()
            .map(|t| t.runtime.as_ref().map(|r| (r.role.as_str(), r.jit_frames)))
            .collect();
        assert_eq!(
            roles,
            [
                Some(("JVM compiler thread", 2)),
                Some(("JVM internal thread", 2)),
                Some(("Java thread", 2))
            ]
        );
    }

    #[test]
    fn no_runtime_no_label() {
        let mut snap = Snapshot::default();
        snap.threads.push(Thread::default());
        label(&mut snap);
        assert!(snap.threads[0].runtime.is_none());
    }
}
