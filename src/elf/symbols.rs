//! Function lookup by name and the uprobe offset of a symbol.

use std::collections::BTreeSet;

use goblin::elf::section_header::{SHT_NOBITS, SHT_PROGBITS};
use goblin::elf::sym::{STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_GNU_IFUNC};

use super::parse::{is_exec_load, split_version, vaddr_to_offset, RawSym};
use super::{ElfFile, ResolveError, SymKind, Symbol};
use crate::util::close_matches;

/// A name as the user typed it: `open`, `open@GLIBC_2.2.5` or `open@@GLIBC_2.2.5`.
struct Query {
    base: String,
    version: Option<String>,
    /// `@@`: only the default version matches.
    default_only: bool,
}

impl Query {
    fn parse(name: &str) -> Query {
        let (base, version, hidden) = split_version(name);
        Query { base, default_only: version.is_some() && !hidden, version }
    }

    /// `name` matches any version of `name`; `name@VER` matches version VER
    /// (default or not); `name@@VER` matches only the default version VER.
    fn matches(&self, s: &RawSym) -> bool {
        if s.base != self.base {
            return false;
        }
        match &self.version {
            None => true,
            Some(v) => s.version.as_deref() == Some(v.as_str()) && !(self.default_only && s.hidden),
        }
    }
}

/// Where a function lives in the file.
pub(super) struct Placement {
    pub section: String,
    pub sh_addr: u64,
    pub sh_offset: u64,
    pub offset: u64,
}

/// Preference among same-named symbols at different addresses (lower is better):
/// a default (or no) version before a non-default `name@VER`, then binding
/// GLOBAL, then LOCAL and others, then WEAK.
fn rank(s: &RawSym) -> (bool, u8) {
    let bind = match s.bind {
        STB_GLOBAL => 0,
        STB_WEAK => 2,
        _ => 1,
    };
    (s.hidden, bind)
}

impl ElfFile {
    /// The function `name` (`open`, `open@GLIBC_2.2.5`, `open@@GLIBC_2.2.5`) and its
    /// uprobe file offset.
    ///
    /// Searches `.symtab` and `.dynsym` for defined `STT_FUNC`/`STT_GNU_IFUNC`
    /// symbols. Symbols at one address are one function; among different
    /// addresses the default version wins, then a non-weak binding. Errors: not
    /// found (with close names), only imported, an ifunc resolver, ambiguous, or
    /// section and segment tables that disagree on the offset.
    pub fn resolve(&self, name: &str) -> Result<Symbol, ResolveError> {
        let q = Query::parse(name);
        let matches: Vec<&RawSym> =
            self.t.syms.iter().filter(|s| s.is_defined_function() && q.matches(s)).collect();
        let Some(best) = matches.iter().map(|s| rank(s)).min() else {
            return Err(self.missing(&q, name));
        };
        let addrs: BTreeSet<u64> = matches.iter().filter(|s| rank(s) == best).map(|s| s.value).collect();
        if addrs.len() > 1 {
            return Err(self.ambiguous(&q.base, &matches, &addrs));
        }
        let Some(&addr) = addrs.first() else {
            return Err(self.missing(&q, name));
        };
        let group: Vec<&RawSym> = matches.into_iter().filter(|s| s.value == addr).collect();
        let sym = self.symbol_for(&q.base, &group)?;
        match sym.kind {
            SymKind::Ifunc => {
                Err(ResolveError::Ifunc { name: q.base, file: self.path().into(), resolver: Box::new(sym) })
            }
            SymKind::Func => Ok(sym),
        }
    }

    /// Every defined function (`STT_FUNC`/`STT_GNU_IFUNC` of `.symtab` and
    /// `.dynsym`, not `SHN_UNDEF`, not a reserved section index), one entry per
    /// address, in address order. The name shown is a non-weak one if any, then
    /// the shortest name without a leading underscore. Functions whose offset
    /// cannot be computed consistently are left out.
    pub fn functions(&self) -> Vec<Symbol> {
        self.t
            .by_addr
            .values()
            .filter_map(|idx| {
                let group: Vec<&RawSym> = idx.iter().map(|&i| &self.t.syms[i]).collect();
                let shown = group.iter().min_by_key(|s| display_key(s))?;
                self.symbol_for(&shown.base, &group).ok()
            })
            .collect()
    }

    /// The function at the program's entry point (`e_entry`, normally `_start`),
    /// e.g. for a probe that sees every new process of the binary. Without a
    /// symbol there it is named `(entry)`, placed in the executable section that
    /// holds the address.
    pub fn entry_symbol(&self) -> Result<Symbol, ResolveError> {
        let entry = self.t.entry;
        if let Some(idx) = self.t.by_addr.get(&entry) {
            let group: Vec<&RawSym> = idx.iter().map(|&i| &self.t.syms[i]).collect();
            if let Some(shown) = group.iter().min_by_key(|s| display_key(s)) {
                return self.symbol_for(&shown.base, &group);
            }
        }
        let name = "(entry)";
        let bad =
            |detail: String| ResolveError::BadOffset { name: name.into(), file: self.path().into(), detail };
        let shndx = self
            .t
            .sections
            .iter()
            .position(|s| s.sh_type == SHT_PROGBITS && s.addr <= entry && entry - s.addr < s.size)
            .ok_or_else(|| bad(format!("the entry point {entry:#x} is in no section")))?;
        let place = self.placement(entry, shndx).map_err(bad)?;
        Ok(Symbol {
            name: name.into(),
            addr: entry,
            size: 0,
            offset: place.offset,
            section: place.section,
            sh_addr: place.sh_addr,
            sh_offset: place.sh_offset,
            kind: SymKind::Func,
            weak: false,
            aliases: Vec::new(),
        })
    }

    /// Builds the Symbol for `group` (symbols at one address, at least one), named `name`.
    pub(super) fn symbol_for(&self, name: &str, group: &[&RawSym]) -> Result<Symbol, ResolveError> {
        let bad =
            |detail: String| ResolveError::BadOffset { name: name.into(), file: self.path().into(), detail };
        let first = group.iter().min_by_key(|s| rank(s)).ok_or_else(|| bad("no symbol".into()))?;
        let place = self.placement(first.value, first.shndx).map_err(bad)?;
        let ifunc = group.iter().any(|s| s.typ == STT_GNU_IFUNC);
        Ok(Symbol {
            name: name.into(),
            addr: first.value,
            size: group.iter().map(|s| s.size).max().unwrap_or(0),
            offset: place.offset,
            section: place.section,
            sh_addr: place.sh_addr,
            sh_offset: place.sh_offset,
            kind: if ifunc { SymKind::Ifunc } else { SymKind::Func },
            weak: group.iter().all(|s| s.bind == STB_WEAK),
            aliases: self.aliases(first.value, name),
        })
    }

    /// Other names of the functions at `addr`, sorted, without `name`.
    fn aliases(&self, addr: u64, name: &str) -> Vec<String> {
        let Some(idx) = self.t.by_addr.get(&addr) else {
            return Vec::new();
        };
        let names: BTreeSet<&str> =
            idx.iter().map(|&i| self.t.syms[i].base.as_str()).filter(|n| *n != name).collect();
        names.into_iter().map(String::from).collect()
    }

    /// The uprobe offset of `addr` in section `shndx`: `addr - sh_addr + sh_offset`,
    /// checked against the executable `PT_LOAD` holding `addr`.
    pub(super) fn placement(&self, addr: u64, shndx: usize) -> Result<Placement, String> {
        let sections = &self.t.sections;
        let sec = sections.get(shndx).ok_or_else(|| {
            format!("its section index {shndx} is past the {} section headers", sections.len())
        })?;
        if sec.sh_type == SHT_NOBITS {
            return Err(format!("its section {} has no bytes in the file (SHT_NOBITS)", sec.name));
        }
        let delta = addr.checked_sub(sec.addr).filter(|&d| d < sec.size).ok_or_else(|| {
            format!(
                "address {addr:#x} is outside its section {} ({:#x}, {:#x} bytes)",
                sec.name, sec.addr, sec.size
            )
        })?;
        let offset =
            sec.offset.checked_add(delta).ok_or_else(|| format!("the offset of {addr:#x} overflows"))?;
        let by_segment = self
            .t
            .segments
            .iter()
            .filter(|s| is_exec_load(s))
            .find_map(|s| vaddr_to_offset(s, addr))
            .ok_or_else(|| format!("address {addr:#x} is in no executable PT_LOAD segment"))?;
        if by_segment != offset {
            return Err(format!(
                "section {} puts address {addr:#x} at file offset {offset:#x} but its PT_LOAD segment puts it at {by_segment:#x}",
                sec.name
            ));
        }
        Ok(Placement { section: sec.name.clone(), sh_addr: sec.addr, sh_offset: sec.offset, offset })
    }

    /// NotFound or Import for a name with no defined function.
    fn missing(&self, q: &Query, name: &str) -> ResolveError {
        let file = self.path().to_path_buf();
        let imports: Vec<&RawSym> =
            self.t.syms.iter().filter(|s| s.is_undefined() && s.base == q.base).collect();
        if !imports.is_empty() {
            let library = imports.iter().find_map(|s| s.library.clone());
            return ResolveError::Import { name: q.base.clone(), file, library };
        }
        ResolveError::NotFound {
            name: name.to_string(),
            file,
            close_matches: self.suggestions(q),
            stripped: !self.has_symtab(),
        }
    }

    /// Suggestions for a name with no match: the versions of that name when only
    /// the version was wrong, else close function names.
    fn suggestions(&self, q: &Query) -> Vec<String> {
        let defined = || self.t.syms.iter().filter(|s| s.is_defined_function());
        let versions: BTreeSet<String> =
            defined().filter(|s| s.base == q.base).map(RawSym::full_name).collect();
        if !versions.is_empty() {
            return versions.into_iter().take(5).collect();
        }
        let names: BTreeSet<&str> = defined().map(|s| s.base.as_str()).collect();
        close_matches(&q.base, names)
    }

    fn ambiguous(&self, name: &str, matches: &[&RawSym], addrs: &BTreeSet<u64>) -> ResolveError {
        let candidates = addrs
            .iter()
            .filter_map(|&a| {
                let group: Vec<&RawSym> = matches.iter().copied().filter(|s| s.value == a).collect();
                self.symbol_for(name, &group).ok()
            })
            .collect();
        ResolveError::Ambiguous { name: name.into(), file: self.path().into(), candidates }
    }
}

/// Which name of an address to show: non-weak first, then names without a
/// leading underscore, then the shortest, then alphabetical.
pub(super) fn display_key(s: &RawSym) -> (bool, bool, usize, String) {
    (s.bind == STB_WEAK, s.base.starts_with('_'), s.base.len(), s.base.clone())
}

/// True for `STB_LOCAL`.
pub(super) fn is_local(s: &RawSym) -> bool {
    s.bind == STB_LOCAL
}
