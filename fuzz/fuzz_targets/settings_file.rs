//! [`herald_fuzz_targets::settings_file`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::settings_file::run(data));
