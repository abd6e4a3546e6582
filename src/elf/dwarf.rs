//! Just enough DWARF to tell which code of a static program is its own: the
//! compile units (one per object file built with `-g`), each with its name,
//! the directory it was compiled in, and the address ranges of its code.
//!
//! Only the first entry of each unit, the `DW_TAG_compile_unit` itself, is
//! read (DWARF 2 to 5, 32- and 64-bit, as gcc and clang write them): its name
//! and directory, and its ranges from `DW_AT_low_pc`/`DW_AT_high_pc`, else
//! `DW_AT_ranges` (`.debug_ranges`, `.debug_rnglists`), else `.debug_aranges`.
//! Every read is bounds-checked; a unit that cannot be read ends the list (the
//! caller then has fewer units, never a wrong one or a panic).

use std::collections::HashMap;

/// The sections read, empty when absent.
#[derive(Default)]
pub(super) struct Sections<'a> {
    pub info: &'a [u8],
    pub abbrev: &'a [u8],
    pub str: &'a [u8],
    pub line_str: &'a [u8],
    pub str_offsets: &'a [u8],
    pub addr: &'a [u8],
    pub ranges: &'a [u8],
    pub rnglists: &'a [u8],
    pub aranges: &'a [u8],
}

/// One compile unit.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Unit {
    /// `DW_AT_name`: the source file, as the compiler was given it.
    pub name: Option<String>,
    /// `DW_AT_comp_dir`: the directory the compiler ran in.
    pub comp_dir: Option<String>,
    /// The code of the unit, as `[start, end)` address ranges.
    pub ranges: Vec<(u64, u64)>,
}

impl Unit {
    pub fn contains(&self, addr: u64) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= addr && addr < hi)
    }
}

// Attributes and forms read (DWARF 5, section 7.5).
const DW_AT_NAME: u64 = 0x03;
const DW_AT_LOW_PC: u64 = 0x11;
const DW_AT_HIGH_PC: u64 = 0x12;
const DW_AT_COMP_DIR: u64 = 0x1b;
const DW_AT_RANGES: u64 = 0x55;
const DW_AT_STR_OFFSETS_BASE: u64 = 0x72;
const DW_AT_ADDR_BASE: u64 = 0x73;
const DW_AT_RNGLISTS_BASE: u64 = 0x74;
const DW_AT_GNU_RANGES_BASE: u64 = 0x2132;
const DW_AT_GNU_ADDR_BASE: u64 = 0x2133;
const DW_TAG_COMPILE_UNIT: u64 = 0x11;
const DW_TAG_PARTIAL_UNIT: u64 = 0x3c;
const DW_TAG_SKELETON_UNIT: u64 = 0x4a;
const DW_UT_COMPILE: u8 = 1;
const DW_UT_PARTIAL: u8 = 3;
const DW_UT_SKELETON: u8 = 4;

/// Every compile unit of `.debug_info` that could be read, in order.
pub(super) fn compile_units(s: &Sections<'_>) -> Vec<Unit> {
    let aranges = aranges(s.aranges);
    let mut units = Vec::new();
    let mut at = 0usize;
    while at < s.info.len() {
        let Some((unit, next)) = read_unit(s, at) else { break };
        if let Some(mut unit) = unit {
            if unit.ranges.is_empty() {
                unit.ranges = aranges.get(&(at as u64)).cloned().unwrap_or_default();
            }
            units.push(unit);
        }
        at = next;
    }
    units
}

/// A bounds-checked little-endian reader over one section.
#[derive(Clone, Copy)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn at(buf: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { buf, pos }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }

    fn uint(&mut self, n: usize) -> Option<u64> {
        let b = self.bytes(n)?;
        Some(b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(self.uint(2)? as u16)
    }

    fn uleb(&mut self) -> Option<u64> {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= u64::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
    }

    fn sleb(&mut self) -> Option<i64> {
        let (mut v, mut shift) = (0i64, 0u32);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= i64::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    v |= -1i64 << shift;
                }
                return Some(v);
            }
        }
    }

    fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.buf.get(self.pos..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        self.pos += len + 1;
        Some(&rest[..len])
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        self.bytes(usize::try_from(n).ok()?).map(|_| ())
    }
}

/// A unit's header: where its entries start and end, and its sizes.
struct Header {
    version: u16,
    /// 4 (32-bit DWARF) or 8 (64-bit DWARF).
    offset_size: usize,
    address_size: usize,
    abbrev_offset: u64,
    /// Offset of the unit's first entry and of the next unit.
    entries: usize,
    end: usize,
    /// The unit type (DWARF 5), `DW_UT_compile` for earlier versions.
    unit_type: u8,
}

/// `unit_length`: the length and the offset size, or None for a reserved value.
fn initial_length(r: &mut Reader<'_>) -> Option<(u64, usize)> {
    match r.uint(4)? {
        0xffff_ffff => Some((r.uint(8)?, 8)),
        n if n >= 0xffff_fff0 => None,
        n => Some((n, 4)),
    }
}

fn read_header(info: &[u8], at: usize) -> Option<Header> {
    let mut r = Reader::at(info, at);
    let (len, offset_size) = initial_length(&mut r)?;
    let end = r.pos.checked_add(usize::try_from(len).ok()?)?;
    if end > info.len() {
        return None;
    }
    let version = r.u16()?;
    let (unit_type, address_size, abbrev_offset) = match version {
        2..=4 => {
            let abbrev = r.uint(offset_size)?;
            (DW_UT_COMPILE, r.u8()?, abbrev)
        }
        5 => {
            let unit_type = r.u8()?;
            let address_size = r.u8()?;
            let abbrev = r.uint(offset_size)?;
            if unit_type == DW_UT_SKELETON {
                r.skip(8)?; // dwo_id
            }
            (unit_type, address_size, abbrev)
        }
        _ => return None,
    };
    if !matches!(address_size, 4 | 8) {
        return None;
    }
    Some(Header {
        version,
        offset_size,
        address_size: usize::from(address_size),
        abbrev_offset,
        entries: r.pos,
        end,
        unit_type,
    })
}

/// The unit at `at` (None when it is not a compile unit: a type unit), and
/// the offset of the next one; None when it cannot be read.
fn read_unit(s: &Sections<'_>, at: usize) -> Option<(Option<Unit>, usize)> {
    let h = read_header(s.info, at)?;
    if !matches!(h.unit_type, DW_UT_COMPILE | DW_UT_PARTIAL | DW_UT_SKELETON) {
        return Some((None, h.end));
    }
    let mut r = Reader::at(&s.info[..h.end], h.entries);
    let code = r.uleb()?;
    let (tag, specs) = abbreviation(s.abbrev, h.abbrev_offset, code)?;
    if !matches!(tag, DW_TAG_COMPILE_UNIT | DW_TAG_PARTIAL_UNIT | DW_TAG_SKELETON_UNIT) {
        return Some((None, h.end));
    }
    let mut attrs = HashMap::new();
    for (attr, form, implicit) in specs {
        let v = read_value(&mut r, &h, form, implicit)?;
        attrs.insert(attr, v);
    }
    let unit = Unit {
        name: attrs.get(&DW_AT_NAME).and_then(|v| string(s, &h, &attrs, v)),
        comp_dir: attrs.get(&DW_AT_COMP_DIR).and_then(|v| string(s, &h, &attrs, v)),
        ranges: unit_ranges(s, &h, &attrs).unwrap_or_default(),
    };
    Some((Some(unit), h.end))
}

/// An attribute specification: attribute, form, and the value of a
/// `DW_FORM_implicit_const`.
type Spec = (u64, u64, i64);

/// The tag and the attribute specifications of abbreviation `code` in the
/// table at `offset`.
fn abbreviation(abbrev: &[u8], offset: u64, code: u64) -> Option<(u64, Vec<Spec>)> {
    let mut r = Reader::at(abbrev, usize::try_from(offset).ok()?);
    loop {
        let this = r.uleb()?;
        if this == 0 {
            return None;
        }
        let tag = r.uleb()?;
        r.u8()?; // DW_CHILDREN_yes/no
        let mut specs = Vec::new();
        loop {
            let (attr, form) = (r.uleb()?, r.uleb()?);
            if (attr, form) == (0, 0) {
                break;
            }
            let implicit = if form == DW_FORM_IMPLICIT_CONST { r.sleb()? } else { 0 };
            specs.push((attr, form, implicit));
        }
        if this == code {
            return Some((tag, specs));
        }
    }
}

/// An attribute's value, as far as this reader needs it.
#[derive(Clone, Copy, Debug)]
enum Value {
    Addr(u64),
    AddrIndex(u64),
    Const(u64),
    SecOffset(u64),
    /// Offset of a string in `.debug_str`, in `.debug_line_str`, or inline.
    Str(u64),
    LineStr(u64),
    Inline(usize, usize),
    StrIndex(u64),
    RngListIndex(u64),
    Other,
}

const DW_FORM_IMPLICIT_CONST: u64 = 0x21;

fn read_value(r: &mut Reader<'_>, h: &Header, form: u64, implicit: i64) -> Option<Value> {
    let off = h.offset_size;
    Some(match form {
        0x01 => Value::Addr(r.uint(h.address_size)?),
        0x03 => {
            let n = r.uint(2)?;
            r.skip(n)?;
            Value::Other
        }
        0x04 => {
            let n = r.uint(4)?;
            r.skip(n)?;
            Value::Other
        }
        0x05 => Value::Const(r.uint(2)?),
        0x06 => Value::Const(r.uint(4)?),
        0x07 => Value::Const(r.uint(8)?),
        0x08 => {
            let start = r.pos;
            let s = r.cstr()?;
            Value::Inline(start, s.len())
        }
        0x09 | 0x18 => {
            let n = r.uleb()?;
            r.skip(n)?;
            Value::Other
        }
        0x0a => {
            let n = u64::from(r.u8()?);
            r.skip(n)?;
            Value::Other
        }
        0x0b => Value::Const(r.uint(1)?),
        0x0c => Value::Const(r.uint(1)?),
        0x0d => Value::Const(r.sleb()? as u64),
        0x0e => Value::Str(r.uint(off)?),
        0x0f => Value::Const(r.uleb()?),
        0x10 => {
            r.uint(if h.version == 2 { h.address_size } else { off })?;
            Value::Other
        }
        0x11 => Value::Const(r.uint(1)?),
        0x12 => Value::Const(r.uint(2)?),
        0x13 => Value::Const(r.uint(4)?),
        0x14 | 0x20 | 0x24 => Value::Const(r.uint(8)?),
        0x15 | 0x22 => Value::Const(r.uleb()?),
        0x16 => {
            let form = r.uleb()?;
            if form == 0x16 || form == DW_FORM_IMPLICIT_CONST {
                return None;
            }
            read_value(r, h, form, implicit)?
        }
        0x17 => Value::SecOffset(r.uint(off)?),
        0x19 => Value::Const(1),
        0x1a | 0x1f02 => Value::StrIndex(r.uleb()?),
        0x1b | 0x1f01 => Value::AddrIndex(r.uleb()?),
        0x1c => Value::Const(r.uint(4)?),
        0x1d | 0x1f20 | 0x1f21 => {
            r.uint(off)?;
            Value::Other
        }
        0x1e => {
            r.skip(16)?;
            Value::Other
        }
        0x1f => Value::LineStr(r.uint(off)?),
        DW_FORM_IMPLICIT_CONST => Value::Const(implicit as u64),
        0x23 => Value::RngListIndex(r.uleb()?),
        0x25 => Value::StrIndex(r.uint(1)?),
        0x26 => Value::StrIndex(r.uint(2)?),
        0x27 => Value::StrIndex(r.uint(3)?),
        0x28 => Value::StrIndex(r.uint(4)?),
        0x29 => Value::AddrIndex(r.uint(1)?),
        0x2a => Value::AddrIndex(r.uint(2)?),
        0x2b => Value::AddrIndex(r.uint(3)?),
        0x2c => Value::AddrIndex(r.uint(4)?),
        _ => return None,
    })
}

/// A string attribute's text.
fn string(s: &Sections<'_>, h: &Header, attrs: &HashMap<u64, Value>, v: &Value) -> Option<String> {
    let at = |sec: &[u8], off: u64| -> Option<String> {
        let mut r = Reader::at(sec, usize::try_from(off).ok()?);
        Some(String::from_utf8_lossy(r.cstr()?).into_owned())
    };
    match *v {
        Value::Str(off) => at(s.str, off),
        Value::LineStr(off) => at(s.line_str, off),
        Value::Inline(start, len) => {
            Some(String::from_utf8_lossy(s.info.get(start..start.checked_add(len)?)?).into_owned())
        }
        Value::StrIndex(i) => {
            // DW_AT_str_offsets_base points past the table's header.
            let base = match attrs.get(&DW_AT_STR_OFFSETS_BASE) {
                Some(Value::SecOffset(b) | Value::Const(b)) => *b,
                _ => 8,
            };
            let entry = base.checked_add(i.checked_mul(h.offset_size as u64)?)?;
            let off = Reader::at(s.str_offsets, usize::try_from(entry).ok()?).uint(h.offset_size)?;
            at(s.str, off)
        }
        _ => None,
    }
}

/// The address `v` names (an address, or an index into `.debug_addr`).
fn address(s: &Sections<'_>, h: &Header, attrs: &HashMap<u64, Value>, v: Value) -> Option<u64> {
    match v {
        Value::Addr(a) => Some(a),
        Value::AddrIndex(i) => indexed_address(s, h, attrs, i),
        _ => None,
    }
}

fn indexed_address(s: &Sections<'_>, h: &Header, attrs: &HashMap<u64, Value>, i: u64) -> Option<u64> {
    let base = match attrs.get(&DW_AT_ADDR_BASE).or_else(|| attrs.get(&DW_AT_GNU_ADDR_BASE)) {
        Some(Value::SecOffset(b) | Value::Const(b)) => *b,
        _ => 8,
    };
    let entry = base.checked_add(i.checked_mul(h.address_size as u64)?)?;
    Reader::at(s.addr, usize::try_from(entry).ok()?).uint(h.address_size)
}

/// The unit's code ranges from its own attributes (None: it names none).
fn unit_ranges(s: &Sections<'_>, h: &Header, attrs: &HashMap<u64, Value>) -> Option<Vec<(u64, u64)>> {
    let low = attrs.get(&DW_AT_LOW_PC).and_then(|&v| address(s, h, attrs, v));
    if let (Some(low), Some(&high)) = (low, attrs.get(&DW_AT_HIGH_PC)) {
        let high = match high {
            Value::Const(len) => low.checked_add(len)?,
            v => address(s, h, attrs, v)?,
        };
        return Some(if high > low { vec![(low, high)] } else { Vec::new() });
    }
    let base = low.unwrap_or(0);
    match *attrs.get(&DW_AT_RANGES)? {
        Value::RngListIndex(i) => {
            let lists = match attrs.get(&DW_AT_RNGLISTS_BASE) {
                Some(Value::SecOffset(b) | Value::Const(b)) => *b,
                _ => return None,
            };
            let entry = lists.checked_add(i.checked_mul(h.offset_size as u64)?)?;
            let rel = Reader::at(s.rnglists, usize::try_from(entry).ok()?).uint(h.offset_size)?;
            rnglist(s, h, attrs, lists.checked_add(rel)?, base)
        }
        Value::SecOffset(off) | Value::Const(off) if h.version >= 5 => rnglist(s, h, attrs, off, base),
        Value::SecOffset(off) | Value::Const(off) => {
            let extra = match attrs.get(&DW_AT_GNU_RANGES_BASE) {
                Some(Value::SecOffset(b) | Value::Const(b)) => *b,
                _ => 0,
            };
            range_list(s.ranges, h, off.checked_add(extra)?, base)
        }
        _ => None,
    }
}

/// A DWARF 5 range list (`.debug_rnglists`) at `off`.
fn rnglist(
    s: &Sections<'_>,
    h: &Header,
    attrs: &HashMap<u64, Value>,
    off: u64,
    mut base: u64,
) -> Option<Vec<(u64, u64)>> {
    let mut r = Reader::at(s.rnglists, usize::try_from(off).ok()?);
    let mut out = Vec::new();
    let addr = |i| indexed_address(s, h, attrs, i);
    loop {
        let (lo, hi) = match r.u8()? {
            0 => return Some(out),
            1 => {
                base = addr(r.uleb()?)?;
                continue;
            }
            2 => (addr(r.uleb()?)?, addr(r.uleb()?)?),
            3 => {
                let lo = addr(r.uleb()?)?;
                (lo, lo.checked_add(r.uleb()?)?)
            }
            4 => (base.checked_add(r.uleb()?)?, base.checked_add(r.uleb()?)?),
            5 => {
                base = r.uint(h.address_size)?;
                continue;
            }
            6 => (r.uint(h.address_size)?, r.uint(h.address_size)?),
            7 => {
                let lo = r.uint(h.address_size)?;
                (lo, lo.checked_add(r.uleb()?)?)
            }
            _ => return None,
        };
        if hi > lo {
            out.push((lo, hi));
        }
    }
}

/// A DWARF 2-4 range list (`.debug_ranges`) at `off`.
fn range_list(ranges: &[u8], h: &Header, off: u64, mut base: u64) -> Option<Vec<(u64, u64)>> {
    let mut r = Reader::at(ranges, usize::try_from(off).ok()?);
    let max = if h.address_size == 8 { u64::MAX } else { u64::from(u32::MAX) };
    let mut out = Vec::new();
    loop {
        let (lo, hi) = (r.uint(h.address_size)?, r.uint(h.address_size)?);
        match (lo, hi) {
            (0, 0) => return Some(out),
            (m, b) if m == max => base = b,
            (lo, hi) if hi > lo => out.push((base.checked_add(lo)?, base.checked_add(hi)?)),
            _ => {}
        }
    }
}

/// `.debug_aranges`: the code ranges of each unit, by the unit's offset.
fn aranges(sec: &[u8]) -> HashMap<u64, Vec<(u64, u64)>> {
    let mut out: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
    let mut at = 0usize;
    while at < sec.len() {
        let mut r = Reader::at(sec, at);
        let Some((len, offset_size)) = initial_length(&mut r) else { break };
        let Some(end) = usize::try_from(len).ok().and_then(|l| r.pos.checked_add(l)) else { break };
        let set = |r: &mut Reader<'_>| -> Option<(u64, Vec<(u64, u64)>)> {
            r.u16()?; // version 2
            let unit = r.uint(offset_size)?;
            let address_size = usize::from(r.u8()?);
            if r.u8()? != 0 || !matches!(address_size, 4 | 8) {
                return None; // segmented addresses
            }
            // The tuples start at a multiple of twice the address size.
            let pad = (2 * address_size - (r.pos - at) % (2 * address_size)) % (2 * address_size);
            r.skip(pad as u64)?;
            let mut ranges = Vec::new();
            while r.pos + 2 * address_size <= end {
                let (lo, n) = (r.uint(address_size)?, r.uint(address_size)?);
                if (lo, n) == (0, 0) {
                    break;
                }
                if n > 0 {
                    ranges.push((lo, lo.checked_add(n)?));
                }
            }
            Some((unit, ranges))
        };
        if let Some((unit, ranges)) = set(&mut Reader::at(&sec[..end.min(sec.len())], r.pos)) {
            out.entry(unit).or_default().extend(ranges);
        }
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128() {
        let mut r = Reader::at(&[0xe5, 0x8e, 0x26, 0x7f, 0x80, 0x7f], 0);
        assert_eq!(r.uleb(), Some(624_485));
        assert_eq!(r.sleb(), Some(-1));
        assert_eq!(r.sleb(), Some(-128));
        assert_eq!(r.uleb(), None);
    }

    /// A DWARF 4 unit with a name, a directory and low/high pc, hand-made.
    #[test]
    fn a_small_unit() {
        // Abbreviation 1: compile_unit, no children, name string, comp_dir
        // strp, low_pc addr, high_pc data4.
        let abbrev = [1, 0x11, 0, 0x03, 0x08, 0x1b, 0x0e, 0x11, 0x01, 0x12, 0x06, 0, 0, 0];
        let strs = b"/src\0";
        let mut body = vec![4, 0, 0, 0, 0, 0, 8]; // version 4, abbrev 0, address size 8
        body.push(1);
        body.extend_from_slice(b"a.c\0");
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&0x401000u64.to_le_bytes());
        body.extend_from_slice(&0x20u32.to_le_bytes());
        let mut info = (body.len() as u32).to_le_bytes().to_vec();
        info.extend_from_slice(&body);
        let s = Sections { info: &info, abbrev: &abbrev, str: strs, ..Sections::default() };
        let units = compile_units(&s);
        assert_eq!(
            units,
            [Unit {
                name: Some("a.c".into()),
                comp_dir: Some("/src".into()),
                ranges: vec![(0x401000, 0x401020)]
            }]
        );
        // Cut anywhere, the unit is dropped, never misread.
        for n in 0..info.len() {
            let s = Sections { info: &info[..n], abbrev: &abbrev, str: strs, ..Sections::default() };
            assert!(compile_units(&s).is_empty(), "{n}");
        }
    }
}
