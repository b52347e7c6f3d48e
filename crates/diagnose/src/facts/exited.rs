//! The facts of the `exited` rule (`rules/exited.rs`): what it found, as data. The rule
//! decides and sets them; `words/exited.rs` says them.

use hangscope_model::Text;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Exited {
    pub pid: i32,
    pub name: Text,
    /// The parent that has not reaped it.
    pub ppid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_name: Option<Text>,
}
