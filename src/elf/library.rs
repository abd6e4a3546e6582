//! Library functions: which shared library of a program defines a function.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::ldcache::{cache_entries, is_x86_64_libc6, ld_cache_lookup};
use super::{ElfFile, LibError, ResolveError, Symbol};
use crate::util::close_matches;

/// How deep `DT_NEEDED` is followed: the program's libraries and theirs.
const NEEDED_DEPTH: usize = 2;

/// The library file defining `func` for the program `target`, and the function.
///
/// - `lib` given (`libc`, `libc.so.6`, `c` or a path): that library only. A name
///   is matched against the libraries of the process or program first (so
///   `libc` finds `libc.so.6`), then looked up in `/etc/ld.so.cache`. A static
///   `target` loads no shared library, so only a path is accepted for it.
/// - else a static `target`: the function must be in the target itself.
/// - else the candidate libraries, searched in the dynamic linker's order: the
///   `DT_NEEDED` libraries of the target breadth-first (with their own, to depth
///   2), each found through `/etc/ld.so.cache`. With a pid, the files mapped in
///   `/proc/PID/maps` are what the process really loaded: a needed library is
///   replaced by the mapped file that is the same file or carries its soname,
///   and the other mapped files (dlopen) follow. Files of a process in another
///   mount namespace are reached through `/proc/PID/root`. The first library
///   defining `func` wins.
///
/// Errors name the function, the libraries searched and the next step.
pub fn resolve_library_function(
    target: &ElfFile,
    pid: Option<u32>,
    func: &str,
    lib: Option<&str>,
) -> Result<(PathBuf, Symbol), LibError> {
    if let Some(lib) = lib {
        if target.is_static() && !lib.contains('/') {
            return Err(LibError::StaticTarget {
                target: target.path().into(),
                lib: lib.into(),
                func: func.into(),
            });
        }
        let path = find_named_library(target, pid, func, lib)?;
        return resolve_in(&path, func);
    }
    if target.is_static() {
        let sym = target
            .resolve(func)
            .map_err(|source| LibError::Resolve { library: target.path().into(), source })?;
        return Ok((target.path().into(), sym));
    }
    let mut opened = Opened::new();
    let candidates = candidate_libraries(target, pid, &mut opened)?;
    search(target, &candidates, func, &mut opened)
}

/// Libraries already opened (and parsed) while following `DT_NEEDED`, so the
/// search does not parse them a second time: for libc.so.6 that is most of the
/// start-up work of `trace -L open` (callgrind: 5 of 16 million instructions).
type Opened = std::collections::HashMap<PathBuf, ElfFile>;

/// Opens `path` and resolves `func` there.
fn resolve_in(path: &Path, func: &str) -> Result<(PathBuf, Symbol), LibError> {
    let lib =
        ElfFile::open(path).map_err(|source| LibError::Open { lib: path.display().to_string(), source })?;
    let sym = lib.resolve(func).map_err(|source| LibError::Resolve { library: path.into(), source })?;
    Ok((path.into(), sym))
}

/// Tries each candidate in order. A library that only imports `func`, or lacks
/// it, is passed over; one that defines it unusably (an ifunc) ends the search.
fn search(
    target: &ElfFile,
    candidates: &[PathBuf],
    func: &str,
    opened: &mut Opened,
) -> Result<(PathBuf, Symbol), LibError> {
    let mut searched = Vec::new();
    let mut close = Vec::new();
    // A library that could not be opened (no memory to map it under a small
    // `ulimit -v`, unreadable): told if the function is found nowhere else,
    // rather than claiming the program needs no libraries.
    let mut unopened = None;
    for path in candidates {
        let lib = match opened.remove(path).map(Ok).unwrap_or_else(|| ElfFile::open(path)) {
            Ok(lib) => lib,
            Err(source) => {
                unopened.get_or_insert(LibError::Open { lib: path.display().to_string(), source });
                continue;
            }
        };
        searched.push(path.clone());
        match lib.resolve(func) {
            Ok(sym) => return Ok((path.clone(), sym)),
            Err(ResolveError::NotFound { close_matches, .. }) => close.extend(close_matches),
            Err(ResolveError::Import { .. }) => {}
            Err(source) => return Err(LibError::Resolve { library: path.clone(), source }),
        }
    }
    if let Some(e) = unopened {
        return Err(e);
    }
    close.sort();
    close.dedup();
    Err(LibError::NotFound {
        func: func.into(),
        target: target.path().into(),
        searched,
        close_matches: close_matches(func, close.iter().map(String::as_str)),
    })
}

/// The libraries to search, in the order of [`resolve_library_function`],
/// without the target itself and without repeats.
fn candidate_libraries(
    target: &ElfFile,
    pid: Option<u32>,
    opened: &mut Opened,
) -> Result<Vec<PathBuf>, LibError> {
    let mapped = match pid {
        Some(pid) => mapped_files(pid)?,
        None => Vec::new(),
    };
    let mut out: Vec<PathBuf> = Vec::new();
    let me = canonical(target.path());
    let mut add = |p: &Path| {
        let c = canonical(p);
        if c != me && !out.iter().any(|o| canonical(o) == c) {
            out.push(p.to_path_buf());
        }
    };
    for (soname, path) in needed_libraries(target, opened) {
        let same = |m: &&PathBuf| {
            file_name(m) == soname || path.as_ref().is_some_and(|p| canonical(p) == canonical(m))
        };
        match (mapped.iter().find(same), &path) {
            (Some(m), _) => add(m),
            (None, Some(p)) => add(p),
            (None, None) => {}
        }
    }
    for m in &mapped {
        add(m);
    }
    Ok(out)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn file_name(p: &Path) -> String {
    p.file_name().and_then(|n| n.to_str()).map(String::from).unwrap_or_default()
}

/// The files mapped by process `pid`, as paths this process can open.
fn mapped_files(pid: u32) -> Result<Vec<PathBuf>, LibError> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|source| LibError::Maps { pid, source })?;
    let foreign = !same_mount_namespace(pid);
    Ok(parse_proc_maps(&maps).into_iter().map(|p| if foreign { inside_root(pid, &p) } else { p }).collect())
}

/// Whether process `pid` sees the same files as we do (same mount namespace);
/// assumed when the namespace links cannot be read.
fn same_mount_namespace(pid: u32) -> bool {
    let ours = std::fs::read_link("/proc/self/ns/mnt");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt"));
    match (ours, theirs) {
        (Ok(a), Ok(b)) => a == b,
        _ => true,
    }
}

/// Path `p` of process `pid`'s file system, seen from here: `/proc/PID/root/p`.
fn inside_root(pid: u32, p: &Path) -> PathBuf {
    Path::new(&format!("/proc/{pid}/root")).join(p.strip_prefix("/").unwrap_or(p))
}

/// The file paths of a `/proc/PID/maps` text, in first-seen order, without
/// repeats, pseudo-files (`[heap]`, `[vdso]`) or anonymous mappings; a
/// " (deleted)" suffix is removed.
pub fn parse_proc_maps(maps: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode pathname (the path may contain spaces)
        let mut rest = line.trim_start();
        for _ in 0..5 {
            rest = rest.split_once(char::is_whitespace).map_or("", |(_, r)| r).trim_start();
        }
        let path = rest.strip_suffix(" (deleted)").unwrap_or(rest);
        if path.starts_with('/') && !out.iter().any(|p| p.as_os_str() == path) {
            out.push(PathBuf::from(path));
        }
    }
    out
}

/// The target's `DT_NEEDED` sonames breadth-first to [`NEEDED_DEPTH`], without
/// repeats, each with its file from the cache (None when the cache does not
/// know it; its own needs are then unknown). The files opened to read their own
/// needs are kept in `opened`.
fn needed_libraries(target: &ElfFile, opened: &mut Opened) -> Vec<(String, Option<PathBuf>)> {
    let mut out: Vec<(String, Option<PathBuf>)> = Vec::new();
    let mut queue: VecDeque<(String, usize)> = target.needed().into_iter().map(|n| (n, 1)).collect();
    while let Some((soname, depth)) = queue.pop_front() {
        if out.iter().any(|(s, _)| *s == soname) {
            continue;
        }
        let path = if soname.contains('/') { Some(PathBuf::from(&soname)) } else { ld_cache_lookup(&soname) };
        if let (Some(p), true) = (&path, depth < NEEDED_DEPTH) {
            if let Ok(lib) = ElfFile::open(p) {
                queue.extend(lib.needed().into_iter().map(|n| (n, depth + 1)));
                opened.insert(p.clone(), lib);
            }
        }
        out.push((soname, path));
    }
    out
}

/// The file of the library the user named.
fn find_named_library(
    target: &ElfFile,
    pid: Option<u32>,
    func: &str,
    lib: &str,
) -> Result<PathBuf, LibError> {
    if lib.contains('/') {
        return Ok(PathBuf::from(lib));
    }
    let known = candidate_libraries(target, pid, &mut Opened::new())?;
    if let Some(p) = known.iter().find(|p| names_library(&file_name(p), lib)) {
        return Ok(p.clone());
    }
    if let Some(p) = ld_cache_lookup(lib) {
        return Ok(p);
    }
    let cached = cache_entries();
    let mut matching = cached.iter().filter(|e| is_x86_64_libc6(e.flags) && names_library(&e.soname, lib));
    match matching.next() {
        Some(e) => Ok(e.path.clone()),
        None => Err(LibError::NoSuchLibrary { lib: lib.into(), func: func.into(), searched: known }),
    }
}

/// The file of a library named the way `-L LIB:NAME` names one (`libc`, `c`,
/// `libc.so.6`, or a path), without a program to start from: a path as is, else
/// `/etc/ld.so.cache` (an exact soname first, then `libc` or `c` for
/// `libc.so.6`; the baseline entry before glibc-hwcaps variants).
pub fn find_library(lib: &str) -> Option<PathBuf> {
    if lib.contains('/') {
        return Some(PathBuf::from(lib));
    }
    if lib.is_empty() {
        return None;
    }
    if let Some(p) = ld_cache_lookup(lib) {
        return Some(p);
    }
    let cached = cache_entries();
    let mut matching: Vec<_> =
        cached.iter().filter(|e| is_x86_64_libc6(e.flags) && names_library(&e.soname, lib)).collect();
    matching.sort_by_key(|e| e.hwcap != 0);
    matching.first().map(|e| e.path.clone())
}

/// Whether a library file or soname `file` is what the user called `lib`:
/// `libc.so.6` for `libc.so.6`, `libc` or `c`.
fn names_library(file: &str, lib: &str) -> bool {
    let versioned = |stem: &str| file == stem || file.starts_with(&format!("{stem}.so"));
    file == lib || versioned(lib) || (!lib.starts_with("lib") && versioned(&format!("lib{lib}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_in_order_without_repeats() {
        let maps = "\
5581e3a00000-5581e3a01000 r--p 00000000 fe:01 1234                       /tmp/my prog
5581e3a01000-5581e3a02000 r-xp 00001000 fe:01 1234                       /tmp/my prog
7f2c1c000000-7f2c1c021000 rw-p 00000000 00:00 0 
7f2c1c200000-7f2c1c228000 r--p 00000000 fe:01 5678                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f2c1c228000-7f2c1c39d000 r-xp 00028000 fe:01 5678                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f2c1c400000-7f2c1c401000 r-xp 00000000 fe:01 91                         /usr/lib/libold.so (deleted)
7ffd5e3c5000-7ffd5e3e6000 rw-p 00000000 00:00 0                          [stack]
7ffd5e3f9000-7ffd5e3fb000 r-xp 00000000 00:00 0                          [vdso]
";
        assert_eq!(
            parse_proc_maps(maps),
            vec![
                PathBuf::from("/tmp/my prog"),
                PathBuf::from("/usr/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/usr/lib/libold.so"),
            ]
        );
        assert!(parse_proc_maps("").is_empty());
        assert!(parse_proc_maps("garbage\n1 2 3\n").is_empty());
    }

    #[test]
    fn library_names() {
        assert!(names_library("libc.so.6", "libc.so.6"));
        assert!(names_library("libc.so.6", "libc"));
        assert!(names_library("libc.so.6", "c"));
        assert!(names_library("libm.so.6", "m"));
        assert!(!names_library("libcap.so.2", "libc"));
        assert!(!names_library("libcrypt.so.1", "c"));
        assert!(!names_library("libm.so.6", "libc"));
    }
}
