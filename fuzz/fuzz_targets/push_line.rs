//! [`herald_fuzz_targets::push_line`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::push_line::run(data));
