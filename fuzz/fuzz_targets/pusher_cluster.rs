//! [`herald_fuzz_targets::pusher_cluster`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::pusher_cluster::run(data));
