#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seqack_fuzz::stack(data);
});
