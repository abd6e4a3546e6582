//! The errors of the ELF room. Each names what the user gave (a path, a function)
//! and says what to do next.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::Symbol;
use crate::escape;

/// A file cannot be used as a uprobe target.
#[derive(Debug)]
pub enum ElfError {
    /// The file could not be opened, inspected or mapped.
    Io { path: PathBuf, source: io::Error },
    /// A directory, a device or another non-regular file.
    NotAFile { path: PathBuf },
    /// The file has no bytes at all.
    Empty { path: PathBuf },
    /// The file does not start with the ELF magic `\x7fELF`.
    NotElf { path: PathBuf },
    /// An ELF file of a kind the tracer does not handle; `what` describes it
    /// ("a 32-bit ELF file", "a relocatable object file (ET_REL)", ...).
    Unsupported { path: PathBuf, what: String },
    /// A table the file declares (`what`) ends past the end of the file.
    Truncated { path: PathBuf, what: String, end: u64, size: u64 },
    /// The tables of the file contradict each other.
    Malformed { path: PathBuf, detail: String },
    /// `/etc/ld.so.cache` (or bytes given as one) could not be parsed.
    LdCache { detail: String },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::Io { path, source } => match source.kind() {
                io::ErrorKind::NotFound => {
                    write!(f, "{}: no such file; check the path", escape::path(path))
                }
                io::ErrorKind::PermissionDenied => write!(
                    f,
                    "cannot read {}: permission denied; run trace as root or make the file readable",
                    escape::path(path)
                ),
                _ => write!(f, "cannot read {}: {source}", escape::path(path)),
            },
            ElfError::NotAFile { path } => write!(
                f,
                "{} is not a regular file; give the path of an executable or a shared library",
                escape::path(path)
            ),
            ElfError::Empty { path } => write!(
                f,
                "{} is empty; give the path of a compiled executable or shared library",
                escape::path(path)
            ),
            ElfError::NotElf { path } => write!(
                f,
                "{} is not an ELF file (it does not start with \\x7fELF); uprobes need a compiled \
                 executable or shared library, not a script or a data file",
                escape::path(path)
            ),
            ElfError::Unsupported { path, what } => write!(
                f,
                "{} is {what}; trace handles x86-64 executables and shared libraries only",
                escape::path(path)
            ),
            ElfError::Truncated { path, what, end, size } => write!(
                f,
                "{} is truncated: its {what} ends at byte {end} but the file has only {size} bytes; \
                 rebuild or copy the file again",
                escape::path(path)
            ),
            ElfError::Malformed { path, detail } => {
                write!(f, "{} is not a valid ELF file: {detail}", escape::path(path))
            }
            ElfError::LdCache { detail } => {
                write!(f, "cannot parse the dynamic linker cache: {detail}; run `ldconfig` to rebuild it")
            }
        }
    }
}

impl std::error::Error for ElfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ElfError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A function name could not be turned into a uprobe offset in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// No function of that name is defined in the file.
    NotFound {
        name: String,
        file: PathBuf,
        /// Similar names defined in the file, best first (at most 5).
        close_matches: Vec<String>,
        /// The file has no `.symtab`: only the functions it exports could be searched.
        stripped: bool,
    },
    /// The file only imports the function (`SHN_UNDEF` in `.dynsym`): its code is in
    /// a shared library, named here when the symbol's version says which one.
    Import { name: String, file: PathBuf, library: Option<String> },
    /// `STT_GNU_IFUNC`: the symbol is the resolver, which runs once per process.
    Ifunc { name: String, file: PathBuf, resolver: Box<Symbol> },
    /// Several functions of equal standing carry the name (e.g. `static` functions
    /// of different source files).
    Ambiguous { name: String, file: PathBuf, candidates: Vec<Symbol> },
    /// The section and segment tables give different file offsets (or none): no
    /// offset is returned rather than a wrong one.
    BadOffset { name: String, file: PathBuf, detail: String },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NotFound { name, file, close_matches, stripped } => {
                let name = escape::text(name);
                write!(f, "no function `{name}` in {}", escape::path(file))?;
                did_you_mean(f, close_matches)?;
                if *stripped {
                    write!(
                        f,
                        " ({} is stripped: it has no .symtab, so only the functions it exports in \
                         .dynsym can be found; rebuild it without -s or `strip`)",
                        escape::path(file)
                    )
                } else if close_matches.is_empty() {
                    write!(f, "; `trace -l {}` lists its functions", escape::path(file))
                } else {
                    Ok(())
                }
            }
            ResolveError::Import { name, file, library } => {
                let name = escape::text(name);
                let library = library.as_deref().map(escape::text);
                let from = library.map_or("a shared library".to_string(), |l| l.to_string());
                write!(
                    f,
                    "`{name}` is not defined in {}: it is imported from {from}; trace it as a \
                     library function (`-L {name}`",
                    escape::path(file)
                )?;
                match library {
                    Some(lib) => write!(f, " or `-L {lib}:{name}`)"),
                    None => write!(f, ")"),
                }
            }
            ResolveError::Ifunc { name, file, resolver } => {
                let name = escape::text(name);
                write!(
                    f,
                    "`{name}` in {} is an indirect function (STT_GNU_IFUNC): the symbol at offset {:#x} \
                 is its resolver, which runs once per process to pick an implementation, so a \
                 uprobe there would not see the calls; trace the implementation by its own name, \
                 or a function that calls `{name}`",
                    escape::path(file),
                    resolver.offset
                )
            }
            ResolveError::Ambiguous { name, file, candidates } => {
                let name = escape::text(name);
                let at: Vec<String> = candidates
                    .iter()
                    .map(|s| format!("{:#x} in {}", s.addr, escape::text(&s.section)))
                    .collect();
                write!(
                    f,
                    "`{name}` names {} different functions in {} (at {}); trace cannot tell which \
                     one you mean: rename one of them",
                    candidates.len(),
                    escape::path(file),
                    at.join(", ")
                )
            }
            ResolveError::BadOffset { name, file, detail } => write!(
                f,
                "cannot place a uprobe on `{}` in {}: {detail}; the file's section and segment \
                 tables disagree, so any file offset could be wrong",
                escape::text(name),
                escape::path(file)
            ),
        }
    }
}

impl std::error::Error for ResolveError {}

/// A library function could not be found.
#[derive(Debug)]
pub enum LibError {
    /// The library (named by the user or found on the way) is not a usable ELF file.
    Open { lib: String, source: ElfError },
    /// The library the user named is neither mapped by the process, nor needed by
    /// the program, nor in the dynamic linker cache.
    NoSuchLibrary { lib: String, func: String, searched: Vec<PathBuf> },
    /// None of the libraries searched defines the function.
    NotFound {
        func: String,
        target: PathBuf,
        searched: Vec<PathBuf>,
        /// Similar names defined in the searched libraries, best first.
        close_matches: Vec<String>,
    },
    /// The library defines the name, but it cannot be probed (an ifunc, ...).
    Resolve { library: PathBuf, source: ResolveError },
    /// A library was named for a statically linked program, which loads none.
    StaticTarget { target: PathBuf, lib: String, func: String },
    /// `/proc/PID/maps` could not be read.
    Maps { pid: u32, source: io::Error },
}

impl fmt::Display for LibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LibError::Open { lib, source } => write!(f, "cannot use library {}: {source}", escape::text(lib)),
            LibError::NoSuchLibrary { lib, func, searched } => {
                let (lib, func) = (escape::text(lib), escape::text(func));
                write!(
                    f,
                    "no library `{lib}` (looked for `{func}` there): it is not among {} and not in \
                     /etc/ld.so.cache; give its full path (`-L /path/to/{lib}:{func}`)",
                    list_or(searched, "the program's libraries (it needs none)")
                )
            }
            LibError::NotFound { func, target, searched, close_matches } => {
                let func = escape::text(func);
                write!(
                    f,
                    "no library of {} defines a function `{func}` (searched {})",
                    escape::path(target),
                    list_or(searched, "nothing: the program needs no shared libraries")
                )?;
                did_you_mean(f, close_matches)?;
                let lead = if close_matches.is_empty() { "." } else { "" };
                write!(
                    f,
                    "{lead} If it lives in a library loaded later (dlopen), name that library: \
                     `-L LIBRARY:{func}`"
                )
            }
            LibError::Resolve { source, .. } => write!(f, "{source}"),
            LibError::StaticTarget { target, lib, func } => {
                let (lib, func) = (escape::text(lib), escape::text(func));
                write!(
                    f,
                    "{} is statically linked: it loads no shared library, so `{lib}` is never used; \
                     its own copy of `{func}` is traced with `-L {func}` (or give a library path if \
                     the program dlopens one)",
                    escape::path(target)
                )
            }
            LibError::Maps { pid, source } => write!(
                f,
                "cannot read /proc/{pid}/maps to find the libraries of process {pid}: {source}; \
                 is the process still running, and is trace running as root?"
            ),
        }
    }
}

impl std::error::Error for LibError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LibError::Open { source, .. } => Some(source),
            LibError::Resolve { source, .. } => Some(source),
            LibError::Maps { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Appends "; did you mean `x`?" (or a list) when there are suggestions.
fn did_you_mean(f: &mut fmt::Formatter<'_>, close: &[String]) -> fmt::Result {
    match close {
        [] => Ok(()),
        [one] => write!(f, "; did you mean `{}`?", escape::text(one)),
        many => {
            let quoted: Vec<String> = many.iter().map(|n| format!("`{}`", escape::text(n))).collect();
            write!(f, "; did you mean one of {}?", quoted.join(", "))
        }
    }
}

/// Paths joined by ", ", or `empty` when there are none.
fn list_or(paths: &[PathBuf], empty: &str) -> String {
    if paths.is_empty() {
        return empty.to_string();
    }
    let shown: Vec<String> = paths.iter().map(|p| escape::path(p).to_string()).collect();
    shown.join(", ")
}
