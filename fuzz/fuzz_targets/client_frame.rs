//! [`herald_fuzz_targets::client_frame`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::client_frame::run(data));
