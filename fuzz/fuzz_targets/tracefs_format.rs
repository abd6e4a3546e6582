//! The tracefs_format fuzz target: see `trace_fuzz::tracefs_format`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trace_fuzz::tracefs_format(data));
