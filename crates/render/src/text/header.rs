//! The report's first lines: the process, its state and where it runs.

use std::fmt::Write;

use hangscope_model::{Snapshot, Text};

use super::Style;
use crate::human_ms;

pub(super) fn header(out: &mut String, snap: &Snapshot, st: &Style) {
    let p = &snap.process;
    let netns = match p.netns_same_as_tool {
        Some(true) => "netns host".to_string(),
        Some(false) => format!("netns {}", p.netns_inode.unwrap_or(0)),
        None => "netns ?".to_string(),
    };
    // An fd table the kernel refused is not an empty one.
    let fd_table_denied = snap.gaps.iter().any(|g| {
        g.reason == hangscope_model::GapReason::Permission
            && g.what == format!("/proc/{}/fd", p.pid)
    });
    let fds = if fd_table_denied {
        "?".to_string()
    } else {
        snap.fds.len().to_string()
    };
    let mut line = format!(
        "{}  pid {}  state {}  threads {}  fds {}  {}",
        st.bold(&st.show(&p.name)),
        p.pid,
        st.show(&p.state),
        p.num_threads,
        fds,
        netns
    );
    if let Some(w) = &snap.window {
        let _ = write!(
            line,
            "  watched {:.1} s ({} looks)",
            w.duration_ms as f64 / 1000.0,
            w.looks
        );
    }
    let _ = writeln!(out, "{line}");
    let mut sub = Vec::new();
    if !p.cmdline.is_empty() {
        // Joined as bytes and cut as one value: the arguments of a `python3 -c` script are
        // not each a few words.
        let args: Vec<&[u8]> = p.cmdline.iter().map(Text::as_bytes).collect();
        sub.push(format!(
            "cmd {}",
            st.show(&Text::from_bytes(args.join(&b' ')))
        ));
    }
    if let Some(age) = p.age_s {
        sub.push(format!("up {}", human_ms(age * 1000.0)));
    }
    // Its locks are the runtime's: the kernel's view below does not show them.
    if let Some(rt) = &p.runtime {
        let version = rt
            .version
            .as_ref()
            .map(|v| format!(" {}", st.show(v)))
            .unwrap_or_default();
        sub.push(format!("runtime {}{version}", rt.kind.label()));
    }
    if !snap.host.hostname.is_empty() {
        sub.push(format!(
            "host {} ({})",
            st.show(&snap.host.hostname),
            st.show(&snap.host.kernel)
        ));
    }
    if !sub.is_empty() {
        let _ = writeln!(out, "{}", st.dim(&sub.join("  ")));
    }
    out.push('\n');
}
