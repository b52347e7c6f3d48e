//! The report's first lines: the process, its state and where it runs.

use std::fmt::Write;

use hangscope_model::{Document, Snapshot, Text};

use super::{Style, TextOptions};
use crate::human_ms;

pub(super) fn header(out: &mut String, snap: &Snapshot, st: &Style) {
    let p = &snap.process;
    let netns = match p.netns_same_as_tool {
        Some(true) => "netns host".to_string(),
        Some(false) => match &p.netns_name {
            Some(name) => format!("netns {} ({})", st.show(name), p.netns_inode.unwrap_or(0)),
            None => format!("netns {}", p.netns_inode.unwrap_or(0)),
        },
        None => "netns ?".to_string(),
    };
    // An fd table the kernel refused is not an empty one.
    let fd_table_denied = snap.gaps.iter().any(|g| {
        g.reason == hangscope_model::GapReason::Permission
            && g.topic == Some(hangscope_model::GapTopic::FdTable)
    });
    let fds = if fd_table_denied {
        "?".to_string()
    } else {
        snap.fds.len().to_string()
    };
    // In a container, the PID its own tools (and its logs) know it by.
    let pid = match p.nspid.last() {
        Some(inner) if p.nspid.len() > 1 && *inner != p.pid => {
            format!("{} ({inner} in its namespace)", p.pid)
        }
        _ => p.pid.to_string(),
    };
    let mut line = format!(
        "{}  pid {}  state {}  threads {}  fds {}  {}",
        st.bold(&st.show(&p.name)),
        pid,
        st.show(&p.state),
        p.num_threads,
        fds,
        netns
    );
    if let Some(w) = &snap.window {
        let _ = write!(
            line,
            "  watched {} ({} looks)",
            crate::human_ms(w.duration_ms as f64),
            w.looks
        );
    }
    let _ = writeln!(out, "{line}");
    let mut sub = Vec::new();
    // A thread id was asked about (from a log line): say whose it is.
    if let Some(t) = snap.threads.iter().find(|t| t.focus && t.tid != p.pid) {
        sub.push(format!("thread {} of process {}", t.tid, p.pid));
    }
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

/// When, where and by what the snapshot was taken, and on `replay` from which file: what a
/// ticket needs to place the report.
pub(super) fn provenance(out: &mut String, doc: &Document, opts: &TextOptions, st: &Style) {
    let snap = &doc.snapshot;
    if snap.taken_at_ms == 0 {
        return;
    }
    let when = captured_at(snap.taken_at_ms, opts.local_time.as_ref());
    let by = if doc.generator.is_empty() {
        String::new()
    } else {
        format!(" by {}", st.show(&doc.generator))
    };
    let line = match &opts.replayed_from {
        Some(file) => format!("replayed from {}, captured {when}{by}", st.show(file)),
        None => format!("captured {when}{by}"),
    };
    // Under the header's own lines, before the blank line that ends it.
    if out.ends_with("\n\n") {
        out.pop();
    }
    let _ = writeln!(out, "{}\n", st.dim(&line));
}

/// "2026-12-01 15:22:28 UTC (16:22:28 CET)": the UTC time a log is compared with, and the
/// local clock the operator lived it by.
pub fn captured_at(ms: u64, local: Option<&(i64, String)>) -> String {
    // The time is the target's machine's word: a clock far off (or a hostile file) gives a
    // year past 9999 or past what SystemTime holds, said as the number it is.
    let at = |offset_s: i64| -> Option<String> {
        let t = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))?;
        let shift = std::time::Duration::from_secs(offset_s.unsigned_abs());
        let t = if offset_s >= 0 {
            t.checked_add(shift)?
        } else {
            t.checked_sub(shift)?
        };
        let mut s = String::new();
        write!(s, "{}", humantime::format_rfc3339_seconds(t)).ok()?;
        // "2026-12-01T15:22:28Z": the date and the clock, without the T and the Z.
        Some(s.trim_end_matches('Z').replacen('T', " ", 1))
    };
    let Some(utc) = at(0) else {
        return format!("at {ms} ms after 1970 (not a date this can write)");
    };
    match local.and_then(|(offset, zone)| {
        (*offset != 0 || zone != "UTC").then_some(())?;
        Some((at(*offset)?, zone))
    }) {
        Some((local, zone)) => {
            // The date too when it is another day there.
            let shown = if local.get(..10) == utc.get(..10) {
                local.get(11..).unwrap_or_default().to_string()
            } else {
                local
            };
            format!("{utc} UTC ({shown} {zone})")
        }
        None => format!("{utc} UTC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_person_can_act_on() {
        let mut snap = Snapshot::default();
        snap.process.name = "metad".into();
        snap.process.pid = 1200;
        snap.process.nspid = vec![1200, 7];
        snap.process.netns_same_as_tool = Some(false);
        snap.process.netns_inode = Some(4026532400);
        snap.process.netns_name = Some("blue".into());
        snap.threads.push(hangscope_model::Thread {
            tid: 1234,
            focus: true,
            ..Default::default()
        });
        let mut out = String::new();
        header(&mut out, &snap, &Style::plain());
        assert!(
            out.starts_with("metad  pid 1200 (7 in its namespace)  "),
            "{out}"
        );
        assert!(out.contains("  netns blue (4026532400)"), "{out}");
        assert!(out.contains("\nthread 1234 of process 1200"), "{out}");
    }

    #[test]
    fn capture_time_in_utc_and_local() {
        // 2026-12-01 15:22:28.5 UTC.
        let ms = 1_796_138_548_500;
        assert_eq!(captured_at(ms, None), "2026-12-01 15:22:28 UTC");
        assert_eq!(
            captured_at(ms, Some(&(3600, "CET".into()))),
            "2026-12-01 15:22:28 UTC (16:22:28 CET)"
        );
        assert_eq!(
            captured_at(ms, Some(&(10 * 3600, "AEST".into()))),
            "2026-12-01 15:22:28 UTC (2026-12-02 01:22:28 AEST)"
        );
        assert_eq!(
            captured_at(ms, Some(&(0, "UTC".into()))),
            "2026-12-01 15:22:28 UTC"
        );
        assert!(captured_at(u64::MAX, Some(&(3600, "CET".into()))).contains("ms after 1970"));
        assert!(
            captured_at(253_402_300_800_000, None).contains("ms after 1970"),
            "year 10000"
        );
    }
}
