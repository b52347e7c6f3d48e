//! `hangscope peer --local A:P --remote B:Q`: run on the host at the far end of a connection
//! (by `--follow`, over ssh), it finds that connection's socket in every network namespace
//! here, and reports on the process holding it, with the chain from it on this host.

use std::net::SocketAddr;
use std::time::Instant;

use hangscope_collect::resolve::Resolved;
use hangscope_collect::{Deadline, ProcRoot};
use hangscope_model::Served;

use crate::cli::{CollectArgs, OutputArgs, exit};

pub fn run(
    local: SocketAddr,
    remote: SocketAddr,
    output: &OutputArgs,
    collect: &CollectArgs,
) -> i32 {
    let start = Instant::now();
    // The search is part of the run: at most a third of it, the rest for the process.
    let search = Deadline::after(collect.deadline() / 3);
    let owner =
        match hangscope_collect::sockets::owner::find(&ProcRoot::default(), local, remote, &search)
        {
            Ok(o) => o,
            Err(why) => {
                crate::say(&why.to_string());
                return exit::NOTHING_READABLE;
            }
        };
    let served = Served {
        local: local.to_string(),
        remote: remote.to_string(),
        found_by: owner.found_by,
        netns_inode: Some(owner.netns_inode),
        namespaces: owner.namespaces,
        socket_inode: owner.socket_inode,
        fd: owner.fd,
        holders: owner.holders,
    };
    let mut rest = collect.clone();
    let left = collect.deadline().saturating_sub(start.elapsed());
    rest.deadline = Some(left);
    // A window that no longer fits is shortened rather than refused: the caller's deadline is
    // what counts.
    let room = left.saturating_sub(std::time::Duration::from_millis(700));
    rest.window = rest.window.min(room);
    // Only this host: the caller follows any further host itself.
    rest.follow.follow = false;
    let target = Resolved {
        pid: owner.pid,
        focus_tid: None,
    };
    match crate::document_of(target, &rest, Some(served)) {
        Ok(doc) => {
            let code = crate::emit(&doc, output, None);
            std::mem::forget(doc);
            code
        }
        Err(code) => code,
    }
}
