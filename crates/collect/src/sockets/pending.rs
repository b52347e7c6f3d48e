//! The dumps started on a thread of their own in the target's network namespace, and their
//! failures turned into gaps.

use std::time::Duration;

use hangscope_model::{Gap, GapReason, PortRange, Process};

use super::dumps::{Dumps, WantedInodes, WantedSender, dump_all};
use super::ports::ephemeral_ports;
use super::{RECV_TIMEOUT, netns};
use crate::Deadline;
use crate::error::reason_of;
use crate::{Options, ProcRoot};

pub(super) fn ns_label(pid: i32, process: &Process) -> String {
    match process.netns_inode {
        Some(i) => format!("netns {i}"),
        None => format!("the netns of {pid}"),
    }
}

/// The sock_diag dumps of one collection, under way on their own thread.
pub struct PendingDumps {
    state: PendingState,
    ns_label: String,
    ephemeral_ports: Option<PortRange>,
}

enum PendingState {
    Running(netns::Pending<Dumps>),
    /// Could not start: the gap to report and the reason sockets will not be found.
    Failed(Gap, String),
}

/// Starts the dumps in the target's network namespace on a thread of their own, before its
/// fd links are read: they take tens of milliseconds on a busy host, which then pass on the
/// other core while the links are read. The socket inodes are sent through the returned
/// sender once known; replies are filtered by them.
pub fn start_dumps(
    root: &ProcRoot,
    pid: i32,
    process: &Process,
    opts: &Options,
) -> (PendingDumps, WantedSender) {
    let ns_label = ns_label(pid, process);
    let (tx, wanted) = WantedInodes::channel(opts.deadline);
    let state = if opts.deadline.passed() {
        PendingState::Failed(
            Gap::new(
                format!("sockets of {pid}"),
                GapReason::Deadline,
                "not dumped: the deadline had passed",
            ),
            "the deadline passed before the socket dump".into(),
        )
    } else {
        let timeout = opts
            .deadline
            .remaining()
            .clamp(Duration::from_millis(1), RECV_TIMEOUT);
        // The fd count, on Linux 6.2+ (0 before): whether the target may have few sockets.
        let fd_hint = std::fs::metadata(root.pid(pid).join("fd")).map_or(0, |m| m.len());
        let ns = if process.netns_same_as_tool == Some(true) {
            Ok(None)
        } else {
            let ns_path = root.pid(pid).join("ns/net");
            std::fs::File::open(&ns_path).map(Some).map_err(|e| {
                (
                    Gap::of_errno(ns_path.display().to_string(), reason_of(&e), &e),
                    format!("{ns_label} could not be opened: {e}"),
                )
            })
        };
        match ns {
            Ok(ns) => match netns::spawn_in(ns, move || dump_all(wanted, timeout, pid, fd_hint)) {
                Ok(p) => PendingState::Running(p),
                Err(why) => PendingState::Failed(
                    why.gap(format!("sock_diag in {ns_label}")),
                    why.to_string(),
                ),
            },
            Err((gap, why)) => PendingState::Failed(gap, why),
        }
    };
    let pending = PendingDumps {
        state,
        ns_label,
        ephemeral_ports: ephemeral_ports(root),
    };
    (pending, tx)
}

impl PendingDumps {
    /// The client port range, read as the dumps start.
    pub fn ephemeral_ports(&self) -> Option<PortRange> {
        self.ephemeral_ports
    }

    /// Waits for the dumps (bounded by the deadline); failures become gaps, and the second
    /// value says why sockets could not be found, for the not-found reasons.
    pub(super) fn finish(
        self,
        deadline: &Deadline,
        gaps: &mut Vec<Gap>,
    ) -> (Dumps, Option<String>) {
        let ns_label = self.ns_label;
        match self.state {
            PendingState::Failed(gap, why) => {
                gaps.push(gap);
                (Dumps::default(), Some(why))
            }
            PendingState::Running(p) => match p.wait(deadline) {
                Ok(d) => (d, None),
                Err(why) => {
                    let gap = why.gap(format!("sock_diag in {ns_label}"));
                    gaps.push(if gap.reason == GapReason::Permission {
                        gap.needing("root (CAP_SYS_ADMIN) to enter the namespace")
                    } else {
                        gap
                    });
                    (
                        Dumps::default(),
                        Some(format!("{ns_label} could not be entered: {why}")),
                    )
                }
            },
        }
    }
}
