//! Undoing an HTTP `Content-Encoding` (gzip, deflate, br) on a captured body.
//!
//! The proxy records bodies exactly as sent; views decode them on demand
//! with [`decode_content`], so decompression never runs on the traffic path.
//! Output is bounded by a limit (a small compressed body can expand
//! enormously), and a body captured only in part decodes as far as it goes.

use std::io::Read;

/// A body with its content codings undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedContent {
    /// The decoded bytes, at most the limit asked for.
    pub data: Vec<u8>,
    /// The codings undone, as listed in `Content-Encoding` (`gzip`, `br` …).
    pub codings: Vec<String>,
    /// The result is incomplete: it reached the limit, or the input ended
    /// (or broke) before the compressed stream did.
    pub truncated: bool,
}

/// Decodes `body` by the codings of a `Content-Encoding` value (applied in
/// the order listed, so undone in reverse), keeping at most `limit` bytes.
/// `Ok(None)` when there is nothing to undo (no coding, or only `identity`);
/// an error names a coding this cannot undo.
pub fn decode_content(
    body: &[u8],
    content_encoding: &str,
    limit: usize,
) -> Result<Option<DecodedContent>, String> {
    let codings: Vec<String> = content_encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() {
        return Ok(None);
    }
    let mut reader: Box<dyn Read + '_> = Box::new(body);
    for coding in codings.iter().rev() {
        reader = match coding.as_str() {
            "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            // RFC 9110 says zlib-wrapped; some servers send raw deflate.
            "deflate" if looks_like_zlib(body) || codings.len() > 1 => {
                Box::new(flate2::read::ZlibDecoder::new(reader))
            }
            "deflate" => Box::new(flate2::read::DeflateDecoder::new(reader)),
            "br" => Box::new(brotli_decompressor::Decompressor::new(reader, 4096)),
            other => return Err(format!("cannot decode content coding {other:?}")),
        };
    }
    let mut data = Vec::new();
    // On an error (input cut short), what was decoded so far stays in `data`.
    let complete = reader.take(limit as u64 + 1).read_to_end(&mut data).is_ok();
    let over = data.len() > limit;
    data.truncate(limit);
    Ok(Some(DecodedContent {
        data,
        codings,
        truncated: over || !complete,
    }))
}

/// A zlib header: CM = 8 and the check bits make the first two bytes a multiple of 31.
fn looks_like_zlib(body: &[u8]) -> bool {
    body.len() >= 2
        && body[0] & 0x0f == 8
        && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const TEXT: &[u8] =
        b"{\"items\":[1,2,3],\"note\":\"compressed on the wire, readable in the event\"}";

    #[test]
    fn gzip_and_both_deflate_flavours() {
        for (body, coding) in [
            (gzip(TEXT), "gzip"),
            (zlib(TEXT), "deflate"),
            (raw_deflate(TEXT), "deflate"),
        ] {
            let d = decode_content(&body, coding, 1 << 20).unwrap().unwrap();
            assert_eq!(d.data, TEXT, "{coding}");
            assert!(!d.truncated);
            assert_eq!(d.codings, [coding]);
        }
    }

    #[test]
    fn brotli() {
        let mut body = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut body, 4096, 5, 22);
            w.write_all(TEXT).unwrap();
        }
        let d = decode_content(&body, "br", 1 << 20).unwrap().unwrap();
        assert_eq!(d.data, TEXT);
        assert!(!d.truncated);
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse() {
        let body = gzip(&zlib(TEXT));
        let d = decode_content(&body, "deflate, gzip", 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(d.data, TEXT);
    }

    #[test]
    fn identity_or_nothing_means_nothing_to_do() {
        assert_eq!(decode_content(TEXT, "identity", 100), Ok(None));
        assert_eq!(decode_content(TEXT, " ", 100), Ok(None));
    }

    #[test]
    fn output_is_bounded_against_bombs() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        let d = decode_content(&bomb, "gzip", 4096).unwrap().unwrap();
        assert_eq!(d.data.len(), 4096);
        assert!(d.truncated);
    }

    #[test]
    fn a_captured_prefix_decodes_as_far_as_it_goes() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| i.to_string().into_bytes())
            .collect();
        let body = gzip(&text);
        let d = decode_content(&body[..body.len() / 2], "gzip", 1 << 20)
            .unwrap()
            .unwrap();
        assert!(d.truncated);
        assert!(!d.data.is_empty());
        assert_eq!(
            d.data[..],
            text[..d.data.len()],
            "what decodes is a true prefix"
        );
    }

    #[test]
    fn unknown_codings_are_named() {
        assert_eq!(
            decode_content(b"x", "zstd", 10),
            Err("cannot decode content coding \"zstd\"".into())
        );
    }
}
