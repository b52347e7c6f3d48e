//! Compressed DWARF kept inflated on disk, so that it is inflated once per file, not once per
//! run.
//!
//! A distribution's debug files (libc6-dbg's, for nearly every target) carry their DWARF
//! zlib-compressed, and a zlib stream is read from its start: the units a blocked program's
//! stacks touch in libc's are spread over 4 of its 5.8 MB of `.debug_info`, 15 ms of inflating
//! on every run, most of a run's time. The first run that inflates a file's sections writes
//! them out whole; later runs read the units they need from that copy, as from a file whose
//! DWARF is not compressed. It is what gdb's index-cache and debuginfod's client cache do for
//! the same cost, and like them it holds nothing of the target's: only what the debug file
//! already says, keyed by the file's identity (device, inode, size, modification time), so a
//! changed or reinstalled file is a new key.
//!
//! The directory is `HANGSCOPE_CACHE_DIR` when set (`off` for none), else
//! `/var/cache/hangscope` for root and `$XDG_CACHE_HOME/hangscope` (`~/.cache/hangscope`)
//! for others. It is reached only through local file systems (`safe_path`), created (0700)
//! only inside a parent that exists, and used only when it is this user's and writable by
//! nobody else; an entry is read only when it is this user's, not writable by others, and its
//! table of sections fits the file. A write goes to a new file renamed into place, so a reader
//! never sees half of one; a write that fails (a full or read-only disk) leaves no entry and
//! changes nothing else. Entries beyond [`MAX_ENTRIES`] are removed, oldest first.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;

use nix::fcntl::{OFlag, open, openat, renameat};
use nix::sys::stat::{Mode, fstat, mkdirat};

use crate::mountinfo::Mounts;

/// Disables the cache ("off"), or names its directory.
pub const DIR_ENV: &str = "HANGSCOPE_CACHE_DIR";
/// Entries kept at most: a host's few debug files with compressed DWARF (libc's, libstdc++'s)
/// and their versions across upgrades; ~8 MB each for libc.
pub const MAX_ENTRIES: usize = 16;

const MAGIC: &[u8; 16] = b"hangscope-dwarf\0";
const VERSION: u32 = 1;
const NAME_LEN: usize = 24;
const ENTRY_LEN: usize = NAME_LEN + 16;
/// A file has at most a dozen DWARF sections.
const MAX_SECTIONS: usize = 32;
const SUFFIX: &str = ".dwarf";

/// The cache directory, open and checked.
pub struct Cache {
    dir: OwnedFd,
    euid: u32,
}

/// A file's sections as an entry holds them: (name, offset in `file`, size).
pub struct Kept {
    pub file: File,
    pub sections: Vec<(String, u64, u64)>,
}

impl Kept {
    pub fn section(&self, name: &str) -> Option<(u64, u64)> {
        self.sections
            .iter()
            .find(|(n, ..)| n == name)
            .map(|&(_, at, size)| (at, size))
    }

    /// The whole section, read from the entry.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        let (at, size) = self.section(name)?;
        let mut out = vec![0u8; usize::try_from(size).ok()?];
        self.file.read_exact_at(&mut out, at).ok()?;
        Some(out)
    }
}

impl Cache {
    /// The cache directory as configured (see the module header), or `None`: off, no place
    /// for it, or one that is not safe to use.
    pub fn open(own_mounts: &Mounts) -> Option<Cache> {
        let configured = std::env::var(DIR_ENV).ok();
        let euid = nix::unistd::geteuid().as_raw();
        let path = match configured.as_deref() {
            Some("off") | Some("") => return None,
            Some(dir) => dir.to_string(),
            None if euid == 0 => "/var/cache/hangscope".to_string(),
            None => match std::env::var("XDG_CACHE_HOME") {
                Ok(x) if x.starts_with('/') => format!("{x}/hangscope"),
                _ => format!("{}/.cache/hangscope", std::env::var("HOME").ok()?),
            },
        };
        Cache::at(&path, own_mounts, euid)
    }

    /// The directory `path` (absolute), created in its parent when missing.
    pub fn at(path: &str, own_mounts: &Mounts, euid: u32) -> Option<Cache> {
        let (parent, name) = path.trim_end_matches('/').rsplit_once('/')?;
        if name.is_empty() || name == "." || name == ".." {
            return None;
        }
        let root = open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let parent = if parent.is_empty() { "/" } else { parent };
        let parent = crate::safe_path::resolve(root.as_fd(), parent, own_mounts).ok()?;
        // The parent is an O_PATH fd: a directory fd to create in is opened from it.
        let parent_dir = openat(
            parent.fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        match mkdirat(parent_dir.as_fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(_) => return None,
        }
        let dir = openat(
            parent_dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let st = fstat(dir.as_fd()).ok()?;
        if st.st_uid != euid || st.st_mode & 0o022 != 0 {
            return None;
        }
        Some(Cache { dir, euid })
    }

    /// The entry for `file`, if one is kept and sound.
    pub fn get(&self, file: &File) -> Option<Kept> {
        let key = key_of(file)?;
        let fd = openat(
            self.dir.as_fd(),
            key.as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .ok()?;
        let st = fstat(fd.as_fd()).ok()?;
        if st.st_uid != self.euid
            || st.st_mode & 0o022 != 0
            || st.st_mode & libc::S_IFMT != libc::S_IFREG
        {
            return None;
        }
        let file = File::from(fd);
        let sections = parse_table(&file, u64::try_from(st.st_size).ok()?)?;
        Some(Kept { file, sections })
    }

    /// Keeps `sections` (name, whole inflated bytes) of `file`. Failures are silent: the next
    /// run inflates again.
    pub fn put(&self, file: &File, sections: &[(&str, &[u8])]) {
        let Some(key) = key_of(file) else { return };
        if sections.is_empty() || sections.len() > MAX_SECTIONS {
            return;
        }
        let tmp = format!(".tmp-{}-{key}", std::process::id());
        let Ok(fd) = openat(
            self.dir.as_fd(),
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        ) else {
            return;
        };
        let mut out = std::io::BufWriter::new(File::from(fd));
        let written = write_entry(&mut out, sections)
            .and_then(|()| out.flush())
            .is_ok();
        drop(out);
        if written
            && renameat(
                self.dir.as_fd(),
                tmp.as_str(),
                self.dir.as_fd(),
                key.as_str(),
            )
            .is_ok()
        {
            self.trim();
        } else {
            let _ = nix::unistd::unlinkat(
                self.dir.as_fd(),
                tmp.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }

    /// Removes the oldest entries beyond [`MAX_ENTRIES`], and temporary files a run left
    /// behind (killed while writing) an hour ago or more.
    fn trim(&self) {
        // A second fd of the directory: the listing moves its offset.
        let Ok(listing) = openat(
            self.dir.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return;
        };
        let Ok(mut dir) = nix::dir::Dir::from_fd(listing) else {
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut entries: Vec<(i64, String)> = Vec::new();
        let mut stale: Vec<String> = Vec::new();
        for e in dir.iter().flatten() {
            let Ok(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(st) = nix::sys::stat::fstatat(
                self.dir.as_fd(),
                name.as_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            if name.starts_with(".tmp-") && now - st.st_mtime > 3600 {
                stale.push(name);
            } else if name.ends_with(SUFFIX) {
                entries.push((st.st_mtime, name));
            }
        }
        entries.sort();
        let excess = entries.len().saturating_sub(MAX_ENTRIES);
        for name in entries
            .into_iter()
            .take(excess)
            .map(|(_, n)| n)
            .chain(stale)
        {
            let _ = nix::unistd::unlinkat(
                self.dir.as_fd(),
                name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// The entry's name for `file`: its device, inode, size and modification time.
fn key_of(file: &File) -> Option<String> {
    let st = fstat(file.as_fd()).ok()?;
    Some(format!(
        "{:x}-{:x}-{:x}-{:x}.{:x}{SUFFIX}",
        st.st_dev, st.st_ino, st.st_size, st.st_mtime, st.st_mtime_nsec
    ))
}

/// The layout: MAGIC, version and section count (u32 LE each), a table of (name padded with
/// NULs to 24 bytes, offset u64 LE, size u64 LE), then the sections' bytes.
fn write_entry(out: &mut impl Write, sections: &[(&str, &[u8])]) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&(sections.len() as u32).to_le_bytes())?;
    let mut at = (MAGIC.len() + 8 + sections.len() * ENTRY_LEN) as u64;
    for (name, bytes) in sections {
        let mut field = [0u8; NAME_LEN];
        let n = name.as_bytes();
        if n.len() > NAME_LEN {
            return Err(std::io::Error::other("section name too long"));
        }
        field[..n.len()].copy_from_slice(n);
        out.write_all(&field)?;
        out.write_all(&at.to_le_bytes())?;
        out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        at += bytes.len() as u64;
    }
    for (_, bytes) in sections {
        out.write_all(bytes)?;
    }
    Ok(())
}

/// The table of an entry `len` bytes long, or `None` if it is not one hangscope wrote.
fn parse_table(file: &File, len: u64) -> Option<Vec<(String, u64, u64)>> {
    let mut head = [0u8; 24];
    file.read_exact_at(&mut head, 0).ok()?;
    if &head[..16] != MAGIC || u32::from_le_bytes(head[16..20].try_into().ok()?) != VERSION {
        return None;
    }
    let count = u32::from_le_bytes(head[20..24].try_into().ok()?) as usize;
    if count == 0 || count > MAX_SECTIONS {
        return None;
    }
    let mut table = vec![0u8; count * ENTRY_LEN];
    file.read_exact_at(&mut table, 24).ok()?;
    let data_start = (24 + count * ENTRY_LEN) as u64;
    let mut out = Vec::with_capacity(count);
    for e in table.chunks_exact(ENTRY_LEN) {
        let name_end = e[..NAME_LEN]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(NAME_LEN);
        let name = std::str::from_utf8(&e[..name_end]).ok()?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let at = u64::from_le_bytes(e[NAME_LEN..NAME_LEN + 8].try_into().ok()?);
        let size = u64::from_le_bytes(e[NAME_LEN + 8..].try_into().ok()?);
        if at < data_start || at.checked_add(size)? > len {
            return None;
        }
        out.push((name.to_string(), at, size));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> String {
        let d = std::env::temp_dir().join(format!("hangscope-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d.to_string_lossy().into_owned()
    }

    fn mounts() -> Mounts {
        let mut gaps = Vec::new();
        crate::mountinfo::read(
            &crate::ProcRoot::default(),
            std::process::id() as i32,
            &mut gaps,
        )
    }

    #[test]
    fn an_entry_gives_back_the_sections_it_was_given_and_a_changed_file_has_none() {
        let base = temp_dir("dwarf-cache");
        let euid = nix::unistd::geteuid().as_raw();
        let cache = Cache::at(&format!("{base}/cache"), &mounts(), euid).expect("cache dir");
        let source_path = format!("{base}/libfoo.debug");
        std::fs::write(&source_path, b"the debug file").expect("source");
        let source = File::open(&source_path).expect("open");
        assert!(cache.get(&source).is_none(), "nothing kept yet");
        let info = vec![7u8; 100_000];
        cache.put(
            &source,
            &[(".debug_info", &info), (".debug_line", b"lines")],
        );
        let kept = cache.get(&source).expect("kept");
        assert_eq!(kept.bytes(".debug_info"), Some(info));
        assert_eq!(kept.bytes(".debug_line"), Some(b"lines".to_vec()));
        assert_eq!(kept.bytes(".debug_abbrev"), None);
        // Rewritten: another size and time, another key.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&source_path, b"the debug file, upgraded").expect("rewrite");
        let source = File::open(&source_path).expect("open");
        assert!(cache.get(&source).is_none(), "a changed file has no entry");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_damaged_entry_is_not_read() {
        let base = temp_dir("dwarf-cache-bad");
        let euid = nix::unistd::geteuid().as_raw();
        let cache = Cache::at(&format!("{base}/cache"), &mounts(), euid).expect("cache dir");
        let source_path = format!("{base}/libfoo.debug");
        std::fs::write(&source_path, b"x").expect("source");
        let source = File::open(&source_path).expect("open");
        cache.put(&source, &[(".debug_info", &[1u8; 4096])]);
        let key = key_of(&source).expect("key");
        let entry = format!("{base}/cache/{key}");
        // Cut short: the table says more than the file holds.
        let whole = std::fs::read(&entry).expect("entry");
        std::fs::write(&entry, &whole[..whole.len() - 1]).expect("truncate");
        assert!(cache.get(&source).is_none());
        // Not ours: garbage with the right name.
        std::fs::write(&entry, b"not an entry at all, but long enough to parse").expect("w");
        assert!(cache.get(&source).is_none());
        // Writable by others: not trusted.
        std::fs::write(&entry, &whole).expect("restore");
        assert!(cache.get(&source).is_some());
        std::fs::set_permissions(&entry, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .expect("chmod");
        assert!(cache.get(&source).is_none());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_directory_others_can_write_is_not_used() {
        let base = temp_dir("dwarf-cache-open");
        let dir = format!("{base}/cache");
        std::fs::create_dir(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
        let euid = nix::unistd::geteuid().as_raw();
        assert!(Cache::at(&dir, &mounts(), euid).is_none());
        // Only created inside a parent that exists.
        assert!(Cache::at(&format!("{base}/missing/cache"), &mounts(), euid).is_none());
        let _ = std::fs::remove_dir_all(&base);
    }
}
