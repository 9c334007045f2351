//! Arbitrary bytes as a gzip, deflate or br body (or a stack of them): no
//! panic, and never more output than the limit, however the input expands.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::content::decode_content;

const CODINGS: [&str; 5] = ["gzip", "deflate", "br", "deflate, gzip", "gzip, br"];
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let coding = CODINGS[usize::from(which) % CODINGS.len()];
    if let Ok(Some(decoded)) = decode_content(body, coding, LIMIT) {
        assert!(decoded.data.len() <= LIMIT);
    }
});
