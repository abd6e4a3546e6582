//! Is `vfs_open` a kernel function? A quick answer from the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`, CONFIG_DEBUG_INFO_BTF): reading it costs 2-3 ms,
//! where /proc/kallsyms costs 50 ms of kernel time to generate and, kept whole,
//! 20 MiB of heap. Only the names asked for are kept.
//!
//! Layout (include/uapi/linux/btf.h): a header, then a type section of
//! `struct btf_type` records (12 bytes, each followed by kind-specific data),
//! then a string section of NUL-terminated names that records point into with
//! `name_off`. Section offsets count from the end of the header.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Where the kernel exposes its own BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// `BTF_MAGIC` (include/uapi/linux/btf.h).
const BTF_MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_header` (include/uapi/linux/btf.h): magic u16, version u8,
/// flags u8, hdr_len, type_off, type_len, str_off, str_len (u32 each).
const HEADER_LEN: usize = 24;
/// Size of `struct btf_type` (include/uapi/linux/btf.h): name_off, info, size/type.
const TYPE_LEN: usize = 12;

// enum of kinds, include/uapi/linux/btf.h; `BTF_INFO_KIND(info)` = (info >> 24) & 0x1f.
const BTF_KIND_INT: u32 = 1;
const BTF_KIND_PTR: u32 = 2;
const BTF_KIND_ARRAY: u32 = 3;
const BTF_KIND_STRUCT: u32 = 4;
const BTF_KIND_UNION: u32 = 5;
const BTF_KIND_ENUM: u32 = 6;
const BTF_KIND_FWD: u32 = 7;
const BTF_KIND_TYPEDEF: u32 = 8;
const BTF_KIND_VOLATILE: u32 = 9;
const BTF_KIND_CONST: u32 = 10;
const BTF_KIND_RESTRICT: u32 = 11;
const BTF_KIND_FUNC: u32 = 12;
const BTF_KIND_FUNC_PROTO: u32 = 13;
const BTF_KIND_VAR: u32 = 14;
const BTF_KIND_DATASEC: u32 = 15;
const BTF_KIND_FLOAT: u32 = 16;
const BTF_KIND_DECL_TAG: u32 = 17;
const BTF_KIND_TYPE_TAG: u32 = 18;
const BTF_KIND_ENUM64: u32 = 19;

/// Why the BTF could not be read.
#[derive(Debug)]
pub enum BtfError {
    Io(io::Error),
    /// Not BTF, or a kind this reader does not know (a newer kernel).
    Format(String),
}

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BtfError::Io(e) => write!(f, "cannot read {VMLINUX}: {e}"),
            BtfError::Format(what) => write!(f, "{VMLINUX} is not BTF this tracer can read: {what}"),
        }
    }
}

impl std::error::Error for BtfError {}

impl From<io::Error> for BtfError {
    fn from(e: io::Error) -> Self {
        BtfError::Io(e)
    }
}

/// Which of `names` are functions of the running kernel, from [`VMLINUX`].
pub fn kernel_functions(names: &[&str]) -> Result<Vec<bool>, BtfError> {
    find_functions(File::open(VMLINUX)?, names)
}

/// Which of `names` a BTF blob declares as functions (`BTF_KIND_FUNC`), one bool
/// per name. Reads the string section, then the type section, through a 64 KiB
/// window.
pub fn find_functions<R: Read + Seek>(mut blob: R, names: &[&str]) -> Result<Vec<bool>, BtfError> {
    let h = read_header(&mut blob)?;
    let base = u64::from(h.hdr_len);
    blob.seek(SeekFrom::Start(base + u64::from(h.str_off)))?;
    let offsets = name_offsets(Window::new(&mut blob, h.str_len), names)?;
    let mut found = vec![false; names.len()];
    if offsets.iter().all(Vec::is_empty) {
        return Ok(found);
    }
    blob.seek(SeekFrom::Start(base + u64::from(h.type_off)))?;
    let mut types = Window::new(&mut blob, h.type_len);
    let mut need = TYPE_LEN;
    while types.fill(need)? {
        // Every whole record in the window; `need` is what the next one lacks.
        let bytes = types.bytes();
        let mut i = 0;
        need = TYPE_LEN;
        while bytes.len() - i >= TYPE_LEN {
            let (name_off, info) = (u32_at(bytes, i), u32_at(bytes, i + 4));
            let kind = (info >> 24) & 0x1f;
            let len = TYPE_LEN + extra_len(kind, info & 0xffff)?;
            if bytes.len() - i < len {
                need = len;
                break;
            }
            if kind == BTF_KIND_FUNC {
                for (f, offs) in found.iter_mut().zip(&offsets) {
                    *f |= offs.contains(&name_off);
                }
            }
            i += len;
        }
        types.consume(i);
    }
    if !types.bytes().is_empty() {
        return Err(truncated("a type record"));
    }
    Ok(found)
}

/// Reads a section of known length forward, a buffer at a time.
struct Window<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of the section not read into `buf` yet.
    left: u64,
}

impl<R: Read> Window<R> {
    const SIZE: usize = 64 * 1024;

    fn new(r: R, len: u32) -> Self {
        Window { r, buf: vec![0; Self::SIZE], start: 0, end: 0, left: u64::from(len) }
    }

    /// The bytes read and not consumed yet.
    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
    }

    /// Makes at least `need` bytes available; false when the section ends first.
    fn fill(&mut self, need: usize) -> Result<bool, BtfError> {
        while self.end - self.start < need {
            if self.left == 0 {
                return Ok(false);
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0); // a record longer than the window
            }
            let room = (self.buf.len() - self.end).min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let n = self.r.read(&mut self.buf[self.end..self.end + room])?;
            if n == 0 {
                return Err(truncated("the file"));
            }
            self.end += n;
            self.left -= n as u64;
        }
        Ok(true)
    }
}

struct Header {
    hdr_len: u32,
    type_off: u32,
    type_len: u32,
    str_off: u32,
    str_len: u32,
}

fn read_header<R: Read>(blob: &mut R) -> Result<Header, BtfError> {
    let mut b = [0u8; HEADER_LEN];
    blob.read_exact(&mut b).map_err(|_| truncated("the header"))?;
    let magic = u16::from_ne_bytes([b[0], b[1]]);
    if magic != BTF_MAGIC {
        return Err(BtfError::Format(format!("magic {magic:#x}, not {BTF_MAGIC:#x}")));
    }
    let h = Header {
        hdr_len: u32_at(&b, 4),
        type_off: u32_at(&b, 8),
        type_len: u32_at(&b, 12),
        str_off: u32_at(&b, 16),
        str_len: u32_at(&b, 20),
    };
    if (h.hdr_len as usize) < HEADER_LEN {
        return Err(BtfError::Format(format!("a header of {} bytes", h.hdr_len)));
    }
    Ok(h)
}

/// For each name, the offsets in the string section where it is a whole string.
fn name_offsets<R: Read>(mut strings: Window<R>, names: &[&str]) -> Result<Vec<Vec<u32>>, BtfError> {
    let mut out = vec![Vec::new(); names.len()];
    let mut at = 0u32;
    let mut need = 1;
    while strings.fill(need)? {
        // Every whole string in the window; the last may go on past it.
        let bytes = strings.bytes();
        let mut i = 0;
        while let Some(len) = find_nul(&bytes[i..]) {
            let s = &bytes[i..i + len];
            for (offs, name) in out.iter_mut().zip(names) {
                if s == name.as_bytes() {
                    offs.push(at + i as u32);
                }
            }
            i += len + 1;
        }
        need = bytes.len() - i + 1;
        strings.consume(i);
        at = at.checked_add(i as u32).ok_or_else(|| truncated("the string section"))?;
    }
    Ok(out)
}

/// The index of the first NUL byte, eight bytes at a time (2.3 MB of names).
fn find_nul(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    for (n, w) in words.by_ref().enumerate() {
        let v = <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes);
        // Has a zero byte: the classic test, exact for the lowest zero byte.
        let zero = v.wrapping_sub(ONES) & !v & HIGHS;
        if zero != 0 {
            return Some(n * 8 + zero.trailing_zeros() as usize / 8);
        }
    }
    let tail = words.remainder();
    tail.iter().position(|&c| c == 0).map(|p| b.len() - tail.len() + p)
}

/// The bytes that follow a `struct btf_type` of this kind (include/uapi/linux/btf.h).
fn extra_len(kind: u32, vlen: u32) -> Result<usize, BtfError> {
    let vlen = vlen as usize;
    Ok(match kind {
        BTF_KIND_INT => 4,                             // u32 encoding
        BTF_KIND_ARRAY => 12,                          // struct btf_array
        BTF_KIND_STRUCT | BTF_KIND_UNION => 12 * vlen, // struct btf_member
        BTF_KIND_ENUM => 8 * vlen,                     // struct btf_enum
        BTF_KIND_FUNC_PROTO => 8 * vlen,               // struct btf_param
        BTF_KIND_VAR => 4,                             // struct btf_var
        BTF_KIND_DATASEC => 12 * vlen,                 // struct btf_var_secinfo
        BTF_KIND_DECL_TAG => 4,                        // struct btf_decl_tag
        BTF_KIND_ENUM64 => 12 * vlen,                  // struct btf_enum64
        BTF_KIND_PTR | BTF_KIND_FWD | BTF_KIND_TYPEDEF | BTF_KIND_VOLATILE | BTF_KIND_CONST
        | BTF_KIND_RESTRICT | BTF_KIND_FUNC | BTF_KIND_FLOAT | BTF_KIND_TYPE_TAG => 0,
        other => return Err(BtfError::Format(format!("unknown type kind {other}"))),
    })
}

fn truncated(what: &str) -> BtfError {
    BtfError::Format(format!("{what} is cut short"))
}

/// The u32 at `at`; callers have checked that `b` holds it (0 if not).
fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()).map_or(0, u32::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Builds a BTF blob: strings first-seen order, types given as (name, kind,
    /// vlen, extra bytes).
    fn blob(types: &[(&str, u32, u32, usize)]) -> Vec<u8> {
        let mut strings = vec![0u8]; // offset 0 is the empty name
        let mut type_bytes = Vec::new();
        for &(name, kind, vlen, extra) in types {
            let off = if name.is_empty() {
                0
            } else {
                let o = strings.len() as u32;
                strings.extend_from_slice(name.as_bytes());
                strings.push(0);
                o
            };
            type_bytes.extend_from_slice(&off.to_ne_bytes());
            type_bytes.extend_from_slice(&((kind << 24) | vlen).to_ne_bytes());
            type_bytes.extend_from_slice(&0u32.to_ne_bytes());
            type_bytes.extend(std::iter::repeat_n(0xaa, extra));
        }
        let mut out = Vec::new();
        out.extend_from_slice(&BTF_MAGIC.to_ne_bytes());
        out.extend_from_slice(&[1, 0]);
        for v in [24u32, 0, type_bytes.len() as u32, type_bytes.len() as u32, strings.len() as u32] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&type_bytes);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn finds_functions_past_records_of_every_size() {
        let b = blob(&[
            ("int", BTF_KIND_INT, 0, 4),
            ("file", BTF_KIND_STRUCT, 2, 24),
            ("", BTF_KIND_FUNC_PROTO, 3, 24),
            ("vfs_open", BTF_KIND_FUNC, 1, 0),
            ("mode", BTF_KIND_ENUM, 2, 16),
            ("big", BTF_KIND_ENUM64, 1, 12),
            ("counter", BTF_KIND_VAR, 0, 4),
            (".data", BTF_KIND_DATASEC, 1, 12),
            ("tag", BTF_KIND_DECL_TAG, 0, 4),
            ("", BTF_KIND_ARRAY, 0, 12),
            ("ext4_file_open", BTF_KIND_FUNC, 0, 0),
        ]);
        let got =
            find_functions(Cursor::new(b), &["vfs_open", "ext4_file_open", "counter", "vfs_opn"]).unwrap();
        // `counter` is a variable, `vfs_opn` is nowhere.
        assert_eq!(got, vec![true, true, false, false]);
    }

    #[test]
    fn a_name_only_as_a_prefix_or_a_struct_is_not_a_function() {
        let b = blob(&[("vfs_open_x", BTF_KIND_FUNC, 0, 0), ("vfs_open", BTF_KIND_STRUCT, 0, 0)]);
        assert_eq!(find_functions(Cursor::new(b), &["vfs_open"]).unwrap(), vec![false]);
    }

    #[test]
    fn nul_bytes_are_found_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                let mut b = vec![b'a'; len];
                b[at] = 0;
                if at + 1 < len {
                    b[at + 1] = 0; // only the first counts
                }
                assert_eq!(find_nul(&b), Some(at), "len {len} at {at}");
            }
            assert_eq!(find_nul(&vec![0x80; len]), None, "len {len}");
        }
    }

    #[test]
    fn records_and_strings_cross_the_window() {
        // 7,000 structs of 3 members (48 bytes each: 336,000 bytes of types, so
        // records straddle the 64 KiB window), a 100,000-byte name, then the function.
        let long = "x".repeat(100_000);
        let mut types: Vec<(&str, u32, u32, usize)> = vec![("", BTF_KIND_STRUCT, 3, 36); 7000];
        types.push((long.as_str(), BTF_KIND_FUNC, 0, 0));
        types.push(("vfs_open", BTF_KIND_FUNC, 0, 0));
        let got = find_functions(Cursor::new(blob(&types)), &["vfs_open", long.as_str(), "x"]).unwrap();
        assert_eq!(got, vec![true, true, false]);
    }

    #[test]
    fn bad_blobs_are_errors() {
        let mut b = blob(&[("f", BTF_KIND_FUNC, 0, 0)]);
        b[0] ^= 0xff;
        let err = find_functions(Cursor::new(b), &["f"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{VMLINUX} is not BTF this tracer can read: magic 0xeb60, not 0xeb9f")
        );
        let b = blob(&[("f", 31, 0, 0)]);
        let err = find_functions(Cursor::new(b), &["f"]).unwrap_err();
        assert!(matches!(err, BtfError::Format(ref w) if w == "unknown type kind 31"), "{err}");
        let b = blob(&[("s", BTF_KIND_STRUCT, 5, 12)]); // says 5 members, has 1
        let err = find_functions(Cursor::new(b), &["s"]).unwrap_err();
        assert!(matches!(err, BtfError::Format(ref w) if w == "a type record is cut short"), "{err}");
    }

    #[test]
    fn the_running_kernel_has_vfs_open() {
        if !std::path::Path::new(VMLINUX).exists() {
            eprintln!("skipped: no {VMLINUX} (kernel built without CONFIG_DEBUG_INFO_BTF)");
            return;
        }
        let got = kernel_functions(&["vfs_open", "no_such_function_in_any_kernel"]).unwrap();
        assert_eq!(got, vec![true, false]);
    }
}
