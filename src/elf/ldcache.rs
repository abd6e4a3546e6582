//! `/etc/ld.so.cache`: where the dynamic linker finds a library by its soname.
//!
//! Layout (glibc `sysdeps/generic/dl-cache.h`, format "1.1", little-endian here):
//! a 48-byte header (`magic[17] "glibc-ld.so.cache"`, `version[3] "1.1"`,
//! `u32 nlibs`, `u32 len_strings`, `u8 flags`, 3 pad bytes,
//! `u32 extension_offset`, `u32 unused[3]`), then `nlibs` 24-byte entries
//! (`i32 flags`, `u32 key`, `u32 value`, `u32 osversion`, `u64 hwcap`) whose
//! `key` (soname) and `value` (path) are offsets of NUL-terminated strings from
//! the start of that header. Old caches put an "ld.so-1.7.0" table first (12-byte
//! entries) and the new header after it, 8-byte aligned.

use std::path::{Path, PathBuf};

use super::ElfError;

/// Where glibc keeps the cache.
pub const LD_SO_CACHE: &str = "/etc/ld.so.cache";

/// Magic and version of the new format (glibc dl-cache.h `CACHEMAGIC_VERSION_NEW`).
const MAGIC_NEW: &[u8] = b"glibc-ld.so.cache1.1";
/// Magic of the old (libc5) format, which may precede the new one (`CACHEMAGIC`).
const MAGIC_OLD: &[u8] = b"ld.so-1.7.0";
/// Size of `struct cache_file_new` (the header).
const NEW_HEADER_SIZE: usize = 48;
/// Size of `struct file_entry_new`.
const NEW_ENTRY_SIZE: usize = 24;
/// Size of `struct cache_file` (magic, padding, nlibs).
const OLD_HEADER_SIZE: usize = 16;
/// Size of `struct file_entry` (old format).
const OLD_ENTRY_SIZE: usize = 12;
/// Alignment of the new header after an old table.
const NEW_HEADER_ALIGN: usize = 8;
/// Offset of `nlibs` in either header.
const OLD_NLIBS_AT: usize = 12;
const NEW_NLIBS_AT: usize = 20;
/// Offset of the endianness `flags` byte in the new header.
const NEW_FLAGS_AT: usize = 28;
/// `flags & 3` of the new header: 0 = not recorded, 2 = little-endian
/// (dl-cache.h `cache_file_new_flags_endian_*`).
const ENDIAN_MASK: u8 = 3;
const ENDIAN_UNSET: u8 = 0;
const ENDIAN_LITTLE: u8 = 2;
/// Entry flags (dl-cache.h): the type byte `FLAG_ELF_LIBC6`...
const FLAG_TYPE_MASK: u32 = 0x00ff;
const FLAG_ELF_LIBC6: u32 = 0x0003;
/// ... and the architecture byte `FLAG_X8664_LIB64`.
const FLAG_REQUIRED_MASK: u32 = 0xff00;
const FLAG_X8664_LIB64: u32 = 0x0300;
/// Where a library is looked for when the cache does not know it, in order.
const FALLBACK_DIRS: &[&str] =
    &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];

/// One entry of the cache.
pub(super) struct CacheEntry {
    pub soname: String,
    pub path: PathBuf,
    pub flags: u32,
    /// Non-zero for the glibc-hwcaps variants of a library.
    pub hwcap: u64,
}

/// An x86-64 glibc library entry: `(flags & 0xff) == 3 && (flags & 0xff00) == 0x0300`.
pub fn is_x86_64_libc6(flags: u32) -> bool {
    flags & FLAG_TYPE_MASK == FLAG_ELF_LIBC6 && flags & FLAG_REQUIRED_MASK == FLAG_X8664_LIB64
}

/// Every entry of an ld.so.cache image, in file order, as (soname, path, flags).
/// Pure: give it the bytes of `/etc/ld.so.cache`.
pub fn parse_ld_cache(bytes: &[u8]) -> Result<Vec<(String, PathBuf, u32)>, ElfError> {
    Ok(parse_entries(bytes)?.into_iter().map(|e| (e.soname, e.path, e.flags)).collect())
}

/// The path of library `soname` for x86-64: from `/etc/ld.so.cache` (the
/// baseline entry when glibc-hwcaps variants exist), else the first of
/// /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib,
/// /usr/lib holding an x86-64 ELF file of that name.
pub fn ld_cache_lookup(soname: &str) -> Option<PathBuf> {
    let entries = cache_entries();
    let mut matching = entries.iter().filter(|e| e.soname == soname && is_x86_64_libc6(e.flags));
    let first = matching.clone().next();
    if let Some(e) = matching.find(|e| e.hwcap == 0).or(first) {
        return Some(e.path.clone());
    }
    if soname.contains('/') || soname.is_empty() {
        return None;
    }
    FALLBACK_DIRS.iter().map(|d| Path::new(d).join(soname)).find(|p| is_x86_64_elf(p))
}

/// The entries of the system's cache; empty when it is missing or unreadable.
/// Read once per process: a plan looks several sonames up, and parsing the whole
/// cache each time cost 3 of the 16 million instructions of a start-up.
pub(super) fn cache_entries() -> &'static [CacheEntry] {
    static ENTRIES: std::sync::OnceLock<Vec<CacheEntry>> = std::sync::OnceLock::new();
    ENTRIES.get_or_init(|| {
        std::fs::read(LD_SO_CACHE).ok().and_then(|b| parse_entries(&b).ok()).unwrap_or_default()
    })
}

fn bad(detail: impl Into<String>) -> ElfError {
    ElfError::LdCache { detail: detail.into() }
}

/// Parses the new-format table, skipping an old-format table in front of it.
pub(super) fn parse_entries(bytes: &[u8]) -> Result<Vec<CacheEntry>, ElfError> {
    let start = new_header_start(bytes)?;
    let header = &bytes[start..];
    if header.len() < NEW_HEADER_SIZE || !header.starts_with(MAGIC_NEW) {
        return Err(bad("no \"glibc-ld.so.cache1.1\" header (unknown cache format)"));
    }
    let endian = header[NEW_FLAGS_AT] & ENDIAN_MASK;
    if endian != ENDIAN_UNSET && endian != ENDIAN_LITTLE {
        return Err(bad("the cache is not little-endian"));
    }
    let nlibs = le_u32(header, NEW_NLIBS_AT).unwrap_or(0) as usize;
    let table_end = nlibs
        .checked_mul(NEW_ENTRY_SIZE)
        .and_then(|n| n.checked_add(NEW_HEADER_SIZE))
        .filter(|&end| end <= header.len())
        .ok_or_else(|| bad(format!("{nlibs} entries do not fit in {} bytes", header.len())))?;
    header[NEW_HEADER_SIZE..table_end].chunks_exact(NEW_ENTRY_SIZE).map(|e| entry(header, e)).collect()
}

/// Where the new header starts: 0, or after the old-format table.
fn new_header_start(bytes: &[u8]) -> Result<usize, ElfError> {
    if !bytes.starts_with(MAGIC_OLD) {
        return Ok(0);
    }
    let nlibs = le_u32(bytes, OLD_NLIBS_AT).ok_or_else(|| bad("truncated old-format header"))? as usize;
    let end = nlibs
        .checked_mul(OLD_ENTRY_SIZE)
        .and_then(|n| n.checked_add(OLD_HEADER_SIZE + NEW_HEADER_ALIGN - 1))
        .map(|n| n / NEW_HEADER_ALIGN * NEW_HEADER_ALIGN)
        .filter(|&n| n <= bytes.len())
        .ok_or_else(|| bad(format!("old-format table of {nlibs} entries does not fit")))?;
    Ok(end)
}

/// One 24-byte entry; its strings are offsets from the new header.
fn entry(header: &[u8], e: &[u8]) -> Result<CacheEntry, ElfError> {
    let field = |at| le_u32(e, at).unwrap_or(0);
    let (flags, key, value) = (field(0), field(4), field(8));
    let hwcap = u64::from(field(16)) | u64::from(field(20)) << 32;
    let soname = cstr(header, key as usize)
        .ok_or_else(|| bad(format!("entry name offset {key} is outside the file")))?;
    let path = cstr(header, value as usize)
        .ok_or_else(|| bad(format!("entry path offset {value} is outside the file")))?;
    Ok(CacheEntry { soname, path: PathBuf::from(path), flags, hwcap })
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn cstr(b: &[u8], at: usize) -> Option<String> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// `path` is a 64-bit little-endian x86-64 ELF file (reads its first 20 bytes).
fn is_x86_64_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 20];
    let ok = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok();
    // e_ident: magic, class 2 (64-bit), data 1 (little-endian); e_machine 62 at 18.
    ok && head[..4] == *b"\x7fELF"
        && head[4] == 2
        && head[5] == 1
        && u16::from_le_bytes([head[18], head[19]]) == 62
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a new-format cache (optionally behind an old-format table) with
    /// the given (soname, path, flags, hwcap) entries.
    pub(crate) fn synthetic_cache(entries: &[(&str, &str, u32, u64)], old_prefix: bool) -> Vec<u8> {
        let mut strings = Vec::new();
        let strings_at = NEW_HEADER_SIZE + entries.len() * NEW_ENTRY_SIZE;
        let mut table = Vec::new();
        for (soname, path, flags, hwcap) in entries {
            let key = strings_at + strings.len();
            strings.extend_from_slice(soname.as_bytes());
            strings.push(0);
            let value = strings_at + strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&(key as u32).to_le_bytes());
            table.extend_from_slice(&(value as u32).to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
            table.extend_from_slice(&hwcap.to_le_bytes());
        }
        let mut out = Vec::new();
        if old_prefix {
            out.extend_from_slice(MAGIC_OLD);
            out.push(0);
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&[0xAA; OLD_ENTRY_SIZE]);
            out.resize(32, 0); // 16 + 12 = 28, aligned to 8
        }
        out.extend_from_slice(MAGIC_NEW);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.push(ENDIAN_LITTLE);
        out.resize(out.len() + 3 + 4 + 12, 0);
        out.extend_from_slice(&table);
        out.extend_from_slice(&strings);
        out
    }

    fn expected() -> Vec<(String, PathBuf, u32)> {
        vec![
            ("libc.so.6".into(), PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"), 0x0303),
            ("libc.so.6".into(), PathBuf::from("/lib32/libc.so.6"), 0x0003),
        ]
    }

    const ENTRIES: &[(&str, &str, u32, u64)] = &[
        ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0x0303, 0),
        ("libc.so.6", "/lib32/libc.so.6", 0x0003, 0),
    ];

    #[test]
    fn parses_a_new_format_cache() {
        assert_eq!(parse_ld_cache(&synthetic_cache(ENTRIES, false)).unwrap(), expected());
    }

    #[test]
    fn skips_an_old_format_table() {
        assert_eq!(parse_ld_cache(&synthetic_cache(ENTRIES, true)).unwrap(), expected());
    }

    #[test]
    fn hwcap_is_read_from_both_halves() {
        let bytes = synthetic_cache(&[("liba.so.1", "/x/liba.so.1", 0x0303, 0x4000_0000_0000_0001)], false);
        let e = parse_entries(&bytes).unwrap();
        assert_eq!(e[0].hwcap, 0x4000_0000_0000_0001);
    }

    #[test]
    fn only_x86_64_libc6_flags_are_accepted() {
        assert!(is_x86_64_libc6(0x0303));
        assert!(!is_x86_64_libc6(0x0003), "i386 libc6");
        assert!(!is_x86_64_libc6(0x0803), "x32");
        assert!(!is_x86_64_libc6(0x0301), "libc5-style ELF");
        assert!(!is_x86_64_libc6(0x0a03), "aarch64");
    }

    #[test]
    fn bad_caches_are_errors() {
        let good = synthetic_cache(ENTRIES, false);
        assert!(parse_ld_cache(b"").is_err());
        assert!(parse_ld_cache(b"not a cache at all, really not").is_err());
        for len in [10, NEW_HEADER_SIZE - 1, NEW_HEADER_SIZE + 5, good.len() - 3] {
            assert!(parse_ld_cache(&good[..len]).is_err(), "truncated to {len}");
        }
        let mut big_endian = good.clone();
        big_endian[NEW_FLAGS_AT] = 3;
        assert!(parse_ld_cache(&big_endian).is_err());
        let mut huge = good.clone();
        huge[NEW_NLIBS_AT..NEW_NLIBS_AT + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_ld_cache(&huge).is_err());
        let mut old = synthetic_cache(ENTRIES, true);
        old[OLD_NLIBS_AT..OLD_NLIBS_AT + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_ld_cache(&old).is_err());
    }
}
