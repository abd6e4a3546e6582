//! Per-CPU perf rings: a pure parser of the records in a ring's data area, and
//! [`Ring`], which owns one perf event, its mapping, and the reader's position.
//!
//! The mapping is `1 + 2^n` pages: a header page (`struct perf_event_mmap_page`)
//! followed by the data area. The kernel writes records at `data_head` and never
//! overwrites bytes between `data_tail` and `data_head` (the mapping is writable,
//! so it honours `data_tail`); the reader consumes records and advances
//! `data_tail`. Both are u64 byte positions that never reset.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::error::PerfError;
use super::sys::open_bpf_output;

// Offsets in `struct perf_event_mmap_page` (include/uapi/linux/perf_event.h).
// Checked two ways: by adding up the fields before them (version, compat_version,
// lock, index: 4 x u32 = 16; offset, time_enabled, time_running, capabilities:
// 4 x u64 = 48; pmc_width, time_shift: 2 x u16 = 52; time_mult u32 = 56;
// time_offset, time_zero = 72; size, __reserved_1 = 80; time_cycles, time_mask =
// 96; __reserved[116*8] = 1024), and by compiling `offsetof()` against the
// installed UAPI header, which printed 1024, 1032, 1040 and 1048. The live test
// below also reads data_offset/data_size back from a real mapping.
/// `data_head`: where the kernel will write next.
const DATA_HEAD: usize = 1024;
/// `data_tail`: where the reader has read up to.
const DATA_TAIL: usize = 1032;
/// `data_offset`: where the data area starts in the mapping (4.1+).
const DATA_OFFSET: usize = 1040;
/// `data_size`: the size of the data area (4.1+).
const DATA_SIZE: usize = 1048;

// enum perf_event_type, include/uapi/linux/perf_event.h
/// `PERF_RECORD_LOST`: `u64 id; u64 lost`.
pub const PERF_RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`: with only PERF_SAMPLE_RAW, `u32 size; char data[size]`.
pub const PERF_RECORD_SAMPLE: u32 = 9;

/// `struct perf_event_header { u32 type; u16 misc; u16 size; }`.
const HEADER_LEN: u64 = 8;

/// One record of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// A raw sample: the bytes after its `u32 size`, including the kernel's padding
    /// to 8 bytes (so the payload must carry its own length).
    Sample(&'a [u8]),
    /// The kernel dropped `lost` records because the ring was full.
    Lost { id: u64, lost: u64 },
    /// Any other record type (`PERF_RECORD_*`), skipped.
    Other { kind: u32 },
}

/// What [`parse_records`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOutcome {
    /// The new tail: `head` once everything was consumed or skipped.
    pub tail: u64,
    /// Records passed to the callback.
    pub records: usize,
    /// Malformed headers or bodies met (each stops or skips parsing safely).
    pub malformed: usize,
}

/// Walks the records in `data` (a ring's data area, whose length is a power of
/// two) from position `tail` to `head`. A record that wraps around the end is
/// copied into `scratch`. Calls `f` for each record and returns the new tail.
///
/// A header of size below 8 or beyond `head`, a region longer than the ring, or a
/// ring that is not a power of two long stops parsing: the bytes up to `head` are
/// skipped and counted as one malformed record. A sample or lost record too short
/// for its contents is skipped and counted, and parsing goes on.
pub fn parse_records(
    data: &[u8],
    tail: u64,
    head: u64,
    scratch: &mut Vec<u8>,
    mut f: impl FnMut(Record<'_>),
) -> ParseOutcome {
    let mut out = ParseOutcome { tail, records: 0, malformed: 0 };
    if tail == head {
        return out;
    }
    if !data.len().is_power_of_two() || head.wrapping_sub(tail) > data.len() as u64 {
        return ParseOutcome { tail: head, records: 0, malformed: 1 };
    }
    let mut pos = tail;
    while pos != head {
        // `left` never exceeds data.len(), so every read below stays inside the ring.
        let left = head.wrapping_sub(pos);
        if left < HEADER_LEN {
            out.malformed += 1;
            pos = head;
            break;
        }
        let header = wrapped_bytes(data, pos, HEADER_LEN as usize, scratch);
        let (kind, size) = (u32_at(header, 0).unwrap_or(0), u64::from(u16_at(header, 6).unwrap_or(0)));
        if size < HEADER_LEN || size > left {
            out.malformed += 1;
            pos = head;
            break;
        }
        match decode(kind, wrapped_bytes(data, pos, size as usize, scratch)) {
            Some(record) => {
                out.records += 1;
                f(record);
            }
            None => out.malformed += 1,
        }
        pos = pos.wrapping_add(size);
    }
    out.tail = pos;
    out
}

/// `len` bytes of the ring starting at position `pos`: a slice of `data` when they
/// are contiguous, else the two pieces copied into `scratch`. `len` must not exceed
/// `data.len()`, a power of two.
fn wrapped_bytes<'a>(data: &'a [u8], pos: u64, len: usize, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let start = (pos & (data.len() as u64 - 1)) as usize;
    let first = len.min(data.len() - start);
    if first == len {
        return &data[start..start + len];
    }
    scratch.clear();
    scratch.extend_from_slice(&data[start..]);
    scratch.extend_from_slice(&data[..len - first]);
    scratch
}

/// Decodes a whole record (header included); None when too short for its type.
fn decode(kind: u32, rec: &[u8]) -> Option<Record<'_>> {
    match kind {
        PERF_RECORD_SAMPLE => {
            let size = u32_at(rec, 8)? as usize;
            rec.get(12..12usize.checked_add(size)?).map(Record::Sample)
        }
        PERF_RECORD_LOST => Some(Record::Lost { id: u64_at(rec, 8)?, lost: u64_at(rec, 16)? }),
        kind => Some(Record::Other { kind }),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The system page size.
fn page_size() -> usize {
    let size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten();
    size.and_then(|s| usize::try_from(s).ok()).unwrap_or(4096)
}

/// One perf event and its mmapped ring, with the reader's position.
pub struct Ring {
    /// The mapping: header page, then `data_len` bytes of data.
    map: MmapRaw,
    fd: OwnedFd,
    cpu: u32,
    page: usize,
    data_len: usize,
    /// Our copy of data_tail (only we write it).
    tail: u64,
    /// A private copy of the ring's live bytes, at the same indices: records are
    /// parsed from memory the kernel cannot change underneath us.
    shadow: Vec<u8>,
    /// Room for records that wrap around the end.
    scratch: Vec<u8>,
    malformed: u64,
}

impl Ring {
    /// Opens the BPF-output event of `cpu` and maps its ring of `pages` data pages
    /// (a power of two). The reader is woken after `wakeup_watermark_bytes` bytes.
    pub fn open(cpu: u32, pages: usize, wakeup_watermark_bytes: u32) -> Result<Ring, PerfError> {
        check_pages(pages)?;
        Ring::from_event(open_bpf_output(cpu, wakeup_watermark_bytes)?, cpu, pages)
    }

    /// Maps the ring of an already opened event whose samples are PERF_SAMPLE_RAW
    /// only; `cpu` is a label for errors and [`Ring::cpu`].
    pub fn from_event(fd: OwnedFd, cpu: u32, pages: usize) -> Result<Ring, PerfError> {
        check_pages(pages)?;
        let page = page_size();
        let bytes = pages
            .checked_add(1)
            .and_then(|n| n.checked_mul(page))
            .ok_or_else(|| PerfError::InvalidArgument(format!("a ring of {pages} pages is too large")))?;
        // memmap2 makes the call: mmap(NULL, bytes, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0).
        // Writable, so the kernel honours data_tail; the explanation says so
        // exactly (tests/explain.rs compares it with strace).
        let map = MmapOptions::new().len(bytes).map_raw(&fd);
        crate::explain::syscall(
            || format!("mmap(NULL, {bytes}, PROT_READ|PROT_WRITE, MAP_SHARED, {}, 0)", fd.as_raw_fd()),
            match &map {
                Ok(m) => Ok(format!("{:#x}", m.as_ptr() as usize)),
                Err(e) => Err(e.raw_os_error().unwrap_or(0)),
            },
        );
        let map = map.map_err(|err| PerfError::Mmap { cpu, bytes, err })?;
        let data_len = bytes - page;
        let mut ring = Ring {
            map,
            fd,
            cpu,
            page,
            data_len,
            tail: 0,
            shadow: vec![0; data_len],
            scratch: Vec::new(),
            malformed: 0,
        };
        ring.tail = ring.header_word(DATA_TAIL).load(Ordering::Relaxed);
        ring.check_layout()?;
        Ok(ring)
    }

    /// Kernels since 4.1 say where the data area is; it must be where we read it.
    fn check_layout(&self) -> Result<(), PerfError> {
        let offset = self.header_word(DATA_OFFSET).load(Ordering::Relaxed);
        let size = self.header_word(DATA_SIZE).load(Ordering::Relaxed);
        if offset == 0 || (offset == self.page as u64 && size == self.data_len as u64) {
            return Ok(());
        }
        Err(PerfError::InvalidArgument(format!(
            "the perf ring of CPU {} has its data at offset {offset}, size {size}; expected {}, {}",
            self.cpu, self.page, self.data_len
        )))
    }

    /// The perf event (for poll(2), and for the BPF perf-event-array map).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The CPU this ring belongs to.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The size of the data area in bytes.
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Malformed records met so far (a kernel/reader mismatch; should stay 0).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Reads data_head (Acquire), parses the records up to it, then stores the new
    /// data_tail (Release) so the kernel may reuse the space. Returns the number of
    /// records passed to `f`.
    pub fn drain(&mut self, f: impl FnMut(Record<'_>)) -> usize {
        let head = self.header_word(DATA_HEAD).load(Ordering::Acquire);
        let tail = self.tail;
        self.copy_live_bytes(tail, head);
        // Everything up to head is in the shadow now: give the space back to the
        // kernel before parsing, so the producer can go on while we decode.
        // Release: our copy happens before the kernel sees the space free.
        self.header_word(DATA_TAIL).store(head, Ordering::Release);
        let out = parse_records(&self.shadow, tail, head, &mut self.scratch, f);
        self.malformed += out.malformed as u64;
        self.tail = head;
        out.records
    }

    /// Copies the ring bytes between `tail` and `head` into the shadow, at the same
    /// indices (in two pieces when they wrap). A region longer than the ring is not
    /// copied: the parser reports it as malformed.
    fn copy_live_bytes(&mut self, tail: u64, head: u64) {
        let avail = head.wrapping_sub(tail);
        if avail == 0 || avail > self.data_len as u64 {
            return;
        }
        let avail = avail as usize;
        let start = (tail & (self.data_len as u64 - 1)) as usize;
        let first = avail.min(self.data_len - start);
        self.copy_from_ring(start, first);
        self.copy_from_ring(0, avail - first);
    }

    /// Copies `len` bytes at index `start` of the data area into the shadow.
    fn copy_from_ring(&mut self, start: usize, len: usize) {
        assert!(start + len <= self.data_len, "ring copy out of bounds");
        // SAFETY: the source range lies inside the data area of the live mapping
        // (`page + start + len <= page + data_len` = its length, checked above) and
        // the destination inside `shadow`, which has `data_len` bytes; they do not
        // overlap (one is our heap, the other the mapping). The kernel does not
        // write bytes between data_tail and data_head until we move data_tail,
        // which happens after this copy.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(self.page + start),
                self.shadow.as_mut_ptr().add(start),
                len,
            );
        }
    }

    /// A u64 of the header page (`data_head`, `data_tail`, ...), for atomic access.
    fn header_word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.page, "header offset {offset}");
        // SAFETY: the mapping is page-aligned and at least one page long, so
        // `offset` (8-aligned, inside the first page) is a valid, aligned u64 that
        // lives as long as `self.map`, which outlives the returned reference. The
        // kernel accesses these words only with single 64-bit loads/stores, and we
        // only through this atomic.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u64>()) }
    }
}

/// A ring needs a power-of-two number of data pages.
fn check_pages(pages: usize) -> Result<(), PerfError> {
    match pages.is_power_of_two() {
        true => Ok(()),
        false => Err(PerfError::InvalidArgument(format!(
            "a perf ring needs a power of two data pages (1, 2, 4, ...), not {pages}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::sys::{disable, enable, perf_event_open, AttrFlags, PerfEventAttr};
    use crate::perf::sys::{PERF_SAMPLE_RAW, PERF_TYPE_TRACEPOINT};

    /// An owned copy of a record, for comparisons.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Got {
        Sample(Vec<u8>),
        Lost(u64, u64),
        Other(u32),
    }

    fn header(kind: u32, size: usize) -> Vec<u8> {
        let mut h = kind.to_ne_bytes().to_vec();
        h.extend_from_slice(&0u16.to_ne_bytes());
        h.extend_from_slice(&(size as u16).to_ne_bytes());
        h
    }

    /// A sample as the kernel writes it: raw size padded so that 4 + size is a
    /// multiple of 8. Returns the record and the payload `parse_records` yields.
    fn sample(payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let raw = (payload.len() + 4).div_ceil(8) * 8 - 4;
        let mut rec = header(PERF_RECORD_SAMPLE, 8 + 4 + raw);
        rec.extend_from_slice(&(raw as u32).to_ne_bytes());
        let mut padded = payload.to_vec();
        padded.resize(raw, 0);
        rec.extend_from_slice(&padded);
        (rec, padded)
    }

    fn lost(id: u64, n: u64) -> Vec<u8> {
        let mut rec = header(PERF_RECORD_LOST, 24);
        rec.extend_from_slice(&id.to_ne_bytes());
        rec.extend_from_slice(&n.to_ne_bytes());
        rec
    }

    fn other(kind: u32, body: usize) -> Vec<u8> {
        let mut rec = header(kind, 8 + body);
        rec.resize(8 + body, 0xee);
        rec
    }

    /// A synthetic ring: records are written at `head` with wrap-around.
    struct Synth {
        data: Vec<u8>,
        head: u64,
    }

    impl Synth {
        fn new(len: usize, start: u64) -> Synth {
            Synth { data: vec![0xaa; len], head: start }
        }

        fn push(&mut self, rec: &[u8]) {
            let mask = self.data.len() as u64 - 1;
            for (i, b) in rec.iter().enumerate() {
                self.data[(self.head.wrapping_add(i as u64) & mask) as usize] = *b;
            }
            self.head = self.head.wrapping_add(rec.len() as u64);
        }
    }

    fn parse(data: &[u8], tail: u64, head: u64) -> (Vec<Got>, ParseOutcome) {
        let mut got = Vec::new();
        let mut scratch = Vec::new();
        let out = parse_records(data, tail, head, &mut scratch, |r| {
            got.push(match r {
                Record::Sample(p) => Got::Sample(p.to_vec()),
                Record::Lost { id, lost } => Got::Lost(id, lost),
                Record::Other { kind } => Got::Other(kind),
            })
        });
        (got, out)
    }

    /// Everything up to `head` consumed without a malformed record.
    fn ok(head: u64, records: usize) -> ParseOutcome {
        ParseOutcome { tail: head, records, malformed: 0 }
    }

    #[test]
    fn several_records_per_drain() {
        let mut ring = Synth::new(256, 0);
        let (a, pa) = sample(&[1, 2, 3, 4]); // 4 + 4 = 8: no padding
        let (b, pb) = sample(b"hello world!"); // 12 + 4 = 16
        let (c, pc) = sample(&[9; 5]); // padded to 12
        assert_eq!(pc, [9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0]);
        for rec in [&a, &lost(7, 3), &b, &other(1, 16), &c] {
            ring.push(rec);
        }
        let (got, out) = parse(&ring.data, 0, ring.head);
        assert_eq!(got, [Got::Sample(pa), Got::Lost(7, 3), Got::Sample(pb), Got::Other(1), Got::Sample(pc)]);
        assert_eq!(out, ok(16 + 24 + 24 + 24 + 24, 5));
        assert_eq!(ring.head, 112);
    }

    #[test]
    fn empty_region() {
        let ring = Synth::new(64, 0);
        let (got, out) = parse(&ring.data, 40, 40);
        assert_eq!((got, out), (vec![], ParseOutcome { tail: 40, records: 0, malformed: 0 }));
    }

    #[test]
    fn payload_split_across_the_end() {
        // 64-byte ring, a 32-byte record at 40: header at 40..48, payload 52..64 + 0..8.
        let mut ring = Synth::new(64, 40);
        let payload: Vec<u8> = (100..120).collect();
        let (rec, p) = sample(&payload);
        assert_eq!(rec.len(), 32);
        ring.push(&rec);
        assert_eq!(ring.data[0..8], payload[12..20]);
        let (got, out) = parse(&ring.data, 40, ring.head);
        assert_eq!(got, [Got::Sample(p)]);
        assert_eq!(out, ok(72, 1));
    }

    #[test]
    fn header_split_across_the_end() {
        // The header itself straddles the end: 4 bytes at 60..64, 4 at 0..4.
        let mut ring = Synth::new(64, 60);
        let (rec, p) = sample(&[0x11; 12]);
        ring.push(&rec);
        ring.push(&lost(1, 2));
        let (got, out) = parse(&ring.data, 60, ring.head);
        assert_eq!(got, [Got::Sample(p), Got::Lost(1, 2)]);
        assert_eq!(out, ok(60 + 24 + 24, 2));
    }

    #[test]
    fn lost_record_split_across_the_end() {
        let mut ring = Synth::new(64, 48);
        ring.push(&lost(0xdead_beef, 1 << 40));
        let (got, out) = parse(&ring.data, 48, ring.head);
        assert_eq!(got, [Got::Lost(0xdead_beef, 1 << 40)]);
        assert_eq!(out, ok(72, 1));
    }

    #[test]
    fn positions_beyond_4_gib() {
        let start = (1u64 << 32) + 5 * 8;
        let mut ring = Synth::new(128, start);
        let mut want = vec![];
        for i in 0..4u8 {
            let (rec, p) = sample(&[i; 20]);
            ring.push(&rec);
            want.push(Got::Sample(p));
        }
        let (got, out) = parse(&ring.data, start, ring.head);
        assert_eq!(got, want);
        assert_eq!(out, ok(start + 4 * 32, 4));
    }

    #[test]
    fn positions_across_the_u64_wrap() {
        let start = u64::MAX - 15; // index 48 of a 64-byte ring
        let mut ring = Synth::new(64, start);
        let (a, pa) = sample(&[1; 12]);
        let (b, pb) = sample(&[2; 4]);
        ring.push(&a); // crosses the end of the ring and the u64 wrap
        ring.push(&b);
        assert_eq!(ring.head, 24);
        let (got, out) = parse(&ring.data, start, ring.head);
        assert_eq!(got, [Got::Sample(pa), Got::Sample(pb)]);
        assert_eq!(out, ParseOutcome { tail: 24, records: 2, malformed: 0 });
    }

    #[test]
    fn whole_ring_full() {
        let mut ring = Synth::new(64, 8);
        let (a, pa) = sample(&[5; 28]); // 8 + 4 + 28 = 40
        let (b, pb) = sample(&[6; 12]); // 24
        ring.push(&a);
        ring.push(&b);
        let (got, out) = parse(&ring.data, 8, 72);
        assert_eq!(got, [Got::Sample(pa), Got::Sample(pb)]);
        assert_eq!(out, ok(72, 2));
    }

    #[test]
    fn malformed_headers_stop_safely() {
        for bad_size in [0usize, 4, 7, 200] {
            let mut ring = Synth::new(128, 0);
            let (a, pa) = sample(&[3; 4]);
            ring.push(&a);
            let mut bad = header(PERF_RECORD_SAMPLE, bad_size);
            bad.resize(16, 0);
            ring.push(&bad);
            ring.push(&lost(1, 1));
            let (got, out) = parse(&ring.data, 0, ring.head);
            assert_eq!(got, [Got::Sample(pa.clone())], "size {bad_size}");
            assert_eq!(out, ParseOutcome { tail: ring.head, records: 1, malformed: 1 }, "size {bad_size}");
        }
    }

    #[test]
    fn malformed_regions_are_skipped() {
        let ring = Synth::new(64, 0);
        let skip = |_tail: u64, head| ParseOutcome { tail: head, records: 0, malformed: 1 };
        // More bytes than the ring holds, or head behind tail.
        assert_eq!(parse(&ring.data, 0, 65).1, skip(0, 65));
        assert_eq!(parse(&ring.data, 100, 50).1, skip(100, 50));
        // Fewer bytes left than a header.
        let mut r = Synth::new(64, 0);
        r.push(&lost(4, 4));
        assert_eq!(
            parse(&r.data, 0, 28),
            (vec![Got::Lost(4, 4)], ParseOutcome { tail: 28, records: 1, malformed: 1 })
        );
        // A data area that is not a power of two.
        assert_eq!(parse(&[0u8; 48], 0, 8).1, skip(0, 8));
        assert_eq!(parse(&[], 0, 8).1, skip(0, 8));
    }

    #[test]
    fn short_bodies_are_skipped_and_counted() {
        let mut ring = Synth::new(128, 0);
        // A sample that claims 100 raw bytes in a 24-byte record.
        let mut s = header(PERF_RECORD_SAMPLE, 24);
        s.extend_from_slice(&100u32.to_ne_bytes());
        s.resize(24, 0);
        ring.push(&s);
        ring.push(&header(PERF_RECORD_LOST, 8)); // no id/lost
        let (c, pc) = sample(&[8; 4]);
        ring.push(&c);
        let (got, out) = parse(&ring.data, 0, ring.head);
        assert_eq!(got, [Got::Sample(pc)]);
        assert_eq!(out, ParseOutcome { tail: 48, records: 1, malformed: 2 });
    }

    #[test]
    fn random_rings_never_panic_or_spin() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut scratch = Vec::new();
        for i in 0..6000 {
            let len = [1, 2, 4, 8, 16, 64][i % 6];
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let tail = next();
            let head = tail.wrapping_add(next() % (len as u64 + 16));
            let out = parse_records(&data, tail, head, &mut scratch, |_| {});
            assert_eq!(out.tail, head);
            assert!(out.records <= len / 8);
        }
    }

    #[test]
    fn ring_sizes_are_checked() {
        for bad in [0, 3, 6] {
            assert!(matches!(Ring::open(0, bad, 0), Err(PerfError::InvalidArgument(_))), "{bad} pages");
        }
    }

    #[test]
    fn bpf_output_rings_map_on_every_online_cpu() {
        let page = page_size();
        for cpu in crate::perf::online_cpus().unwrap() {
            let mut ring = Ring::open(cpu, 2, 1024).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ring.cpu(), cpu);
            assert_eq!(ring.data_len(), 2 * page);
            assert_eq!(ring.header_word(DATA_OFFSET).load(Ordering::Relaxed), page as u64);
            assert_eq!(ring.header_word(DATA_SIZE).load(Ordering::Relaxed), 2 * page as u64);
            assert_eq!(ring.drain(|r| panic!("unexpected {r:?}")), 0);
        }
    }

    /// A tracepoint event on this thread that samples raw sys_enter_getpid records.
    fn getpid_ring(pages: usize) -> (Ring, crate::tracefs::EventFormat) {
        let t = crate::tracefs::Tracefs::open().unwrap_or_else(|e| panic!("{e}"));
        let format = t.event_format("syscalls", "sys_enter_getpid").unwrap();
        let mut attr = PerfEventAttr::new(PERF_TYPE_TRACEPOINT, u64::from(format.id));
        attr.sample_type = PERF_SAMPLE_RAW;
        attr.sample_period = 1;
        attr.wakeup = 1;
        attr.flags = AttrFlags::DISABLED;
        let fd = perf_event_open(&attr, 0, -1, -1, 0).unwrap_or_else(|e| panic!("{e}"));
        (Ring::from_event(fd, 0, pages).unwrap(), format)
    }

    fn getpid_times(ring: &Ring, n: usize) {
        enable(ring.fd()).unwrap();
        for _ in 0..n {
            std::hint::black_box(nix::unistd::getpid());
        }
        disable(ring.fd()).unwrap();
    }

    /// Drains and checks every sample: our getpid, from this thread. Returns
    /// (samples, lost).
    fn drain_getpid(ring: &mut Ring, format: &crate::tracefs::EventFormat) -> (usize, u64) {
        let field = |name: &str| {
            let f = format.field(name).unwrap();
            (f.offset as usize, f.size as usize)
        };
        let (ty, nr, pid) = (field("common_type"), field("__syscall_nr"), field("common_pid"));
        assert_eq!((ty.1, nr.1, pid.1), (2, 4, 4));
        let tid = nix::unistd::gettid().as_raw();
        let (mut samples, mut lost) = (0, 0);
        let n = ring.drain(|r| match r {
            Record::Sample(raw) => {
                let read = |(off, size): (usize, usize)| raw[off..off + size].to_vec();
                assert_eq!(read(ty), (format.id as u16).to_ne_bytes());
                assert_eq!(read(nr), (libc::SYS_getpid as i32).to_ne_bytes());
                assert_eq!(read(pid), tid.to_ne_bytes());
                samples += 1;
            }
            Record::Lost { lost: l, .. } => lost += l,
            Record::Other { kind } => panic!("unexpected record type {kind}"),
        });
        assert_eq!(n, samples + usize::from(lost > 0));
        assert_eq!(ring.malformed(), 0);
        (samples, lost)
    }

    #[test]
    fn live_ring_reads_exactly_the_getpid_samples() {
        let (mut ring, format) = getpid_ring(4);
        let page = page_size() as u64;
        assert_eq!(ring.header_word(DATA_OFFSET).load(Ordering::Relaxed), page);
        assert_eq!(ring.header_word(DATA_SIZE).load(Ordering::Relaxed), 4 * page);
        assert_eq!(drain_getpid(&mut ring, &format), (0, 0));
        getpid_times(&ring, 25);
        assert_eq!(drain_getpid(&mut ring, &format), (25, 0));
        assert_eq!(drain_getpid(&mut ring, &format), (0, 0));
        assert_eq!(ring.header_word(DATA_TAIL).load(Ordering::Relaxed), ring.tail);
    }

    #[test]
    fn live_ring_wraps_many_times() {
        // One data page holds about a hundred samples: 10 rounds of 70 wrap it
        // several times, and only a published data_tail lets the kernel go on.
        let (mut ring, format) = getpid_ring(1);
        for round in 0..10 {
            getpid_times(&ring, 70);
            assert_eq!(drain_getpid(&mut ring, &format), (70, 0), "round {round}");
        }
        assert!(ring.tail > 3 * ring.data_len() as u64, "tail {}", ring.tail);
    }

    #[test]
    fn live_ring_reports_lost_samples() {
        let (mut ring, format) = getpid_ring(1);
        getpid_times(&ring, 1000);
        let (first, lost_first) = drain_getpid(&mut ring, &format);
        assert!(first < 1000, "a page cannot hold 1000 samples, got {first}");
        // The kernel writes the LOST record at its next successful output.
        getpid_times(&ring, 1);
        let (second, lost) = drain_getpid(&mut ring, &format);
        assert_eq!(second, 1);
        assert_eq!(first as u64 + lost_first + lost, 1000);
        assert!(lost > 0);
    }
}
