//! [`herald_fuzz_targets::websocket_frames`] under libFuzzer.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz_targets::websocket_frames::run(data));
