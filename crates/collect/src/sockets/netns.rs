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
use crate::error::ReadError;

/// Runs `f` on a new thread, first entering the network namespace `ns` when given.
pub fn run_in<T, F>(ns: Option<File>, deadline: &Deadline, f: F) -> Result<T, ReadError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    spawn_in(ns, f)?.wait(deadline)
}

/// Work started on a thread in another namespace (or none), not yet waited for.
pub struct Pending<T> {
    rx: mpsc::Receiver<Result<T, ReadError>>,
}

/// Starts `f` on a new thread that first enters `ns` (when given), and returns at once, so the
/// caller can go on with other reads while the dump runs.
pub fn spawn_in<T, F>(ns: Option<File>, f: F) -> Result<Pending<T>, ReadError>
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
                let _ = tx.send(Err(ReadError::errno("setns(CLONE_NEWNET)", e)));
                return;
            }
            let _ = tx.send(Ok(f()));
        })
        // Not the deadline, whatever its errno (EAGAIN): a thread limit.
        .map_err(|e| ReadError::other(format!("cannot start the netns helper thread: {e}")))?;
    Ok(Pending { rx })
}

impl<T> Pending<T> {
    /// The result, or why there is none by the deadline.
    pub fn wait(self, deadline: &Deadline) -> Result<T, ReadError> {
        match self.rx.recv_timeout(deadline.remaining()) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(ReadError::deadline("deadline passed during the dump"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ReadError::other(
                "the netns helper thread ended without an answer",
            )),
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
    pub fn start(ns: Option<File>, deadline: &Deadline) -> Result<Helper, ReadError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::channel::<Result<(), ReadError>>();
        std::thread::Builder::new()
            .name("hs-netns-window".into())
            .spawn(move || {
                if let Some(ns) = ns
                    && let Err(e) = nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                {
                    let _ = ready_tx.send(Err(ReadError::errno("setns(CLONE_NEWNET)", e)));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            // Not the deadline, whatever its errno (EAGAIN): a thread limit.
            .map_err(|e| ReadError::other(format!("cannot start the netns helper thread: {e}")))?;
        match ready.recv_timeout(deadline.remaining()) {
            Ok(Ok(())) => Ok(Helper { jobs }),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(ReadError::deadline(
                "deadline passed entering the namespace",
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ReadError::other(
                "the netns helper thread ended without an answer",
            )),
        }
    }

    /// Runs `f` on the helper thread, in its namespace, waiting at most until the deadline.
    pub fn run<T, F>(&self, deadline: &Deadline, f: F) -> Result<T, ReadError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| ReadError::other("the netns helper thread has ended"))?;
        match rx.recv_timeout(deadline.remaining()) {
            Ok(r) => Ok(r),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(ReadError::deadline("deadline passed during the dump"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ReadError::other(
                "the netns helper thread ended without an answer",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ReadErrorKind, reason_of};
    use hangscope_model::GapReason;

    #[test]
    fn a_failed_setns_is_typed_by_its_errno_not_its_words() {
        // Not a namespace file: setns(2) says EINVAL, before any privilege check. The old
        // code searched the words for "EPERM" and "deadline", called this "other", and asked
        // for root.
        let not_ns = File::open("/dev/null").unwrap();
        let deadline = Deadline::after(std::time::Duration::from_secs(5));
        let err = run_in(Some(not_ns), &deadline, || ()).expect_err("not a namespace");
        assert_eq!(err.kind, ReadErrorKind::Errno(libc::EINVAL));
        assert_eq!(reason_of(&err), GapReason::Unsupported);
        assert!(
            err.to_string().starts_with("setns(CLONE_NEWNET): EINVAL"),
            "{err}"
        );
        // Refused, whatever the words: a permission gap.
        let refused = ReadError::errno("setns(CLONE_NEWNET)", nix::errno::Errno::EPERM);
        assert_eq!(reason_of(&refused), GapReason::Permission);
        // The deadline, by kind: a dump that named a "deadline" file is not one.
        let waited = Helper::start(None, &deadline)
            .expect("a helper here")
            .run(&Deadline::after(std::time::Duration::ZERO), || {
                std::thread::sleep(std::time::Duration::from_millis(50))
            })
            .expect_err("past the deadline");
        assert_eq!(reason_of(&waited), GapReason::Deadline);
        assert_eq!(
            reason_of(&ReadError::other("/tmp/deadline: gone")),
            GapReason::Other
        );
    }
}
