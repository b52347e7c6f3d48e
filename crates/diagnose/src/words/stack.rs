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
