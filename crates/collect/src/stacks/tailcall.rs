//! Frames that a tail call took off the stack, rebuilt from DWARF's call-site records, as gdb
//! rebuilds them (its frame-tailcall.c and `call_site_find_chain` in dwarf2/loc.c).
//!
//! When `relay` ends in `jmp block_in_read`, no frame of `relay` is left: the stack goes from
//! `block_in_read` straight to `ask`, which called `relay`. Optimized code records each call
//! (`DW_TAG_call_site`, or `DW_TAG_GNU_call_site` before DWARF 5) with its return address, the
//! function called (`DW_AT_call_origin`, or a constant `DW_AT_call_target`) and whether it is
//! a tail call. So when the call site at a caller's return address calls F but the next-inner
//! frame is in G ≠ F, the functions between are found by following F's tail calls to G.
//!
//! Only a chain that is the only way from F to G is inserted: if two differ (F jumps to A or
//! to B, both of which jump to G), which one ran cannot be told and nothing is inserted.
//! (gdb keeps the callers and callees common to all chains; where they share none, as in that
//! example, it shows nothing either.) The search is bounded: past [`MAX_DEPTH`] calls deep or
//! [`MAX_VISITS`] call sites it gives up and inserts nothing.

use std::collections::HashMap;
use std::rc::Rc;

use addr2line::gimli;
use gimli::{AttributeValue, UnitOffset};

use super::dwarf::{Sparse, is_call_site};
use super::module::{Env, Module, Symbols};

/// Tail calls followed at most in one chain.
const MAX_DEPTH: usize = 16;
/// Call sites looked at, at most, for one chain.
const MAX_VISITS: u32 = 512;

/// The function a call site calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Its entry, in the module's own addresses.
    Addr(u64),
    /// Defined elsewhere: its linkage name, to find in a symbol table.
    Name(String),
    /// Through a register or memory.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub return_pc: u64,
    /// The entry of the function the call is in.
    pub function: Option<u64>,
    pub tail: bool,
    pub target: Target,
}

/// The call sites and functions of one unit.
#[derive(Debug, Default)]
pub struct UnitCalls {
    /// Sorted by return address.
    sites: Vec<Site>,
    /// (begin, end, entry) of each function's code; `None` when not read (a unit without
    /// call sites is read for those alone, see [`unit_calls`]).
    functions: Option<Vec<(u64, u64, u64)>>,
}

impl UnitCalls {
    fn site_at(&self, return_pc: u64) -> Option<&Site> {
        let i = self.sites.partition_point(|s| s.return_pc < return_pc);
        self.sites.get(i).filter(|s| s.return_pc == return_pc)
    }

    fn tail_sites_of(&self, entry: u64) -> impl Iterator<Item = &Site> {
        self.sites
            .iter()
            .filter(move |s| s.tail && s.function == Some(entry))
    }

    /// The entry of the function whose code holds `svma`.
    pub fn entry_of(&self, svma: u64) -> Option<u64> {
        self.functions
            .as_ref()?
            .iter()
            .find(|(b, e, _)| (*b..*e).contains(&svma))
            .map(|f| f.2)
    }
}

/// What a subprogram DIE says about itself.
struct Die<V> {
    entry: Option<u64>,
    /// `DW_AT_abstract_origin` or `DW_AT_specification`: the DIE it completes.
    origin: Option<UnitOffset>,
    /// Its name's attribute, read as a string only for a call's target not found by address:
    /// a Rust unit has thousands of subprograms, and making each name a String was a sixth of
    /// the stacks worker's time on a Rust -O0 target.
    name: Option<V>,
}

/// A call site as read: return pc, the enclosing function's entry, tail, the callee's DIE (or
/// a target without one).
type RawSite = (u64, Option<u64>, bool, Result<UnitOffset, Target>);

/// The call sites of the unit at `unit` (already loaded in `sparse`), with its functions
/// when it has any call site.
pub fn unit_calls(sparse: &Sparse, unit: u64) -> Option<UnitCalls> {
    if !sparse.has_call_sites(unit)? {
        return Some(UnitCalls::default());
    }
    read_unit(sparse, unit)
}

/// Reads the call sites and functions of the unit at `unit` (already loaded in `sparse`).
fn read_unit(sparse: &Sparse, unit: u64) -> Option<UnitCalls> {
    let dwarf = sparse.dwarf()?;
    let header = dwarf
        .debug_info
        .header_from_offset(gimli::DebugInfoOffset(unit as usize))
        .ok()?;
    let u = dwarf.unit(header).ok()?;
    let unit_start = unit as usize;
    let unit_ref = |v: AttributeValue<_>| -> Option<UnitOffset> {
        match v {
            AttributeValue::UnitRef(o) => Some(o),
            AttributeValue::DebugInfoRef(o) => {
                o.0.checked_sub(unit_start)
                    .map(UnitOffset)
                    .filter(|o| o.0 < u.header.length_including_self())
            }
            _ => None,
        }
    };
    let mut dies: HashMap<UnitOffset, Die<_>> = HashMap::new();
    let mut raw: Vec<RawSite> = Vec::new();
    let mut functions = Vec::new();
    // The enclosing subprograms: (depth, entry).
    let mut stack: Vec<(isize, Option<u64>)> = Vec::new();
    // Read raw: only subprograms and call sites have their attributes parsed, the others are
    // skipped by their forms' sizes.
    let mut entries = u.entries_raw(None).ok()?;
    let mut attrs: Vec<gimli::Attribute<_>> = Vec::new();
    while !entries.is_empty() {
        let depth = entries.next_depth();
        let offset = entries.next_offset();
        let Some(abbrev) = entries.read_abbreviation().ok()? else {
            continue;
        };
        let tag = abbrev.tag();
        if tag != gimli::DW_TAG_subprogram && !is_call_site(tag) {
            entries.skip_attributes(abbrev.attributes()).ok()?;
            continue;
        }
        attrs.clear();
        for spec in abbrev.attributes() {
            attrs.push(entries.read_attribute(*spec).ok()?);
        }
        while stack.last().is_some_and(|(d, _)| *d >= depth) {
            stack.pop();
        }
        let attr = |name| attrs.iter().find(|a| a.name() == name).map(|a| a.value());
        if tag == gimli::DW_TAG_subprogram {
            let mut die = Die {
                origin: attr(gimli::DW_AT_abstract_origin)
                    .or_else(|| attr(gimli::DW_AT_specification))
                    .and_then(unit_ref),
                name: [
                    gimli::DW_AT_linkage_name,
                    gimli::DW_AT_MIPS_linkage_name,
                    gimli::DW_AT_name,
                ]
                .into_iter()
                .find_map(&attr),
                entry: None,
            };
            let ranges = code_ranges(&dwarf, &u, &attrs);
            let low =
                attr(gimli::DW_AT_low_pc).and_then(|v| dwarf.attr_address(&u, v).ok().flatten());
            die.entry = low.or_else(|| ranges.first().map(|r| r.0));
            if let Some(entry) = die.entry {
                functions.extend(ranges.iter().map(|r| (r.0, r.1, entry)));
            }
            stack.push((depth, die.entry));
            dies.insert(offset, die);
            continue;
        }
        let Some(return_pc) = attr(gimli::DW_AT_call_return_pc)
            .or_else(|| attr(gimli::DW_AT_low_pc))
            .and_then(|v| dwarf.attr_address(&u, v).ok().flatten())
        else {
            continue;
        };
        let tail = [gimli::DW_AT_call_tail_call, gimli::DW_AT_GNU_tail_call]
            .into_iter()
            .any(|n| matches!(attr(n), Some(AttributeValue::Flag(true))));
        let target = match attr(gimli::DW_AT_call_origin)
            .or_else(|| attr(gimli::DW_AT_abstract_origin))
            .and_then(unit_ref)
        {
            Some(o) => Ok(o),
            None => Err(
                match attr(gimli::DW_AT_call_target)
                    .or_else(|| attr(gimli::DW_AT_GNU_call_site_target))
                {
                    Some(AttributeValue::Exprloc(x)) => constant_address(x, u.encoding()),
                    _ => Target::Unknown,
                },
            ),
        };
        raw.push((return_pc, stack.last().and_then(|s| s.1), tail, target));
    }
    // A call names the DIE of the function as declared, or its abstract (inlinable) instance;
    // the code is that of the concrete DIE completing it.
    let mut concrete: HashMap<UnitOffset, u64> = HashMap::new();
    for (&off, die) in &dies {
        if let Some(entry) = die.entry {
            let mut at = Some(off);
            for _ in 0..4 {
                let Some(o) = at else { break };
                concrete.entry(o).or_insert(entry);
                at = dies.get(&o).and_then(|d| d.origin);
            }
        }
    }
    let name_of = |mut off: UnitOffset| -> Option<String> {
        for _ in 0..4 {
            let d = dies.get(&off)?;
            // A name in `.debug_str` is read from the file: the section is read only where
            // the units' roots point.
            let name = d.name.and_then(|n| match n {
                AttributeValue::DebugStrRef(o) => sparse.string(o.0 as u64),
                n => dwarf.attr_string(&u, n).ok().map(|s| s.slice().to_vec()),
            });
            if let Some(s) = name {
                return Some(String::from_utf8_lossy(&s).into_owned());
            }
            off = d.origin?;
        }
        None
    };
    let mut sites: Vec<Site> = raw
        .into_iter()
        .map(|(return_pc, function, tail, t)| Site {
            return_pc,
            function,
            tail,
            target: match t {
                Ok(o) => match concrete.get(&o) {
                    Some(&a) => Target::Addr(a),
                    None => name_of(o).map_or(Target::Unknown, Target::Name),
                },
                Err(t) => t,
            },
        })
        .collect();
    sites.sort_by_key(|s| s.return_pc);
    functions.sort_unstable();
    Some(UnitCalls {
        sites,
        functions: Some(functions),
    })
}

/// The non-empty code ranges (begin, end) of a DIE whose attributes are `attrs`: its
/// `DW_AT_ranges`, else `DW_AT_low_pc` with `DW_AT_high_pc` (an address, or a length), as
/// gimli's `die_ranges` reads them from a parsed DIE.
fn code_ranges<R: gimli::Reader>(
    dwarf: &gimli::Dwarf<R>,
    u: &gimli::Unit<R>,
    attrs: &[gimli::Attribute<R>],
) -> Vec<(u64, u64)> {
    let attr = |name| attrs.iter().find(|a| a.name() == name).map(|a| a.value());
    let mut out = Vec::new();
    if let Some(v) = attr(gimli::DW_AT_ranges)
        && let Ok(Some(mut list)) = dwarf.attr_ranges(u, v)
    {
        while let Ok(Some(r)) = list.next() {
            if r.end > r.begin {
                out.push((r.begin, r.end));
            }
        }
        return out;
    }
    let Some(low) = attr(gimli::DW_AT_low_pc).and_then(|v| dwarf.attr_address(u, v).ok().flatten())
    else {
        return out;
    };
    let high = match attr(gimli::DW_AT_high_pc) {
        Some(AttributeValue::Udata(len)) => low.checked_add(len),
        Some(v) => dwarf.attr_address(u, v).ok().flatten(),
        None => None,
    };
    if let Some(high) = high.filter(|&h| h > low) {
        out.push((low, high));
    }
    out
}

/// A call target that is one `DW_OP_addr`: the callee's address.
fn constant_address<R: gimli::Reader>(x: gimli::Expression<R>, enc: gimli::Encoding) -> Target {
    let mut ops = x.operations(enc);
    match (ops.next(), ops.next()) {
        (Ok(Some(gimli::Operation::Address { address })), Ok(None)) => Target::Addr(address),
        _ => Target::Unknown,
    }
}

/// Where the chain search gets its DWARF and symbols, per module (an index).
pub trait Source {
    /// The call records of the unit of module `m` that holds `svma`.
    fn calls(&mut self, m: usize, svma: u64) -> Option<Rc<UnitCalls>>;
    /// The address of the function whose symbol is `name` in module `m`.
    fn address_of(&mut self, m: usize, name: &str) -> Option<u64>;
}

/// A function: module and entry.
type Func = (usize, u64);

/// The tail calls between the frame whose return address is `return_pc` (module `caller`)
/// and the next-inner frame, in function `callee`: (module, return address) of each call site
/// jumped from, innermost first. Empty when the call was direct, or nothing can be told.
pub fn chain(src: &mut dyn Source, caller: usize, return_pc: u64, callee: Func) -> Vec<Func> {
    let Some(calls) = src.calls(caller, return_pc.wrapping_sub(1)) else {
        return Vec::new();
    };
    let Some(site) = calls.site_at(return_pc) else {
        return Vec::new();
    };
    let Some(first) = resolve(src, caller, &site.target, callee.0) else {
        return Vec::new();
    };
    if first == callee {
        return Vec::new();
    }
    let mut s = Search {
        callee,
        visits: 0,
        found: None,
        ambiguous: false,
        path: Vec::new(),
    };
    s.visit(src, first, 0);
    match (s.ambiguous, s.found) {
        (false, Some(mut found)) => {
            found.reverse();
            found
        }
        _ => Vec::new(),
    }
}

/// The function `target` names, from a call in module `m`: a name is looked for in `m`'s
/// symbols first, then in `other`'s (the callee's module: a call through the PLT).
fn resolve(src: &mut dyn Source, m: usize, target: &Target, other: usize) -> Option<Func> {
    match target {
        Target::Addr(a) => Some((m, *a)),
        Target::Name(n) => src
            .address_of(m, n)
            .map(|a| (m, a))
            .or_else(|| (other != m).then(|| src.address_of(other, n).map(|a| (other, a)))?),
        Target::Unknown => None,
    }
}

struct Search {
    callee: Func,
    visits: u32,
    /// The first chain found, outermost call site first.
    found: Option<Vec<Func>>,
    ambiguous: bool,
    path: Vec<Func>,
}

impl Search {
    fn visit(&mut self, src: &mut dyn Source, func: Func, depth: usize) {
        let Some(calls) = src.calls(func.0, func.1) else {
            return;
        };
        for site in calls.tail_sites_of(func.1) {
            if self.ambiguous {
                return;
            }
            let key = (func.0, site.return_pc);
            if self.path.contains(&key) {
                continue;
            }
            self.visits += 1;
            if self.visits > MAX_VISITS {
                self.ambiguous = true;
                return;
            }
            self.path.push(key);
            match resolve(src, func.0, &site.target, self.callee.0) {
                Some(t) if t == self.callee => match &self.found {
                    None => self.found = Some(self.path.clone()),
                    Some(f) if *f == self.path => {}
                    Some(_) => self.ambiguous = true,
                },
                Some(t) if depth + 1 < MAX_DEPTH => self.visit(src, t, depth + 1),
                _ => {}
            }
            self.path.pop();
        }
    }
}

/// The DWARF file of one module, opened for the tail calls and kept for its places.
pub struct Opened {
    /// From the separate debug file (else the module's own file).
    pub from_debug: bool,
    pub sparse: Sparse,
    pub debug: Option<std::fs::File>,
}

/// Per module, its DWARF read as far as the chains need, and the chains found.
pub struct Dwarfs<'e, 'a> {
    env: &'e Env<'a>,
    modules: &'e [Module],
    opened: HashMap<usize, Option<Opened>>,
    units: HashMap<(usize, u64), Option<Rc<UnitCalls>>>,
    debug_symbols: HashMap<usize, Symbols>,
    chains: HashMap<(usize, u64, usize, u64), Vec<Func>>,
    /// The modules whose DWARF may be read now (`None`: all): a chain that needs another's is
    /// left for later, so that a large library's DWARF is not read before the program's own.
    pub allowed: Option<std::collections::BTreeSet<usize>>,
    refused: bool,
    /// A chain was left for later.
    pub deferred: bool,
    /// Where compressed DWARF is kept inflated, opened at the first file that has some.
    cache: std::cell::OnceCell<Option<super::dwarf_cache::Cache>>,
}

impl<'e, 'a> Dwarfs<'e, 'a> {
    pub fn new(env: &'e Env<'a>, modules: &'e [Module]) -> Self {
        Dwarfs {
            env,
            modules,
            opened: HashMap::new(),
            units: HashMap::new(),
            debug_symbols: HashMap::new(),
            chains: HashMap::new(),
            allowed: None,
            refused: false,
            deferred: false,
            cache: std::cell::OnceCell::new(),
        }
    }

    fn opened(&mut self, m: usize) -> Option<&mut Opened> {
        let (env, modules, cache) = (self.env, self.modules, &self.cache);
        let cache = || {
            cache
                .get_or_init(|| super::dwarf_cache::Cache::open(env.own_mounts))
                .as_ref()
        };
        self.opened
            .entry(m)
            .or_insert_with(|| {
                let module = modules.get(m)?;
                let debug = super::module::debug_file(env, module);
                if let Some(sparse) = debug.as_ref().and_then(|d| Sparse::open_with(d, cache)) {
                    return Some(Opened {
                        from_debug: true,
                        sparse,
                        debug,
                    });
                }
                Sparse::open_with(&module.file, cache).map(|sparse| Opened {
                    from_debug: false,
                    sparse,
                    debug,
                })
            })
            .as_mut()
    }

    /// Keeps what was inflated of each file's DWARF in the cache, for the next run
    /// (`dwarf_cache`).
    pub fn keep_inflated(&mut self) {
        let Some(Some(cache)) = self.cache.get() else {
            return;
        };
        for (&m, o) in self.opened.iter_mut() {
            let Some(o) = o.as_mut().filter(|o| o.sparse.inflated_any()) else {
                continue;
            };
            let file = if o.from_debug {
                o.debug.as_ref()
            } else {
                self.modules.get(m).map(|module| &module.file)
            };
            if let Some(file) = file {
                o.sparse.keep(file, cache);
            }
        }
    }

    /// Reads at once the DWARF that the frames at `svmas` of module `m` need
    /// ([`Sparse::prefetch`]).
    pub fn prefetch(&mut self, m: usize, svmas: &[u64]) {
        if let Some(o) = self.get(m) {
            o.sparse.prefetch(svmas);
        }
    }

    /// The DWARF of module `m` as far as it was read, for its places.
    pub fn get(&mut self, m: usize) -> Option<&mut Opened> {
        if self.allowed.as_ref().is_some_and(|a| !a.contains(&m)) {
            return None;
        }
        self.opened(m)
    }

    /// The frames of the tail calls between a frame whose return address is `return_pc` in
    /// module `outer` and the next-inner frame at `inner_svma` (the address looked up) in
    /// module `inner`: (module, return address of the jump), innermost first.
    pub fn between(
        &mut self,
        outer: usize,
        return_pc: u64,
        inner: usize,
        inner_svma: u64,
    ) -> Vec<Func> {
        let key = (outer, return_pc, inner, inner_svma);
        if let Some(c) = self.chains.get(&key) {
            return c.clone();
        }
        self.refused = false;
        // The symbol table first: the callee's module's DWARF may be a large one.
        let entry = self
            .modules
            .get(inner)
            .and_then(|m| m.symbols().lookup_entry(inner_svma))
            .map(|e| e.0)
            .or_else(|| self.entry_from_dwarf(inner, inner_svma));
        let found = match entry {
            Some(e) => chain(self, outer, return_pc, (inner, e)),
            None => Vec::new(),
        };
        if self.refused {
            self.deferred = true;
        } else {
            self.chains.insert(key, found.clone());
        }
        found
    }
}

impl Dwarfs<'_, '_> {
    /// The entry of the function holding `svma` in module `m`, from its unit's DWARF: read
    /// whole now if it was read for its call sites alone.
    fn entry_from_dwarf(&mut self, m: usize, svma: u64) -> Option<u64> {
        let calls = self.calls(m, svma)?;
        if calls.functions.is_some() {
            return calls.entry_of(svma);
        }
        let o = self.opened(m)?;
        let unit = o.sparse.unit_of(svma)?;
        let whole = read_unit(&o.sparse, unit)?;
        let entry = whole.entry_of(svma);
        self.units.insert((m, unit), Some(Rc::new(whole)));
        entry
    }
}

impl Source for Dwarfs<'_, '_> {
    fn calls(&mut self, m: usize, svma: u64) -> Option<Rc<UnitCalls>> {
        if self.allowed.as_ref().is_some_and(|a| !a.contains(&m)) {
            self.refused = true;
            return None;
        }
        let o = self.opened(m)?;
        let unit = o.sparse.unit_of(svma)?;
        if let Some(c) = self.units.get(&(m, unit)) {
            return c.clone();
        }
        let o = self.opened(m)?;
        let calls = o
            .sparse
            .load(unit)
            .and_then(|()| unit_calls(&o.sparse, unit))
            .map(Rc::new);
        self.units.insert((m, unit), calls.clone());
        calls
    }

    fn address_of(&mut self, m: usize, name: &str) -> Option<u64> {
        let module = self.modules.get(m)?;
        if let Some(a) = module.symbols().address_of(name) {
            return Some(a);
        }
        if !self.debug_symbols.contains_key(&m) {
            let symbols = self
                .opened(m)
                .and_then(|o| o.debug.as_ref())
                .map(super::module::symbols_of_file)
                .unwrap_or_default();
            self.debug_symbols.insert(m, symbols);
        }
        self.debug_symbols.get(&m)?.address_of(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    /// One file's DWARF and symbols, as module 0.
    struct OneFile {
        sparse: Sparse,
        symbols: Symbols,
    }

    impl Source for OneFile {
        fn calls(&mut self, _: usize, svma: u64) -> Option<Rc<UnitCalls>> {
            let unit = self.sparse.unit_of(svma)?;
            self.sparse.load(unit)?;
            unit_calls(&self.sparse, unit).map(Rc::new)
        }

        fn address_of(&mut self, _: usize, name: &str) -> Option<u64> {
            self.symbols.address_of(name)
        }
    }

    /// tests/fixtures/stacks/tailcall.c built by gcc -O2: `relay` jumps to `block_in_read`;
    /// `pick` jumps to `via_a` or `via_b`, which both jump to `block_in_read_too`.
    #[test]
    fn chains_in_a_gcc_o2_build() {
        let Some((dir, exe)) = super::super::fixture::build(
            "cc",
            &["-g", "-O2", "-pthread"],
            "tailcall.c",
            "tailcall",
        ) else {
            return;
        };
        let file = File::open(&exe).expect("open");
        let _ = std::fs::remove_dir_all(&dir);
        let symbols = super::super::module::symbols_of_file(&file);
        let entry = |name: &str| symbols.address_of(name).expect(name);
        let mut src = OneFile {
            sparse: Sparse::open(&file).expect("gcc writes .debug_aranges"),
            symbols: super::super::module::symbols_of_file(&file),
        };
        // The return address of the one call (not a jump) in `caller`.
        let mut return_in = |caller: &str| {
            let e = entry(caller);
            let calls = src.calls(0, e).expect("call sites");
            let mut calls = calls
                .sites
                .iter()
                .filter(|s| s.function == Some(e) && !s.tail);
            let site = calls.next().expect("a call");
            assert!(calls.next().is_none(), "one call in {caller}");
            site.return_pc
        };
        let (in_ask, in_choose) = (return_in("ask"), return_in("choose"));
        let named = |chain: Vec<Func>| -> Vec<String> {
            chain
                .iter()
                .map(|&(_, ret)| symbols.lookup(ret - 1).unwrap_or("?").to_string())
                .collect()
        };

        // ask calls relay; the frame above is block_in_read's: relay jumped there.
        let relay = chain(&mut src, 0, in_ask, (0, entry("block_in_read")));
        assert_eq!(named(relay.clone()), ["relay"]);
        // The return address of relay's `jmp`, its first instruction.
        assert!((entry("relay") + 2..=entry("relay") + 5).contains(&relay[0].1));
        // A direct call: nothing between.
        assert!(chain(&mut src, 0, in_ask, (0, entry("relay"))).is_empty());
        // choose calls pick; from pick to block_in_read_too through via_a or via_b: nothing.
        assert!(chain(&mut src, 0, in_choose, (0, entry("block_in_read_too"))).is_empty());
        // But to via_a there is one way.
        assert_eq!(
            named(chain(&mut src, 0, in_choose, (0, entry("via_a")))),
            ["pick"]
        );
        // A callee that no chain reaches.
        assert!(chain(&mut src, 0, in_ask, (0, entry("via_b"))).is_empty());
    }

    /// This test binary's units (Rust): the raw read finds each function's entry from its
    /// DWARF ranges as the symbol table has it, and the call sites the scan says are there.
    #[test]
    fn raw_reads_of_a_rust_binary_s_units_agree_with_its_symbols() {
        let exe = std::env::current_exe().expect("exe");
        let file = File::open(&exe).expect("open");
        let symbols = super::super::module::symbols_of_file(&file);
        let mut sparse = Sparse::open(&file).expect("DWARF read by units");
        let (mut checked, mut agreed) = (0, 0);
        for entry in symbols.addresses().step_by(97).take(300) {
            let Some(unit) = sparse.unit_of(entry) else {
                continue;
            };
            sparse.load(unit).expect("unit");
            let whole = read_unit(&sparse, unit).expect("read");
            let scanned = unit_calls(&sparse, unit).expect("scan");
            assert_eq!(
                scanned.sites.len(),
                whole.sites.len(),
                "unit {unit:#x}: the scan and the read disagree on call sites"
            );
            checked += 1;
            if whole.entry_of(entry + 1) == Some(entry) {
                agreed += 1;
            }
        }
        assert!(checked > 20, "{checked} functions with DWARF");
        // A symbol can also be a function's alias or a piece of one DWARF does not name.
        assert!(agreed * 10 >= checked * 8, "{agreed} of {checked}");
    }
}
