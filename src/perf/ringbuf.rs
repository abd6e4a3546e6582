//! The BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`, Linux 5.8+): one ring shared by
//! every CPU, which the programs fill with `bpf_ringbuf_output`.
//!
//! The map is mapped twice: its consumer page read-write at offset 0 (only
//! `consumer_pos` in it is ours to write), and its producer page followed by the
//! data area read-only at offset one page. The kernel maps the data area twice in
//! a row, so a record that runs past the end of the ring is contiguous in memory.
//!
//! Each record starts with an 8-byte header `{u32 len; u32 pg_off}`; `len` carries
//! two flag bits: busy (the producer has reserved it and not committed yet) and
//! discard (skip it). Records are 8-byte aligned. `consumer_pos` and
//! `producer_pos` are byte positions that never reset.
//!
//! [`walk`] decides what to do with the records between two positions from their
//! headers alone; it is tested on synthetic rings. [`RingBuf`] owns the mappings.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::error::PerfError;

// include/uapi/linux/bpf.h, the enum after BPF_RB_PROD_POS ("BPF ring buffer constants").
/// `BPF_RINGBUF_BUSY_BIT`: the record is reserved but not committed yet.
pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the record was discarded; skip it.
pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`: the record header, `{u32 len; u32 pg_off}`.
pub const BPF_RINGBUF_HDR_SZ: u64 = 8;

/// One step of a walk over the ring, decided from a record's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A committed record: its data is `len` bytes after the header at `pos`.
    Data { pos: u64, len: u32 },
    /// A discarded record: skipped.
    Discarded,
}

/// What [`walk`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkOutcome {
    /// The new consumer position: the first record not consumed (a busy one), or
    /// `prod` when everything was.
    pub cons: u64,
    /// Committed records passed to the callback.
    pub records: usize,
    /// Headers that cannot be right (a record longer than the ring or past
    /// `prod`): the walk skips to `prod` and counts one.
    pub malformed: usize,
}

/// The space a record of `len` data bytes takes: header and data, rounded up to 8.
pub fn record_span(len: u32) -> u64 {
    (u64::from(len) + BPF_RINGBUF_HDR_SZ).div_ceil(8) * 8
}

/// Walks the records from `cons` to `prod` in a ring of `size` bytes (a power of
/// two). `header(pos)` reads the `len` word of the record at position `pos`
/// (the caller loads it with Acquire); `f` gets each committed record. Stops at
/// the first busy record: its producer has not committed it yet.
pub fn walk(
    size: u64,
    cons: u64,
    prod: u64,
    mut header: impl FnMut(u64) -> u32,
    mut f: impl FnMut(Step),
) -> WalkOutcome {
    let mut out = WalkOutcome { cons, records: 0, malformed: 0 };
    if prod.wrapping_sub(cons) > size || !size.is_power_of_two() {
        return WalkOutcome { cons: prod, records: 0, malformed: 1 };
    }
    let mut pos = cons;
    while pos != prod {
        let word = header(pos);
        if word & BPF_RINGBUF_BUSY_BIT != 0 {
            break;
        }
        let len = word & !(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
        let span = record_span(len);
        if span > prod.wrapping_sub(pos) {
            out.malformed += 1;
            pos = prod;
            break;
        }
        if word & BPF_RINGBUF_DISCARD_BIT != 0 {
            f(Step::Discarded);
        } else {
            out.records += 1;
            f(Step::Data { pos, len });
        }
        pos = pos.wrapping_add(span);
    }
    out.cons = pos;
    out
}

/// The system page size.
fn page_size() -> usize {
    let size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten();
    size.and_then(|s| usize::try_from(s).ok()).unwrap_or(4096)
}

/// The ring size for `pages_per_cpu` pages per CPU and `cpus` CPUs: their
/// product rounded up to a power of two (the kernel wants one, a multiple of the
/// page size). None when it does not fit `max_entries` (a u32).
pub fn ring_bytes(pages_per_cpu: usize, cpus: usize) -> Option<u32> {
    let bytes = pages_per_cpu.checked_mul(cpus.max(1))?.checked_mul(page_size())?;
    u32::try_from(bytes.checked_next_power_of_two()?).ok()
}

/// The mapped BPF ring buffer of a `BPF_MAP_TYPE_RINGBUF` map, and the reader's position.
pub struct RingBuf {
    /// The consumer page, read-write.
    consumer: MmapRaw,
    /// The producer page, then the data area twice, read-only.
    producer: MmapRaw,
    page: usize,
    size: u64,
    malformed: u64,
    /// Bytes the last drain consumed.
    drained: u64,
}

impl RingBuf {
    /// Maps the ring of the map `fd`, whose max_entries is `size` bytes.
    pub fn map(fd: BorrowedFd<'_>, size: u32) -> Result<RingBuf, PerfError> {
        let page = page_size();
        let size_bytes = size as usize;
        if !size_bytes.is_power_of_two() || !size_bytes.is_multiple_of(page) {
            return Err(PerfError::InvalidArgument(format!(
                "a BPF ring buffer needs a power-of-two size that is a multiple of the page size, not {size}"
            )));
        }
        let consumer = map_explained(fd, page, 0, true)?;
        let producer = map_explained(fd, page + 2 * size_bytes, page as u64, false)?;
        Ok(RingBuf { consumer, producer, page, size: u64::from(size), malformed: 0, drained: 0 })
    }

    /// The size of the data area in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Malformed record headers met so far (a kernel/reader mismatch; should stay 0).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The bytes (headers included) the last [`RingBuf::drain`] consumed.
    pub fn drained(&self) -> u64 {
        self.drained
    }

    /// Reads producer_pos (Acquire), passes each committed record's data to `f`,
    /// then stores consumer_pos (Release) so the kernel may reuse the space.
    /// Returns the number of records passed to `f`.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let prod = self.producer_pos().load(Ordering::Acquire);
        let cons = self.consumer_pos().load(Ordering::Relaxed);
        let out = walk(
            self.size,
            cons,
            prod,
            |pos| self.header_len(pos).load(Ordering::Acquire),
            |step| {
                if let Step::Data { pos, len } = step {
                    f(self.data(pos, len));
                }
            },
        );
        self.malformed += out.malformed as u64;
        self.drained = out.cons.wrapping_sub(cons);
        // Release: our reads of the records happen before the kernel sees the space free.
        self.consumer_pos().store(out.cons, Ordering::Release);
        out.records
    }

    /// The offset in the producer mapping of position `pos`'s byte (the data area
    /// starts one page in; masked into the first copy).
    fn offset(&self, pos: u64) -> usize {
        self.page + (pos & (self.size - 1)) as usize
    }

    /// The data of the committed record whose header is at `pos`.
    fn data(&self, pos: u64, len: u32) -> &[u8] {
        let start = self.offset(pos) + BPF_RINGBUF_HDR_SZ as usize;
        // walk() passes records no longer than the ring; with the data mapped twice
        // the record ends inside the mapping: page + size + 8 + size.
        assert!(start + len as usize <= self.producer.len(), "ring record out of bounds");
        // SAFETY: the range lies inside the live read-only mapping (checked above),
        // which lives as long as `self`. The record is committed (its busy bit was
        // clear, read with Acquire after its data was written), and the kernel does
        // not write a record's bytes again until consumer_pos moves past it, which
        // happens after the caller is done with the slice.
        unsafe { std::slice::from_raw_parts(self.producer.as_ptr().add(start), len as usize) }
    }

    /// The `len` word of the record header at `pos`, for an atomic load.
    fn header_len(&self, pos: u64) -> &AtomicU32 {
        let at = self.offset(pos);
        assert!(at.is_multiple_of(4) && at + 4 <= self.producer.len(), "header offset {at}");
        // SAFETY: `at` is 8-aligned (positions are; the mapping is page-aligned) and
        // inside the mapping (checked), which outlives the reference. The kernel
        // writes this word with atomic stores (commit clears the busy bit with
        // xchg); we only read it through this atomic.
        unsafe { AtomicU32::from_ptr(self.producer.as_ptr().add(at).cast_mut().cast::<u32>()) }
    }

    /// `producer_pos`, the first word of the producer page.
    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: the producer mapping starts with the page-aligned producer page;
        // its first u64 is producer_pos, which the kernel writes with release
        // stores and we only read through this atomic. It lives as long as `self`.
        unsafe { AtomicU64::from_ptr(self.producer.as_ptr().cast_mut().cast::<u64>()) }
    }

    /// `consumer_pos`, the first word of the consumer page.
    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer mapping is one page-aligned, writable page whose
        // first u64 is consumer_pos; only we write it (the kernel reads it), always
        // through this atomic. It lives as long as `self`.
        unsafe { AtomicU64::from_ptr(self.consumer.as_mut_ptr().cast::<u64>()) }
    }
}

/// mmap(NULL, len, PROT_READ[|PROT_WRITE], MAP_SHARED, fd, offset), recorded for
/// `--explain` as strace shows it.
fn map_explained(fd: BorrowedFd<'_>, len: usize, offset: u64, write: bool) -> Result<MmapRaw, PerfError> {
    let mut options = MmapOptions::new();
    options.len(len).offset(offset);
    let map = if write { options.map_raw(fd.as_raw_fd()) } else { options.map_raw_read_only(fd.as_raw_fd()) };
    let prot = if write { "PROT_READ|PROT_WRITE" } else { "PROT_READ" };
    crate::explain::syscall(
        // strace writes the offset as C's `%#x` does: 0, 0x1000.
        || {
            let offset = if offset == 0 { "0".to_string() } else { format!("{offset:#x}") };
            format!("mmap(NULL, {len}, {prot}, MAP_SHARED, {}, {offset})", fd.as_raw_fd())
        },
        match &map {
            Ok(m) => Ok(format!("{:#x}", m.as_ptr() as usize)),
            Err(e) => Err(e.raw_os_error().unwrap_or(0)),
        },
    );
    map.map_err(|err| PerfError::RingbufMmap { bytes: len, offset, err })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic ring: headers at positions, as `walk` reads them.
    struct Fake {
        size: u64,
        words: std::collections::BTreeMap<u64, u32>,
        prod: u64,
    }

    impl Fake {
        fn new(size: u64, start: u64) -> Fake {
            Fake { size, words: Default::default(), prod: start }
        }

        fn push(&mut self, word: u32) {
            self.words.insert(self.prod, word);
            let len = word & !(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
            self.prod += record_span(len);
        }

        fn walk(&self, cons: u64) -> (WalkOutcome, Vec<Step>) {
            let mut steps = Vec::new();
            let out = walk(self.size, cons, self.prod, |p| self.words[&p], |s| steps.push(s));
            (out, steps)
        }
    }

    #[test]
    fn spans_are_header_plus_data_rounded_to_eight() {
        assert_eq!(record_span(0), 8);
        assert_eq!(record_span(1), 16);
        assert_eq!(record_span(8), 16);
        assert_eq!(record_span(9), 24);
        assert_eq!(record_span(300), 312);
    }

    #[test]
    fn committed_records_are_passed_with_their_positions() {
        let mut ring = Fake::new(4096, 0);
        ring.push(12);
        ring.push(300);
        let (out, steps) = ring.walk(0);
        assert_eq!(out, WalkOutcome { cons: 24 + 312, records: 2, malformed: 0 });
        assert_eq!(steps, vec![Step::Data { pos: 0, len: 12 }, Step::Data { pos: 24, len: 300 }]);
    }

    #[test]
    fn a_busy_record_stops_the_walk_before_it() {
        let mut ring = Fake::new(4096, 64);
        ring.push(16);
        ring.push(BPF_RINGBUF_BUSY_BIT | 40);
        ring.push(8);
        let (out, steps) = ring.walk(64);
        assert_eq!(out, WalkOutcome { cons: 64 + 24, records: 1, malformed: 0 });
        assert_eq!(steps, vec![Step::Data { pos: 64, len: 16 }]);
    }

    #[test]
    fn discarded_records_are_skipped_and_not_counted() {
        let mut ring = Fake::new(4096, 0);
        ring.push(BPF_RINGBUF_DISCARD_BIT | 20);
        ring.push(4);
        let (out, steps) = ring.walk(0);
        assert_eq!(out, WalkOutcome { cons: 32 + 16, records: 1, malformed: 0 });
        assert_eq!(steps, vec![Step::Discarded, Step::Data { pos: 32, len: 4 }]);
    }

    #[test]
    fn positions_past_the_ring_size_keep_counting() {
        // Positions never reset: a walk far past the first lap reads the same way.
        let start = (1u64 << 40) - 16;
        let mut ring = Fake::new(4096, start);
        ring.push(8);
        ring.push(8);
        let (out, steps) = ring.walk(start);
        assert_eq!(out, WalkOutcome { cons: start + 32, records: 2, malformed: 0 });
        assert_eq!(steps, vec![Step::Data { pos: start, len: 8 }, Step::Data { pos: start + 16, len: 8 }]);
    }

    #[test]
    fn a_record_past_the_producer_is_malformed() {
        let mut ring = Fake::new(4096, 0);
        ring.push(8);
        ring.words.insert(16, 4000); // claims more than was produced
        ring.prod = 16 + 64;
        let (out, steps) = ring.walk(0);
        assert_eq!(out, WalkOutcome { cons: 80, records: 1, malformed: 1 });
        assert_eq!(steps, vec![Step::Data { pos: 0, len: 8 }]);
    }

    #[test]
    fn more_than_a_ring_of_data_is_malformed() {
        let ring = Fake::new(4096, 8192);
        let out = walk(4096, 0, 8192, |_| panic!("no header is read"), |_| panic!("no record"));
        assert_eq!(out, WalkOutcome { cons: 8192, records: 0, malformed: 1 });
        assert_eq!(ring.walk(8192).0, WalkOutcome { cons: 8192, records: 0, malformed: 0 });
    }

    #[test]
    fn ring_sizes_are_powers_of_two_of_pages() {
        let page = page_size() as u32;
        assert_eq!(ring_bytes(256, 2), Some(512 * page));
        assert_eq!(ring_bytes(1, 3), Some(4 * page));
        assert_eq!(ring_bytes(1, 1), Some(page));
        assert_eq!(ring_bytes(1 << 20, 2), None);
    }
}
