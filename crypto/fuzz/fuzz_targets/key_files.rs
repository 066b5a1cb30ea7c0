//! Committee files and key share files never panic their parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_crypto::{PublicKeySet, SecretKeyShare};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PublicKeySet::from_json(text);
        let _ = SecretKeyShare::from_json(text);
    }
});
