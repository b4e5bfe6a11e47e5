//! [`herald_fuzz_targets::control_op`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::control_op::run(data));
