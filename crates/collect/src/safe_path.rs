//! Resolves a path one component at a time without ever entering a mount that could hang.
//!
//! A path's text says nothing about where it leads: a symlink, a `..` or a replaced directory
//! can take `/var/log/app/x.log` onto a hung FUSE or NFS mount, where the first lookup blocks.
//! So each component is looked up from the directory fd of the one before (`O_PATH`, which
//! opens nothing and calls no file system), after its would-be path has been checked against
//! mountinfo: a mount point of a file system that is not local is never looked up. Symlinks
//! are read here (readlinkat) and their text walked the same way; `..` is taken lexically on
//! the resolved path, which holds no symlinks, so it means what the kernel would make of it.
//!
//! `openat2` (Linux 5.6) with `RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH` makes
//! the kernel refuse any mount crossing and any symlink in a step, so a mount mountinfo did
//! not list (mounted since it was read) is refused too. Older kernels get the same answer from
//! plain `openat` and the mount id in /proc/self/fdinfo of each step's fd: a change of mount
//! must be one mountinfo lists as local. `HANGSCOPE_NO_OPENAT2=1` forces that fallback, for
//! its tests.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::mountinfo::{self, Mounts};

/// Symlinks followed at most in one resolution, as the kernel's MAXSYMLINKS.
const MAX_LINKS: usize = 40;
/// Forces the walk without openat2 (set to anything but "0").
pub const NO_OPENAT2_ENV: &str = "HANGSCOPE_NO_OPENAT2";

/// Where a path led: an `O_PATH` fd of it, and its path with every symlink and `..` resolved.
#[derive(Debug)]
pub struct Found {
    pub fd: OwnedFd,
    pub path: String,
}

#[derive(Debug)]
pub enum Refused {
    /// Reaching it would enter the mount at `at`, of a type that can hang.
    Unsafe {
        at: String,
        fs_type: String,
    },
    /// The walk met a mount at `at` that mountinfo does not list as local.
    Unlisted {
        at: String,
    },
    Io(io::Error),
}

impl Refused {
    /// Why the file was not read, for a note or a gap.
    pub fn why(&self, verb: &str) -> String {
        match self {
            Refused::Unsafe { at, fs_type } => {
                format!("the path leads onto {fs_type} mount {at}: {verb} it could hang")
            }
            Refused::Unlisted { at } => format!(
                "the path crosses a mount at {at} that mountinfo does not list as local: {verb} \
                 it could hang"
            ),
            Refused::Io(e) => e.to_string(),
        }
    }
}

impl From<Errno> for Refused {
    fn from(e: Errno) -> Self {
        Refused::Io(e.into())
    }
}

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Self {
        Refused::Io(e)
    }
}

/// Resolves the absolute `path` from `root` (the root directory of the view the path is in:
/// `/`, or /proc/PID/root for the target's), never entering a mount `mounts` (that view's
/// mountinfo) does not list as local.
pub fn resolve(root: BorrowedFd<'_>, path: &str, mounts: &Mounts) -> Result<Found, Refused> {
    walk(root, path, mounts, openat2_works(root))
}

/// The walk, each step with openat2 (`kernel`) or with openat and fdinfo.
fn walk(root: BorrowedFd<'_>, path: &str, mounts: &Mounts, kernel: bool) -> Result<Found, Refused> {
    let root_mnt = if kernel { None } else { Some(mnt_id_of(root)?) };
    if let Some((_, m)) = mounts.mount_at("/")
        && !mountinfo::is_local(&m.fs_type)
    {
        return Err(Refused::Unsafe {
            at: "/".into(),
            fs_type: m.fs_type.clone(),
        });
    }
    // Each level of the walk: its directory fd, its path, and (fallback) its mount id.
    let mut stack: Vec<(OwnedFd, String, Option<u64>)> =
        vec![(root.try_clone_to_owned()?, "/".into(), root_mnt)];
    let mut todo: VecDeque<String> = components(path).collect();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let Some((dir, dir_path, dir_mnt)) = stack.last() else {
            break;
        };
        let would = if dir_path == "/" {
            format!("/{c}")
        } else {
            format!("{dir_path}/{c}")
        };
        // Before any lookup: a mount point named here is entered only if local.
        let listed = mounts.mount_at(&would);
        if let Some((_, m)) = listed
            && !mountinfo::is_local(&m.fs_type)
        {
            return Err(Refused::Unsafe {
                at: would,
                fs_type: m.fs_type.clone(),
            });
        }
        let (fd, mnt) = if kernel {
            (step_openat2(dir.as_fd(), &c, mounts, &would)?, None)
        } else {
            step_openat(dir.as_fd(), &c, *dir_mnt, mounts, &would)?
        };
        let st = nix::sys::stat::fstat(&fd)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            links += 1;
            if links > MAX_LINKS {
                return Err(Refused::Io(Errno::ELOOP.into()));
            }
            let target = nix::fcntl::readlinkat(&fd, "")?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                stack.truncate(1);
            }
            for t in components(&target).collect::<Vec<_>>().into_iter().rev() {
                todo.push_front(t);
            }
            continue;
        }
        stack.push((fd, would, mnt));
    }
    let (fd, path, _) = stack
        .pop()
        .ok_or_else(|| Refused::Io(io::Error::other("empty walk")))?;
    Ok(Found { fd, path })
}

/// The entry `name` of a directory reached by [`resolve`], as an `O_PATH` fd of the entry
/// itself (a symlink is not followed), under the same rule: a mount point there is entered
/// only if mountinfo lists it as local, so a stat of the fd cannot call a hung server.
pub fn open_entry(dir: &Found, name: &str, mounts: &Mounts) -> Result<OwnedFd, Refused> {
    let would = format!("{}/{name}", dir.path.trim_end_matches('/'));
    if let Some((_, m)) = mounts.mount_at(&would)
        && !mountinfo::is_local(&m.fs_type)
    {
        return Err(Refused::Unsafe {
            at: would,
            fs_type: m.fs_type.clone(),
        });
    }
    if openat2_works(dir.fd.as_fd()) {
        step_openat2(dir.fd.as_fd(), name, mounts, &would)
    } else {
        let dir_mnt = mnt_id_of(dir.fd.as_fd())?;
        step_openat(dir.fd.as_fd(), name, Some(dir_mnt), mounts, &would).map(|(fd, _)| fd)
    }
}

fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
}

fn opath() -> OFlag {
    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// One component with openat2: no symlink followed, nothing above `dir`, and a mount crossed
/// only where mountinfo lists a local one — and what the crossing lands on is that mount, not
/// one stacked on it since mountinfo was read.
fn step_openat2(
    dir: BorrowedFd<'_>,
    name: &str,
    mounts: &Mounts,
    would: &str,
) -> Result<OwnedFd, Refused> {
    let strict = ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::RESOLVE_BENEATH;
    let how = |r: ResolveFlag| OpenHow::new().flags(opath()).resolve(r);
    let unlisted = || Refused::Unlisted {
        at: would.to_string(),
    };
    match nix::fcntl::openat2(dir, name, how(strict | ResolveFlag::RESOLVE_NO_XDEV)) {
        Err(Errno::EXDEV) if mounts.mount_at(would).is_some() => {
            let fd = nix::fcntl::openat2(dir, name, how(strict))?;
            let landed = mounts.get(mnt_id_of(fd.as_fd())?);
            if !landed.is_some_and(|m| mountinfo::is_local(&m.fs_type)) {
                return Err(unlisted());
            }
            Ok(fd)
        }
        Err(Errno::EXDEV) => Err(unlisted()),
        other => Ok(other?),
    }
}

/// One component with openat; a change of mount id is accepted only onto a listed local
/// mount. The `O_PATH` step itself calls no file system.
fn step_openat(
    dir: BorrowedFd<'_>,
    name: &str,
    dir_mnt: Option<u64>,
    mounts: &Mounts,
    would: &str,
) -> Result<(OwnedFd, Option<u64>), Refused> {
    let fd = nix::fcntl::openat(dir, name, opath(), Mode::empty())?;
    let mnt = mnt_id_of(fd.as_fd())?;
    if Some(mnt) != dir_mnt {
        let listed_here = mounts.mount_at(would).is_some();
        match mounts.get(mnt) {
            Some(m) if listed_here && mountinfo::is_local(&m.fs_type) => {}
            Some(m) if !mountinfo::is_local(&m.fs_type) => {
                return Err(Refused::Unsafe {
                    at: would.to_string(),
                    fs_type: m.fs_type.clone(),
                });
            }
            _ => {
                return Err(Refused::Unlisted {
                    at: would.to_string(),
                });
            }
        }
    }
    Ok((fd, Some(mnt)))
}

/// The mount id of an fd of this process, from /proc/self/fdinfo (Linux 3.15).
fn mnt_id_of(fd: BorrowedFd<'_>) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no mnt_id in fdinfo"))
}

/// Whether openat2 is there (and not forced off); probed once.
fn openat2_works(root: BorrowedFd<'_>) -> bool {
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let forced_off = std::env::var_os(NO_OPENAT2_ENV).is_some_and(|v| v != "0");
    let works =
        !forced_off && nix::fcntl::openat2(root, ".", OpenHow::new().flags(opath())).is_ok();
    STATE.store(if works { 1 } else { 2 }, Ordering::Relaxed);
    works
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn own_mounts() -> Mounts {
        Mounts::parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap()).unwrap()
    }

    fn root() -> OwnedFd {
        nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn symlinks_and_dots_are_resolved_and_unsafe_mounts_refused() {
        let dir = std::env::temp_dir().join(format!("hangscope-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        std::fs::write(dir.join("a/b/x.log"), "x").unwrap();
        symlink("a/b", dir.join("lnk")).unwrap();
        symlink(dir.join("mnt"), dir.join("a/b/tomnt")).unwrap();
        let d = dir.canonicalize().unwrap().to_string_lossy().into_owned();
        let mounts = own_mounts();
        let r = root();
        let kernel = openat2_works(r.as_fd());
        for mode in [kernel, false] {
            let found = walk(r.as_fd(), &format!("{d}/lnk/../b/./x.log"), &mounts, mode).unwrap();
            assert_eq!(found.path, format!("{d}/a/b/x.log"));
            let st = nix::sys::stat::fstat(&found.fd).unwrap();
            assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG);
            // Across a local mount: /proc, on every test machine.
            let found = walk(r.as_fd(), "/proc/self/../1/", &mounts, mode).unwrap();
            assert_eq!(found.path, "/proc/1");
        }

        // The same tree with `mnt` listed as a FUSE mount point: nothing enters it, however
        // the path gets there.
        let fake = Mounts::parse(&format!(
            "{}999999 1 0:99 / {d}/mnt rw - fuse.hangfs hangfs rw\n",
            std::fs::read_to_string("/proc/self/mountinfo").unwrap()
        ))
        .unwrap();
        for p in [
            format!("{d}/mnt/x"),
            format!("{d}/a/../mnt/x"),
            format!("{d}/lnk/tomnt/x"),
            format!("{d}/a/b/tomnt"),
        ] {
            for mode in [kernel, false] {
                match walk(r.as_fd(), &p, &fake, mode) {
                    Err(Refused::Unsafe { at, fs_type }) => {
                        assert_eq!(at, format!("{d}/mnt"), "{p}");
                        assert_eq!(fs_type, "fuse.hangfs");
                    }
                    other => panic!("{p} (openat2 {mode}): {other:?}"),
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symlink_loop_ends() {
        let dir = std::env::temp_dir().join(format!("hangscope-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        symlink("b", dir.join("a")).unwrap();
        symlink("a", dir.join("b")).unwrap();
        let d = dir.canonicalize().unwrap().to_string_lossy().into_owned();
        let r = root();
        match resolve(r.as_fd(), &format!("{d}/a"), &own_mounts()) {
            Err(Refused::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ELOOP)),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_fallback_refuses_an_unlisted_mount() {
        // /proc is a mount on every test machine; a mountinfo without it stands for a mount
        // made after mountinfo was read.
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let without_proc: String = text
            .lines()
            .filter(|l| l.split(' ').nth(4) != Some("/proc"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mounts = Mounts::parse(&without_proc).unwrap();
        let r = root();
        let root_mnt = mnt_id_of(r.as_fd()).unwrap();
        let proc_fd =
            nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        match step_openat(proc_fd.as_fd(), "proc", Some(root_mnt), &mounts, "/proc") {
            Err(Refused::Unlisted { at }) => assert_eq!(at, "/proc"),
            other => panic!("{other:?}"),
        }
        match step_openat2(r.as_fd(), "proc", &mounts, "/proc") {
            Err(Refused::Unlisted { at }) => assert_eq!(at, "/proc"),
            Err(Refused::Io(e)) if e.raw_os_error() == Some(libc::ENOSYS) => {}
            other => panic!("{other:?}"),
        }
        assert!(step_openat(r.as_fd(), "proc", Some(root_mnt), &own_mounts(), "/proc").is_ok());
    }
}
