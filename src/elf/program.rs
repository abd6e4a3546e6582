//! The tracer's default probe set: the functions of the program itself.

use std::path::Path;

use goblin::elf::section_header::SHT_NOBITS;
use goblin::elf::sym::STT_GNU_IFUNC;

use super::dwarf;
use super::parse::RawSym;
use super::symbols::{display_key, is_local};
use super::{ElfFile, Symbol};

/// Helpers that crt files (`crtstuff.c`, `crti.o`, ...) put in every program;
/// recognised by name when the symbol table has no `STT_FILE` groups.
const CRT_HELPERS: &[&str] = &[
    "frame_dummy",
    "register_tm_clones",
    "deregister_tm_clones",
    "call_weak_fn",
    "call_frame_dummy",
    "call___do_global_dtors_aux",
    "call___do_global_ctors_aux",
];

impl ElfFile {
    /// The functions defined by the program itself, in address order: the
    /// tracer's default set. Empty for a stripped program (no `.symtab`).
    ///
    /// The rule, applied to each address of a defined function of `.symtab`
    /// (`.dynsym`-only functions are exports, not the program's own list):
    ///
    /// 1. Never: `STT_GNU_IFUNC` resolvers, `main`, names starting with `_`
    ///    (reserved for the implementation: `_start`, `_init`, `__libc_csu_init`),
    ///    names with a `.` (compiler fragments and clones: `f.cold`,
    ///    `f.part.0`), and crt helpers: functions in the `STT_FILE` group of a crt
    ///    object (`crtstuff.c`, `crt1.o`, `Scrt1.o`, `crti.o`, ...) or named like
    ///    one (`frame_dummy`, `register_tm_clones`, ...).
    /// 2. Static programs (no `PT_INTERP`, static-pie included) also carry the C
    ///    library in `.symtab`; which code is the program's own is read from the
    ///    program itself, never from the C library of the machine trace runs on
    ///    (which may have none, or another one): see [`ElfFile::own_code`].
    pub fn program_functions(&self) -> Vec<Symbol> {
        let own = if self.is_static() { Some(self.own_code()) } else { None };
        let mut out = Vec::new();
        for (&addr, idx) in &self.t.by_addr {
            let group: Vec<&RawSym> = idx.iter().map(|&i| &self.t.syms[i]).filter(|s| !s.dynamic).collect();
            if group.is_empty() || group.iter().any(|s| s.typ == STT_GNU_IFUNC) {
                continue;
            }
            let locals = match &own {
                None => true,
                Some(OwnCode::CompileUnits(ranges)) => {
                    if !ranges.iter().any(|&(lo, hi)| lo <= addr && addr < hi) {
                        continue;
                    }
                    true
                }
                Some(OwnCode::Window(lo, hi)) => {
                    let reserved = group.iter().any(|s| s.base.starts_with('_'));
                    let public = group.iter().any(|s| !s.base.starts_with('_'));
                    if !(*lo <= addr && addr < *hi) || (reserved && public) {
                        continue;
                    }
                    false
                }
            };
            let own = group.iter().filter(|s| self.is_program_name(s) && (locals || !is_local(s)));
            if let Some(shown) = own.min_by_key(|s| display_key(s)) {
                if let Ok(sym) = self.symbol_for(&shown.base, &group) {
                    out.push(sym);
                }
            }
        }
        out
    }

    /// Rule 1 of [`ElfFile::program_functions`] for one symbol.
    fn is_program_name(&self, s: &RawSym) -> bool {
        let n = s.base.as_str();
        let crt_file = self.crt_group(s);
        !(n == "main" || n.starts_with('_') || n.contains('.') || CRT_HELPERS.contains(&n) || crt_file)
    }

    /// A local symbol of the `STT_FILE` group of a crt object.
    fn crt_group(&self, s: &RawSym) -> bool {
        s.file.and_then(|f| self.t.files.get(f)).is_some_and(|f| is_crt_file(f))
    }

    /// Where a static program's own code is, told from the program alone.
    ///
    /// - Built with `-g`: its DWARF compile units, one per object file built
    ///   with debug information, each with the address ranges of its code. The
    ///   C library is usually built without (glibc's libc.a, Alpine's musl), but
    ///   some toolchains ship one with (the musl of Rust's musl target): its
    ///   units are those compiled in the directory of the unit that defines
    ///   `__libc_start_main` (the C library's start-up function, which crt1
    ///   calls, in glibc and musl alike), and are left out. Local functions in
    ///   the program's units are its own `static` functions, and count.
    /// - Otherwise, the link order. The linker lays out `.text` in the order of
    ///   its input: the C runtime's start-up objects (crt1, crti, crtbegin),
    ///   the program's objects, then the archive members of the C library; and
    ///   it lists each object's local symbols after an `STT_FILE` symbol naming
    ///   the object, objects in the order it placed them. The program's code
    ///   starts at the entry point (`_start`; the start-up objects' functions
    ///   are crt helpers) and ends at `__libc_start_main`, or before it at the
    ///   first local function of an object listed from `__libc_start_main`'s on
    ///   (glibc's `libc-start.o`, musl's `__libc_start_main.c`): the program's
    ///   own `static` functions are listed before. Only global functions count,
    ///   as local ones cannot be told from those of library members placed
    ///   before the C library's start-up. A member with no local function can
    ///   come first too (libm's `s_cbrt.o`, linked before libc by `-lm`): C
    ///   libraries give their public functions internal aliases (`__cbrt` for
    ///   `cbrt`, `__open` for `open`), so an address with both a reserved name
    ///   and a public one is the C library's. A program's code placed before its
    ///   entry point (`.text.unlikely`, `.text.hot`) is left out: `-g` gives the
    ///   exact set.
    /// - A program without `__libc_start_main` carries no C library (its own
    ///   `_start` and -nostdlib, or a runtime of its own): all its code counts.
    fn own_code(&self) -> OwnCode {
        if let Some(ranges) = self.own_compile_units() {
            return OwnCode::CompileUnits(ranges);
        }
        let Some(start_main) = self.static_function("__libc_start_main") else {
            // No C library start-up: a program with its own `_start` and no C
            // library (-nostdlib), or a runtime of its own (Go). Nothing to
            // leave out.
            return OwnCode::Window(0, u64::MAX);
        };
        let entry = self.entry();
        let start_main = Some(start_main).filter(|&a| a > entry);
        // The C library's start-up object: the group of the last local function
        // before `__libc_start_main`. Groups are listed in the order the linker
        // placed their objects, so the program's own come before it.
        let c_library = start_main.and_then(|a| {
            self.t.by_addr.range(..=a).rev().find_map(|(_, idx)| {
                idx.iter().map(|&i| &self.t.syms[i]).find(|s| self.other_object(s, None)).and_then(|s| s.file)
            })
        });
        let other_object = self.t.by_addr.range(entry..).find_map(|(&addr, idx)| {
            let mut group = idx.iter().map(|&i| &self.t.syms[i]);
            group.any(|s| self.other_object(s, c_library)).then_some(addr)
        });
        // Neither bound (no local symbols, no C library start-up): nothing can
        // be told apart, and nothing counts.
        let end = other_object.into_iter().chain(start_main).min().unwrap_or(entry);
        OwnCode::Window(entry, end)
    }

    /// A local function of an object that is not a crt's, and listed at or
    /// after `c_library`'s group when that is known.
    fn other_object(&self, s: &RawSym, c_library: Option<usize>) -> bool {
        !s.dynamic
            && is_local(s)
            && !self.crt_group(s)
            && s.file.is_some_and(|f| c_library.is_none_or(|l| f >= l))
    }

    /// The address of the `.symtab` function called `name`.
    fn static_function(&self, name: &str) -> Option<u64> {
        self.t.by_addr.iter().find_map(|(&addr, idx)| {
            idx.iter().any(|&i| self.t.syms[i].base == name && !self.t.syms[i].dynamic).then_some(addr)
        })
    }

    /// The code ranges of the program's own DWARF compile units (see
    /// [`ElfFile::own_code`]); None without debug information.
    pub(super) fn own_compile_units(&self) -> Option<Vec<(u64, u64)>> {
        let info = self.section_data(".debug_info")?;
        let abbrev = self.section_data(".debug_abbrev")?;
        let get = |name| self.section_data(name).unwrap_or_default();
        let sections = dwarf::Sections {
            info,
            abbrev,
            str: get(".debug_str"),
            line_str: get(".debug_line_str"),
            str_offsets: get(".debug_str_offsets"),
            addr: get(".debug_addr"),
            ranges: get(".debug_ranges"),
            rnglists: get(".debug_rnglists"),
            aranges: get(".debug_aranges"),
        };
        let units = dwarf::compile_units(&sections);
        let c_library =
            self.static_function("__libc_start_main").and_then(|a| units.iter().find(|u| u.contains(a)));
        let ranges: Vec<(u64, u64)> = units
            .iter()
            .filter(|u| match c_library {
                Some(lib) => !std::ptr::eq(*u, lib) && (lib.comp_dir.is_none() || u.comp_dir != lib.comp_dir),
                None => true,
            })
            .flat_map(|u| u.ranges.iter().copied())
            .collect();
        (!ranges.is_empty()).then_some(ranges)
    }

    /// The bytes of the section called `name`, if the file has it with its
    /// contents in the file, uncompressed.
    fn section_data(&self, name: &str) -> Option<&[u8]> {
        const SHF_COMPRESSED: u64 = 0x800;
        let sec = self.t.sections.iter().find(|s| s.name == name)?;
        if sec.sh_type == SHT_NOBITS || sec.flags & SHF_COMPRESSED != 0 {
            return None;
        }
        self.bytes_at(sec.offset, usize::try_from(sec.size).ok()?)
    }
}

/// A static program's own code (see [`ElfFile::own_code`]).
enum OwnCode {
    /// The address ranges of its DWARF compile units.
    CompileUnits(Vec<(u64, u64)>),
    /// From its entry point to the first function of the C library.
    Window(u64, u64),
}

/// A C runtime start-up object: `crtstuff.c`, `crti.o`, `crtbeginS.o`, `crt1.o`,
/// `Scrt1.o`, `rcrt1.o`, `gcrt1.o`, ...
fn is_crt_file(name: &str) -> bool {
    let base = Path::new(name).file_name().and_then(|b| b.to_str()).unwrap_or(name);
    base.starts_with("crt") || base.ends_with("crt1.o")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crt_objects_are_recognised() {
        for f in ["crtstuff.c", "crt1.o", "Scrt1.o", "rcrt1.o", "gcrt1.o", "crti.o", "crtn.o", "crtbeginS.o"]
        {
            assert!(is_crt_file(f), "{f}");
        }
        for f in ["file-io.c", "prog.c", "abort.o", "libc-start.o", "ascrt.c"] {
            assert!(!is_crt_file(f), "{f}");
        }
    }
}
