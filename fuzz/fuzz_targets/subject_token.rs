//! [`herald_fuzz_targets::subject_token`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::subject_token::run(data));
