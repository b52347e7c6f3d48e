//! Whether a cgroup freezer holds the process: cgroup v2's `cgroup.freeze` / `cgroup.events`
//! (Linux 5.2+), or the v1 freezer controller's `freezer.state` (el7's 3.10 and 4.18 hosts).
//! A frozen process looks asleep — state S with wchan `get_signal` / `do_freezer_trap` under v2,
//! D under v1 — so without this its wait reads as an ordinary one.
//!
//! The process's cgroups come from /proc/PID/cgroup (see cgroups(7)); the hierarchies' mount
//! points from hangscope's own /proc/self/mountinfo, since the paths are read here. cgroupfs is
//! a kernel file system whose reads do not block.

use std::path::{Path, PathBuf};

use hangscope_model::Freezer;
use procfs_core::FromBufRead;
use procfs_core::process::MountInfos;

/// The cgroups of a process that a freezer may act on: its v2 path and its v1 freezer path.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CgroupPaths {
    pub unified: Option<String>,
    pub freezer_v1: Option<String>,
}

/// Parses /proc/PID/cgroup: "0::/path" is the unified hierarchy, "N:freezer:/path" (the
/// controller list may hold several, comma-separated) the v1 freezer.
pub fn parse_cgroup(text: &str) -> CgroupPaths {
    let mut paths = CgroupPaths::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            paths.unified = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "freezer") {
            paths.freezer_v1 = Some(path.to_string());
        }
    }
    paths
}

/// Where the hierarchies are mounted: the cgroup2 mount and the v1 mount with the freezer
/// controller.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    pub unified: Option<PathBuf>,
    pub freezer_v1: Option<PathBuf>,
}

pub fn parse_mounts(mountinfo: &str) -> CgroupMounts {
    let mut mounts = CgroupMounts::default();
    let Ok(infos) = MountInfos::from_buf_read(mountinfo.as_bytes()) else {
        return mounts;
    };
    for m in infos.0 {
        // The root of the hierarchy must be mounted, or the process's path is not under it.
        if m.root != "/" {
            continue;
        }
        match m.fs_type.as_str() {
            "cgroup2" if mounts.unified.is_none() => mounts.unified = Some(m.mount_point),
            "cgroup" if mounts.freezer_v1.is_none() && m.super_options.contains_key("freezer") => {
                mounts.freezer_v1 = Some(m.mount_point)
            }
            _ => {}
        }
    }
    mounts
}

/// "frozen 1" in a v2 cgroup.events.
fn events_frozen(events: &str) -> bool {
    events.lines().any(|l| l.trim() == "frozen 1")
}

/// The directory of cgroup `path` under the hierarchy mounted at `mount`, and its ancestors up
/// to the root, nearest first.
fn dir_and_ancestors(mount: &Path, path: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut rel = path.trim_matches('/').to_string();
    loop {
        out.push(if rel.is_empty() {
            mount.to_path_buf()
        } else {
            mount.join(&rel)
        });
        match rel.rfind('/') {
            Some(i) => rel.truncate(i),
            None if !rel.is_empty() => rel.clear(),
            None => break,
        }
    }
    out
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The freezer holding the process whose /proc/PID/cgroup is `cgroup`, if one does.
pub fn read(cgroup: &str, mounts: &CgroupMounts) -> Option<Freezer> {
    let paths = parse_cgroup(cgroup);
    if let (Some(path), Some(mount)) = (&paths.unified, &mounts.unified) {
        let dirs = dir_and_ancestors(mount, path);
        let asked: Vec<String> = dirs
            .iter()
            .map(|d| d.join("cgroup.freeze"))
            .filter(|f| read_trimmed(f).as_deref() == Some("1"))
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        let frozen = dirs
            .first()
            .and_then(|d| read_trimmed(&d.join("cgroup.events")))
            .is_some_and(|e| events_frozen(&e));
        if frozen || !asked.is_empty() {
            return Some(Freezer {
                version: 2,
                cgroup: path.clone(),
                frozen,
                set_in: asked,
            });
        }
    }
    if let (Some(path), Some(mount)) = (&paths.freezer_v1, &mounts.freezer_v1) {
        let dirs = dir_and_ancestors(mount, path);
        let state = dirs
            .first()
            .and_then(|d| read_trimmed(&d.join("freezer.state")))?;
        if state == "THAWED" {
            return None;
        }
        let set_in = dirs
            .iter()
            .filter(|d| read_trimmed(&d.join("freezer.self_freezing")).as_deref() == Some("1"))
            .map(|d| d.join("freezer.state").to_string_lossy().into_owned())
            .collect();
        return Some(Freezer {
            version: 1,
            cgroup: path.clone(),
            frozen: state == "FROZEN",
            set_in,
        });
    }
    None
}

/// The mounts as hangscope sees them; `Default` (no freezer known) when unreadable. Read once
/// per run: the target and each other end looked at ask for them.
pub fn own_mounts() -> &'static CgroupMounts {
    static MOUNTS: std::sync::OnceLock<CgroupMounts> = std::sync::OnceLock::new();
    MOUNTS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| parse_mounts(&t))
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_file_of_a_hybrid_host() {
        // Recorded on Linux 6.18 with the v1 controllers and cgroup2 at /sys/fs/cgroup/unified.
        let text = "9:name=systemd:/\n8:pids:/\n6:freezer:/batch/job-7\n\
                    4:memory:/process_api/55f7\n2:cpu,cpuacct:/\n0::/hs-probe\n";
        assert_eq!(
            parse_cgroup(text),
            CgroupPaths {
                unified: Some("/hs-probe".into()),
                freezer_v1: Some("/batch/job-7".into()),
            }
        );
        assert_eq!(parse_cgroup("garbage\n::\n"), CgroupPaths::default());
    }

    #[test]
    fn mounts_of_a_hybrid_host() {
        let text = "\
35 30 0:30 / /sys/fs/cgroup/freezer rw,relatime shared:14 - cgroup cgroup rw,freezer
36 30 0:31 / /sys/fs/cgroup/cpu rw,relatime shared:15 - cgroup cgroup rw,cpu
40 30 0:35 / /sys/fs/cgroup/unified rw,relatime shared:19 - cgroup2 cgroup2 rw
";
        assert_eq!(
            parse_mounts(text),
            CgroupMounts {
                unified: Some("/sys/fs/cgroup/unified".into()),
                freezer_v1: Some("/sys/fs/cgroup/freezer".into()),
            }
        );
    }

    #[test]
    fn ancestors_nearest_first() {
        let dirs = dir_and_ancestors(Path::new("/cg"), "/a/b");
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/cg/a/b"),
                PathBuf::from("/cg/a"),
                PathBuf::from("/cg")
            ]
        );
        assert_eq!(
            dir_and_ancestors(Path::new("/cg"), "/"),
            vec![PathBuf::from("/cg")]
        );
    }

    #[test]
    fn events() {
        assert!(events_frozen("populated 1\nfrozen 1\n"));
        assert!(!events_frozen("populated 1\nfrozen 0\n"));
    }
}
