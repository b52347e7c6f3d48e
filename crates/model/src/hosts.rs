//! Chains across hosts (since 1.6): the run on the host at the other end of a connection
//! (`hangscope peer`, over the operator's ssh), and what it returned.

use serde::{Deserialize, Serialize};

use crate::Document;

/// On the host at the far end of a connection: how its socket, and the process holding it,
/// were found (`hangscope peer --local A --remote B`). Set only in the documents that command
/// prints (since 1.6, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Served {
    /// This host's end of the connection as asked, "198.18.0.2:10100".
    pub local: String,
    /// The caller's end, "198.18.0.1:42428".
    pub remote: String,
    /// How: `connection` (the connection itself, by its address pair reversed) or `listener` (the
    /// listener on the port, when NAT or a proxy rewrote the pair).
    pub found_by: FoundBy,
    /// The network namespace the socket is in (its inode, as in `/proc/PID/ns/net`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns_inode: Option<u64>,
    /// Network namespaces searched, this host's every one visible.
    pub namespaces: usize,
    /// The inode of that socket (for `listener`, the listening socket).
    pub socket_inode: u64,
    /// The fd of the snapshot's process that is that socket.
    pub fd: i32,
    /// Processes holding the socket (forked workers share a listener); the snapshot is of the
    /// first.
    pub holders: usize,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// The connection itself, by its address pair reversed.
    #[default]
    Connection,
    /// No socket has that address pair here (NAT or a proxy rewrote it): the listener on the
    /// port, whose process is likely, not certain, to be the one that took the request.
    Listener,
}

/// A host the chain was followed to: where, how, and its document or why there is none (since 1.6,
/// with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct HostHop {
    /// The address the connection names, which ssh was given: "198.18.0.2".
    pub addr: String,
    /// The port the connection names on that host.
    pub port: u16,
    /// The previous host's end of the connection, "198.18.0.1:42428".
    pub from: String,
    /// The command run, program first, as given to the system (no shell on this side).
    pub command: Vec<String>,
    /// How long the remote run took, from starting ssh to its answer, milliseconds.
    pub elapsed_ms: u64,
    /// The document that host's hangscope returned, diagnosed again here; absent when the hop
    /// failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Box<Document>>,
    /// Why the hop gave no document; absent when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<HopFailure>,
}

/// Why a host was not followed (since 1.6, with its fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct HopFailure {
    /// What failed: `unreachable`, `host_key`, `auth`, `no_hangscope`, `timeout`, `bad_output`,
    /// `not_found`, or `other`.
    pub kind: HopFailureKind,
    /// In words, with what ssh or the remote hangscope said.
    pub reason: String,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HopFailureKind {
    /// ssh could not connect: refused, no route, timed out, unknown name.
    Unreachable,
    /// The host's key is unknown or changed (BatchMode does not ask).
    HostKey,
    /// The host refused every key offered.
    Auth,
    /// No hangscope there (not on its PATH, or not that path), or `--ship` not possible.
    NoHangscope,
    /// The whole run's deadline came first.
    Timeout,
    /// What came back is not a hangscope document.
    BadOutput,
    /// The remote hangscope ran and found no socket of that connection, nor a listener.
    NotFound,
    #[default]
    #[serde(other)]
    Other,
}
