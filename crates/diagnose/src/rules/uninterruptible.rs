//! Kernel wait: a thread the kernel holds — in state D (uninterruptible), or asleep in a file
//! system client waiting for its server (a FUSE request waits interruptibly, so it shows as S)
//! — that did not move over the window. It waits for a file system server (NFS, FUSE, SMB), a
//! device, or block I/O. The seed's "can't stat() nfs file system" is this class.
//!
//! Facts: state, wchan and kernel stack (/proc/PID/task/TID/{stat,wchan,stack}); the files the
//! thread waits on and their mounts when the syscall names an fd.

use hangscope_model::{Cause, Next, Severity, Subject, Thread, WaitObject};

use crate::facts::uninterruptible::{FuseFacts, KernelWait, WaitedFile, WaitsFor};
use crate::facts::{RuleFacts, ThreadRef};
use crate::{Ctx, STUCK_MS};

/// Kernel stack frames quoted, innermost first.
const STACK_FRAMES: usize = 4;

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
fn waits_for(t: &Thread) -> WaitsFor {
    let frames: Vec<&str> = t
        .wchan
        .iter()
        .map(String::as_str)
        .chain(t.stack.iter().flatten().map(String::as_str))
        .collect();
    let has = |needle: &str| frames.iter().any(|f| f.contains(needle));
    if has("fuse") {
        WaitsFor::FuseServer
    } else if has("nfs") || has("rpc_wait") || has("rpc_") {
        WaitsFor::NfsServer
    } else if has("cifs") || has("smb") {
        WaitsFor::SmbServer
    } else if has("ceph") {
        WaitsFor::CephCluster
    } else if has("io_schedule") || has("blk_") || has("folio_wait") || has("wait_on_page") {
        WaitsFor::BlockIo
    } else if has("jbd2") || has("ext4") || has("xfs") || has("btrfs") {
        WaitsFor::FsJournal
    } else {
        WaitsFor::Kernel
    }
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<KernelWait> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    // A frozen cgroup puts its tasks in D under the v1 freezer: that is the freezer's doing (the
    // stopped rule says so), not a wait on a file system or device.
    if ctx.snap.process.freezer.is_some() {
        return out;
    }
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
        let file = t
            .syscall
            .iter()
            .flat_map(|s| s.waits_on.iter())
            .find_map(|w| match w {
                WaitObject::Fd { fd, .. } | WaitObject::Lock { fd, .. } => ctx.snap.fd(*fd),
                _ => None,
            })
            .map(|f| WaitedFile {
                fd: f.fd,
                target: f.target.clone(),
            });
        let waits = waits_for(t);
        let fuse = (waits == WaitsFor::FuseServer)
            .then(|| ctx.snap.fuse.iter().find(|m| m.tids.contains(&t.tid)))
            .flatten()
            .map(|m| FuseFacts {
                mount_point: m.mount_point.clone(),
                fs_type: m.fs_type.clone(),
                server: m.server.and_then(|p| {
                    let h = m.holders.iter().find(|h| h.pid == p)?;
                    Some(crate::facts::Holder {
                        pid: h.pid,
                        name: h.name.clone(),
                        fd: h.fd,
                        this_process: h.pid == pid,
                    })
                }),
                matched_by: m.matched_by.clone(),
                holders: m.holders.iter().map(|h| h.pid).collect(),
            });
        out.push(KernelWait {
            fuse,
            pid,
            thread: ThreadRef::of(t),
            uninterruptible: t.state == "D",
            stuck_ms,
            waits_for: waits,
            syscall: t
                .syscall
                .as_ref()
                .filter(|s| !s.name.is_empty() && !s.running)
                .map(|s| s.name.clone()),
            file,
            wchan: t.wchan.clone().filter(|w| !w.is_empty() && w != "0"),
            stack_top: t
                .stack
                .iter()
                .flatten()
                .take(STACK_FRAMES)
                .cloned()
                .collect(),
        });
    }
    out
}

impl RuleFacts for KernelWait {
    const RULE: &'static str = "uninterruptible";

    fn cause(&self) -> Cause {
        Cause::DiskWait
    }

    fn severity(&self) -> Severity {
        Severity::Cause
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        self.thread.subject()
    }

    /// The file it waits on; without one, the mounts to find the server or device in. The
    /// snapshot does not name the mount a file is on, so the file stands for it.
    fn next(&self) -> Option<Next> {
        if let Some(server) = self.fuse.as_ref().and_then(|f| f.server.as_ref()) {
            return Some(Next::process(server.pid));
        }
        let path = match &self.file {
            Some(f) if f.target.starts_with('/') => f.target.to_string(),
            _ => format!("/proc/{}/mountinfo", self.pid),
        };
        Some(Next::file(path).with_command("dmesg"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Fd, FdKind, Finding, NextKind};

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

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
        let f = &found[0];
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
            found[0].summary.contains(
                "has waited in the kernel for at least 4.0 s in newfstatat(): its file system \
                 request to a FUSE file system's server gets no answer."
            ),
            "{}",
            found[0].summary
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

    #[test]
    fn facts_say_what_it_waits_for_and_next_is_the_file() {
        let mut snap = base(900, "app");
        let mut t = d_thread(
            &[
                "rpc_wait_bit_killable+0x1e/0xa0",
                "__rpc_wait_for_completion_task+0x2b/0x30",
                "nfs4_do_close+0x2ba/0x300",
                "__nfs4_close+0xf8/0x160",
                "nfs4_close_sync+0x13/0x20",
            ],
            Some(9000),
        );
        t.syscall.as_mut().unwrap().name = "read".into();
        t.syscall.as_mut().unwrap().waits_on = vec![fd_wait(4, &[])];
        snap.threads.push(t);
        snap.fds.push(Fd::new(4, FdKind::File, "/mnt/nfs/data.db"));
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.rule, "uninterruptible");
        let facts = &f.facts;
        assert_eq!(facts["thread"]["tid"], 900);
        assert_eq!(facts["uninterruptible"], true);
        assert_eq!(facts["stuck_ms"], 9000);
        assert_eq!(facts["waits_for"], "nfs_server");
        assert_eq!(facts["syscall"], "read");
        assert_eq!(
            facts["file"],
            serde_json::json!({"fd": 4, "target": "/mnt/nfs/data.db"})
        );
        assert_eq!(facts["wchan"], "rpc_wait_bit_killable+0x1e/0xa0");
        assert_eq!(facts["stack_top"].as_array().map(Vec::len), Some(4));
        assert!(
            f.summary.contains(
                "for at least 9.0 s in read() on fd 4 (/mnt/nfs/data.db): it waits for an NFS \
                 server, which does not answer"
            ),
            "{}",
            f.summary
        );
        let next = f.next.as_ref().unwrap();
        assert_eq!(next.kind, NextKind::File);
        assert_eq!(next.path.as_deref(), Some("/mnt/nfs/data.db"));
        // No file named: the mounts to look through.
        snap.fds.clear();
        let f = &find(&Ctx::new(&snap))[0];
        assert!(f.facts.get("file").is_none());
        assert_eq!(
            f.next.as_ref().and_then(|n| n.path.as_deref()),
            Some("/proc/900/mountinfo")
        );
    }
}
