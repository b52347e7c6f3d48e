//! Running a dump in the target's network namespace: a short-lived helper thread joins
//! /proc/PID/ns/net with setns(2) (CLONE_NEWNET), opens its netlink socket there, dumps and
//! exits; see setns(2) and network_namespaces(7).
//!
//! setns with CLONE_NEWNET changes only the calling thread, so the rest of the tool stays in its
//! own namespace, and the thread is never reused. The wait for it is bounded by the deadline;
//! a helper still running then is left to finish on its own (its netlink socket has a receive
//! timeout, so it does).

use std::fs::File;
use std::sync::mpsc;

use nix::sched::CloneFlags;

use crate::Deadline;

/// Runs `f` on a new thread, first entering the network namespace `ns` when given.
pub fn run_in<T, F>(ns: Option<File>, deadline: &Deadline, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("hs-netns".into())
        .spawn(move || {
            if let Some(ns) = ns
                && let Err(e) = nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
            {
                let _ = tx.send(Err(format!("setns(CLONE_NEWNET): {e}")));
                return;
            }
            let _ = tx.send(Ok(f()));
        })
        .map_err(|e| format!("cannot start the netns helper thread: {e}"))?;
    match rx.recv_timeout(deadline.remaining()) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => Err("deadline passed during the dump".into()),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("the netns helper thread ended without an answer".into())
        }
    }
}
