//! The verdict, the wait chain under it, the next step, and the findings with their evidence.

use std::fmt::Write;

use hangscope_model::{Chain, ChainEnd, Document, Hop, Severity};

use super::{Style, wrap};

/// The wait chain under the verdict: the processes in a line, then each one after the target
/// with its own words (the target's are the verdict's).
fn chain_lines(
    out: &mut String,
    chain: &Chain,
    hosts: &[hangscope_model::HostHop],
    indent: usize,
    st: &Style,
) {
    let name = |h: &Hop| format!("{} {}", st.show(&h.name), h.pid);
    // A process on another host says which, where the chain crosses to it.
    let mut line: Vec<String> = Vec::new();
    for (i, h) in chain.hops.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|p| chain.hops.get(p));
        match &h.reached_at {
            Some(at) if before.is_none_or(|b| b.reached_at.as_ref() != Some(at)) => {
                line.push(format!("{} on {}", name(h), st.show(at)))
            }
            _ => line.push(name(h)),
        }
    }
    let failed = match &chain.end {
        ChainEnd::OtherHost { host, port, .. } => hosts
            .iter()
            .find(|h| &h.addr == host && Some(h.port) == *port)
            .and_then(|h| h.failure.as_ref()),
        _ => None,
    };
    match &chain.end {
        ChainEnd::Here => {}
        ChainEnd::Root { idle, .. } => {
            if let Some(last) = line.last_mut() {
                last.push_str(if *idle { " (root, idle)" } else { " (root)" });
            }
        }
        ChainEnd::Cycle { back_to } => {
            let back = chain.hops.get(*back_to).map(name).unwrap_or_default();
            line.push(format!("back to {back} (a cycle)"));
        }
        ChainEnd::OtherHost { host, port, .. } => line.push(match (port, failed) {
            (Some(p), Some(_)) => format!("{}:{p} (another host, not followed)", st.show(host)),
            (Some(p), None) => format!("{}:{p} (another host)", st.show(host)),
            (None, _) => format!("{} (another host)", st.show(host)),
        }),
        ChainEnd::NotSeen { pid, reason } => {
            line.push(format!("{pid} (not read: {})", st.show(reason)))
        }
        ChainEnd::HopLimit { limit } => line.push(format!("… (stopped after {limit} processes)")),
        ChainEnd::Deadline { pid } => line.push(format!("{pid} (not read: the deadline came)")),
    }
    let _ = writeln!(
        out,
        "{}{}{}",
        st.bold("CHAIN"),
        " ".repeat(indent - 5),
        wrap(&line.join(" → "), indent, st.width)
    );
    for (i, h) in chain.hops.iter().enumerate().skip(1) {
        let head = format!("{:>2} ", i + 1);
        let _ = writeln!(
            out,
            "{}{head}{}",
            " ".repeat(indent),
            wrap(
                &format!("{}: {}", name(h), st.sentence(&h.summary)),
                indent + head.len(),
                st.width
            )
        );
    }
    if let (Some(f), ChainEnd::OtherHost { host, .. }) = (failed, &chain.end) {
        let _ = writeln!(
            out,
            "{}{}",
            " ".repeat(indent),
            wrap(
                &format!(
                    "{} was not followed: {}",
                    st.show(host),
                    st.sentence(&f.reason)
                ),
                indent,
                88
            )
        );
    }
}

pub(super) fn findings(out: &mut String, doc: &Document, st: &Style) {
    // What was ruled out is listed under the finding; the summary already says it in words.
    let v = &doc.verdict;
    // Not "nothing stuck" when nothing could be seen: a label of its own.
    let (label, width) = if v.cause_found {
        (st.red("VERDICT"), 7)
    } else if v.not_seen {
        (st.yellow("NOT SEEN"), 8)
    } else {
        (st.bold("VERDICT"), 7)
    };
    let indent = width + 2;
    let _ = writeln!(
        out,
        "{label}  {}",
        wrap(&st.sentence(&v.summary), indent, st.width)
    );
    if let Some(chain) = doc
        .chain
        .as_ref()
        .filter(|c| c.hops.len() > 1 || c.end.unread() || !doc.hosts.is_empty())
    {
        chain_lines(out, chain, &doc.hosts, indent, st);
    }
    if let Some(sv) = &doc.served {
        let how = match sv.found_by {
            hangscope_model::FoundBy::Connection => format!(
                "this process holds {} of the connection from {} (fd {}; network namespace \
                 {}, one of {} searched)",
                st.show(&sv.local),
                st.show(&sv.remote),
                sv.fd,
                sv.netns_inode.unwrap_or_default(),
                sv.namespaces
            ),
            hangscope_model::FoundBy::Listener => format!(
                "no socket here has the connection from {} to {} (NAT or a proxy in between): \
                 this process holds the listener on that port (fd {}), the likely one, not a \
                 certain one",
                st.show(&sv.remote),
                st.show(&sv.local),
                sv.fd
            ),
        };
        let _ = writeln!(
            out,
            "{}{}{}",
            st.bold("PEER"),
            " ".repeat(indent - 4),
            wrap(&how, indent, 88)
        );
    }
    if !v.next_step.is_empty() {
        let _ = writeln!(
            out,
            "{}{}{}",
            st.bold("NEXT"),
            " ".repeat(indent - 4),
            wrap(&st.sentence(&v.next_step), indent, st.width)
        );
    }
    out.push('\n');
    if doc.findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("FINDINGS"));
    for (i, f) in doc.findings.iter().enumerate() {
        let label = match f.severity {
            Severity::Cause => st.red(f.cause.label()),
            Severity::Warning => st.yellow(f.cause.label()),
            Severity::Info => f.cause.label().to_string(),
        };
        let mut subject = Vec::new();
        if let Some(tid) = f.subject.tid {
            let name = f
                .subject
                .thread_name
                .as_ref()
                .map(|n| st.show(n))
                .unwrap_or_default();
            subject.push(format!("thread {tid} {name}").trim_end().to_string());
        }
        if let Some(fd) = f.subject.fd {
            subject.push(format!("fd {fd}"));
        }
        if let Some(c) = &f.subject.connection {
            subject.push(st.show(c));
        }
        // At least one space: "peer not reading" fills the column.
        let pad = 16usize.saturating_sub(f.cause.label().len()).max(1);
        let _ = writeln!(
            out,
            "{:>2} {label}{}{}",
            i + 1,
            " ".repeat(pad),
            subject.join("  ")
        );
        let is_verdict = v.cause_found && v.finding == Some(i);
        // The verdict's summary was printed above; its entry shows only the evidence.
        if !is_verdict {
            let _ = writeln!(
                out,
                "                   {}",
                wrap(&st.sentence(&f.summary), 19, st.width)
            );
        }
        for e in &f.evidence {
            let line = format!("{}: {}", st.show(&e.label), st.show(&e.value));
            let _ = writeln!(out, "                   {line}");
            if !e.source.is_empty() {
                let _ = writeln!(out, "                     {}", st.dim(&st.show(&e.source)));
            }
        }
        for r in &f.ruled_out {
            let _ = writeln!(
                out,
                "                   ruled out: {}",
                wrap(&st.show(r), 30, st.width)
            );
        }
        // Context findings need no step of their own.
        if !is_verdict && f.severity != Severity::Info {
            let _ = writeln!(
                out,
                "                   next: {}",
                wrap(&st.sentence(&f.next_step), 25, st.width)
            );
        }
    }
    out.push('\n');
}
