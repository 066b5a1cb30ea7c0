//! Fuzzes the keyper protocol's frame decoders (`KEYPER.md`): arbitrary bytes, fed in
//! arbitrary chunks, must never panic, must keep the buffer bounded, and every frame either
//! side decodes must re-encode to a frame that decodes to the same value.
//!
//! ```text
//! cd wire && cargo fuzz run -s none keyper_frames   (stable toolchain, no sanitizer)
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_wire::frame::RawFrame;
use veil_wire::keyper::{FrameDecoder, KeyperFrame, SequencerFrame};

/// Far below the protocol's 8 MiB, so that inputs reach the oversized-frame path.
const MAX: usize = 4096;

fn reframe(bytes: &[u8]) -> RawFrame {
    let mut again = FrameDecoder::new(usize::MAX);
    again.push(bytes);
    again.poll_frame().expect("one frame").expect("valid frame")
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the chunk size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::new(MAX);
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        while let Some(frame) = decoder.poll_frame() {
            let Ok(raw) = frame else { continue };
            if let Ok(f) = KeyperFrame::decode(&raw) {
                let again = KeyperFrame::decode(&reframe(&f.to_bytes())).expect("re-decodes");
                assert_eq!(again, f);
            }
            if let Ok(f) = SequencerFrame::decode(&raw) {
                let again = SequencerFrame::decode(&reframe(&f.to_bytes())).expect("re-decodes");
                assert_eq!(again, f);
            }
        }
        assert!(decoder.buffered() <= MAX + 4 + chunk);
    }
});
