//! ELF symbol lookup for uprobes: a function name in an executable or shared
//! library -> the file offset the uprobe PMU wants in `perf_event_attr.config2`.
//!
//! The offset of a function is `st_value - sh_addr + sh_offset`, with the section
//! header of the symbol's `st_shndx`; it must agree with the loader's view,
//! `st_value - p_vaddr + p_offset` of the executable `PT_LOAD` segment holding the
//! address. The formula is the same for PIE, non-PIE and shared libraries.
//!
//! [`ElfFile::open`] maps a file and reads its tables once (headers with goblin,
//! symbols of `.symtab` and `.dynsym`, GNU symbol versions, the dynamic section);
//! every later query works on those owned tables. Bad input gives an [`ElfError`],
//! never a panic.
//!
//! - [`ElfFile::resolve`]: one function by name (`open`, `open@@GLIBC_2.2.5`).
//! - [`ElfFile::functions`], [`ElfFile::program_functions`]: function lists.
//! - [`resolve_library_function`]: which library of a program defines a function.
//! - [`ld_cache_lookup`], [`parse_ld_cache`]: `/etc/ld.so.cache`.

mod dwarf;
mod error;
mod ldcache;
mod library;
mod parse;
mod program;
mod symbols;

#[cfg(test)]
mod tests;

pub use error::{ElfError, LibError, ResolveError};
pub use ldcache::{is_x86_64_libc6, ld_cache_lookup, parse_ld_cache, LD_SO_CACHE};
pub use library::{find_library, parse_proc_maps, resolve_library_function};
pub use parse::ElfFile;

use std::path::{Path, PathBuf};

/// The path a uprobe on `file` is given: absolute, with every symbolic link
/// resolved, except under /proc (`/proc/PID/exe`, `/proc/PID/root/...`, as
/// `-p` names a process's file in another mount namespace): those are magic
/// links the kernel follows into the process's namespace, where resolving them
/// here would give a path read in trace's own, naming another file or none.
pub fn uprobe_path(file: &Path) -> PathBuf {
    if file.starts_with("/proc") {
        return file.to_path_buf();
    }
    std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf())
}

/// What a function symbol is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymKind {
    /// `STT_FUNC`: an ordinary function.
    Func,
    /// `STT_GNU_IFUNC`: an indirect function. The symbol's code is the resolver,
    /// which runs once per process and returns the implementation to use.
    Ifunc,
}

/// A defined function and where a uprobe on it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// The name matched, without `@VERSION`.
    pub name: String,
    /// `st_value`: the function's virtual address in the file's own numbering.
    pub addr: u64,
    /// `st_size` in bytes (0 when the symbol does not say).
    pub size: u64,
    /// File offset for the uprobe: `addr - sh_addr + sh_offset`.
    pub offset: u64,
    /// Name of the section holding the function, e.g. `.text`.
    pub section: String,
    /// `sh_addr` of that section (kept to show the offset formula with numbers).
    pub sh_addr: u64,
    /// `sh_offset` of that section.
    pub sh_offset: u64,
    /// Ordinary function or indirect-function resolver.
    pub kind: SymKind,
    /// True when every symbol of this name at this address is `STB_WEAK`.
    pub weak: bool,
    /// The other names of the same address (`open64`, `__open`, ...), sorted.
    pub aliases: Vec<String>,
}

impl Symbol {
    /// The offset formula with this symbol's numbers, for teaching output:
    /// `0x1240 - 0x1000 + 0x1000 = 0x1240`.
    pub fn formula(&self) -> String {
        format!(
            "st_value {:#x} - sh_addr {:#x} + sh_offset {:#x} ({}) = {:#x}",
            self.addr,
            self.sh_addr,
            self.sh_offset,
            crate::escape::text(&self.section),
            self.offset
        )
    }
}
