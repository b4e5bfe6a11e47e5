//! [`herald_fuzz_targets::routes`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::routes::run(data));
