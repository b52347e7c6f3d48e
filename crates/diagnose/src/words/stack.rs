//! The code path of a finding's thread, from its user-space stack.

use hangscope_model::{Evidence, Thread};

/// Frames named in the evidence.
const FRAMES: usize = 3;

/// "blocked in poll, from wait_for_socket ← fetch_reply (client.c:88)".
pub(crate) fn code_path(t: &Thread) -> Option<Evidence> {
    let stack = t.user_stack.as_ref()?;
    let path = stack.path(FRAMES);
    if path.is_empty() {
        return None;
    }
    let call = t
        .syscall
        .as_ref()
        .filter(|s| !s.running && !s.name.is_empty())
        .map_or_else(
            || "blocked".to_string(),
            |s| format!("blocked in {}", s.name),
        );
    Some(Evidence::new(
        "code path",
        format!("{call}, from {}", path.join(" ← ")),
        format!("user stack of thread {}, unwound from a copy", t.tid),
    ))
}

#[cfg(test)]
mod tests {
    use hangscope_model::{Frame, UserStack};

    use crate::testkit;

    fn frame(module: &str, function: &str, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            module: Some(module.into()),
            function: Some(function.into()),
            file: file.map(Into::into),
            line,
            ..Frame::default()
        }
    }

    /// The seed's top finding is about a thread: with that thread's stack in the snapshot,
    /// the finding says where its code waits, past libc's wrapper.
    #[test]
    fn the_top_findings_thread_gets_its_code_path() {
        let mut snap = testkit::seed();
        let before = crate::diagnose(&snap);
        let tid = before[0]
            .subject
            .tid
            .expect("the seed's finding is about a thread");
        let t = snap
            .threads
            .iter_mut()
            .find(|t| t.tid == tid)
            .expect("the subject thread");
        t.user_stack = Some(UserStack {
            frames: vec![
                frame(
                    "/usr/lib/x86_64-linux-gnu/libc.so.6",
                    "__GI___poll",
                    None,
                    None,
                ),
                frame(
                    "/opt/zbs/metad",
                    "wait_for_socket",
                    Some("/src/net.c"),
                    Some(40),
                ),
                frame(
                    "/opt/zbs/metad",
                    "fetch_reply",
                    Some("/src/client.c"),
                    Some(88),
                ),
                frame("/opt/zbs/metad", "ListDb", None, None),
                frame("/opt/zbs/metad", "main", None, None),
            ],
            ..UserStack::default()
        });
        let after = crate::diagnose(&snap);
        let e = after[0]
            .evidence
            .iter()
            .find(|e| e.label == "code path")
            .expect("a code path in the evidence");
        let call = &t_syscall(&snap, tid);
        assert_eq!(
            e.value,
            format!(
                "blocked in {call}, from wait_for_socket (net.c:40) ← fetch_reply (client.c:88) \
                 ← ListDb"
            )
        );
        assert!(
            before[0].evidence.iter().all(|e| e.label != "code path"),
            "no stack, no code path"
        );
    }

    fn t_syscall(snap: &hangscope_model::Snapshot, tid: i32) -> String {
        snap.threads
            .iter()
            .find(|t| t.tid == tid)
            .and_then(|t| t.syscall.as_ref())
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }
}
