#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pw_fuzz::parallel::run(data));
