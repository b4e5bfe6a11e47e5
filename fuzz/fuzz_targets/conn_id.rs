//! [`herald_fuzz_targets::conn_id`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::conn_id::run(data));
