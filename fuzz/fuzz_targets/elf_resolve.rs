//! The elf_resolve fuzz target: see `trace_fuzz::elf_resolve`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trace_fuzz::elf_resolve(data));
