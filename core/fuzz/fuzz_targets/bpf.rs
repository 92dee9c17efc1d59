#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pw_fuzz::bpf::run(data));
