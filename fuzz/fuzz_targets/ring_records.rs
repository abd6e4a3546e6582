//! The ring_records fuzz target: see `trace_fuzz::ring_records`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trace_fuzz::ring_records(data));
