//! Addresses to functions, files and lines: DWARF through addr2line (inlined frames
//! included), from the module or its separate debug file; the ELF symbol table where DWARF
//! has nothing. Names are demangled (Rust, then C++).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;

use addr2line::gimli;
use object::read::ReadCache;
use object::{Object, ObjectSection};

use super::module::Module;

/// One function at an address: the innermost (an inlined one) first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// The places of each of `svmas` (addresses in the module's own numbering, already moved back
/// into the call instruction for return addresses). `debug` is the separate debug file, if any.
/// Only `dwarf` (a subset of `svmas`, empty to skip DWARF) are looked up in DWARF.
pub fn symbolize(
    module: &Module,
    debug: Option<File>,
    dwarf: &[u64],
    svmas: &[u64],
) -> BTreeMap<u64, Vec<Place>> {
    let mut out = BTreeMap::new();
    let debug_symbols = match debug {
        Some(f) => {
            dwarf_places(&f, dwarf, &mut out);
            let missing = svmas.iter().any(|a| out.get(a).is_none_or(Vec::is_empty));
            (missing && module.symbols().is_empty()).then(|| super::module::symbols_of_file(&f))
        }
        None => None,
    };
    if !dwarf.is_empty() && out.len() < dwarf.len() {
        let mut own = BTreeMap::new();
        dwarf_places(&module.file, dwarf, &mut own);
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
fn dwarf_places(file: &File, svmas: &[u64], out: &mut BTreeMap<u64, Vec<Place>>) {
    if svmas.is_empty() {
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

/// A Rust name without its hash, a C++ name without its parameters and return type (as gdb
/// names a frame: `ns::Box<int>::get`), anything else as it is.
pub fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if name.starts_with("_Z")
        && let Ok(sym) = cpp_demangle::Symbol::new(name)
        && let Ok(d) = sym.demangle_with_options(
            &cpp_demangle::DemangleOptions::new()
                .no_params()
                .no_return_type(),
        )
    {
        return gnu_spelling(&d);
    }
    name.to_string()
}

/// cpp_demangle's text as GNU's demangler (gdb, c++filt) spells it: an integer template
/// argument `(unsigned long)0` is `0ul`, and an empty parameter pack leaves no `, >`.
fn gnu_spelling(d: &str) -> String {
    const SUFFIXES: &[(&str, &str)] = &[
        ("(unsigned long long)", "ull"),
        ("(long long)", "ll"),
        ("(unsigned long)", "ul"),
        ("(long)", "l"),
        ("(unsigned int)", "u"),
        ("(int)", ""),
    ];
    let mut out = String::with_capacity(d.len());
    let mut rest = d;
    'outer: while !rest.is_empty() {
        for (cast, suffix) in SUFFIXES {
            if let Some(after) = rest.strip_prefix(cast) {
                let digits = after
                    .char_indices()
                    .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
                    .map_or(after.len(), |(i, _)| i);
                if digits > 0 && after[..digits].chars().any(|c| c.is_ascii_digit()) {
                    out.push_str(&after[..digits]);
                    out.push_str(suffix);
                    rest = &after[digits..];
                    continue 'outer;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out.replace(", >", ">")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            demangle("_ZN3std6thread5sleep17h0123456789abcdefE"),
            "std::thread::sleep"
        );
        assert_eq!(demangle("_ZN2ns6Client5fetchEv"), "ns::Client::fetch");
        // A function template: no return type either.
        assert_eq!(
            demangle("_ZN2ns3BoxIiE3getIlEET_i"),
            "ns::Box<int>::get<long>"
        );
        // Integer template arguments and an empty pack, as gdb writes them.
        assert_eq!(
            demangle(
                "_ZNSt6thread8_InvokerISt5tupleIJPFvvEEEE9_M_invokeIJLm0EEEEvSt12_Index_tupleIJXspT_EEE"
            ),
            "std::thread::_Invoker<std::tuple<void (*)()> >::_M_invoke<0ul>"
        );
        assert_eq!(
            demangle("_ZSt13__invoke_implIvPFvvEJEET_St14__invoke_otherOT0_DpOT1_"),
            "std::__invoke_impl<void, void (*)()>"
        );
        assert_eq!(demangle("poll"), "poll");
        assert_eq!(demangle("_Zbogus"), "_Zbogus");
    }
}
