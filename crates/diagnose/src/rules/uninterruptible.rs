//! Kernel wait: a thread the kernel holds — in state D (uninterruptible), or asleep in a file
//! system client waiting for its server (a FUSE request waits interruptibly, so it shows as S)
//! — that did not move over the window. It waits for a file system server (NFS, FUSE, SMB), a
//! device, or block I/O. The seed's "can't stat() nfs file system" is this class.
//!
//! Facts: state, wchan and kernel stack (/proc/PID/task/TID/{stat,wchan,stack}); the files the
//! thread waits on and their mounts when the syscall names an fd.

use hangscope_model::{Cause, Evidence, Finding, Severity, Subject, Thread, WaitObject};

use crate::{Ctx, Found, STUCK_MS, wording};

/// A file system client's frames: the thread waits for its server. The server side of FUSE
/// (a daemon reading /dev/fuse, `fuse_dev_*`) is an idle wait and not listed.
const FS_CLIENT_WAITS: &[&str] = &[
    "request_wait_answer",
    "fuse_simple_request",
    "rpc_wait_bit_killable",
    "nfs_",
    "cifs_",
    "smb2_",
    "ceph_",
];

fn in_fs_client(t: &Thread) -> bool {
    t.wchan
        .iter()
        .map(String::as_str)
        .chain(t.stack.iter().flatten().map(String::as_str))
        .any(|f| !f.starts_with("fuse_dev_") && FS_CLIENT_WAITS.iter().any(|w| f.contains(w)))
}

/// What the kernel frames say the thread waits for.
fn waits_for(t: &Thread) -> &'static str {
    let frames: Vec<&str> = t
        .wchan
        .iter()
        .map(String::as_str)
        .chain(t.stack.iter().flatten().map(String::as_str))
        .collect();
    let has = |needle: &str| frames.iter().any(|f| f.contains(needle));
    if has("fuse") {
        "a FUSE file system's server"
    } else if has("nfs") || has("rpc_wait") || has("rpc_") {
        "an NFS server"
    } else if has("cifs") || has("smb") {
        "an SMB server"
    } else if has("ceph") {
        "a Ceph cluster"
    } else if has("io_schedule") || has("blk_") || has("folio_wait") || has("wait_on_page") {
        "block I/O on a disk"
    } else if has("jbd2") || has("ext4") || has("xfs") || has("btrfs") {
        "the file system's journal or disk"
    } else {
        "the kernel"
    }
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for t in ctx
        .snap
        .threads
        .iter()
        .filter(|t| t.state == "D" || (t.state == "S" && in_fs_client(t)))
    {
        let Some(a) = &t.activity else { continue };
        let stuck_ms = a.blocked_at_least_ms.unwrap_or(0);
        if a.progressed || stuck_ms < STUCK_MS {
            continue;
        }
        let what = waits_for(t);
        let call = t
            .syscall
            .as_ref()
            .filter(|s| !s.name.is_empty() && !s.running)
            .map(|s| format!(" in {}", wording::call(&s.name)))
            .unwrap_or_default();
        let on_file = t
            .syscall
            .iter()
            .flat_map(|s| s.waits_on.iter())
            .find_map(|w| match w {
                WaitObject::Fd { fd, .. } | WaitObject::Lock { fd, .. } => ctx.snap.fd(*fd),
                _ => None,
            })
            .map(|f| format!(" on fd {} ({})", f.fd, f.target))
            .unwrap_or_default();
        let uninterruptible = t.state == "D";
        let mut evidence = vec![Evidence::new(
            "state",
            format!(
                "{} for at least {}, no progress",
                if uninterruptible {
                    "D (uninterruptible)"
                } else {
                    "S, in a file system request"
                },
                wording::duration(stuck_ms)
            ),
            format!("/proc/{pid}/task/{}/stat, sampled", t.tid),
        )];
        if let Some(w) = t.wchan.as_ref().filter(|w| !w.is_empty() && *w != "0") {
            evidence.push(Evidence::new(
                "sleeps in",
                w.clone(),
                format!("/proc/{pid}/task/{}/wchan", t.tid),
            ));
        }
        if let Some(stack) = t.stack.as_ref().filter(|s| !s.is_empty()) {
            evidence.push(Evidence::new(
                "kernel stack",
                stack
                    .iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" < "),
                format!("/proc/{pid}/task/{}/stack", t.tid),
            ));
        }
        out.push(Found {
            finding: Finding {
                severity: Severity::Cause,
                cause: Cause::DiskWait,
                summary: if uninterruptible {
                    format!(
                        "{} has been in uninterruptible sleep for at least {}{call}{on_file}: \
                         it waits for {what}, which does not answer; no signal short of \
                         SIGKILL ends the wait, and not always that.",
                        wording::thread(t),
                        wording::duration(stuck_ms)
                    )
                } else {
                    format!(
                        "{} has waited in the kernel for at least {}{call}{on_file}: its file \
                         system request to {what} gets no answer.",
                        wording::thread(t),
                        wording::duration(stuck_ms)
                    )
                },
                subject: Subject {
                    tid: Some(t.tid),
                    thread_name: Some(t.name.clone()).filter(|n| !n.is_empty()),
                    ..Subject::default()
                },
                evidence,
                ruled_out: vec![],
                next_step: format!(
                    "Find what {what} is: the mounts in /proc/{pid}/mountinfo and the kernel \
                     stack above; check that server or device, and the kernel log (dmesg) for \
                     hung-task and \"not responding\" lines."
                ),
                ..Finding::default()
            },
            stuck_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    fn d_thread(stack: &[&str], blocked: Option<u64>) -> Thread {
        let mut t = thread(900, "reader", "newfstatat", vec![], blocked);
        t.state = "D".into();
        t.wchan = Some(stack.first().map(|s| s.to_string()).unwrap_or_default());
        t.stack = Some(stack.iter().map(|s| s.to_string()).collect());
        t
    }

    #[test]
    fn a_thread_stuck_on_a_fuse_server() {
        let mut snap = base(900, "app");
        snap.threads.push(d_thread(
            &[
                "request_wait_answer+0x1b6/0x250",
                "fuse_simple_request+0x18e/0x2d0",
            ],
            Some(4000),
        ));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        let f = &found[0].finding;
        assert_eq!((f.cause, f.severity), (Cause::DiskWait, Severity::Cause));
        assert!(
            f.summary.starts_with(
                "Thread 900 (reader) has been in uninterruptible sleep for at least 4.0 s in \
                 newfstatat(): it waits for a FUSE file system's server"
            ),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_fuse_request_waits_interruptibly_and_is_still_found() {
        let mut snap = base(900, "app");
        let mut t = d_thread(
            &[
                "request_wait_answer+0x1b6/0x250",
                "fuse_simple_request+0x18e/0x2d0",
            ],
            Some(4000),
        );
        t.state = "S".into();
        snap.threads.push(t);
        // The FUSE daemon's own idle read of /dev/fuse is not a wait for a server.
        let mut daemon = d_thread(&["fuse_dev_do_read+0x2d4/0x500"], Some(60_000));
        daemon.tid = 901;
        daemon.state = "S".into();
        snap.threads.push(daemon);
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].finding.summary.contains(
                "has waited in the kernel for at least 4.0 s in newfstatat(): its file system \
                 request to a FUSE file system's server gets no answer."
            ),
            "{}",
            found[0].finding.summary
        );
    }

    #[test]
    fn a_brief_or_moving_d_state_is_not_a_cause() {
        let mut snap = base(900, "app");
        snap.threads
            .push(d_thread(&["io_schedule+0x46/0x70"], Some(300)));
        snap.threads
            .push(d_thread(&["io_schedule+0x46/0x70"], None));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
