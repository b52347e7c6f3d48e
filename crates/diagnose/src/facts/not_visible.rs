//! The facts of the `not_visible` rule (`rules/not_visible.rs`): what it found, as data. The rule
//! decides and sets them; `words/not_visible.rs` says them.

use hangscope_model::Text;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct NotVisible {
    pub pid: i32,
    pub name: Text,
    /// What could not be read, the fd table first.
    pub unseen: Vec<Unseen>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Unseen {
    pub part: Part,
    /// The gap: what was refused, the error, and the privilege that would have allowed it.
    pub what: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Part {
    FdTable,
    Syscalls,
}
