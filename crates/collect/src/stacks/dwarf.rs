//! The DWARF of a file read only as far as the addresses looked up need it.
//!
//! addr2line's `Context` reads the header and root entry of every unit of `.debug_info` (with
//! its abbreviations) before its first lookup, and wants each section whole: on libc6-dbg's
//! debug file (4,126 units, compressed) that is most of a run, for the ten units a blocked
//! program's stacks touch. Here `.debug_aranges` says which units hold the addresses; only those
//! units of `.debug_info` are read (a compressed section is inflated from its start only as far
//! as the last of them), the bytes between them are covered by one placeholder unit header of
//! a type unit (which addr2line passes over), and only those units' line programs are read.
//! The lookups are then addr2line's own.
//!
//! [`places`] answers `None` when that cannot be done safely — no `.debug_aranges`, a file
//! whose units refer to another file (dwz), a unit that does not parse, a lookup that fails
//! (say a reference into a unit left out) — and the caller reads the file whole instead.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use addr2line::gimli;
use object::read::ReadCache;
use object::{CompressionFormat, Object, ObjectSection};

use super::dwarf_cache::{Cache, Kept};
use super::place::{Place, demangle};

/// The most a section is inflated to: more is not DWARF hangscope should spend memory on.
const MAX_SECTION: u64 = 1 << 30;
/// Rounds of reading the units that the kept ones refer to, before the file is read whole.
const MAX_REF_ROUNDS: usize = 4;
/// Units read at most by references, and headers walked at most to find one.
const MAX_UNITS: usize = 512;
const MAX_UNIT_WALK: usize = 8192;
/// A placeholder unit header: unit_length (4), version (2), unit_type (1), address_size (1),
/// debug_abbrev_offset (4), type_signature (8), type_offset (4).
const PLACEHOLDER: u64 = 24;

/// A section as far as it was read: bytes at their offsets in the section, zero where not read.
struct Section {
    file: File,
    source: Source,
    size: u64,
    bytes: Vec<u8>,
}

enum Source {
    /// Stored as it is, at this offset of the file: read where asked.
    Plain(u64),
    /// Compressed: inflated from the start, in order.
    Zlib(flate2::Decompress, Vec<u8>),
    /// Another compression (zstd): inflated whole by object at the first use.
    Whole(Option<Vec<u8>>),
}

impl Section {
    fn open<'d>(
        file: &File,
        obj: &object::File<'d, &'d ReadCache<File>>,
        name: &str,
    ) -> Option<Section> {
        let section = obj.section_by_name(name)?;
        let range = section.compressed_file_range().ok()?;
        let source = match range.format {
            CompressionFormat::None => Source::Plain(range.offset),
            CompressionFormat::Zlib => {
                let mut input = vec![0u8; usize::try_from(range.compressed_size).ok()?];
                file.read_exact_at(&mut input, range.offset).ok()?;
                Source::Zlib(flate2::Decompress::new(true), input)
            }
            _ => Source::Whole(
                section
                    .uncompressed_data()
                    .ok()
                    .map(|d| d.into_owned())
                    .filter(|d| d.len() as u64 <= MAX_SECTION),
            ),
        };
        let size = range.uncompressed_size;
        if size > MAX_SECTION {
            return None;
        }
        Some(Section {
            file: file.try_clone().ok()?,
            source,
            size,
            bytes: Vec::new(),
        })
    }

    /// Makes `range` hold the section's bytes there.
    fn fill(&mut self, range: Range<u64>) -> Option<()> {
        if range.end > self.size || range.start > range.end {
            return None;
        }
        let end = range.end as usize;
        match &mut self.source {
            Source::Plain(at) => {
                if self.bytes.is_empty() {
                    // Zeroed by the allocator (fresh pages): a unit far in a 26 MB
                    // .debug_info writes its own pages, not the 26 MB before it.
                    self.bytes = vec![0; self.size as usize];
                }
                let buf = self.bytes.get_mut(range.start as usize..end)?;
                self.file.read_exact_at(buf, *at + range.start).ok()?;
            }
            Source::Zlib(z, input) => {
                if self.bytes.len() < end {
                    // Room for the whole section at once: growing it as it fills would copy
                    // what was inflated, and the pages not written are never touched.
                    self.bytes
                        .reserve_exact((self.size as usize).saturating_sub(self.bytes.len()));
                }
                while self.bytes.len() < end {
                    // The input fed is what bounds the output (the room is the whole rest):
                    // about a third of what is still wanted, DWARF inflating ~2.5 times, so
                    // little is inflated past `end`.
                    let want = end - self.bytes.len();
                    let from = usize::try_from(z.total_in()).ok()?;
                    let rest = input.get(from..)?;
                    let feed = rest.get(..(want / 3).max(16 * 1024)).unwrap_or(rest);
                    let before = (z.total_in(), z.total_out());
                    z.decompress_vec(feed, &mut self.bytes, flate2::FlushDecompress::None)
                        .ok()?;
                    if (z.total_in(), z.total_out()) == before {
                        return None;
                    }
                }
            }
            Source::Whole(data) => {
                let data = data.take()?;
                self.bytes = data;
                if self.bytes.len() < end {
                    return None;
                }
                self.source = Source::Whole(None);
            }
        }
        Some(())
    }

    fn is_compressed(&self) -> bool {
        matches!(self.source, Source::Zlib(..))
    }

    /// The whole section.
    fn whole(mut self) -> Option<Vec<u8>> {
        if !matches!(self.source, Source::Whole(None)) || self.bytes.len() as u64 != self.size {
            self.fill(0..self.size)?;
        }
        self.bytes.truncate(self.size as usize);
        Some(self.bytes)
    }

    fn get(&self, range: Range<u64>) -> Option<&[u8]> {
        self.bytes.get(range.start as usize..range.end as usize)
    }

    /// The end of the unit or line program at `offset`, from its initial length (32- or
    /// 64-bit DWARF).
    fn end_of_unit(&mut self, offset: u64) -> Option<u64> {
        self.fill(offset..(offset + 12).min(self.size))?;
        let b = self.get(offset..(offset + 12).min(self.size))?;
        let len32 = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
        let end = if len32 == 0xffff_ffff {
            let len = u64::from_le_bytes(b.get(4..12)?.try_into().ok()?);
            offset.checked_add(12)?.checked_add(len)?
        } else if len32 >= 0xffff_fff0 {
            return None;
        } else {
            offset + 4 + u64::from(len32)
        };
        (end <= self.size).then_some(end)
    }
}

/// What a section read by blocks ([`Pointed`]) reads at a time, at its own offsets.
const BLOCK: u64 = 4096;
/// Blocks not wanted between two wanted ones that are read through rather than skipped: one
/// read is cheaper than two.
const READ_THROUGH: u64 = 4;

/// A section DIEs point into (`.debug_str`, `.debug_ranges`): read by blocks where the units
/// read point, zero elsewhere; or whole when it is inflated or read whole. A Rust program's
/// are 12 and 11 MB, of which its stacks' units point at a few hundred kilobytes.
struct Pointed {
    bytes: Vec<u8>,
    /// A section stored as it is, read where asked: its file and offset there, and which
    /// blocks were read. `None`: `bytes` is the whole section.
    stored: Option<(File, u64, Vec<bool>)>,
}

impl Pointed {
    fn whole(bytes: Vec<u8>) -> Pointed {
        Pointed {
            bytes,
            stored: None,
        }
    }

    fn stored(file: File, at: u64, size: u64) -> Option<Pointed> {
        let blocks = usize::try_from(size.div_ceil(BLOCK)).ok()?;
        Some(Pointed {
            // Zeroed fresh pages: those never read are never touched.
            bytes: vec![0; usize::try_from(size).ok()?],
            stored: Some((file, at, vec![false; blocks])),
        })
    }

    fn is_whole(&self) -> bool {
        self.stored.is_none()
    }

    fn read_all(&mut self) -> Option<()> {
        let size = self.bytes.len() as u64;
        self.read_blocks(&[(0, size.div_ceil(BLOCK))])?;
        self.stored = None;
        Some(())
    }

    /// Reads blocks `from..to` for each span, but those read already.
    fn read_blocks(&mut self, spans: &[(u64, u64)]) -> Option<()> {
        let Some((file, at, read)) = self.stored.as_mut() else {
            return Some(());
        };
        let size = self.bytes.len() as u64;
        for &(from, to) in spans {
            let mut b = from;
            while b < to {
                if read.get(b as usize).copied().unwrap_or(true) {
                    b += 1;
                    continue;
                }
                let mut end = b + 1;
                while end < to && !read.get(end as usize).copied().unwrap_or(true) {
                    end += 1;
                }
                let range = (b * BLOCK) as usize..((end * BLOCK).min(size)) as usize;
                let buf = self.bytes.get_mut(range.clone())?;
                file.read_exact_at(buf, *at + range.start as u64).ok()?;
                read.get_mut(b as usize..end as usize)?.fill(true);
                b = end;
            }
        }
        Some(())
    }

    /// The end of the blocks read from `offset` on, as far as they run unbroken.
    fn read_up_to(&self, offset: u64) -> u64 {
        let size = self.bytes.len() as u64;
        let Some((_, _, read)) = &self.stored else {
            return size;
        };
        let mut b = offset / BLOCK;
        while read.get(b as usize).copied().unwrap_or(false) {
            b += 1;
        }
        (b * BLOCK).min(size)
    }

    /// Makes each item at `offsets` hold its bytes: `len` says an item's length from the bytes
    /// at its start, or `None` if they end before it does. Nearby blocks are read at once.
    fn read_ended(
        &mut self,
        mut offsets: Vec<u64>,
        len: impl Fn(&[u8]) -> Option<usize>,
    ) -> Option<()> {
        if self.is_whole() {
            return Some(());
        }
        let size = self.bytes.len() as u64;
        offsets.retain(|&o| o < size);
        offsets.sort_unstable();
        offsets.dedup();
        // (offset, the end its bytes must be read to), until an item is read whole; each round
        // reads at least one more block of each item left, so it ends.
        let mut wanted: Vec<(u64, u64)> = offsets.into_iter().map(|o| (o, o + 1)).collect();
        while !wanted.is_empty() {
            let mut spans: Vec<(u64, u64)> = Vec::new();
            for &(o, end) in &wanted {
                let (from, to) = (o / BLOCK, end.min(size).div_ceil(BLOCK));
                match spans.last_mut() {
                    Some(last) if from <= last.1 + READ_THROUGH => last.1 = last.1.max(to),
                    _ => spans.push((from, to)),
                }
            }
            self.read_blocks(&spans)?;
            let mut left = Vec::new();
            for (o, _) in wanted {
                let upto = self.read_up_to(o);
                let bytes = self.bytes.get(o as usize..upto as usize)?;
                if len(bytes).is_none() && upto < size {
                    left.push((o, upto + 1));
                }
            }
            wanted = left;
        }
        Some(())
    }

    /// The NUL-ended string at `offset` (without the NUL): from the file when the section is
    /// read by blocks, as a block may not be read.
    fn string_at(&self, offset: u64) -> Option<Vec<u8>> {
        let size = self.bytes.len() as u64;
        let Some((file, at, _)) = &self.stored else {
            let rest = self.bytes.get(offset as usize..)?;
            return Some(rest.get(..string_len(rest)? - 1)?.to_vec());
        };
        let mut out = Vec::new();
        let mut from = offset;
        while from < size && out.len() < MAX_STRING {
            let mut chunk = vec![0u8; (size - from).min(256) as usize];
            file.read_exact_at(&mut chunk, at + from).ok()?;
            if let Some(n) = string_len(&chunk) {
                out.extend_from_slice(chunk.get(..n - 1)?);
                return Some(out);
            }
            out.extend_from_slice(&chunk);
            from += chunk.len() as u64;
        }
        None
    }

    /// Where `slice` starts in the section, if it is in the bytes of a section read by blocks.
    fn offset_of(&self, slice: &[u8]) -> Option<u64> {
        self.stored.as_ref()?;
        let base = self.bytes.as_ptr() as usize;
        let start = (slice.as_ptr() as usize).checked_sub(base)?;
        // Strictly inside: one past the end may be where another allocation starts.
        (start < self.bytes.len()).then_some(start as u64)
    }
}

/// The longest string read from `.debug_str`: a C++ name of templates can be long, not this.
const MAX_STRING: usize = 64 * 1024;

/// The length of the NUL-ended string at the start of `bytes`, with its NUL; `None` if
/// `bytes` end first.
fn string_len(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&c| c == 0).map(|i| i + 1)
}

/// The length of the DWARF 4 range list at the start of `bytes` (8-byte addresses), through
/// its end-of-list entry; `None` if `bytes` end first.
fn range_list_len(bytes: &[u8]) -> Option<usize> {
    bytes
        .chunks_exact(16)
        .position(|e| e.iter().all(|&b| b == 0))
        .map(|i| (i + 1) * 16)
}

/// The DWARF of one file, read unit by unit as lookups need them: the units of
/// `.debug_info` read so far (the rest zero); `.debug_str` and `.debug_ranges` where they point
/// ([`Pointed`]); the other sections they refer to read whole.
pub struct Sparse {
    /// `.debug_aranges`' spans: (begin, end, unit offset), sorted.
    spans: Vec<(u64, u64, u64)>,
    /// The units `.debug_aranges` names, sorted.
    unit_starts: Vec<u64>,
    info: Section,
    line: Section,
    /// The units of `info` read: start → end.
    kept: BTreeMap<u64, u64>,
    /// Where the kept units refer into units not kept (`DW_FORM_ref_addr`), not followed yet
    /// ([`Sparse::load_referenced`]).
    unfollowed: Vec<u64>,
    /// The kept units that have a call site (`DW_TAG_call_site`), for the tail-call search.
    with_call_sites: std::collections::BTreeSet<u64>,
    /// `.debug_abbrev`, read whole at the first unit's read (or beside `.debug_info`'s in
    /// [`Sparse::prefetch`]); `abbrev` is empty until then.
    abbrev_source: Option<Section>,
    abbrev: Vec<u8>,
    /// Read as far as the kept units point into it ([`Pointed`]).
    str_: Pointed,
    line_str: Vec<u8>,
    str_offsets: Vec<u8>,
    addr: Vec<u8>,
    ranges: Pointed,
    rnglists: Vec<u8>,
    aranges: Vec<u8>,
    /// The sections the file holds compressed and that were inflated here, not read from a
    /// cache entry: what [`Sparse::keep`] writes out.
    inflated: Vec<&'static str>,
}

/// The sections a [`Sparse`] reads.
const SECTIONS: [&str; 10] = [
    ".debug_aranges",
    ".debug_info",
    ".debug_line",
    ".debug_abbrev",
    ".debug_str",
    ".debug_line_str",
    ".debug_str_offsets",
    ".debug_addr",
    ".debug_ranges",
    ".debug_rnglists",
];

impl Sparse {
    /// `None` if `file` must be read whole (see the module documentation).
    pub fn open(file: &File) -> Option<Sparse> {
        Sparse::open_with(file, || None)
    }

    /// As [`Sparse::open`]; a file whose `.debug_info` is compressed is read from its entry in
    /// the cache `cache` gives, when one is kept (`dwarf_cache`).
    pub fn open_with<'c>(file: &File, cache: impl FnOnce() -> Option<&'c Cache>) -> Option<Sparse> {
        let handle = file.try_clone().ok()?;
        let read_cache = ReadCache::new(handle);
        let obj = object::File::parse(&read_cache).ok()?;
        if !obj.is_little_endian() || obj.section_by_name(".gnu_debugaltlink").is_some() {
            return None;
        }
        let compressed = |name: &str| {
            obj.section_by_name(name)
                .and_then(|s| s.compressed_file_range().ok())
                .is_some_and(|r| r.format != CompressionFormat::None)
        };
        // Kept, and looked for, only where `.debug_info` is compressed: the one section whose
        // inflating costs a run anything.
        let info_compressed = compressed(".debug_info");
        let kept: Option<Kept> = if info_compressed {
            cache().and_then(|c| c.get(file))
        } else {
            None
        };
        let inflated: Vec<&'static str> = SECTIONS
            .into_iter()
            .filter(|n| {
                info_compressed
                    && compressed(n)
                    && kept.as_ref().is_none_or(|k| k.section(n).is_none())
            })
            .collect();
        let open = |name: &str| -> Option<Section> {
            if let Some((at, size)) = kept.as_ref().and_then(|k| k.section(name)) {
                return Some(Section {
                    file: kept.as_ref()?.file.try_clone().ok()?,
                    source: Source::Plain(at),
                    size,
                    bytes: Vec::new(),
                });
            }
            Section::open(file, &obj, name)
        };
        let whole = |name: &str| -> Option<Vec<u8>> {
            match open(name) {
                Some(s) => s.whole(),
                None => Some(Vec::new()),
            }
        };
        // Stored as it is: read where the units point. Else (inflated, or empty) whole.
        let pointed = |name: &str| -> Option<Pointed> {
            match open(name) {
                Some(Section {
                    file,
                    source: Source::Plain(at),
                    size,
                    ..
                }) => Pointed::stored(file, at, size),
                Some(s) => Some(Pointed::whole(s.whole()?)),
                None => Some(Pointed::whole(Vec::new())),
            }
        };
        let aranges = whole(".debug_aranges")?;
        if aranges.is_empty() {
            return None;
        }
        let spans = spans_of(&aranges)?;
        let mut unit_starts: Vec<u64> = spans.iter().map(|s| s.2).collect();
        unit_starts.sort_unstable();
        unit_starts.dedup();
        Some(Sparse {
            spans,
            unit_starts,
            info: open(".debug_info")?,
            line: open(".debug_line")?,
            kept: BTreeMap::new(),
            unfollowed: Vec::new(),
            with_call_sites: std::collections::BTreeSet::new(),
            abbrev_source: Some(open(".debug_abbrev")?),
            abbrev: Vec::new(),
            str_: pointed(".debug_str")?,
            line_str: whole(".debug_line_str")?,
            str_offsets: whole(".debug_str_offsets")?,
            addr: whole(".debug_addr")?,
            ranges: pointed(".debug_ranges")?,
            rnglists: whole(".debug_rnglists")?,
            aranges,
            inflated,
        })
    }

    /// Whether sections were inflated here that a cache entry could hold.
    pub fn inflated_any(&self) -> bool {
        !self.inflated.is_empty()
    }

    /// Writes the sections inflated here, whole, to `cache` as the entry of `file` (the file
    /// this was opened from), so that the next run reads them as they are.
    pub fn keep(&mut self, file: &File, cache: &Cache) {
        if self.inflated.is_empty() {
            return;
        }
        let (info, line) = (self.info.size, self.line.size);
        if self.info.fill(0..info).is_none() || self.line.fill(0..line).is_none() {
            return;
        }
        if self.abbrev_read().is_none() {
            return;
        }
        let bytes = |name: &str| -> Option<&[u8]> {
            Some(match name {
                ".debug_info" => self.info.bytes.get(..info as usize)?,
                ".debug_line" => self.line.bytes.get(..line as usize)?,
                ".debug_abbrev" => &self.abbrev,
                ".debug_str" => &self.str_.bytes,
                ".debug_line_str" => &self.line_str,
                ".debug_str_offsets" => &self.str_offsets,
                ".debug_addr" => &self.addr,
                ".debug_ranges" => &self.ranges.bytes,
                ".debug_rnglists" => &self.rnglists,
                ".debug_aranges" => &self.aranges,
                _ => return None,
            })
        };
        let sections: Option<Vec<(&str, &[u8])>> = self
            .inflated
            .iter()
            .map(|&n| Some((n, bytes(n)?)))
            .collect();
        if let Some(sections) = sections {
            cache.put(file, &sections);
        }
    }

    /// The `.debug_info` offset of the unit `.debug_aranges` says holds `svma`.
    pub fn unit_of(&self, svma: u64) -> Option<u64> {
        // Spans may overlap (a unit listed twice): any that covers the address will do.
        let i = self.spans.partition_point(|s| s.0 <= svma);
        self.spans[..i]
            .iter()
            .rev()
            .take(8)
            .find(|s| svma < s.1)
            .map(|s| s.2)
    }

    /// `.debug_abbrev` as read whole; `None` if it cannot be, and the file must be read whole.
    fn abbrev_read(&mut self) -> Option<()> {
        if let Some(source) = self.abbrev_source.take() {
            self.abbrev = source.whole()?;
        }
        Some(())
    }

    /// Inflates at once what the lookups of `svmas` will read from compressed sections:
    /// `.debug_info` up to the end of the last unit that holds one of them, and beside it, on
    /// a second thread, `.debug_abbrev` and `.debug_line` whole. Read one unit at a time, they
    /// are inflated one after the other (libc6-dbg's: 4 MB of `.debug_info`, then 1 MB of each
    /// of the others); side by side, the others take no time of their own. Sections stored
    /// as they are are still read where asked.
    pub fn prefetch(&mut self, svmas: &[u64]) {
        if !self.info.is_compressed() {
            return;
        }
        let Some(last) = svmas.iter().filter_map(|&a| self.unit_of(a)).max() else {
            return;
        };
        let Sparse {
            info,
            line,
            abbrev_source,
            abbrev,
            ..
        } = self;
        let read_abbrev = std::thread::scope(|s| {
            let side = s.spawn(|| {
                if line.is_compressed() {
                    // A failure here is met again, and handled, where the unit's line
                    // program is read.
                    let _ = line.fill(0..line.size);
                }
                abbrev_source.take().map(Section::whole)
            });
            if let Some(end) = info.end_of_unit(last) {
                let _ = info.fill(0..end);
            }
            side.join()
        });
        match read_abbrev {
            Ok(Some(Some(bytes))) => *abbrev = bytes,
            // Left empty: the first unit's read fails, and the file is read whole.
            Ok(Some(None)) | Err(_) => *abbrev_source = None,
            Ok(None) => {}
        }
    }

    /// Reads the unit at `start`, if not read yet.
    pub fn load(&mut self, start: u64) -> Option<()> {
        if self.kept.contains_key(&start) {
            return Some(());
        }
        self.abbrev_read()?;
        let end = self.info.end_of_unit(start)?;
        // Units do not overlap: one that does is not DWARF to go on with.
        if let Some((_, &e)) = self.kept.range(..start).next_back()
            && e > start
        {
            return None;
        }
        if self.kept.range(start..end).next().is_some() {
            return None;
        }
        self.info.fill(start..end)?;
        self.kept.insert(start, end);
        // Its line program: gimli reads the header with the unit.
        let endian = gimli::LittleEndian;
        let dwarf_info = gimli::DebugInfo::new(&self.info.bytes, endian);
        let dwarf_abbrev = gimli::DebugAbbrev::new(&self.abbrev, endian);
        let header = dwarf_info
            .header_from_offset(gimli::DebugInfoOffset(start as usize))
            .ok()?;
        let abbrevs = header.abbreviations(&dwarf_abbrev).ok()?;
        let mut entries = header.entries(&abbrevs);
        let (_, root) = entries.next_dfs().ok()??;
        if let Some(gimli::AttributeValue::DebugLineRef(o)) =
            root.attr_value(gimli::DW_AT_stmt_list).ok()?
        {
            let start = o.0 as u64;
            let end = self.line.end_of_unit(start)?;
            self.line.fill(start..end)?;
        }
        self.survey(start, end)
    }

    /// Walks the unit at `unit..end` once, as it is loaded, for all that is asked of it
    /// unparsed: whether it has a call site; where it refers into other units (an inlined
    /// function's abstract origin, `DW_FORM_ref_addr`, all over a Rust program); and what it
    /// points at that gimli reads without being asked, read here: the strings of its root DIE
    /// (its name and directory, which a line's file path is made from) and every range list
    /// its DIEs name (DWARF 4's `.debug_ranges`; DWARF 5's lists are in `.debug_rnglists`,
    /// read whole). The other strings, the names of functions, are read one by one as a place
    /// needs one ([`Sparse::string`]): a Rust program's large unit points at strings all over
    /// its 12 MB `.debug_str`. A root that names a string by its index (DWARF 5's `strx`) has
    /// `.debug_str` read whole.
    fn survey(&mut self, unit: u64, end: u64) -> Option<()> {
        let want_ranges = !self.ranges.is_whole();
        let mut strings: Vec<u64> = Vec::new();
        let mut lists: Vec<u64> = Vec::new();
        let mut refs: Vec<u64> = Vec::new();
        let mut by_index = false;
        let mut call_site = false;
        let version = {
            let dwarf = self.dwarf()?;
            dwarf
                .debug_info
                .header_from_offset(gimli::DebugInfoOffset(unit as usize))
                .ok()?
                .version()
        };
        let mut root = true;
        // Which of an abbreviation's attributes are read, by code: most DIEs have none that
        // is, and are skipped by their forms' sizes. A Rust unit has thousands of DIEs with a
        // range list (inlined calls); parsing their other attributes was most of this walk.
        let mut wanted_of: HashMap<u64, Vec<bool>> = HashMap::new();
        let wanted_in = |spec: &gimli::AttributeSpecification| {
            matches!(
                spec.form(),
                gimli::DW_FORM_ref_addr | gimli::DW_FORM_indirect
            ) || (want_ranges && version <= 4 && spec.name() == gimli::DW_AT_ranges)
        };
        self.walk_raw(unit, |abbrev, entries| {
            let specs = abbrev.attributes();
            call_site |= is_call_site(abbrev.tag());
            let is_root = std::mem::take(&mut root);
            let wanted = wanted_of
                .entry(abbrev.code())
                .or_insert_with(|| specs.iter().map(wanted_in).collect());
            if !is_root && !wanted.iter().any(|&w| w) {
                entries.skip_attributes(specs).ok()?;
                return Some(true);
            }
            for (spec, &w) in specs.iter().zip(wanted.iter()) {
                if !w && !is_root {
                    entries.skip_attributes(std::slice::from_ref(spec)).ok()?;
                    continue;
                }
                match entries.read_attribute(*spec).ok()?.value() {
                    gimli::AttributeValue::DebugStrRef(o) if is_root => strings.push(o.0 as u64),
                    gimli::AttributeValue::DebugStrOffsetsIndex(_) if is_root => by_index = true,
                    gimli::AttributeValue::RangeListsRef(o) if want_ranges && version <= 4 => {
                        lists.push(o.0 as u64)
                    }
                    gimli::AttributeValue::DebugInfoRef(o) => {
                        let o = o.0 as u64;
                        if !(unit..end).contains(&o) {
                            refs.push(o);
                        }
                    }
                    _ => {}
                }
            }
            Some(true)
        })?;
        if call_site {
            self.with_call_sites.insert(unit);
        }
        self.unfollowed.append(&mut refs);
        if self.str_.is_whole() {
            strings.clear();
        }
        if by_index {
            self.str_.read_all()?;
        }
        self.str_.read_ended(strings, string_len)?;
        self.ranges.read_ended(lists, range_list_len)
    }

    /// Whether the kept unit at `unit` has a call site; `None` if it is not kept. rustc
    /// records none, and a Rust unit holds thousands of subprograms: parsing them for no call
    /// site was most of the chain search's time on a Rust target.
    pub fn has_call_sites(&self, unit: u64) -> Option<bool> {
        self.kept
            .contains_key(&unit)
            .then(|| self.with_call_sites.contains(&unit))
    }

    /// The string of a `.debug_str` reference, read from the file where it was not read.
    pub fn string(&self, offset: u64) -> Option<Vec<u8>> {
        self.str_.string_at(offset)
    }

    /// The string gimli gave as `slice`: where `.debug_str` was not read there it is empty, and
    /// its place in the section says where to read it.
    fn string_of(&self, slice: &[u8]) -> Option<Vec<u8>> {
        match self.str_.offset_of(slice) {
            Some(o) => self.str_.string_at(o),
            None => Some(slice.to_vec()),
        }
    }

    /// The sections as gimli reads them; `.debug_info` holds the units read, zero elsewhere.
    pub fn dwarf(&self) -> Option<gimli::Dwarf<gimli::EndianSlice<'_, gimli::LittleEndian>>> {
        self.dwarf_upto(self.info.bytes.len())
    }

    /// As [`Sparse::dwarf`], with `.debug_info` cut at `info_end`.
    fn dwarf_upto(
        &self,
        info_end: usize,
    ) -> Option<gimli::Dwarf<gimli::EndianSlice<'_, gimli::LittleEndian>>> {
        let empty: &[u8] = &[];
        let info = self.info.bytes.get(..info_end)?;
        gimli::Dwarf::load(|id| -> Result<_, ()> {
            let bytes: &[u8] = match id {
                gimli::SectionId::DebugAbbrev => &self.abbrev,
                gimli::SectionId::DebugAddr => &self.addr,
                gimli::SectionId::DebugAranges => &self.aranges,
                gimli::SectionId::DebugInfo => info,
                gimli::SectionId::DebugLine => &self.line.bytes,
                gimli::SectionId::DebugLineStr => &self.line_str,
                gimli::SectionId::DebugStr => &self.str_.bytes,
                gimli::SectionId::DebugStrOffsets => &self.str_offsets,
                gimli::SectionId::DebugRanges => &self.ranges.bytes,
                gimli::SectionId::DebugRngLists => &self.rnglists,
                _ => empty,
            };
            Ok(gimli::EndianSlice::new(bytes, gimli::LittleEndian))
        })
        .ok()
    }

    /// The places of `svmas`, or `None` if a lookup failed and the file must be read whole.
    /// Addresses no unit of `.debug_aranges` covers have no DWARF (GCC and rustc list every
    /// unit with code there) and get no entry.
    pub fn places(&mut self, svmas: &[u64]) -> Option<BTreeMap<u64, Vec<Place>>> {
        for &a in svmas {
            if let Some(u) = self.unit_of(a) {
                self.load(u)?;
            }
        }
        if self.kept.is_empty() {
            return Some(BTreeMap::new());
        }
        // A lookup that fails may be one that follows a reference into a unit left out (an
        // inlined function's abstract origin in another unit: DW_FORM_ref_addr, all over a
        // Rust program): those units are read too, and the lookups run again.
        for _ in 0..MAX_REF_ROUNDS {
            if let Some(found) = self.places_in_kept(svmas) {
                return Some(found);
            }
            if !self.load_referenced()? {
                return None;
            }
        }
        None
    }

    /// The units the kept ones refer to (`DW_FORM_ref_addr`) that are not kept, loaded;
    /// whether there was any. `None` if one cannot be found or there are too many. The
    /// references of the units loaded here are followed by the next call.
    fn load_referenced(&mut self) -> Option<bool> {
        let mut wanted = std::mem::take(&mut self.unfollowed);
        wanted.sort_unstable();
        wanted.dedup();
        let mut loaded = false;
        for o in wanted {
            if self
                .kept
                .range(..=o)
                .next_back()
                .is_some_and(|(_, &e)| o < e)
            {
                continue;
            }
            if self.kept.len() >= MAX_UNITS {
                return None;
            }
            let unit = self.unit_containing(o)?;
            self.load(unit)?;
            loaded = true;
        }
        Some(loaded)
    }

    /// Walks the DIEs of the loaded unit at `unit` raw, for readers that parse few of them:
    /// `visit` gets each DIE's abbreviation with the cursor at its attributes, reads or skips
    /// them, and says whether to go on. `None` if the unit or a DIE cannot be read.
    pub fn walk_raw<F>(&self, unit: u64, mut visit: F) -> Option<()>
    where
        F: FnMut(
            &gimli::Abbreviation,
            &mut gimli::EntriesRaw<'_, '_, gimli::EndianSlice<'_, gimli::LittleEndian>>,
        ) -> Option<bool>,
    {
        let dwarf = self.dwarf()?;
        let header = dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(unit as usize))
            .ok()?;
        let abbrevs = header.abbreviations(&dwarf.debug_abbrev).ok()?;
        let mut entries = header.entries_raw(&abbrevs, None).ok()?;
        while !entries.is_empty() {
            let Some(abbrev) = entries.read_abbreviation().ok()? else {
                continue;
            };
            if !visit(abbrev, &mut entries)? {
                break;
            }
        }
        Some(())
    }

    /// The start of the unit holding `offset` of `.debug_info`: from the last unit
    /// `.debug_aranges` names at or before it, unit by unit.
    fn unit_containing(&mut self, offset: u64) -> Option<u64> {
        let i = self.unit_starts.partition_point(|&s| s <= offset);
        let mut at = i.checked_sub(1).map_or(0, |i| self.unit_starts[i]);
        for _ in 0..MAX_UNIT_WALK {
            let end = self.info.end_of_unit(at)?;
            if offset < end {
                return Some(at);
            }
            at = end;
        }
        None
    }

    /// The lookups over the units kept, the bytes between them covered by placeholders.
    fn places_in_kept(&mut self, svmas: &[u64]) -> Option<BTreeMap<u64, Vec<Place>>> {
        let kept: Vec<Range<u64>> = self.kept.iter().map(|(&s, &e)| s..e).collect();
        let last = kept.last()?.end;
        if (self.info.bytes.len() as u64) < last {
            self.info.bytes.resize(last as usize, 0);
        }
        // The placeholders overwrite the start of each hole, which may hold bytes of units
        // inflated on the way: put back after the lookups, as more units may be loaded.
        let mut saved: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut covered = || -> Option<()> {
            let mut at = 0u64;
            for r in &kept {
                let gap = r.start - at;
                if gap >= PLACEHOLDER && gap - 4 <= u64::from(u32::MAX - 16) {
                    let hole = at as usize..(at + PLACEHOLDER) as usize;
                    saved.push((hole.start, self.info.bytes.get(hole)?.to_vec()));
                    placeholder(&mut self.info.bytes, at, gap)?;
                } else if gap > 0 {
                    // Too short for a placeholder: the unit(s) there, as they are.
                    self.info.fill(at..r.start)?;
                }
                at = r.end;
            }
            Some(())
        };
        let out = covered().and_then(|()| self.lookups(svmas, last as usize));
        for (at, bytes) in saved {
            self.info
                .bytes
                .get_mut(at..at + bytes.len())?
                .copy_from_slice(&bytes);
        }
        out
    }

    fn lookups(&self, svmas: &[u64], info_end: usize) -> Option<BTreeMap<u64, Vec<Place>>> {
        let mut out = BTreeMap::new();
        let ctx = addr2line::Context::from_dwarf(self.dwarf_upto(info_end)?).ok()?;
        for &a in svmas {
            let mut frames = ctx.find_frames(a).skip_all_loads().ok()?;
            let mut places = Vec::new();
            loop {
                match frames.next() {
                    Ok(Some(f)) => places.push(self.place(&f)),
                    Ok(None) => break,
                    Err(_) => return None,
                }
            }
            if !places.is_empty() {
                out.insert(a, places);
            }
        }
        Some(out)
    }
}

impl Sparse {
    /// As [`place`], with the function's name read where `.debug_str` was not.
    fn place(
        &self,
        f: &addr2line::Frame<'_, gimli::EndianSlice<'_, gimli::LittleEndian>>,
    ) -> Place {
        let mut p = place(f);
        if let Some(name) = f.function.as_ref()
            && let Some(bytes) = self.string_of(name.name.slice())
        {
            let name = String::from_utf8_lossy(&bytes);
            p.function = Some(demangle(&name));
        }
        p
    }
}

/// Whether a DIE of `tag` is a call site, as DWARF 5 or the GNU extension before it names one.
pub(super) fn is_call_site(tag: gimli::DwTag) -> bool {
    tag == gimli::DW_TAG_call_site || tag == gimli::DW_TAG_GNU_call_site
}

/// The places of `svmas` from the DWARF of `file`, or `None` if this file must be read whole.
pub fn places(file: &File, svmas: &[u64]) -> Option<BTreeMap<u64, Vec<Place>>> {
    Sparse::open(file)?.places(svmas)
}

/// One frame of addr2line's as a place.
pub fn place<R: gimli::Reader>(f: &addr2line::Frame<'_, R>) -> Place {
    let function = f
        .function
        .as_ref()
        .and_then(|n| n.raw_name().ok())
        .map(|n| demangle(&n));
    let (file, line) = f
        .location
        .as_ref()
        .map_or((None, None), |l| (l.file.map(str::to_string), l.line));
    Place {
        function,
        file,
        line,
    }
}

/// `.debug_aranges` as (begin, end, unit offset) spans, sorted.
fn spans_of(aranges: &[u8]) -> Option<Vec<(u64, u64, u64)>> {
    let section = gimli::DebugAranges::new(aranges, gimli::LittleEndian);
    let mut spans: Vec<(u64, u64, u64)> = Vec::new();
    let mut headers = section.headers();
    while let Some(header) = headers.next().ok()? {
        let unit = header.debug_info_offset().0 as u64;
        let mut entries = header.entries();
        while let Some(e) = entries.next().ok()? {
            let r = e.range();
            if r.end > r.begin {
                spans.push((r.begin, r.end, unit));
            }
        }
    }
    spans.sort_unstable();
    Some(spans)
}

/// Writes at `at` the header of a DWARF 5 type unit `len` bytes long: addr2line skips type
/// units without reading them, so the units between the kept ones are never parsed.
fn placeholder(bytes: &mut [u8], at: u64, len: u64) -> Option<()> {
    let unit_length = u32::try_from(len - 4).ok()?;
    let mut h = Vec::with_capacity(PLACEHOLDER as usize);
    h.extend_from_slice(&unit_length.to_le_bytes());
    h.extend_from_slice(&5u16.to_le_bytes());
    h.push(gimli::DW_UT_type.0);
    h.push(8);
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    bytes
        .get_mut(at as usize..(at + PLACEHOLDER) as usize)?
        .copy_from_slice(&h);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The places from the units .debug_aranges names are those addr2line finds in the
    /// file read whole, for addresses all over it.
    fn same_as_whole(path: &str) {
        same_as_whole_with(path, 20)
    }

    fn same_as_whole_with(path: &str, min_functions: usize) {
        let file = File::open(path).expect("open");
        let symbols = super::super::module::symbols_of_file(&file);
        // Every 37th function, or enough of a small program's to make 200.
        let step = (symbols.addresses().count() / 200).clamp(1, 37);
        let addrs: Vec<u64> = symbols
            .addresses()
            .step_by(step)
            .map(|a| a + 1)
            .take(200)
            .collect();
        assert!(addrs.len() > min_functions, "{path}: few functions");
        let sparse = places(&file, &addrs).expect("read by units");
        let mut whole = BTreeMap::new();
        super::super::symbolize::whole_file_places(&file, &addrs, &mut whole);
        assert!(whole.len() > addrs.len() / 2, "{path}: little DWARF");
        assert_eq!(sparse, whole, "{path}");
        // Read ahead, compressed sections side by side: the same places.
        let mut ahead = Sparse::open(&file).expect("read by units");
        ahead.prefetch(&addrs);
        assert_eq!(ahead.places(&addrs), Some(whole), "{path}, read ahead");
    }

    #[test]
    fn this_test_binary() {
        let exe = std::env::current_exe().expect("exe");
        same_as_whole(&exe.to_string_lossy());
    }

    /// A Rust program at -O: an inlined function's abstract origin is in another unit
    /// (DW_FORM_ref_addr); the units referred to are read as well, not the whole file.
    #[test]
    fn rust_cross_unit_references() {
        let Some((dir, exe)) =
            super::super::fixture::build("rustc", &["-g", "-O"], "blocked.rs", "dwarf")
        else {
            return;
        };
        let path = exe.to_string_lossy().into_owned();
        same_as_whole(&path);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A C program by GCC (DWARF 5, `.debug_str` and `.debug_line_str` stored as they are):
    /// its names, read one by one from the file, are those of the file read whole.
    #[test]
    fn gcc_dwarf5_names_read_from_the_file() {
        let Some((dir, exe)) =
            super::super::fixture::build("gcc", &["-g", "-O2", "-pthread"], "blocked.c", "dwarf-c")
        else {
            return;
        };
        let path = exe.to_string_lossy().into_owned();
        same_as_whole_with(&path, 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A section read by blocks gives each string whole, from the blocks read or the file,
    /// and each range list through its end, across blocks.
    #[test]
    fn pointed_sections_read_items_across_blocks() {
        let dir = std::env::temp_dir().join(format!("hangscope-pointed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("section");
        let mut bytes = vec![b'x'; 3 * BLOCK as usize];
        // A string from the end of block 0 into block 1, one inside block 2, and a range list
        // of three entries whose end-of-list entry is in the next block.
        bytes[BLOCK as usize - 3] = b'a';
        bytes[BLOCK as usize + 5] = 0;
        bytes[2 * BLOCK as usize + 110] = 0;
        let list_at = 2 * BLOCK as usize - 40;
        bytes[list_at..list_at + 48].fill(1);
        bytes[list_at + 48..list_at + 64].fill(0);
        std::fs::write(&path, &bytes).expect("write");
        let file = File::open(&path).expect("open");
        let mut p = Pointed::stored(file, 0, bytes.len() as u64).expect("stored");
        let first = BLOCK - 3;
        p.read_ended(vec![first], string_len).expect("strings");
        assert_eq!(
            p.bytes[first as usize..BLOCK as usize + 6],
            bytes[first as usize..BLOCK as usize + 6]
        );
        assert_eq!(p.string_at(first).map(|s| s.len()), Some(8));
        // Not read yet: from the file.
        assert_eq!(p.string_at(2 * BLOCK + 100).map(|s| s.len()), Some(10));
        p.read_ended(vec![list_at as u64], range_list_len)
            .expect("lists");
        assert_eq!(p.bytes[list_at..list_at + 64], bytes[list_at..list_at + 64]);
        assert_eq!(range_list_len(&p.bytes[list_at..]), Some(64));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// libc6-dbg's debug file: compressed sections, 4,000 units.
    #[test]
    fn libc_debug_file() {
        let libc = "/lib/x86_64-linux-gnu/libc.so.6";
        let Ok(f) = File::open(libc) else {
            eprintln!("skipped: no {libc}");
            return;
        };
        let cache = ReadCache::new(f);
        let Some(id) = object::File::parse(&cache)
            .ok()
            .and_then(|o| o.build_id().ok().flatten().map(<[u8]>::to_vec))
        else {
            eprintln!("skipped: {libc} has no build-id");
            return;
        };
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let debug = format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
        if !std::path::Path::new(&debug).exists() {
            eprintln!("skipped: no {debug} (Debian package libc6-dbg)");
            return;
        }
        same_as_whole(&debug);

        // Kept inflated: the next read takes the units from the entry, nothing inflated.
        let base =
            std::env::temp_dir().join(format!("hangscope-sparse-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).expect("temp dir");
        let mut gaps = Vec::new();
        let mounts = crate::mountinfo::read(
            &crate::ProcRoot::default(),
            std::process::id() as i32,
            &mut gaps,
        );
        let euid = nix::unistd::geteuid().as_raw();
        let cache = Cache::at(&format!("{}/cache", base.display()), &mounts, euid).expect("cache");
        let file = File::open(&debug).expect("open");
        let symbols = super::super::module::symbols_of_file(&file);
        let addrs: Vec<u64> = symbols
            .addresses()
            .step_by(37)
            .map(|a| a + 1)
            .take(200)
            .collect();
        let mut whole = BTreeMap::new();
        super::super::symbolize::whole_file_places(&file, &addrs, &mut whole);
        let mut cold = Sparse::open_with(&file, || Some(&cache)).expect("sparse");
        assert!(cold.inflated_any(), "libc6-dbg's DWARF is compressed");
        assert_eq!(cold.places(&addrs).as_ref(), Some(&whole));
        cold.keep(&file, &cache);
        let mut warm = Sparse::open_with(&file, || Some(&cache)).expect("sparse");
        assert!(!warm.inflated_any(), "read from the entry");
        warm.prefetch(&addrs);
        assert_eq!(warm.places(&addrs), Some(whole));
        let _ = std::fs::remove_dir_all(&base);
    }
}
