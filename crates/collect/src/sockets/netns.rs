//! Running a dump in the target's network namespace: a short-lived helper thread joins
//! /proc/PID/ns/net with setns(2) (CLONE_NEWNET), opens its netlink socket there, dumps and
//! exits; see setns(2) and network_namespaces(7).
//!
//! setns with CLONE_NEWNET changes only the calling thread, so the rest of the tool stays in its
//! own namespace, and the thread is never reused (except `Helper`, which stays in the namespace
//! for the dumps of the sampling window and does nothing else). The wait for it is bounded by the deadline;
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
    spawn_in(ns, f)?.wait(deadline)
}

/// Work started on a thread in another namespace (or none), not yet waited for.
pub struct Pending<T> {
    rx: mpsc::Receiver<Result<T, String>>,
}

/// Starts `f` on a new thread that first enters `ns` (when given), and returns at once, so the
/// caller can go on with other reads while the dump runs.
pub fn spawn_in<T, F>(ns: Option<File>, f: F) -> Result<Pending<T>, String>
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
    Ok(Pending { rx })
}

impl<T> Pending<T> {
    /// The result, or why there is none by the deadline.
    pub fn wait(self, deadline: &Deadline) -> Result<T, String> {
        match self.rx.recv_timeout(deadline.remaining()) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err("deadline passed during the dump".into()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("the netns helper thread ended without an answer".into())
            }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A helper thread that stays in the namespace and runs one job after another: the sampling
/// window dumps at every look, and one setns and one thread serve them all. The thread ends when
/// the helper is dropped (its job channel closes); a job still running then finishes on its own.
pub struct Helper {
    jobs: mpsc::Sender<Job>,
}

impl Helper {
    /// Starts the thread and enters the namespace `ns` when given; fails when setns fails or
    /// the deadline passes first.
    pub fn start(ns: Option<File>, deadline: &Deadline) -> Result<Helper, String> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("hs-netns-window".into())
            .spawn(move || {
                if let Some(ns) = ns
                    && let Err(e) = nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                {
                    let _ = ready_tx.send(Err(format!("setns(CLONE_NEWNET): {e}")));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .map_err(|e| format!("cannot start the netns helper thread: {e}"))?;
        match ready.recv_timeout(deadline.remaining()) {
            Ok(Ok(())) => Ok(Helper { jobs }),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err("deadline passed entering the namespace".into())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("the netns helper thread ended without an answer".into())
            }
        }
    }

    /// Runs `f` on the helper thread, in its namespace, waiting at most until the deadline.
    pub fn run<T, F>(&self, deadline: &Deadline, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| "the netns helper thread has ended".to_string())?;
        match rx.recv_timeout(deadline.remaining()) {
            Ok(r) => Ok(r),
            Err(mpsc::RecvTimeoutError::Timeout) => Err("deadline passed during the dump".into()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("the netns helper thread ended without an answer".into())
            }
        }
    }
}
