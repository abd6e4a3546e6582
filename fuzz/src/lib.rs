//! The checks behind the fuzz targets, one function per target. Each takes the
//! fuzzer's bytes, feeds them to a parser of trace, and panics when the parser
//! panics or returns something inconsistent; errors are fine.
//!
//! The same functions replay the committed corpus (`fuzz/corpus/<target>`) in
//! trace's own `cargo test` (tests/fuzz_corpus.rs includes this file), so every
//! input kept there, crash reproducers included, is checked on every test run
//! without the fuzzing toolchain.

use std::path::Path;

use trace::elf::{ElfFile, Symbol};
use trace::perf::ring::{parse_records, Record};
use trace::tracefs::{parse_format, TracefsError};

/// Names looked up in every ELF input: the seeds' functions, versioned and
/// default-version forms, and names that are never programs' own.
const ELF_NAMES: [&str; 9] =
    ["main", "_start", "native", "with_asm", "helper", "api", "api@VER_1", "api@@VER_2", "open@@GLIBC_2.2.5"];

/// At most this many listed functions are also looked up by name (each lookup
/// scans the symbol table, so a large table would make one input slow).
const MAX_LOOKUPS: usize = 64;

/// Bytes -> `ElfFile` -> every query the tracer makes of a program: name
/// lookups, the function lists, the entry point.
pub fn elf_resolve(data: &[u8]) {
    let elf = match ElfFile::from_bytes(Path::new("fuzz-input"), data.to_vec()) {
        Ok(elf) => elf,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let _ = (elf.is_pie(), elf.is_static(), elf.is_shared_library(), elf.needed(), elf.soname());
    let _ = (elf.interpreter(), elf.has_symtab(), elf.entry());
    for name in ELF_NAMES {
        lookup(&elf, name);
    }
    let functions = elf.functions();
    for pair in functions.windows(2) {
        assert!(pair[0].addr < pair[1].addr, "functions() is in address order, one per address");
    }
    for f in &functions {
        check_symbol(f);
    }
    for f in functions.iter().take(MAX_LOOKUPS) {
        lookup(&elf, &f.name);
    }
    for f in elf.program_functions() {
        check_symbol(&f);
    }
    match elf.entry_symbol() {
        Ok(s) => check_symbol(&s),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Resolves `name`; a found symbol must be consistent, an error must print.
fn lookup(elf: &ElfFile, name: &str) {
    match elf.resolve(name) {
        Ok(s) => check_symbol(&s),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// The uprobe offset is the section formula's result, as documented on `Symbol`.
fn check_symbol(s: &Symbol) {
    let delta = s.addr.checked_sub(s.sh_addr).expect("the address lies in its section");
    assert_eq!(s.sh_offset.checked_add(delta), Some(s.offset), "{}", s.formula());
    assert!(!s.aliases.contains(&s.name), "a symbol is not its own alias");
}

/// Text -> `parse_format`: errors name a line of the input (or 0 for the whole
/// text); a parsed format is usable.
pub fn tracefs_format(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match parse_format(&text) {
        Ok(format) => {
            assert!(!format.common_fields.is_empty(), "a format has common fields");
            for field in format.common_fields.iter().chain(&format.fields) {
                assert!(field.offset.checked_add(field.size).is_some(), "{field:?}");
                assert!(!field.name.is_empty() && !field.type_name.is_empty(), "{field:?}");
                assert!(format.field(&field.name).is_some());
                let _ = (field.is_user_string(), field.is_rel_loc());
            }
        }
        Err(e) => {
            if let TracefsError::Format { line, .. } = &e {
                let lines = text.lines().count();
                assert!(*line <= lines, "line {line} of {lines} lines");
            }
            assert!(!e.to_string().is_empty());
        }
    }
}

/// Bytes before the ring's in a `ring_records` input: u64 tail, u64 head, u8 shape.
const RING_PREFIX: usize = 17;
/// Shape bit: the ring is the input's bytes as they are, of any length.
const RAW_LENGTH: u8 = 0x80;
/// Shape bit: head is taken as is (else within one ring length of tail).
const RAW_HEAD: u8 = 0x40;
/// Shape bits: log2 of the ring length when not [`RAW_LENGTH`] (at most 32 KiB).
const LOG2_LEN: u8 = 0x0f;

/// Bytes -> a perf ring data area and reader/writer positions ->
/// `parse_records`. An input is u64 tail, u64 head, u8 shape, then the ring's
/// bytes (see [`ring_input`]).
pub fn ring_records(data: &[u8]) {
    let (tail, head, ring) = ring_input(data);
    let mut scratch = Vec::new();
    let mut seen = 0usize;
    let out = parse_records(&ring, tail, head, &mut scratch, |record| {
        seen += 1;
        if let Record::Sample(bytes) = record {
            assert!(bytes.len() <= ring.len(), "a sample lies inside the ring");
        }
    });
    assert_eq!(out.tail, head, "everything up to head is consumed or skipped");
    assert_eq!(out.records, seen, "each record counted is passed on");
    if tail == head {
        assert_eq!((out.records, out.malformed), (0, 0));
    }
    // A wrapped record is copied into scratch: never more than the ring.
    assert!(scratch.capacity() <= 2 * ring.len().max(8), "scratch grew to {}", scratch.capacity());
}

/// Splits a `ring_records` input into (tail, head, ring bytes). Shape bit
/// [`RAW_LENGTH`]: the ring is the rest of the input, of any length; else it is
/// 2^(shape & [`LOG2_LEN`]) bytes, the rest cut or zero-padded. Shape bit
/// [`RAW_HEAD`]: head as given; else tail + head % (ring length + 1), a
/// position the kernel could have written up to.
fn ring_input(data: &[u8]) -> (u64, u64, Vec<u8>) {
    let mut prefix = [0u8; RING_PREFIX];
    let (given, body) = data.split_at(data.len().min(RING_PREFIX));
    prefix[..given.len()].copy_from_slice(given);
    let [t0, t1, t2, t3, t4, t5, t6, t7, h0, h1, h2, h3, h4, h5, h6, h7, shape] = prefix;
    let tail = u64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]);
    let raw_head = u64::from_le_bytes([h0, h1, h2, h3, h4, h5, h6, h7]);
    let ring = if shape & RAW_LENGTH != 0 {
        body.to_vec()
    } else {
        let mut ring = vec![0u8; 1 << (shape & LOG2_LEN)];
        let n = ring.len().min(body.len());
        ring[..n].copy_from_slice(&body[..n]);
        ring
    };
    let head =
        if shape & RAW_HEAD != 0 { raw_head } else { tail.wrapping_add(raw_head % (ring.len() as u64 + 1)) };
    (tail, head, ring)
}

/// Script text -> parse, check (no schema: tracepoint fields unknown), lower
/// (no kallsyms, tracefs or files: kernel functions lower, the rest are
/// errors) -> every program generated and linked. Errors are fine; a panic, an
/// error without a message, or a program that does not link is not.
pub fn lang_script(data: &[u8]) {
    use trace::codegen::{generate, Helpers, Ids, MapFds, Output};
    use trace::lang::lower::{lower, Env};
    let text = String::from_utf8_lossy(data);
    let program = match trace::lang::compile("fuzz.bt", &text, &trace::lang::NoSchema) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.errors().count() > 0, "an error without a message: {text:?}");
            return;
        }
    };
    let env = Env {
        tracefs: None,
        kallsyms: None,
        filter_functions: None,
        no_kprobes: None,
        cwd: "/nonexistent-fuzz-dir".into(),
        program: None,
        retry_strings: true,
    };
    let Ok(lowered) = lower(&program.checked, &env) else { return };
    let mut maps = MapFds {
        output: Output::Ringbuf,
        events: 3,
        tgids: 4,
        depth: 5,
        pending: 6,
        dropped: 7,
        stacks: 8,
        user: (0..program.checked.maps.len() as i32).map(|i| 9 + i).collect(),
    };
    let helpers = Helpers::for_kernel(trace::kernel::KernelVersion::new(6, 1, 0));
    for output in [Output::Ringbuf, Output::PerfRings] {
        maps.output = output;
        for probe in lowered.plan.probes.iter().chain(&lowered.plan.hidden) {
            match generate(&probe.spec, &maps, helpers, Ids::Immediate) {
                Ok(prog) => assert!(!prog.insns.is_empty()),
                // Too many variables for the stack is the user's; anything else is ours.
                Err(trace::codegen::GenError::StackFull { .. }) => {}
                Err(e) => panic!("{text:?}: {e}"),
            }
        }
    }
}
