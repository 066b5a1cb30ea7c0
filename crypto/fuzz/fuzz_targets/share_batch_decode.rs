//! Share batches from the wire (postcard and JSON) never panic the decoder or the verifier.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veil_crypto::testing::TestCommittee;
use veil_crypto::SignedShareBatch;

fn committee() -> &'static TestCommittee {
    static C: OnceLock<TestCommittee> = OnceLock::new();
    C.get_or_init(|| TestCommittee::new(4, 1, 1))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = postcard::from_bytes::<SignedShareBatch>(data) {
        let _ = committee().pks.verify_share_batch(&batch);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(batch) = serde_json::from_str::<SignedShareBatch>(text) {
            let _ = committee().pks.verify_share_batch(&batch);
        }
    }
});
