//! /proc/PID/mountinfo, see proc_pid_mountinfo(5): which file system each fd's `mnt_id` is on,
//! so hangscope never stats into a mount that can hang.

use crate::error::ReadError;
use std::collections::HashMap;

use hangscope_model::Gap;
use procfs_core::FromBufRead;
use procfs_core::process::MountInfos;

use crate::ProcRoot;
use crate::error::gap_of;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub fs_type: String,
    pub mount_point: String,
    pub source: Option<String>,
}

/// Mounts by mount id, in the target's mount namespace.
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    by_id: HashMap<u64, Mount>,
}

impl Mounts {
    pub fn get(&self, mnt_id: u64) -> Option<&Mount> {
        self.by_id.get(&mnt_id)
    }

    /// The mount `path` lies on: the longest mount point that is a whole-component prefix of
    /// it (the newest mount when several share a point). Paths are taken as written, without
    /// resolving symlinks, since resolving could touch a hung mount.
    pub fn containing(&self, path: &str) -> Option<&Mount> {
        self.by_id
            .iter()
            .filter(|(_, m)| is_under(path, &m.mount_point))
            .max_by_key(|(id, m)| (m.mount_point.len(), **id))
            .map(|(_, m)| m)
    }

    /// The mount whose mount point is exactly `path` (the newest when several are stacked
    /// there, as `containing` picks), with its id.
    pub fn mount_at(&self, path: &str) -> Option<(u64, &Mount)> {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        self.by_id
            .iter()
            .filter(|(_, m)| {
                let mp = m.mount_point.as_str();
                mp == path || (mp.len() > 1 && mp.trim_end_matches('/') == path)
            })
            .max_by_key(|(id, _)| **id)
            .map(|(id, m)| (*id, m))
    }

    /// The mounts whose type starts with `prefix` ("fuse" matches "fuse.sshfs", "fuseblk").
    pub fn of_type_prefix(&self, prefix: &str) -> Vec<&Mount> {
        self.by_id
            .values()
            .filter(|m| m.fs_type.starts_with(prefix))
            .collect()
    }

    /// Mount points of the file systems that are not known to be local (network, FUSE, ...).
    pub fn not_local_points(&self) -> Vec<&str> {
        self.by_id
            .values()
            .filter(|m| !is_local(&m.fs_type))
            .map(|m| m.mount_point.as_str())
            .collect()
    }

    pub fn parse(text: &str) -> Result<Mounts, ReadError> {
        let infos = MountInfos::from_buf_read(text.as_bytes())
            .map_err(|e| ReadError::malformed(e.to_string()))?;
        let by_id = infos
            .0
            .into_iter()
            .map(|m| {
                (
                    m.mnt_id as u64,
                    Mount {
                        fs_type: m.fs_type,
                        mount_point: m.mount_point.to_string_lossy().into_owned(),
                        source: m.mount_source,
                    },
                )
            })
            .collect();
        Ok(Mounts { by_id })
    }
}

pub fn read(root: &ProcRoot, pid: i32, gaps: &mut Vec<Gap>) -> Mounts {
    let what = format!("/proc/{pid}/mountinfo");
    match root.read_pid(pid, "mountinfo") {
        Ok(text) => Mounts::parse(&text).unwrap_or_else(|e| {
            gaps.push(e.gap(what));
            Mounts::default()
        }),
        Err(e) => {
            gaps.push(gap_of(what, &e));
            Mounts::default()
        }
    }
}

/// Whether `path` lies at or below `mount_point`, by whole components, as written.
pub fn is_under(path: &str, mount_point: &str) -> bool {
    let mp = mount_point.trim_end_matches('/');
    path == mp || mp.is_empty() || path.strip_prefix(mp).is_some_and(|r| r.starts_with('/'))
}

/// File systems whose metadata lives in this machine's memory or on a local disk, where a
/// `statx(AT_STATX_DONT_SYNC)` of an open file answers from the inode cache. Everything else
/// (nfs, cifs, ceph, fuse.*, 9p, autofs, unknown) may call out and hang, so it is not stat'ed.
pub fn is_local(fs_type: &str) -> bool {
    matches!(
        fs_type,
        "ext2"
            | "ext3"
            | "ext4"
            | "xfs"
            | "btrfs"
            | "f2fs"
            | "vfat"
            | "exfat"
            | "ntfs3"
            | "zfs"
            | "tmpfs"
            | "ramfs"
            | "devtmpfs"
            | "devpts"
            | "proc"
            | "sysfs"
            | "cgroup"
            | "cgroup2"
            | "mqueue"
            | "hugetlbfs"
            | "debugfs"
            | "tracefs"
            | "securityfs"
            | "pstore"
            | "bpf"
            | "configfs"
            | "squashfs"
            | "iso9660"
            | "erofs"
            | "overlay"
            | "nsfs"
            | "binfmt_misc"
            | "efivarfs"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_classifies() {
        let text = "24 1 0:5 / /dev rw,nosuid - devtmpfs udev rw,size=10g\n\
                    27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    90 27 0:50 / /mnt/hung rw,nosuid - fuse.hangfs hangfs rw,user_id=0\n\
                    91 27 0:51 / /usr/share/smartx/volumes rw - nfs4 10.0.0.1:/vol rw\n";
        let m = Mounts::parse(text).unwrap();
        assert_eq!(m.get(27).unwrap().fs_type, "ext4");
        assert!(is_local(&m.get(24).unwrap().fs_type));
        assert!(!is_local(&m.get(90).unwrap().fs_type));
        assert!(!is_local(&m.get(91).unwrap().fs_type));
        assert_eq!(m.get(91).unwrap().mount_point, "/usr/share/smartx/volumes");
        let on = |p: &str| m.containing(p).map(|m| m.fs_type.as_str());
        assert_eq!(on("/usr/share/smartx/volumes/a/b.log"), Some("nfs4"));
        assert_eq!(on("/usr/share/smartx/volumesX/b.log"), Some("ext4"));
        assert_eq!(on("/mnt/hung"), Some("fuse.hangfs"));
        assert_eq!(on("/var/log/x.log"), Some("ext4"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Mounts::parse("this is not mountinfo\n").is_err());
    }
}
