//! The words of a thread the kernel holds (`rules/uninterruptible.rs`).

use hangscope_model::Evidence;

use super::thread_ref;
use crate::facts::uninterruptible::{KernelWait, WaitsFor};
use crate::wording::{call, duration};
use crate::words::Words;

fn waits_for(w: WaitsFor) -> &'static str {
    match w {
        WaitsFor::FuseServer => "a FUSE file system's server",
        WaitsFor::NfsServer => "an NFS server",
        WaitsFor::SmbServer => "an SMB server",
        WaitsFor::CephCluster => "a Ceph cluster",
        WaitsFor::BlockIo => "block I/O on a disk",
        WaitsFor::FsJournal => "the file system's journal or disk",
        WaitsFor::Kernel => "the kernel",
    }
}

pub(crate) fn words(f: &KernelWait) -> Words {
    let pid = f.pid;
    let tid = f.thread.tid;
    let what = waits_for(f.waits_for);
    let in_call = f
        .syscall
        .as_deref()
        .map(|s| format!(" in {}", call(s)))
        .unwrap_or_default();
    let on_file = f
        .file
        .as_ref()
        .map(|w| format!(" on fd {} ({})", w.fd, w.target))
        .unwrap_or_default();
    let mut evidence = vec![Evidence::new(
        "state",
        format!(
            "{} for at least {}, no progress",
            if f.uninterruptible {
                "D (uninterruptible)"
            } else {
                "S, in a file system request"
            },
            duration(f.stuck_ms)
        ),
        format!("/proc/{pid}/task/{tid}/stat, sampled"),
    )];
    if let Some(w) = &f.wchan {
        evidence.push(Evidence::new(
            "sleeps in",
            w.clone(),
            format!("/proc/{pid}/task/{tid}/wchan"),
        ));
    }
    if !f.stack_top.is_empty() {
        evidence.push(Evidence::new(
            "kernel stack",
            f.stack_top.join(" < "),
            format!("/proc/{pid}/task/{tid}/stack"),
        ));
    }
    let summary = if f.uninterruptible {
        format!(
            "{} has been in uninterruptible sleep for at least {}{in_call}{on_file}: it waits \
             for {what}, which does not answer; no signal short of SIGKILL ends the wait, and \
             not always that.",
            thread_ref(&f.thread),
            duration(f.stuck_ms)
        )
    } else {
        format!(
            "{} has waited in the kernel for at least {}{in_call}{on_file}: its file system \
             request to {what} gets no answer.",
            thread_ref(&f.thread),
            duration(f.stuck_ms)
        )
    };
    if let Some(fuse) = &f.fuse {
        let how = match fuse.matched_by.as_str() {
            "cmdline" => "its command line names the mount point",
            "only_holder" => "the only process holding /dev/fuse",
            _ => "",
        };
        let value = match &fuse.server {
            Some(s) => format!(
                "{} ({}): process {} ({}) fd {}, {how}",
                fuse.mount_point, fuse.fs_type, s.pid, s.name, s.fd
            ),
            None => format!(
                "{} ({}): not told apart among the holders of /dev/fuse: {}",
                fuse.mount_point,
                fuse.fs_type,
                fuse.holders
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        evidence.push(Evidence::new(
            "FUSE server",
            value,
            "/proc/*/fd -> /dev/fuse, /proc/PID/cmdline, mountinfo",
        ));
        if let Some(s) = &fuse.server {
            return Words {
                summary: format!(
                    "{summary} The server of {} is process {} ({}).",
                    fuse.mount_point, s.pid, s.name
                ),
                evidence,
                ruled_out: vec![],
                next_step: format!(
                    "Look at the FUSE server, process {} ({}): hangscope {}; if it cannot be \
                     made to answer, `umount -l {}` or writing to \
                     /sys/fs/fuse/connections/*/abort ends the waits.",
                    s.pid, s.name, s.pid, fuse.mount_point
                ),
            };
        }
    }
    Words {
        summary,
        evidence,
        ruled_out: vec![],
        next_step: format!(
            "Find what {what} is: the mounts in /proc/{pid}/mountinfo and the kernel stack \
             above; check that server or device, and the kernel log (dmesg) for hung-task and \
             \"not responding\" lines."
        ),
    }
}
