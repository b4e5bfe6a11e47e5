//! [`herald_fuzz_targets::handler_response`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::handler_response::run(data));
