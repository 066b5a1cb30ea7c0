//! Strict ciphertext decoding never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_crypto::Ciphertext;

fuzz_target!(|data: &[u8]| {
    if let Ok(ct) = Ciphertext::from_bytes(data) {
        assert_eq!(ct.as_bytes(), data);
        assert_eq!(Ciphertext::from_bytes(ct.as_bytes()).as_ref(), Ok(&ct));
    }
});
