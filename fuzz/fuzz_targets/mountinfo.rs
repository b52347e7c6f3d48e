#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hangscope_collect::fuzzing::mountinfo(data));
