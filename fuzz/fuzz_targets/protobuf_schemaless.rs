//! Arbitrary bytes as a protobuf message without a schema: no panic, no
//! stack overflow (nesting is bounded), and output linear in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::grpc::{decode_schemaless, DEFAULT_MAX_DEPTH};

fuzz_target!(|data: &[u8]| {
    let value = decode_schemaless(data, DEFAULT_MAX_DEPTH);
    // The widest case is a 5-byte fixed32 field printed as
    // `"1":{"fixed32":…,"float":…}`, about 60 characters.
    let printed = value.to_string();
    assert!(
        printed.len() <= 16 * data.len() + 64,
        "{} bytes printed from {}",
        printed.len(),
        data.len()
    );
});
