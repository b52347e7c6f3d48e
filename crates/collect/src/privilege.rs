//! Which privilege a denied read of the target's /proc actually lacked, so a gap names it.
//!
//! Two different kernel checks guard what hangscope reads of another user's process, measured
//! here (Linux 6.18) as uid 65534 against a process of uid 0:
//! - file permissions: `/proc/PID/fd` is a directory of mode 0500 and
//!   `/proc/PID/task/TID/syscall` a file of mode 0400, both owned by the target's euid, so
//!   another user needs CAP_DAC_READ_SEARCH (or CAP_DAC_OVERRIDE) to list or read them;
//! - ptrace access (`ptrace_may_access`): fd links, fdinfo, syscall, exe and ns links need the
//!   caller's uids and gids to match the target's and the target to be dumpable, or
//!   CAP_SYS_PTRACE. With CAP_SYS_PTRACE alone, fdinfo is readable and `/proc/PID/fd` is not;
//!   with CAP_DAC_READ_SEARCH alone, the fd table is listed and its links are not.
//!
//! `/proc/PID/task/TID/stack` also needs CAP_SYS_ADMIN; threads/ says so itself.

use hangscope_model::{Gap, GapReason, GapTopic};

use crate::ProcRoot;

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;

/// The kernel checks a read of the target's /proc goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Ptrace access only (fdinfo, fd links once the directory is open, exe, ns).
    Ptrace,
    /// Both: a mode 0400 file read under a ptrace check (syscall), or the fd table, which is
    /// listed and then read link by link.
    Both,
}

/// What this process may do over the target.
#[derive(Debug, Clone, Default)]
pub struct Privileges {
    /// A file permission check would deny a mode 0400/0500 entry of the target's /proc.
    dac_missing: bool,
    /// A ptrace access check would deny it.
    ptrace_missing: bool,
    /// The owner of /proc/PID, for the words ("owned by uid 0").
    owner: Option<u32>,
}

impl Privileges {
    /// Compares this process's credentials and capabilities with the target's. What cannot
    /// be read (e.g. the target's status) is taken as missing, so a gap never claims less is
    /// needed than is.
    pub fn of(root: &ProcRoot, pid: i32) -> Privileges {
        use std::os::unix::fs::MetadataExt;
        // status is world-readable: unread, the target exited, and no privilege would help.
        let own = creds(&std::fs::read_to_string("/proc/self/status").unwrap_or_default());
        let target = creds(&root.read_pid(pid, "status").unwrap_or_default());
        // proc gives the entries of a process that is not dumpable to root, not to its euid.
        let owner = std::fs::metadata(root.pid(pid)).ok().map(|m| m.uid());
        let has = |cap: u32| own.as_ref().is_some_and(|c| c.cap_eff & (1u64 << cap) != 0);
        let fsuid = own.as_ref().map(|c| c.uids[3]);
        let dac_missing = fsuid != owner && !has(CAP_DAC_READ_SEARCH) && !has(CAP_DAC_OVERRIDE);
        // ptrace_may_access: the caller's real, effective and saved ids all equal to the
        // target's, and the target dumpable (its /proc owned by its euid), or CAP_SYS_PTRACE.
        let same_ids = match (&own, &target) {
            (Some(o), Some(t)) => {
                t.uids[..3].iter().all(|&u| u == o.uids[0])
                    && t.gids[..3].iter().all(|&g| g == o.gids[0])
                    && owner == Some(t.uids[1])
            }
            _ => false,
        };
        Privileges {
            dac_missing,
            ptrace_missing: !same_ids && !has(CAP_SYS_PTRACE),
            owner,
        }
    }

    /// What a read under `check` needed that this process lacks, in words.
    pub(crate) fn needs(&self, check: Check) -> String {
        let owner = self
            .owner
            .map_or_else(|| "its owner".to_string(), |u| format!("uid {u}"));
        let mut parts = Vec::new();
        if self.dac_missing && check == Check::Both {
            parts.push(format!(
                "CAP_DAC_READ_SEARCH (the entry is for {owner} only)"
            ));
        }
        if self.ptrace_missing {
            parts.push(format!("CAP_SYS_PTRACE (the process belongs to {owner})"));
        }
        if parts.is_empty() {
            return "a security module (SELinux, AppArmor) or Yama's ptrace_scope refused it: \
                    hangscope has the privileges the kernel's own checks ask for"
                .to_string();
        }
        format!("root, or {}", parts.join(" and "))
    }

    /// Names the missing privilege in every permission gap about the target's /proc.
    pub(crate) fn explain(&self, pid: i32, gaps: &mut [Gap]) {
        for g in gaps
            .iter_mut()
            .filter(|g| g.reason == GapReason::Permission)
        {
            if let Some(check) = check_of(g, pid) {
                g.needs = Some(self.needs(check));
            }
        }
    }
}

/// The check behind a gap's `what`, for the reads of the target's own /proc entries.
fn check_of(g: &Gap, pid: i32) -> Option<Check> {
    if matches!(g.topic, Some(GapTopic::FdTable | GapTopic::ThreadSyscalls)) {
        return Some(Check::Both);
    }
    let what = g.what.as_str();
    let proc = format!("/proc/{pid}/");
    if what.starts_with("readlink of ")
        || what.starts_with("fdinfo of ")
        || what.starts_with(&format!("{proc}fdinfo"))
        || what == format!("{proc}exe")
        || what == format!("{proc}ns/net")
    {
        return Some(Check::Ptrace);
    }
    None
}

struct Creds {
    /// Real, effective, saved, filesystem.
    uids: [u32; 4],
    gids: [u32; 4],
    cap_eff: u64,
}

fn creds(status: &str) -> Option<Creds> {
    let ids = |key: &str| -> Option<[u32; 4]> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        let v: Vec<u32> = line
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        v.try_into().ok()
    };
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())?;
    Some(Creds {
        uids: ids("Uid:")?,
        gids: ids("Gid:")?,
        cap_eff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_credentials_from_status() {
        let status = "Name:\tsleep\nUid:\t65534\t65534\t65534\t65534\nGid:\t0\t0\t0\t0\n\
                      CapEff:\t0000000000080000\n";
        let c = creds(status).unwrap();
        assert_eq!(c.uids, [65534; 4]);
        assert_eq!(c.gids, [0; 4]);
        assert_eq!(c.cap_eff, 1 << CAP_SYS_PTRACE);
        assert!(creds("garbage").is_none());
    }

    #[test]
    fn names_only_what_is_missing() {
        let p = Privileges {
            dac_missing: true,
            ptrace_missing: false,
            owner: Some(0),
        };
        let fd = p.needs(Check::Both);
        assert!(
            fd.contains("CAP_DAC_READ_SEARCH") && !fd.contains("PTRACE"),
            "{fd}"
        );
        assert!(p.needs(Check::Ptrace).contains("security module"));
        let none = Privileges {
            dac_missing: true,
            ptrace_missing: true,
            owner: Some(0),
        };
        let both = none.needs(Check::Both);
        assert!(both.contains("CAP_DAC_READ_SEARCH") && both.contains("CAP_SYS_PTRACE"));
        let gap = |what: &str| Gap::new(what, GapReason::Permission, "EACCES");
        assert_eq!(
            check_of(&gap("/proc/7/fd").about(GapTopic::FdTable), 7),
            Some(Check::Both)
        );
        assert_eq!(
            check_of(&gap("fdinfo of 3 fds of 7 (fd 1, 2, 3)"), 7),
            Some(Check::Ptrace)
        );
        assert_eq!(check_of(&gap("log /var/log/x (--log)"), 7), None);
    }
}
