//! Addresses to functions, files and lines: DWARF through addr2line (inlined frames
//! included), from the module or its separate debug file; the ELF symbol table where DWARF
//! has nothing. Names are demangled (Rust, then C++).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;

use addr2line::gimli;
use object::read::ReadCache;
use object::{Object, ObjectSection};

use super::dwarf::Sparse;
use super::module::Module;
pub use super::place::{Place, demangle};
use super::tailcall::Opened;

/// The places of each of `svmas` (addresses in the module's own numbering, already moved back
/// into the call instruction for return addresses). `debug` is the separate debug file, if any.
/// Only `dwarf` (a subset of `svmas`, empty to skip DWARF) are looked up in DWARF. `opened`
/// is the DWARF of one of the two files, already read in part.
pub fn symbolize(
    module: &Module,
    debug: Option<&File>,
    opened: Option<&mut Opened>,
    dwarf: &[u64],
    svmas: &[u64],
) -> BTreeMap<u64, Vec<Place>> {
    let mut out = BTreeMap::new();
    let (mut for_debug, mut for_own) = match opened {
        Some(o) if o.from_debug => (Some(&mut o.sparse), None),
        Some(o) => (None, Some(&mut o.sparse)),
        None => (None, None),
    };
    let debug_symbols = match debug {
        Some(f) => {
            dwarf_places(f, for_debug.take(), dwarf, &mut out);
            let missing = svmas.iter().any(|a| out.get(a).is_none_or(Vec::is_empty));
            (missing && module.symbols().is_empty()).then(|| super::module::symbols_of_file(f))
        }
        None => None,
    };
    if !dwarf.is_empty() && out.len() < dwarf.len() {
        let mut own = BTreeMap::new();
        dwarf_places(&module.file, for_own.take(), dwarf, &mut own);
        for (a, p) in own {
            out.entry(a).or_insert(p);
        }
    }
    let symbols = debug_symbols.as_ref().unwrap_or_else(|| module.symbols());
    for &a in svmas {
        let places = out.entry(a).or_insert_with(Vec::new);
        let outer_has_name = places.last().is_some_and(|p| p.function.is_some());
        if !outer_has_name && let Some(name) = symbols.lookup(a) {
            match places.last_mut() {
                Some(p) => p.function = Some(demangle(name)),
                None => places.push(Place {
                    function: Some(demangle(name)),
                    ..Place::default()
                }),
            }
        }
    }
    out
}

/// DWARF's places for the addresses it covers; nothing if the file has no DWARF.
fn dwarf_places(
    file: &File,
    opened: Option<&mut Sparse>,
    svmas: &[u64],
    out: &mut BTreeMap<u64, Vec<Place>>,
) {
    if svmas.is_empty() {
        return;
    }
    if let Some(sparse) = opened {
        match sparse.places(svmas) {
            Some(found) => out.extend(found),
            None => whole_file_places(file, svmas, out),
        }
        return;
    }
    // Whether there is DWARF at all, from the headers alone.
    let has_dwarf = file.try_clone().is_ok_and(|f| {
        let cache = ReadCache::new(f);
        object::File::parse(&cache).is_ok_and(|o| o.section_by_name(".debug_info").is_some())
    });
    if !has_dwarf {
        return;
    }
    // Only the units that hold the addresses, where the file says which.
    match super::dwarf::places(file, svmas) {
        Some(found) => out.extend(found),
        None => whole_file_places(file, svmas, out),
    }
}

/// DWARF's places read from the file whole, in one read: DWARF is most of it, and gimli wants
/// its sections as slices.
pub(super) fn whole_file_places(file: &File, svmas: &[u64], out: &mut BTreeMap<u64, Vec<Place>>) {
    let Some(bytes) = read_whole(file) else {
        return;
    };
    let Ok(obj) = object::File::parse(bytes.as_slice()) else {
        return;
    };
    let endian = if obj.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        // Variable locations are not needed for names and lines, and are among the largest
        // sections to decompress.
        if matches!(
            id,
            gimli::SectionId::DebugLoc | gimli::SectionId::DebugLocLists
        ) {
            return Ok(Cow::Borrowed(&[]));
        }
        Ok(obj
            .section_by_name(id.name())
            .and_then(|s| s.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[])))
    };
    let Ok(sections) = gimli::DwarfSections::load(load) else {
        return;
    };
    let dwarf = sections.borrow(|s| gimli::EndianSlice::new(s, endian));
    let Ok(ctx) = addr2line::Context::from_dwarf(dwarf) else {
        return;
    };
    for &a in svmas {
        let Ok(mut frames) = ctx.find_frames(a).skip_all_loads() else {
            continue;
        };
        let mut places = Vec::new();
        while let Ok(Some(f)) = frames.next() {
            places.push(super::dwarf::place(&f));
        }
        if !places.is_empty() {
            out.insert(a, places);
        }
    }
}

/// The largest file whose DWARF is read (it is read whole).
const MAX_DWARF_FILE: u64 = 1 << 30;

fn read_whole(file: &File) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().ok()?.len();
    if len > MAX_DWARF_FILE {
        return None;
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0).ok()?;
    Some(bytes)
}
