//! The tracer's default probe set: the functions of the program itself.

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

use goblin::elf::sym::STT_GNU_IFUNC;

use super::ldcache::ld_cache_lookup;
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

/// The shared libraries of the C library whose code a static link copies in:
/// every name they export is a C library function, not a program function.
const C_LIBRARIES: &[&str] = &["libc.so.6", "libm.so.6"];

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
    ///    library in `.symtab`. For them, an address is dropped when any of its
    ///    names is exported as a function by the system's `libc.so.6` or `libm.so.6` (found
    ///    through `/etc/ld.so.cache`): those names are the C library's, and an
    ///    address with one public C library name is C library code. Of what
    ///    remains, only `STB_GLOBAL`/`STB_WEAK` names count: the C library's
    ///    internal helpers are `STB_LOCAL`, and local functions cannot be told
    ///    apart from the program's own `static` functions, which a static
    ///    program therefore leaves out of the default set (they can still be
    ///    named one by one).
    ///
    /// Measured on a static glibc build of a program defining `native`,
    /// `with_syscall` and `with_asm` and calling libc and libm: the global,
    /// non-underscore functions left after libc.so.6's exports were those three,
    /// `main`, and libm code (`cbrt`, `frexpf64`, ...), which libm.so.6's exports
    /// remove.
    pub fn program_functions(&self) -> Vec<Symbol> {
        let no_names = HashSet::new();
        let c_library = if self.is_static() { c_library_exports() } else { &no_names };
        let mut out = Vec::new();
        for idx in self.t.by_addr.values() {
            let group: Vec<&RawSym> = idx.iter().map(|&i| &self.t.syms[i]).filter(|s| !s.dynamic).collect();
            if group.is_empty() || group.iter().any(|s| s.typ == STT_GNU_IFUNC) {
                continue;
            }
            if group.iter().any(|s| c_library.contains(&s.base)) {
                continue;
            }
            let own = group.iter().filter(|s| self.is_program_name(s) && !(self.is_static() && is_local(s)));
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
        let crt_file = s.file.and_then(|f| self.t.files.get(f)).is_some_and(|f| is_crt_file(f));
        !(n == "main" || n.starts_with('_') || n.contains('.') || CRT_HELPERS.contains(&n) || crt_file)
    }
}

/// A C runtime start-up object: `crtstuff.c`, `crti.o`, `crtbeginS.o`, `crt1.o`,
/// `Scrt1.o`, `rcrt1.o`, `gcrt1.o`, ...
fn is_crt_file(name: &str) -> bool {
    let base = Path::new(name).file_name().and_then(|b| b.to_str()).unwrap_or(name);
    base.starts_with("crt") || base.ends_with("crt1.o")
}

/// Every function name defined in the `.dynsym` of the C libraries ([`C_LIBRARIES`]);
/// empty for those not installed. Read once per process: the system's C library
/// does not change while the tracer runs, and reading it costs milliseconds per
/// static program otherwise.
fn c_library_exports() -> &'static HashSet<String> {
    static EXPORTS: OnceLock<HashSet<String>> = OnceLock::new();
    EXPORTS.get_or_init(read_c_library_exports)
}

/// Reads the names [`c_library_exports`] keeps.
fn read_c_library_exports() -> HashSet<String> {
    let mut names = HashSet::new();
    for soname in C_LIBRARIES {
        let Some(path) = ld_cache_lookup(soname) else {
            continue;
        };
        let Ok(lib) = ElfFile::open(&path) else {
            continue;
        };
        let exported = lib.t.syms.iter().filter(|s| s.dynamic && !s.is_undefined());
        names.extend(exported.map(|s| s.base.clone()));
    }
    names
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
