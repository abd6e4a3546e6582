//! The lang_script fuzz target: see `trace_fuzz::lang_script`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trace_fuzz::lang_script(data));
