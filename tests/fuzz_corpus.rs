//! Replays the committed fuzz corpus (fuzz/corpus/<target>) through the fuzz
//! targets' checks, so each kept input, crash reproducers included, is checked
//! on every test run, without the fuzzing toolchain; and checks that the seeds
//! are the files their names say, so the fuzzer starts from valid input.

use std::path::{Path, PathBuf};

use trace::elf::{ElfFile, ResolveError};
use trace::perf::ring::{parse_records, Record};

#[path = "../fuzz/src/lib.rs"]
mod checks;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `check` on every input of `target`'s corpus, naming the input that fails.
fn replay(target: &str, at_least: usize, check: fn(&[u8])) {
    let files = corpus(target);
    assert!(files.len() >= at_least, "{target}: {} inputs, expected at least {at_least}", files.len());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("{target}: the input {} fails its check", f.display());
        }
    }
}

#[test]
fn elf_corpus_replays() {
    replay("elf_resolve", 10, checks::elf_resolve);
}

#[test]
fn tracefs_corpus_replays() {
    replay("tracefs_format", 9, checks::tracefs_format);
}

#[test]
fn ring_corpus_replays() {
    replay("ring_records", 9, checks::ring_records);
}

fn elf_seed(name: &str) -> ElfFile {
    ElfFile::from_bytes(Path::new(name), seed("elf_resolve", name)).unwrap()
}

#[test]
fn elf_seeds_are_what_they_say() {
    let names = |syms: Vec<trace::elf::Symbol>| syms.into_iter().map(|s| s.name).collect::<Vec<_>>();

    let st = elf_seed("static");
    assert!(st.is_static() && !st.is_pie() && st.has_symtab());
    assert_eq!(names(st.program_functions()), ["weak_fn", "native", "with_asm"].map(String::from));
    assert_eq!(st.entry_symbol().unwrap().name, "_start");

    let sp = elf_seed("static-pie");
    assert!(sp.is_static() && sp.is_pie());
    assert!(!elf_seed("stripped").has_symtab());

    let lib = elf_seed("libtiny.so.1");
    assert!(lib.is_shared_library());
    assert_eq!(lib.soname().as_deref(), Some("libtiny.so.1"));
    let (old, new) = (lib.resolve("api@VER_1").unwrap(), lib.resolve("api").unwrap());
    assert_eq!(lib.resolve("api@@VER_2").unwrap(), new);
    assert_ne!(old.addr, new.addr);
    assert!(matches!(lib.resolve("fast"), Err(ResolveError::Ifunc { .. })));

    let user = elf_seed("uses-lib");
    assert_eq!(user.needed(), ["libtiny.so.1"]);
    assert!(user.is_pie() && !user.is_static());
    match user.resolve("api") {
        Err(ResolveError::Import { library, .. }) => assert_eq!(library.as_deref(), Some("libtiny.so.1")),
        other => panic!("api in uses-lib: {other:?}"),
    }

    for broken in ["static-cut-40", "static-cut-100", "uses-lib-cut-half", "static-bogus-shoff"] {
        let e = ElfFile::from_bytes(Path::new(broken), seed("elf_resolve", broken)).unwrap_err();
        assert!(e.to_string().starts_with(broken), "{broken}: {e}");
    }
}

#[test]
fn ring_seeds_are_what_they_say() {
    // u64 tail, u64 head (offset from tail), u8 log2 of the ring length, the ring.
    let input = seed("ring_records", "one-sample");
    let (tail, head, shape) = (&input[0..8], &input[8..16], input[16]);
    assert_eq!((tail, head, shape), (&[0u8; 8][..], &32u64.to_le_bytes()[..], 6));
    let ring = &input[17..];
    let mut samples = Vec::new();
    let out = parse_records(ring, 0, 32, &mut Vec::new(), |r| match r {
        Record::Sample(bytes) => samples.push(bytes.to_vec()),
        other => panic!("{other:?}"),
    });
    assert_eq!((out.tail, out.records, out.malformed), (32, 1, 0));
    assert_eq!(samples, [b"\x01\0\0\0open\0*******".to_vec()]);
}

#[test]
fn lang_corpus_replays() {
    replay("lang_script", 8, checks::lang_script);
}
