//! Fuzzes the ingress frame decoder: arbitrary bytes, fed in arbitrary chunks, must never
//! panic, must keep the buffer bounded, and every decoded frame (client or server, receipts
//! included) must re-encode to a frame that decodes to the same value.
//!
//! ```text
//! cd wire && cargo fuzz run -s none frame_decoder   (stable toolchain, no sanitizer)
//! ```

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use veil_wire::ingress::{ClientFrame, FrameDecoder, ServerFrame};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the chunk size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::new(MAX);
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        while let Some(frame) = decoder.poll_frame() {
            let Ok(raw) = frame else { continue };
            if let Ok(f) = ClientFrame::decode(&raw) {
                let mut out = BytesMut::new();
                f.encode(&mut out);
                let mut again = FrameDecoder::new(usize::MAX);
                again.push(&out);
                let raw2 = again.poll_frame().expect("one frame").expect("valid frame");
                assert_eq!(ClientFrame::decode(&raw2).expect("re-decodes"), f);
            }
            // Server frames too (receipts included): decode, re-encode, decode again.
            if let Ok(f) = ServerFrame::decode(&raw) {
                let mut out = BytesMut::new();
                f.encode(&mut out);
                let mut again = FrameDecoder::new(usize::MAX);
                again.push(&out);
                let raw2 = again.poll_frame().expect("one frame").expect("valid frame");
                assert_eq!(ServerFrame::decode(&raw2).expect("re-decodes"), f);
            }
        }
        assert!(decoder.buffered() <= MAX + 4 + chunk);
    }
});
