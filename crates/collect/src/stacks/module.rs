//! The modules (ELF files) mapped in the target: opened without walking into a mount that can
//! hang, their unwind tables for framehop, their symbol tables, and their separate debug files.
//!
//! A module is opened through /proc/PID/map_files/START-END, the very file the target mapped
//! (even if deleted or in another mount namespace); without CAP_SYS_ADMIN that link is refused
//! and the path is walked from /proc/PID/root with `safe_path`. Either way the file's mount
//! (by its path in the target's mountinfo) must be local, the inode must be the one maps
//! names, and no lease may be on it (/proc/locks): an open breaks a write lease. The file is
//! read with object's `ReadCache`, which reads the headers and the sections asked for, not the
//! whole file.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use object::read::ReadCache;
use object::{Object, ObjectSection, ObjectSegment};

use super::maps::Mapping;
use crate::ProcRoot;
use crate::error::{ReadError, reason_of};
use crate::locks::{self, Leases};
use crate::logs::open::LEASES_FRESH;
use crate::mountinfo::{self, Mounts};
use crate::safe_path;

/// Why a module was not read: a refusal (the open could hang or break a lease), a failed
/// read, or a file that is not the ELF expected.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("on a {fs_type} mount ({mount_point}): opening it could hang")]
    RemoteMount {
        fs_type: String,
        mount_point: String,
    },
    #[error("{0}")]
    UnsafePath(String),
    #[error("a file lease is held on it: opening it could break the lease")]
    Leased,
    #[error("the file at that path is not the one mapped (replaced since)")]
    Replaced,
    #[error("not a regular file")]
    NotRegular,
    #[error("not a readable ELF file: {0}")]
    NotElf(#[source] object::Error),
    #[error("not a 64-bit ELF file")]
    NotElf64,
    #[error("no loadable segment holds the mapped offset")]
    NoSegment,
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl ModuleError {
    /// The gap reason: a refusal is `Unsafe` (reading would risk the target), a failed read
    /// what [`reason_of`] says, anything else `Other`.
    pub fn reason(&self) -> hangscope_model::GapReason {
        use hangscope_model::GapReason;
        match self {
            ModuleError::RemoteMount { .. } | ModuleError::UnsafePath(_) | ModuleError::Leased => {
                GapReason::Unsafe
            }
            ModuleError::Read(e) => reason_of(e),
            _ => GapReason::Other,
        }
    }
}

impl From<safe_path::Refused> for ModuleError {
    fn from(r: safe_path::Refused) -> ModuleError {
        match r {
            safe_path::Refused::Io(e) => ModuleError::Read(ReadError::of_io(&e)),
            other => ModuleError::UnsafePath(other.why("opening")),
        }
    }
}

/// Where separate debug files are installed (Debian's *-dbg and *-dbgsym packages).
pub const DEBUG_DIR: &str = "/usr/lib/debug";

/// A module's symbol table, owned: (address, size, name) sorted by address, each name a range
/// of `names` (the string tables as read): a library's 10,000 symbols are not 10,000 Strings,
/// and only the names of the functions hit are ever looked at as text.
#[derive(Debug, Default)]
pub struct Symbols {
    entries: Vec<(u64, u64, Range<u32>)>,
    names: Vec<u8>,
}

/// The function symbols of an ELF file (.symtab and .dynsym). Each table and its strings are
/// read in one piece, straight into the buffers kept: names one at a time through the cache
/// would be a read each, and a copy of a large binary's 2 MB of names through the cache
/// was a tenth of its stacks' time.
pub fn symbols_of_file(file: &File) -> Symbols {
    use object::elf::{STT_FUNC, STT_GNU_IFUNC, Sym64};
    use object::read::elf::Sym;
    use std::os::unix::fs::FileExt;
    let Ok(f) = file.try_clone() else {
        return Symbols::default();
    };
    let cache = ReadCache::new(f);
    let Ok(object::File::Elf64(elf)) = object::File::parse(&cache) else {
        return Symbols::default();
    };
    let endian = elf.endian();
    let file_len = file.metadata().map_or(0, |m| m.len());
    // A section's bytes as stored, appended to `to`; false if it is absent or unreadable.
    let read_into = |name: &str, to: &mut Vec<u8>| -> bool {
        let Some((offset, size)) = elf.section_by_name(name).and_then(|s| s.file_range()) else {
            return false;
        };
        let Ok(len) = usize::try_from(size) else {
            return false;
        };
        // A size the file cannot hold is not allocated: the headers are the target's.
        if offset.saturating_add(size) > file_len {
            return false;
        }
        let from = to.len();
        to.resize(from + len, 0);
        if file.read_exact_at(&mut to[from..], offset).is_err() {
            to.truncate(from);
            return false;
        }
        true
    };
    let mut entries: Vec<(u64, u64, Range<u32>)> = Vec::new();
    let mut names: Vec<u8> = Vec::new();
    let mut syms: Vec<u8> = Vec::new();
    for (table, strings) in [(".symtab", ".strtab"), (".dynsym", ".dynstr")] {
        syms.clear();
        let base = names.len();
        if !read_into(table, &mut syms) || !read_into(strings, &mut names) {
            continue;
        }
        // Ranges are u32: a string table past 4 GiB is not one to read.
        if u32::try_from(names.len()).is_err() {
            names.truncate(base);
            continue;
        }
        let whole = syms.len() - syms.len() % std::mem::size_of::<Sym64<object::Endianness>>();
        let Ok(table) = object::pod::slice_from_all_bytes::<Sym64<object::Endianness>>(
            syms.get(..whole).unwrap_or_default(),
        ) else {
            continue;
        };
        let strs_end = names.len();
        for sym in table {
            let kind = sym.st_type();
            let addr = sym.st_value(endian);
            if !(kind == STT_FUNC || kind == STT_GNU_IFUNC) || addr == 0 {
                continue;
            }
            let at = base + sym.st_name(endian) as usize;
            let Some(name) = names.get(at..strs_end) else {
                continue;
            };
            let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            let range = if std::str::from_utf8(&name[..len]).is_ok() {
                at as u32..(at + len) as u32
            } else {
                // Rare: kept readable, as the text it was always shown as.
                let lossy = String::from_utf8_lossy(&name[..len]).into_owned();
                let from = names.len();
                if u32::try_from(from + lossy.len()).is_err() {
                    continue;
                }
                names.extend_from_slice(lossy.as_bytes());
                from as u32..names.len() as u32
            };
            entries.push((addr, sym.st_size(endian), range));
        }
    }
    Symbols::from_entries(entries, names)
}

impl Symbols {
    fn from_entries(mut entries: Vec<(u64, u64, Range<u32>)>, names: Vec<u8>) -> Symbols {
        let name = |r: &Range<u32>| names.get(r.start as usize..r.end as usize).unwrap_or(&[]);
        // By address first, cheaply: aliases are few, and comparing names in the one sort of
        // a large binary's 30,000 symbols cost more than reading them. Both sorts stable:
        // aliases alike in every key keep the tables' order, which `dedup_by` relies on.
        entries.sort_by_key(|e| e.0);
        // Aliases at one address (poll, __poll, __GI___poll): the exported name, the one with
        // the fewest leading underscores, first; the others kept for lookups by name.
        for run in entries.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                run.sort_by(|a, b| {
                    let (na, nb) = (name(&a.2), name(&b.2));
                    (na.first() == Some(&b'_'), na.len(), na).cmp(&(
                        nb.first() == Some(&b'_'),
                        nb.len(),
                        nb,
                    ))
                });
            }
        }
        entries.dedup_by(|a, b| a.0 == b.0 && name(&a.2) == name(&b.2));
        Symbols { entries, names }
    }

    #[cfg(test)]
    fn of(v: &[(u64, u64, &str)]) -> Symbols {
        let mut names = Vec::new();
        let entries = v
            .iter()
            .map(|(a, s, n)| {
                let from = names.len() as u32;
                names.extend_from_slice(n.as_bytes());
                (*a, *s, from..names.len() as u32)
            })
            .collect();
        Symbols::from_entries(entries, names)
    }

    /// The text of a name: valid UTF-8, checked (or made so) when read.
    fn name(&self, r: &Range<u32>) -> &str {
        self.names
            .get(r.start as usize..r.end as usize)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[cfg(test)]
    pub fn addresses(&self) -> impl Iterator<Item = u64> + '_ {
        let mut last = None;
        self.entries.iter().map(|s| s.0).filter(move |&a| {
            let new = last != Some(a);
            last = Some(a);
            new
        })
    }

    /// The function covering `svma` (its entry and name): one whose size covers it, or the
    /// nearest below when sizes are not given.
    pub fn lookup_entry(&self, svma: u64) -> Option<(u64, &str)> {
        let i = self
            .entries
            .partition_point(|s| s.0 <= svma)
            .checked_sub(1)?;
        let at = self.entries.get(i)?.0;
        // The preferred alias is the first at that address.
        let first = self.entries.partition_point(|s| s.0 < at);
        // Any alias with a size covering it will do (sizes agree, or some are 0).
        let covers = self.entries[first..=i]
            .iter()
            .any(|(a, size, _)| *size == 0 || svma < a + size);
        let (addr, _, name) = self.entries.get(first)?;
        covers.then(|| (*addr, self.name(name)))
    }

    pub fn lookup(&self, svma: u64) -> Option<&str> {
        self.lookup_entry(svma).map(|e| e.1)
    }

    /// The address of the function named `name` (raw, as the symbol table spells it).
    pub fn address_of(&self, name: &str) -> Option<u64> {
        let want = name.as_bytes();
        self.entries
            .iter()
            .find(|s| self.names.get(s.2.start as usize..s.2.end as usize) == Some(want))
            .map(|s| s.0)
    }
}

/// One module the target has mapped.
pub struct Module {
    /// The path maps gives.
    pub name: Vec<u8>,
    /// Its executable mappings, first to last.
    pub avma: Range<u64>,
    /// Load bias: an address in the target minus the module's own (ELF) address.
    pub bias: u64,
    pub file: File,
    /// The file's size when opened: the DWARF of the smaller modules is read first.
    pub size: u64,
    pub build_id: Option<Vec<u8>>,
    pub debuglink: Option<Vec<u8>>,
    /// The ELF entry point (`_start` of an executable).
    pub entry: u64,
    /// Read at the first lookup: a large binary has 100,000 symbols, most runs need few.
    symbols: std::cell::OnceCell<Symbols>,
}

impl Module {
    pub fn symbols(&self) -> &Symbols {
        self.symbols.get_or_init(|| symbols_of_file(&self.file))
    }
}

/// What the loader needs besides the maps: where the target's /proc is, its mounts, the leases.
pub struct Env<'a> {
    pub root: &'a ProcRoot,
    pub pid: i32,
    pub mounts: &'a Mounts,
    pub leases: &'a LeaseGuard<'a>,
    /// The view of hangscope's own /, for the debug files.
    pub own_mounts: &'a Mounts,
}

/// The leases a module open must not break, as of a read of /proc/locks at most
/// `LEASES_FRESH` old when the open is made: the stacks' worker opens files from the start of
/// a collection to past its window, and a lease taken meanwhile must not be broken by an open
/// checked against a table read before it.
pub struct LeaseGuard<'a> {
    root: &'a ProcRoot,
    current: RefCell<Leases>,
    /// Why the last read of the table failed; the opens went on with the one before.
    trouble: RefCell<Option<std::io::Error>>,
}

impl<'a> LeaseGuard<'a> {
    pub fn new(root: &'a ProcRoot, read: Leases) -> LeaseGuard<'a> {
        LeaseGuard {
            root,
            current: RefCell::new(read),
            trouble: RefCell::new(None),
        }
    }

    /// Whether a lease is held on the file `ino` of device `dev` ("MAJ:MIN", as /proc/locks
    /// writes it), by a table read again first if it is no longer fresh.
    fn leased(&self, dev: &str, ino: u64) -> bool {
        if self.current.borrow().read_at.elapsed() > LEASES_FRESH {
            let table = locks::wait(locks::start(self.root));
            match table.leases() {
                Some(l) => *self.current.borrow_mut() = l,
                None => {
                    *self.trouble.borrow_mut() = table
                        .error()
                        .map(|e| std::io::Error::new(e.kind(), e.to_string()))
                }
            }
        }
        self.current
            .borrow()
            .leases
            .iter()
            .any(|l| l.inode == ino && l.dev == dev)
    }

    /// Why a read of the table after the first failed, if one did.
    pub fn take_trouble(&self) -> Option<std::io::Error> {
        self.trouble.borrow_mut().take()
    }
}

/// The executable file mappings grouped by file: (first exec mapping, exec range).
pub fn exec_modules(maps: &[Mapping]) -> Vec<(Mapping, Range<u64>)> {
    let mut out: Vec<(Mapping, Range<u64>)> = Vec::new();
    let mut by_file: HashMap<(u64, Vec<u8>), usize> = HashMap::new();
    for m in maps.iter().filter(|m| m.exec && m.is_file()) {
        let key = (m.inode, m.path.clone().unwrap_or_default());
        match by_file.get(&key) {
            Some(&i) => {
                if let Some((_, r)) = out.get_mut(i) {
                    r.start = r.start.min(m.start);
                    r.end = r.end.max(m.end);
                }
            }
            None => {
                by_file.insert(key, out.len());
                out.push((m.clone(), m.start..m.end));
            }
        }
    }
    out
}

/// Opens and reads module `m` (its first executable mapping, spanning `avma`); returns it and
/// its unwind sections for framehop.
pub fn load(
    env: &Env,
    m: &Mapping,
    avma: Range<u64>,
) -> Result<(Module, framehop::Module<Vec<u8>>), ModuleError> {
    let path = m.path.clone().unwrap_or_default();
    let file = open_mapped(env, m)?;
    let cache = ReadCache::new(file);
    let obj = object::File::parse(&cache).map_err(ModuleError::NotElf)?;
    // The exec mapping at file offset `m.offset` lies in the PT_LOAD segment holding that
    // offset; its address there gives the bias.
    // The kernel maps from the page holding p_offset, which lld does not page-align: the
    // segment is matched by its page-aligned start, and the executable one preferred.
    let executable = |s: &object::read::elf::ElfSegment64<
        '_,
        '_,
        object::Endianness,
        &ReadCache<File>,
    >| {
        matches!(s.flags(), object::SegmentFlags::Elf { p_flags } if p_flags & object::elf::PF_X != 0)
    };
    let holds = |off: u64, size: u64| (off & !0xfff) <= m.offset && m.offset < off + size.max(1);
    let object::File::Elf64(elf) = &obj else {
        return Err(ModuleError::NotElf64);
    };
    let segment = elf
        .segments()
        .filter(|s| {
            let (off, size) = s.file_range();
            holds(off, size)
        })
        .max_by_key(|s| executable(s))
        .ok_or(ModuleError::NoSegment)?;
    let (off, _) = segment.file_range();
    // The address at the mapping's start: the segment's address less the part of the page
    // before p_offset (wrapping: that page may begin below the segment).
    let svma_at_start = segment.address().wrapping_sub(off.wrapping_sub(m.offset));
    let bias = m.start.wrapping_sub(svma_at_start);
    let section = |name: &str| obj.section_by_name(name);
    let range = |name: &str| section(name).map(|s| s.address()..s.address() + s.size());
    let data = |name: &str| {
        section(name)
            .and_then(|s| s.uncompressed_data().ok())
            .map(|d| d.into_owned())
    };
    let info = framehop::ExplicitModuleSectionInfo {
        base_svma: 0,
        // Not the code itself: framehop reads it only to tell a prologue or epilogue, and a
        // thread in a syscall is in neither; a large binary's text is not copied for nothing.
        text_svma: range(".text"),
        got_svma: range(".got"),
        eh_frame_svma: range(".eh_frame"),
        eh_frame: data(".eh_frame"),
        eh_frame_hdr_svma: range(".eh_frame_hdr"),
        eh_frame_hdr: data(".eh_frame_hdr"),
        debug_frame: data(".debug_frame"),
        ..Default::default()
    };
    let name = String::from_utf8_lossy(&path).into_owned();
    let unwind = framehop::Module::new(name, avma.clone(), bias, info);
    let build_id = obj.build_id().ok().flatten().map(<[u8]>::to_vec);
    let debuglink = obj
        .gnu_debuglink()
        .ok()
        .flatten()
        .map(|(name, _crc)| name.to_vec());
    let entry = obj.entry();
    drop(obj);
    let file = cache.into_inner();
    let size = file.metadata().map_or(u64::MAX, |md| md.len());
    Ok((
        Module {
            name: path,
            avma,
            bias,
            file,
            size,
            build_id,
            debuglink,
            entry,
            symbols: std::cell::OnceCell::new(),
        },
        unwind,
    ))
}

/// The file behind mapping `m`, opened for reading only if that is safe (see the module
/// documentation).
fn open_mapped(env: &Env, m: &Mapping) -> Result<File, ModuleError> {
    let raw = m.path.as_deref().unwrap_or_default();
    let text = String::from_utf8_lossy(raw);
    let path = text.strip_suffix(" (deleted)").unwrap_or(&text);
    match env.mounts.containing(path) {
        Some(mount) if !mountinfo::is_local(&mount.fs_type) => {
            return Err(ModuleError::RemoteMount {
                fs_type: mount.fs_type.clone(),
                mount_point: mount.mount_point.clone(),
            });
        }
        _ => {}
    }
    let link = env
        .root
        .pid(env.pid)
        .join("map_files")
        .join(format!("{:x}-{:x}", m.start, m.end));
    let opath = match open(&link, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        // map_files needs CAP_SYS_ADMIN: walk the path from the target's root instead.
        Err(_) => {
            let root_path = env.root.pid(env.pid).join("root");
            let root = open(
                &root_path,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| {
                ReadError::errno(format_args!("/proc/{}/root", env.pid), e)
                    .at(root_path.display().to_string())
            })?;
            safe_path::resolve(root.as_fd(), path, env.mounts)?.fd
        }
    };
    if let Some(inode) = inode_of(&opath)?
        && inode != m.inode
    {
        return Err(ModuleError::Replaced);
    }
    reopen(&opath, env.leases)
}

fn inode_of(fd: &OwnedFd) -> Result<Option<u64>, ModuleError> {
    let st = nix::sys::stat::fstat(fd).map_err(|e| ReadError::errno("fstat", e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(ModuleError::NotRegular);
    }
    Ok(Some(st.st_ino))
}

/// Opens the `O_PATH` fd for reading, unless a lease is on the file.
fn reopen(opath: &OwnedFd, leases: &LeaseGuard) -> Result<File, ModuleError> {
    let st = nix::sys::stat::fstat(opath).map_err(|e| ReadError::errno("fstat", e))?;
    let dev = format!(
        "{:02x}:{:02x}",
        libc::major(st.st_dev),
        libc::minor(st.st_dev)
    );
    if leases.leased(&dev, st.st_ino) {
        return Err(ModuleError::Leased);
    }
    let fd = open(
        format!("/proc/self/fd/{}", opath.as_raw_fd()).as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ReadError::errno("open", e))?;
    Ok(File::from(fd))
}

/// The separate debug file of `module`, if one is installed: by build-id, then by
/// debuglink (beside the module, in its .debug/, under /usr/lib/debug), checked to carry the
/// same build-id when the module has one.
pub fn debug_file(env: &Env, module: &Module) -> Option<File> {
    let mut candidates: Vec<String> = Vec::new();
    if let Some(id) = module.build_id.as_deref()
        && id.len() >= 2
    {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        candidates.push(format!(
            "{DEBUG_DIR}/.build-id/{}/{}.debug",
            &hex[..2],
            &hex[2..]
        ));
    }
    if let Some(link) = module.debuglink.as_deref() {
        let link = String::from_utf8_lossy(link);
        let path = String::from_utf8_lossy(&module.name);
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        candidates.push(format!("{dir}/{link}"));
        candidates.push(format!("{dir}/.debug/{link}"));
        candidates.push(format!("{DEBUG_DIR}{dir}/{link}"));
    }
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    for c in candidates {
        // Beside the module: a path in the target's view. The others are hangscope's own.
        let found = if c.starts_with(DEBUG_DIR) {
            safe_path::resolve(root.as_fd(), &c, env.own_mounts)
        } else {
            let troot = open(
                &env.root.pid(env.pid).join("root"),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()?;
            safe_path::resolve(troot.as_fd(), &c, env.mounts)
        };
        let Ok(found) = found else { continue };
        if !matches!(inode_of(&found.fd), Ok(Some(_))) {
            continue;
        }
        let Ok(file) = reopen(&found.fd, env.leases) else {
            continue;
        };
        let cache = ReadCache::new(file);
        let same = match object::File::parse(&cache) {
            Ok(obj) => match (&module.build_id, obj.build_id().ok().flatten()) {
                (Some(want), Some(got)) => want.as_slice() == got,
                (Some(_), None) => false,
                (None, _) => true,
            },
            Err(_) => false,
        };
        if same {
            return Some(cache.into_inner());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::GapReason;

    /// The exported alias names an address; a size bounds a function, none reaches the next.
    #[test]
    fn symbols_by_address_and_name() {
        let s = Symbols::of(&[
            (0x100, 0x20, "__GI___poll"),
            (0x100, 0x20, "poll"),
            (0x100, 0x20, "__poll"),
            (0x200, 0, "unsized"),
            (0x300, 0x10, "sized"),
        ]);
        assert_eq!(s.lookup(0x100), Some("poll"));
        assert_eq!(s.lookup_entry(0x11f), Some((0x100, "poll")));
        assert_eq!(s.lookup(0x120), None);
        assert_eq!(s.lookup(0x2ff), Some("unsized"));
        assert_eq!(s.lookup(0x30f), Some("sized"));
        assert_eq!(s.lookup(0x310), None);
        assert_eq!(s.lookup(0xff), None);
        assert_eq!(s.address_of("__poll"), Some(0x100));
        assert_eq!(s.address_of("sized"), Some(0x300));
        assert_eq!(s.address_of("size"), None);
        assert_eq!(s.addresses().collect::<Vec<_>>(), [0x100, 0x200, 0x300]);
    }

    #[test]
    fn a_module_s_gap_reason_comes_from_its_error_s_kind_not_its_words() {
        let remote = ModuleError::RemoteMount {
            fs_type: "nfs4".into(),
            mount_point: "/srv".into(),
        };
        assert_eq!(remote.reason(), GapReason::Unsafe);
        assert_eq!(ModuleError::Leased.reason(), GapReason::Unsafe);
        let unlisted = ModuleError::from(safe_path::Refused::Unlisted { at: "/mnt".into() });
        assert_eq!(unlisted.reason(), GapReason::Unsafe);
        // A refused open is a permission gap (its words say nothing of hanging or leases).
        let refused = ModuleError::from(safe_path::Refused::Io(std::io::Error::from_raw_os_error(
            libc::EACCES,
        )));
        assert_eq!(refused.reason(), GapReason::Permission);
        assert_eq!(ModuleError::NotElf64.reason(), GapReason::Other);
        assert_eq!(ModuleError::Replaced.reason(), GapReason::Other);
    }
}
