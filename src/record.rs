//! The one record every probe program sends to user space, and its decoder.
//!
//! The generator ([`crate::codegen`]) writes these offsets into the program; the
//! decoder below reads them back. Nothing else knows the layout.
//!
//! ```text
//! offset size  field
//!      0    4  probe      index into the probe table
//!      4    4  flags      Flags below
//!      8    4  tgid       process id
//!     12    4  tid        thread id
//!     16    8  ktime      bpf_ktime_get_ns(): CLOCK_MONOTONIC, merges the per-CPU rings
//!     24   48  vals[6]    entry: arguments / tracepoint fields; return: vals[0] = return value
//!     72    8  str_ptr    user pointer of the string argument, if the probe has one
//!     80    4  str_ret    what bpf_probe_read_user_str returned (length with NUL, or -errno)
//!     84    4  depth      program functions: the thread's nesting, kept by the kernel
//!     88   16  comm       bpf_get_current_comm()
//!    104  ..256  str      the string and its NUL (only in records of probes that carry
//!                         one; the record ends there: its length is 104 + str_ret)
//! ```
//!
//! Strings and the command name are kept as the bytes read: what they hold is
//! the traced world's, and [`crate::escape`] makes it printable.

use bitflags::bitflags;

pub const OFF_PROBE: i16 = 0;
pub const OFF_FLAGS: i16 = 4;
pub const OFF_TGID: i16 = 8;
pub const OFF_TID: i16 = 12;
pub const OFF_KTIME: i16 = 16;
pub const OFF_VALS: i16 = 24;
pub const NVALS: usize = 6;
pub const OFF_STR_PTR: i16 = 72;
pub const OFF_STR_RET: i16 = 80;
pub const OFF_DEPTH: i16 = 84;
pub const OFF_COMM: i16 = 88;
pub const COMM_LEN: usize = 16;
/// Size of a record without a string.
pub const FIXED_SIZE: usize = 104;
pub const OFF_STR: i16 = FIXED_SIZE as i16;
pub const STR_LEN: usize = 256;
/// The most bytes of a string shown in the lab's lines. A read that filled the
/// buffer (`STR_LEN - 1` bytes and the NUL) may have stopped inside a longer
/// string, so a string is known whole only when it is shorter: one byte less
/// is shown, then `...` when more was read (as strace reads one byte more than
/// it shows).
pub const STR_SHOWN: usize = STR_LEN - 2;
/// Size of a record with a string.
pub const FULL_SIZE: usize = FIXED_SIZE + STR_LEN;

bitflags! {
    /// What the string part of a record holds.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct Flags: u32 {
        /// `str` holds the string argument, read at entry.
        const STR_PRESENT = 1;
        /// The entry could not read the string (its page was not faulted in yet,
        /// or the pointer is bad): the pointer was stashed for the return probe.
        const STR_FAULT = 2;
        /// A return record carrying the string its entry could not read.
        const STR_RETRY = 4;
    }
}

/// A decoded record, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub probe: u32,
    pub flags: Flags,
    pub tgid: u32,
    pub tid: u32,
    pub ktime: u64,
    pub vals: [u64; NVALS],
    pub str_ptr: u64,
    pub str_ret: i32,
    /// Nesting of program functions on this thread (entry: calls already in
    /// progress; return: calls still in progress after this one).
    pub depth: u32,
    /// The command name as the kernel keeps it: NUL-padded bytes (no allocation
    /// per record; see [`Record::comm`]).
    pub comm: [u8; COMM_LEN],
    /// The string's bytes (without its NUL), if the record carries one that was
    /// read successfully.
    pub string: Option<Vec<u8>>,
}

/// Why bytes from a ring are not a record.
#[derive(Debug, PartialEq, Eq)]
pub struct TooShort(pub usize);

fn u32_at(b: &[u8], off: i16) -> u32 {
    let o = off as usize;
    u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: i16) -> u64 {
    let o = off as usize;
    u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Bytes up to the first NUL.
pub fn c_string(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// The part of a string read by a probe that is shown (at most [`STR_SHOWN`]
/// bytes), and whether the string went on beyond it (`...`).
pub fn shown_part(bytes: &[u8]) -> (&[u8], bool) {
    match bytes.get(..STR_SHOWN) {
        Some(part) if bytes.len() > STR_SHOWN => (part, true),
        _ => (bytes, false),
    }
}

/// A command name as the kernel stores it (`file-io` -> NUL-padded 16 bytes).
pub fn comm_bytes(name: &str) -> [u8; COMM_LEN] {
    let mut out = [0u8; COMM_LEN];
    let n = name.len().min(COMM_LEN - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

impl Record {
    /// The command name's bytes, up to its NUL.
    pub fn comm(&self) -> &[u8] {
        c_string(&self.comm)
    }

    /// Decodes the raw payload of a perf sample.
    pub fn decode(b: &[u8]) -> Result<Record, TooShort> {
        let mut r = Record::default();
        r.decode_into(b)?;
        Ok(r)
    }

    /// Decodes into this record, reusing its string's allocation (the reader
    /// keeps a few records and decodes every sample into one of them). On error
    /// the record is left as it was.
    pub fn decode_into(&mut self, b: &[u8]) -> Result<(), TooShort> {
        if b.len() < FIXED_SIZE {
            return Err(TooShort(b.len()));
        }
        let flags = Flags::from_bits_truncate(u32_at(b, OFF_FLAGS));
        for (i, v) in self.vals.iter_mut().enumerate() {
            *v = u64_at(b, OFF_VALS + 8 * i as i16);
        }
        let str_ret = u32_at(b, OFF_STR_RET) as i32;
        let has_string = flags.intersects(Flags::STR_PRESENT | Flags::STR_RETRY) && str_ret > 0;
        // The string runs to its NUL, which the program's record ends with
        // (perf rings pad it further); a record cut short ends it early.
        if has_string && b.len() > FIXED_SIZE {
            let bytes = &b[FIXED_SIZE..b.len().min(FULL_SIZE)];
            let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
            let text = self.string.get_or_insert_with(Vec::new);
            text.clear();
            text.extend_from_slice(&bytes[..end]);
        } else {
            self.string = None;
        }
        let comm_at = OFF_COMM as usize;
        self.comm.copy_from_slice(&b[comm_at..comm_at + COMM_LEN]);
        self.probe = u32_at(b, OFF_PROBE);
        self.flags = flags;
        self.tgid = u32_at(b, OFF_TGID);
        self.tid = u32_at(b, OFF_TID);
        self.ktime = u64_at(b, OFF_KTIME);
        self.str_ptr = u64_at(b, OFF_STR_PTR);
        self.str_ret = str_ret;
        self.depth = u32_at(b, OFF_DEPTH);
        Ok(())
    }

    /// Encodes a record as a program would (used by tests and benchmarks).
    pub fn encode(&self) -> Vec<u8> {
        // As the programs send it: a string and its NUL end the record.
        let len = self.string.as_ref().map_or(0, |s| s.len().min(STR_LEN - 1) + 1);
        let mut b = vec![0u8; FIXED_SIZE + len];
        let put32 = |b: &mut Vec<u8>, off: i16, v: u32| {
            b[off as usize..off as usize + 4].copy_from_slice(&v.to_ne_bytes())
        };
        let put64 = |b: &mut Vec<u8>, off: i16, v: u64| {
            b[off as usize..off as usize + 8].copy_from_slice(&v.to_ne_bytes())
        };
        put32(&mut b, OFF_PROBE, self.probe);
        put32(&mut b, OFF_FLAGS, self.flags.bits());
        put32(&mut b, OFF_TGID, self.tgid);
        put32(&mut b, OFF_TID, self.tid);
        put64(&mut b, OFF_KTIME, self.ktime);
        for (i, v) in self.vals.iter().enumerate() {
            put64(&mut b, OFF_VALS + 8 * i as i16, *v);
        }
        put64(&mut b, OFF_STR_PTR, self.str_ptr);
        put32(&mut b, OFF_STR_RET, self.str_ret as u32);
        put32(&mut b, OFF_DEPTH, self.depth);
        b[OFF_COMM as usize..OFF_COMM as usize + COMM_LEN].copy_from_slice(&self.comm);
        if let Some(s) = &self.string {
            let n = s.len().min(STR_LEN - 1);
            b[FIXED_SIZE..FIXED_SIZE + n].copy_from_slice(&s[..n]);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_fits_the_bpf_stack() {
        assert_eq!(OFF_VALS as usize + 8 * NVALS, OFF_STR_PTR as usize);
        assert_eq!(OFF_COMM as usize + COMM_LEN, FIXED_SIZE);
        assert_eq!(FIXED_SIZE % 8, 0);
        assert_eq!(FULL_SIZE % 8, 0);
        const { assert!(FULL_SIZE + 32 <= 512, "record plus key slots must fit the 512-byte BPF stack") };
    }

    #[test]
    fn decode_reads_back_what_encode_wrote() {
        let r = Record {
            probe: 7,
            flags: Flags::STR_PRESENT,
            tgid: 1234,
            tid: 1235,
            ktime: 0x1122_3344_5566_7788,
            vals: [1, 2, 3, u64::MAX, 5, 6],
            str_ptr: 0x5555_0000_1000,
            str_ret: 11,
            depth: 2,
            comm: comm_bytes("file-io"),
            string: Some(b"output.txt".to_vec()),
        };
        let bytes = r.encode();
        assert_eq!(bytes.len(), FIXED_SIZE + 11, "the record ends with the string's NUL");
        assert_eq!(&bytes[0..4], &7u32.to_ne_bytes());
        assert_eq!(&bytes[FIXED_SIZE..], b"output.txt\0");
        assert_eq!(Record::decode(&bytes), Ok(r.clone()));
        // A perf ring pads the sample; a record cut inside the string keeps what is there.
        let mut padded = bytes.clone();
        padded.resize(FIXED_SIZE + 16, 0);
        assert_eq!(Record::decode(&padded), Ok(r.clone()));
        let cut = Record::decode(&bytes[..FIXED_SIZE + 6]).unwrap();
        assert_eq!(cut.string.as_deref(), Some(&b"output"[..]));
        // Decoding into a record already used gives the same, string included.
        let other = Record { string: None, comm: comm_bytes("a-longer-name"), depth: 9, ..r.clone() };
        let mut used = Record::decode(&other.encode()).unwrap();
        used.decode_into(&bytes).unwrap();
        assert_eq!(used, r);
        let without = Record { flags: Flags::empty(), string: None, str_ret: 0, ..r.clone() };
        used.decode_into(&without.encode()).unwrap();
        assert_eq!(used, without);
        assert_eq!(used.decode_into(&bytes[..FIXED_SIZE - 8]), Err(TooShort(FIXED_SIZE - 8)));
        assert_eq!(used, without, "left as it was");
    }

    #[test]
    fn strings_are_bytes_and_long_ones_are_cut() {
        let r = Record {
            flags: Flags::STR_PRESENT,
            str_ret: 6,
            comm: comm_bytes("a\x1bb"),
            string: Some(b"\xff\x1b\n\xc3\xa9".to_vec()),
            ..Record::default()
        };
        let back = Record::decode(&r.encode()).unwrap();
        assert_eq!(back.string.as_deref(), Some(&b"\xff\x1b\n\xc3\xa9"[..]), "not made UTF-8");
        assert_eq!(back.comm(), b"a\x1bb");
        // A read that filled the buffer: 255 bytes, maybe more beyond.
        let full = vec![b'x'; STR_LEN - 1];
        assert_eq!(shown_part(&full), (&full[..STR_SHOWN], true));
        assert_eq!(shown_part(&full[..STR_SHOWN]), (&full[..STR_SHOWN], false));
        assert_eq!(shown_part(b"output.txt"), (&b"output.txt"[..], false));
    }

    #[test]
    fn a_failed_read_carries_no_string() {
        let r = Record {
            probe: 1,
            flags: Flags::STR_FAULT,
            tgid: 1,
            tid: 1,
            ktime: 1,
            vals: [0; NVALS],
            str_ptr: 3,
            str_ret: -14,
            depth: 0,
            comm: comm_bytes("x"),
            string: None,
        };
        let mut bytes = r.encode();
        bytes.resize(FULL_SIZE, 0);
        assert_eq!(Record::decode(&bytes).unwrap().string, None);
        assert_eq!(Record::decode(&bytes[..FIXED_SIZE - 1]), Err(TooShort(FIXED_SIZE - 1)));
    }
}
