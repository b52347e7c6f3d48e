//! The facts of the `redis_blocked` rule (`rules/redis_blocked.rs`): what it found, as data. The rule
//! decides and sets them; `words/redis_blocked.rs` says them.

use serde::Serialize;

use crate::facts::ThreadWait;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RedisBlocked {
    pub pid: i32,
    pub server_pid: i32,
    /// The server's address, "127.0.0.1:6379".
    pub server: String,
    /// The client's id on the server (`CLIENT KILL ID` takes it).
    pub client_id: u64,
    /// The command, upper case: "BLPOP".
    pub command: String,
    /// Since its last command: how long it has been blocked (`idle`).
    pub blocked_s: u64,
    /// The target's connection.
    pub socket_inode: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiter: Option<ThreadWait>,
}

impl RedisBlocked {
    /// What ends the wait, by the command.
    pub fn returns_when(&self) -> &'static str {
        match self.command.as_str() {
            "BLPOP" | "BRPOP" | "BLMOVE" | "BRPOPLPUSH" | "BLMPOP" => {
                "a value is pushed to one of its lists"
            }
            "BZPOPMIN" | "BZPOPMAX" | "BZMPOP" => "a member is added to one of its sorted sets",
            "XREAD" | "XREADGROUP" => "an entry is added to one of its streams",
            "WAIT" | "WAITAOF" => "enough replicas acknowledge its writes",
            _ => "the event it waits for happens",
        }
    }
}
