//! The LOCKS section: the target's file locks, held and waited for.

use std::fmt::Write;

use hangscope_model::{FileLock, LockAccess, LockClass, Snapshot};

use super::Style;
use crate::table::Table;

pub(super) fn locks(out: &mut String, snap: &Snapshot, st: &Style) {
    if snap.locks.is_empty() {
        return;
    }
    let mut t = Table::new(&["FD", "LOCK", "ACCESS", "RANGE", "STATE", "FILE"]);
    for l in &snap.locks {
        t.push(vec![
            l.fd.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
            lock_class(l).into(),
            match l.access {
                LockAccess::Read => "READ",
                LockAccess::Write => "WRITE",
                LockAccess::None => "NONE",
                LockAccess::Other => "?",
            }
            .into(),
            match l.end {
                Some(e) => format!("{}-{e}", l.start),
                None => format!("{}-EOF", l.start),
            },
            lock_state(l, snap.process.pid, st),
            match &l.path {
                Some(path) => st.show(path),
                None => st.show(&format!("{} inode {}", l.dev, l.inode)),
            },
        ]);
    }
    let _ = writeln!(out, "{}", st.bold("LOCKS"));
    out.push_str(&t.render(2, st.header()));
    out.push('\n');
}

fn lock_class(l: &FileLock) -> &'static str {
    match l.class {
        LockClass::Posix => "POSIX",
        LockClass::Flock => "FLOCK",
        LockClass::Ofd => "OFD",
        LockClass::Lease => "LEASE",
        LockClass::Delegation => "DELEG",
        LockClass::Other => "?",
    }
}

fn lock_state(l: &FileLock, pid: i32, st: &Style) -> String {
    if l.other_owner {
        return match (l.pid, &l.owner_name) {
            (Some(p), Some(name)) => format!("held by process {p} ({})", st.show(name)),
            (Some(p), None) => format!("held by process {p}"),
            (None, _) => "held by another open file".into(),
        };
    }
    if !l.waiting {
        return "held".into();
    }
    if l.pid == Some(pid) {
        match l.holder_pid {
            Some(h) => format!("WAITING for process {h}"),
            None => "WAITING (holder not named)".into(),
        }
    } else {
        format!("process {} waits for it", l.pid.unwrap_or(-1))
    }
}
