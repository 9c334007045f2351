//! Arbitrary bytes as a gRPC body, in an arbitrary `grpc-encoding`, fed in
//! arbitrary chunks: splitting, bounded decompression and schema-less
//! decoding never panic, stay within their limits, and the incremental
//! counter agrees with the splitter on every chunking.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::grpc::{
    decode_body, split_messages, DecodeLimits, GrpcMessageCounter, PayloadDecoder,
};

const ENCODINGS: [Option<&str>; 5] = [
    None,
    Some("gzip"),
    Some("deflate"),
    Some("identity"),
    Some("zstd"),
];
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let encoding = ENCODINGS[usize::from(control & 7) % ENCODINGS.len()];
    let chunk = 1 + usize::from(control >> 3);
    let body = Bytes::copy_from_slice(body);

    let split = split_messages(&body, usize::MAX);
    let mut counter = GrpcMessageCounter::new();
    for piece in body.chunks(chunk) {
        counter.feed(piece);
    }
    assert_eq!(counter.messages(), split.messages.len() as u64);
    assert_eq!(counter.in_message(), split.cut_off.is_some());

    let limits = DecodeLimits {
        max_messages: 64,
        max_message_bytes: MAX_MESSAGE_BYTES,
        ..DecodeLimits::default()
    };
    let decoded = decode_body(&body, encoding, PayloadDecoder::Schemaless, &limits);
    assert!(decoded.messages.len() <= 64);
    assert_eq!(
        decoded.truncated,
        !decoded.problems.is_empty(),
        "{:?}",
        decoded.problems
    );
});
