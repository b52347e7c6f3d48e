//! User-space stacks under the THREADS lines: a thread's code path on one line, or (`-v`) its
//! frames one per line; a stack several threads share is printed once with their count.

use std::fmt::Write;

use hangscope_model::{Thread, UserStack};

use super::Style;

/// Frames on the one-line path.
const PATH_FRAMES: usize = 4;
/// Frames listed with `-v`, per distinct stack.
const LISTED_FRAMES: usize = 64;

/// The stacks of `members` (one thread, or a group with one wait), under their line.
pub(super) fn under(out: &mut String, members: &[&Thread], verbose: bool, st: &Style) {
    let mut distinct: Vec<(&UserStack, usize)> = Vec::new();
    for t in members {
        let Some(s) = t.user_stack.as_ref().filter(|s| !s.frames.is_empty()) else {
            continue;
        };
        match distinct.iter_mut().find(|(d, _)| d.frames == s.frames) {
            Some((_, n)) => *n += 1,
            None => distinct.push((s, 1)),
        }
    }
    for (s, n) in distinct {
        let count = if members.len() > 1 {
            format!("{n} × ")
        } else {
            String::new()
        };
        if verbose {
            let _ = writeln!(out, "          {}", st.dim(&format!("{count}user stack:")));
            for f in s.frames.iter().take(LISTED_FRAMES) {
                let inl = if f.inlined { " (inlined)" } else { "" };
                let _ = writeln!(
                    out,
                    "            {}",
                    st.dim(&format!("{}{inl}", st.show(&f.short())))
                );
            }
            if let Some(why) = &s.incomplete {
                let _ = writeln!(
                    out,
                    "            {}",
                    st.dim(&format!("(stopped: {})", st.show(why)))
                );
            }
        } else {
            let path: Vec<String> = s.path(PATH_FRAMES).iter().map(|f| st.show(f)).collect();
            if !path.is_empty() {
                let _ = writeln!(
                    out,
                    "          {}",
                    st.dim(&format!("{count}from {}", path.join(" ← ")))
                );
            }
        }
    }
}
