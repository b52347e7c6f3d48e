//! Turns what the user typed (a PID, a thread id from a log line, a process name) into a PID.

use hangscope_model::Text;

use crate::ProcRoot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub pid: i32,
    /// Set when the user gave a thread id that is not the process's main thread.
    pub focus_tid: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no process or thread with id {0}")]
    NoSuchId(i32),
    #[error("no process named {0:?}")]
    NoSuchName(String),
    #[error("{name:?} matches {} processes:\n{}\npick one by PID", candidates.len(), list(candidates))]
    Ambiguous {
        name: String,
        /// PID and command line (or comm), as the process has them.
        candidates: Vec<(i32, Text)>,
    },
}

/// Longest command line shown per candidate, escaped; the rest is cut with a marker.
const CANDIDATE_MAX: usize = 200;

fn list(c: &[(i32, Text)]) -> String {
    c.iter()
        .map(|(pid, cmd)| format!("  {pid:>7}  {}", cmd.escaped_cut(CANDIDATE_MAX)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A numeric id: a PID, or a TID whose thread group is then the target.
pub fn by_id(root: &ProcRoot, id: i32) -> Result<Resolved, ResolveError> {
    // /proc/TID is reachable for any thread, though readdir lists only thread group leaders.
    let status = root
        .read_pid(id, "status")
        .map_err(|_| ResolveError::NoSuchId(id))?;
    let tgid = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(id);
    Ok(Resolved {
        pid: tgid,
        focus_tid: (tgid != id).then_some(id),
    })
}

/// A name, matched like pidof: the comm, or the base name of `argv[0]` or of the executable.
pub fn by_name(root: &ProcRoot, name: &str) -> Result<Resolved, ResolveError> {
    let own = std::process::id() as i32;
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(root.path()).map_err(|_| ResolveError::NoSuchName(name.into()))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        // Unreadable: a process gone since the listing (comm and cmdline are world-readable),
        // which cannot match.
        let comm = root.read_pid(pid, "comm").unwrap_or_default();
        let cmdline = root.read_pid(pid, "cmdline").unwrap_or_default();
        let argv0 = cmdline.split('\0').next().unwrap_or("");
        let base = |s: &str| s.rsplit('/').next().unwrap_or("").to_string();
        let exe = std::fs::read_link(root.pid(pid).join("exe"))
            .map(|p| base(&p.to_string_lossy()))
            .unwrap_or_default();
        if comm.trim_end() == name || base(argv0) == name || exe == name {
            let args = root.read_pid_bytes(pid, "cmdline").unwrap_or_default();
            let args: Vec<&[u8]> = args.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
            let shown = if args.is_empty() {
                root.comm(pid).unwrap_or_default()
            } else {
                Text::from_bytes(args.join(&b' '))
            };
            found.push((pid, shown));
        }
    }
    found.sort();
    match found.len() {
        0 => Err(ResolveError::NoSuchName(name.to_string())),
        1 => Ok(Resolved {
            pid: found[0].0,
            focus_tid: None,
        }),
        _ => Err(ResolveError::Ambiguous {
            name: name.to_string(),
            candidates: found,
        }),
    }
}
