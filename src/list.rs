//! `trace -l [PATTERN]`: what can be traced, one `SOURCE:NAME` per line, sorted.
//!
//! | PATTERN | lists | traced with |
//! | --- | --- | --- |
//! | `./file-io` (a file) | the program's own functions (what `-u '*'` traces) | `-u NAME` |
//! | `./file-io:GLOB` | every function symbol of the file matching GLOB | `-u NAME` |
//! | `LIB:GLOB` (`libc:op*`) | functions the library defines | `-L LIB:NAME` |
//! | `syscalls:GLOB` | system calls with tracepoints in tracefs | `-s NAME` |
//! | `kernel:GLOB` | kernel functions in /proc/kallsyms | `-k NAME` |
//! | `GLOB`, or nothing (`*`) | system calls and kernel functions | |
//!
//! Globs are those of `-u`: `*` any run of characters, `?` one character.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::elf::{self, ElfFile, SymKind};
use crate::escape;
use crate::kallsyms::Kallsyms;
use crate::tracefs::Tracefs;
use crate::util::glob_match;

/// Where to look, parsed from the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A program or library file: its own functions (no glob) or every function
    /// matching the glob. `shown` is the path as typed, used as the prefix.
    File { path: PathBuf, shown: String, glob: Option<String> },
    /// A library by name (`libc`, `c`, `libc.so.6`), found in /etc/ld.so.cache.
    Library { lib: String, glob: String },
    /// System calls that have `syscalls/sys_enter_*` tracepoints.
    Syscalls(String),
    /// Kernel functions of /proc/kallsyms.
    Kernel(String),
    /// System calls and kernel functions.
    Anywhere(String),
}

/// Why a list could not be made; each names what the user typed.
#[derive(Debug)]
pub enum ListError {
    Elf(elf::ElfError),
    NoLibrary { lib: String },
    Tracefs(crate::tracefs::TracefsError),
    Kallsyms(io::Error),
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Elf(e) => write!(f, "{e}"),
            ListError::NoLibrary { lib } => write!(
                f,
                "no library `{}` in /etc/ld.so.cache; name it as -L does (libc, c, libc.so.6) \
                 or give its path (/lib/x86_64-linux-gnu/libc.so.6:GLOB)",
                escape::text(lib)
            ),
            ListError::Tracefs(e) => write!(f, "{e}"),
            ListError::Kallsyms(e) => write!(f, "cannot read /proc/kallsyms: {e}"),
        }
    }
}

impl std::error::Error for ListError {}

/// `*` for an empty glob (`libc:` lists everything).
fn glob_or_all(g: &str) -> String {
    if g.is_empty() {
        "*".into()
    } else {
        g.to_string()
    }
}

/// Reads a pattern. A file that exists wins over the other readings, so
/// `trace -l file-io` lists the program in this directory.
pub fn parse(pattern: &str) -> Source {
    if let Some(g) = pattern.strip_prefix("syscalls:") {
        return Source::Syscalls(glob_or_all(g));
    }
    if let Some(g) = pattern.strip_prefix("kernel:") {
        return Source::Kernel(glob_or_all(g));
    }
    let file = |p: &str, glob: Option<String>| Source::File { path: p.into(), shown: p.into(), glob };
    if Path::new(pattern).is_file() {
        return file(pattern, None);
    }
    match pattern.rsplit_once(':') {
        Some((p, g)) if p.contains('/') || Path::new(p).is_file() => file(p, Some(glob_or_all(g))),
        Some((lib, g)) => Source::Library { lib: lib.into(), glob: glob_or_all(g) },
        None if pattern.contains('/') => file(pattern, None),
        None => Source::Anywhere(glob_or_all(pattern)),
    }
}

/// The `SOURCE:NAME` lines for a pattern, sorted, without repeats.
pub fn list(pattern: &str) -> Result<Vec<String>, ListError> {
    let mut out = match parse(pattern) {
        Source::File { path, shown, glob } => prefixed(&shown, file_functions(&path, glob.as_deref())?),
        Source::Library { lib, glob } => {
            let path = elf::find_library(&lib).ok_or_else(|| ListError::NoLibrary { lib: lib.clone() })?;
            prefixed(&lib, file_functions(&path, Some(&glob))?)
        }
        Source::Syscalls(glob) => prefixed("syscalls", syscalls(&glob)?),
        Source::Kernel(glob) => prefixed("kernel", kernel_functions(&glob)?),
        Source::Anywhere(glob) => {
            let mut v = prefixed("syscalls", syscalls(&glob)?);
            v.extend(prefixed("kernel", kernel_functions(&glob)?));
            v
        }
    };
    out.sort();
    out.dedup();
    Ok(out)
}

/// `prefix:name` lines, escaped: the names come from ELF files (and the
/// prefix from the command line).
fn prefixed(prefix: &str, names: Vec<String>) -> Vec<String> {
    let prefix = escape::text(prefix);
    names.into_iter().map(|n| format!("{prefix}:{}", escape::text(&n))).collect()
}

/// Without a glob, the program's own functions; with one, every name (aliases
/// included) of every function that can be probed (not an ifunc resolver).
fn file_functions(path: &Path, glob: Option<&str>) -> Result<Vec<String>, ListError> {
    let file = ElfFile::open(path).map_err(ListError::Elf)?;
    let Some(glob) = glob else {
        return Ok(file.program_functions().into_iter().map(|s| s.name).collect());
    };
    Ok(file
        .functions()
        .into_iter()
        .filter(|s| s.kind == SymKind::Func)
        .flat_map(|s| std::iter::once(s.name).chain(s.aliases))
        .filter(|n| glob_match(glob, n))
        .collect())
}

fn syscalls(glob: &str) -> Result<Vec<String>, ListError> {
    let tracefs = Tracefs::open().map_err(ListError::Tracefs)?;
    Ok(tracefs.syscalls().into_iter().filter(|n| glob_match(glob, n)).collect())
}

fn kernel_functions(glob: &str) -> Result<Vec<String>, ListError> {
    let k = Kallsyms::load().map_err(ListError::Kallsyms)?;
    Ok(k.names().filter(|n| glob_match(glob, n)).map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(parse("syscalls:*open*"), Source::Syscalls("*open*".into()));
        assert_eq!(parse("syscalls:"), Source::Syscalls("*".into()));
        assert_eq!(parse("kernel:vfs_*"), Source::Kernel("vfs_*".into()));
        assert_eq!(parse("libc:op*"), Source::Library { lib: "libc".into(), glob: "op*".into() });
        assert_eq!(parse("vfs_*"), Source::Anywhere("vfs_*".into()));
        assert_eq!(
            parse("/bin/sh"),
            Source::File { path: "/bin/sh".into(), shown: "/bin/sh".into(), glob: None }
        );
        assert_eq!(
            parse("/bin/sh:ma*"),
            Source::File { path: "/bin/sh".into(), shown: "/bin/sh".into(), glob: Some("ma*".into()) }
        );
        assert_eq!(
            parse("./missing"),
            Source::File { path: "./missing".into(), shown: "./missing".into(), glob: None }
        );
        assert_eq!(
            parse("/lib/x86_64-linux-gnu/libc.so.6:"),
            Source::File {
                path: "/lib/x86_64-linux-gnu/libc.so.6".into(),
                shown: "/lib/x86_64-linux-gnu/libc.so.6".into(),
                glob: Some("*".into())
            }
        );
    }

    #[test]
    fn unknown_library() {
        let err = list("nosuchlibrary_xyz:open").unwrap_err();
        assert!(matches!(&err, ListError::NoLibrary { lib } if lib == "nosuchlibrary_xyz"), "{err}");
    }
}
