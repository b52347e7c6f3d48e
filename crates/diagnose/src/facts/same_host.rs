//! The facts of the `same_host` rule (`rules/same_host.rs`): what it found, as data. The rule
//! decides and sets them; `words/same_host.rs` says them.

use serde::Serialize;

use crate::facts::HostAlive;

/// The context finding: other connections to a host with a stuck one are alive.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SameHostAlive {
    pub alive: HostAlive,
    /// The port of the stuck connection's service.
    pub stuck_port: u16,
}
