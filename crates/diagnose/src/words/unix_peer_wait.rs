//! The words of a wait on a unix socket's other end (`rules/unix_peer_wait.rs`).

use hangscope_model::Evidence;

use super::{holder, how, other_threads_sentence, peer_threads_evidence, thread, waiting_in};
use crate::facts::unix_peer_wait::{Blocked, UnixOtherEnd, UnixPeerWait};
use crate::wording::{bytes, duration};
use crate::words::Words;

pub(crate) fn words(f: &UnixPeerWait) -> Words {
    let w = &f.waiter;
    let fd = w.fd;
    let pid = f.pid;
    let on = f
        .path
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let owner = match &f.other_end {
        UnixOtherEnd::Held { holder: h, .. } => holder(h),
        UnixOtherEnd::Unheld { reason } => format!(
            "socket inode {}, {}",
            f.peer_inode,
            reason
                .as_deref()
                .unwrap_or("held by no process visible here")
        ),
    };
    let mut summary = match f.blocked {
        Blocked::Writing => format!(
            "{} has been blocked for at least {} in {} sending on unix socket fd {fd}: its \
             buffer is full because the other end{on}, {owner}, does not read.",
            thread(w),
            duration(f.stuck_ms),
            how(w),
        ),
        Blocked::RequestUnread => format!(
            "{} has waited at least {} in {} for a reply on unix socket fd {fd}, but what it \
             sent has not been read at the other end{on}: {owner} does not read.",
            thread(w),
            duration(f.stuck_ms),
            how(w),
        ),
        Blocked::Reply => format!(
            "{} has waited at least {} in {} on unix socket fd {fd}, whose other end{on} is \
             {owner}: everything sent has been read there, and no answer has come.",
            thread(w),
            duration(f.stuck_ms),
            how(w),
        ),
    };
    // What the other process's threads do there, when it was looked at.
    if let UnixOtherEnd::Held {
        holder: h,
        threads: Some(t),
        ..
    } = &f.other_end
        && !h.this_process
    {
        summary.push_str(&other_threads_sentence(t, h.fd));
    }

    let mut evidence = vec![waiting_in(w), socket_evidence(f)];
    let next_step = match &f.other_end {
        UnixOtherEnd::Held {
            holder: h,
            threads,
            waiter_there,
        } => {
            evidence.push(Evidence::new(
                "other end",
                format!("process {} ({}) fd {}", h.pid, h.name, h.fd),
                format!("/proc/{}/fd/{} -> socket:[{}]", h.pid, h.fd, f.peer_inode),
            ));
            if h.this_process {
                // Which of this process's threads waits at the other end, if any.
                evidence.push(match waiter_there {
                    Some(there) => Evidence::new(
                        format!("fd {}", h.fd),
                        format!("{} waits on it in {}", thread(there), how(there)),
                        there.source.clone(),
                    ),
                    None => Evidence::new(
                        format!("fd {}", h.fd),
                        "no thread of this process waits on it",
                        format!("/proc/{pid}/task/*/syscall"),
                    ),
                });
            }
            if let Some(t) = threads {
                evidence.push(peer_threads_evidence(h.pid, h.fd, &t.threads));
            }
            if h.this_process {
                format!(
                    "Find the code of this process that should serve fd {}, and why it does not \
                     run: see what its threads wait for above.",
                    h.fd
                )
            } else {
                format!(
                    "Look at process {} ({}): hangscope {}.",
                    h.pid, h.name, h.pid
                )
            }
        }
        UnixOtherEnd::Unheld { .. } => format!(
            "Find the process that holds socket inode {}: ss -xp | grep {} (from the host's PID \
             namespace if it runs in a container), then run hangscope on it.",
            f.peer_inode, f.peer_inode
        ),
    };
    Words {
        summary,
        evidence,
        ruled_out: vec![],
        next_step,
    }
}

fn socket_evidence(f: &UnixPeerWait) -> Evidence {
    // Send-Q counts the buffers the peer still holds, not bytes: say only whether it is empty.
    let unread = if f.send_q > 0 {
        ", what it sent not yet all read by the other end"
    } else {
        ", everything it sent read by the other end"
    };
    Evidence::new(
        "socket",
        format!(
            "unix {}, {} unread here{unread}",
            f.sock_type.to_lowercase(),
            bytes(u64::from(f.recv_q))
        ),
        format!(
            "ss -x: Recv-Q {} Send-Q {} inode {} peer {}",
            f.recv_q, f.send_q, f.socket_inode, f.peer_inode
        ),
    )
}
