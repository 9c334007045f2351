//! gRPC's length-prefixed messages: splitting a captured body into them and
//! undoing their compression.
//!
//! On the wire each message is a 1-byte flag (bit 0: compressed with the
//! stream's `grpc-encoding`), a 4-byte big-endian length and the payload.
//! A captured body may stop anywhere (capture limit, reset), so the last
//! message may be cut off: that is reported, never a panic.

use bytes::Bytes;

use crate::content::decode_content;
use crate::http::CapturedBody;

/// Bytes before each payload: the flag and the length.
pub const PREFIX_LEN: usize = 5;

/// One message as it appears in the captured body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedMessage {
    /// The compressed flag was set: the payload is in the stream's
    /// `grpc-encoding`.
    pub compressed: bool,
    /// The payload as sent (a slice of the captured body, not a copy).
    pub payload: Bytes,
}

/// A message whose prefix or payload the captured body does not hold whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutOffMessage {
    /// The payload length its prefix declares; `None` if even the prefix was
    /// cut off.
    pub declared_length: Option<u32>,
    /// Bytes of it (prefix included) that were captured.
    pub captured: usize,
}

/// A captured body split into its messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FramedMessages {
    /// Complete messages, in order, at most the `max_messages` asked for.
    pub messages: Vec<FramedMessage>,
    /// Complete messages after those, counted but not kept.
    pub omitted: u64,
    /// The captured body ends inside this message.
    pub cut_off: Option<CutOffMessage>,
}

/// Splits a captured body (`data`, as sent) into its messages, keeping at
/// most `max_messages` of them (a body of zero-length messages holds one
/// every 5 bytes). Payloads are slices of `data`: no copying.
pub fn split_messages(data: &Bytes, max_messages: usize) -> FramedMessages {
    let mut out = FramedMessages::default();
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let Some(length) = declared_length(rest) else {
            out.cut_off = Some(CutOffMessage {
                declared_length: None,
                captured: rest.len(),
            });
            break;
        };
        let end = PREFIX_LEN as u64 + u64::from(length);
        if end > rest.len() as u64 {
            out.cut_off = Some(CutOffMessage {
                declared_length: Some(length),
                captured: rest.len(),
            });
            break;
        }
        let end = at + end as usize;
        if out.messages.len() < max_messages {
            out.messages.push(FramedMessage {
                compressed: data[at] & 1 == 1,
                payload: data.slice(at + PREFIX_LEN..end),
            });
        } else {
            out.omitted += 1;
        }
        at = end;
    }
    out
}

fn declared_length(rest: &[u8]) -> Option<u32> {
    let prefix: [u8; PREFIX_LEN] = rest.get(..PREFIX_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes([
        prefix[1], prefix[2], prefix[3], prefix[4],
    ]))
}

/// A message count and whether it is the true count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCount {
    /// Messages seen in the body.
    pub messages: u64,
    /// False when the body was captured only in part: messages past the
    /// capture could not be seen, so `messages` is a lower bound.
    pub exact: bool,
}

/// Counts the messages of a body from its captured part alone: a message
/// counts if its prefix was captured and the whole body (`body.size`) is long
/// enough to hold it. Exact when the body was captured whole; a lower bound
/// otherwise (a [`super::GrpcMessageCounter`] fed while the body passed is
/// exact either way).
pub fn count_captured(body: &CapturedBody) -> MessageCount {
    let data = &body.data[..];
    let mut messages = 0;
    let mut at: u64 = 0;
    while let Some(length) = data.get(at as usize..).and_then(declared_length) {
        let end = at + PREFIX_LEN as u64 + u64::from(length);
        if end > body.size {
            break;
        }
        messages += 1;
        at = end;
        if at >= data.len() as u64 {
            break;
        }
    }
    MessageCount {
        messages,
        exact: !body.truncated(),
    }
}

/// A message payload ready to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The message's bytes, decompressed if they were compressed.
    pub data: Bytes,
    /// Decompression stopped early: the output limit was reached, or the
    /// compressed data was broken.
    pub truncated: bool,
}

/// The payload of `message` with its compression undone, keeping at most
/// `limit` decompressed bytes (a small compressed message can expand
/// enormously). `encoding` is the stream's `grpc-encoding` header. An
/// encoding this cannot undo (`snappy`, `zstd` …) is an error naming it.
pub fn decompress(
    message: &FramedMessage,
    encoding: Option<&str>,
    limit: usize,
) -> Result<Payload, String> {
    if !message.compressed {
        return Ok(Payload {
            data: message.payload.clone(),
            truncated: false,
        });
    }
    let encoding = encoding.unwrap_or("").trim();
    match encoding.to_ascii_lowercase().as_str() {
        // gRPC's "deflate" is zlib-wrapped; decode_content also accepts raw.
        "gzip" | "deflate" => {}
        "" | "identity" => {
            return Err(format!(
                "message flagged compressed but grpc-encoding is {:?}",
                if encoding.is_empty() {
                    "absent"
                } else {
                    encoding
                }
            ))
        }
        other => return Err(format!("cannot decompress grpc-encoding {other:?}")),
    }
    let decoded = decode_content(&message.payload, encoding, limit)?
        .ok_or_else(|| format!("grpc-encoding {encoding:?} undid nothing"))?;
    Ok(Payload {
        data: Bytes::from(decoded.data),
        truncated: decoded.truncated,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn frame(compressed: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::from(compressed)];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

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

    #[test]
    fn splits_messages_as_slices_of_the_body() {
        let mut body = frame(false, b"one");
        body.extend(frame(false, b""));
        body.extend(frame(true, b"three"));
        let body = Bytes::from(body);
        let split = split_messages(&body, 100);
        assert_eq!(split.messages.len(), 3);
        assert_eq!(&split.messages[0].payload[..], b"one");
        assert_eq!(split.messages[0].payload.as_ptr(), body[5..].as_ptr());
        assert_eq!(&split.messages[1].payload[..], b"");
        assert!(split.messages[2].compressed);
        assert_eq!(&split.messages[2].payload[..], b"three");
        assert_eq!(split.cut_off, None);
        assert_eq!(split.omitted, 0);
    }

    #[test]
    fn a_cut_off_last_message_is_reported() {
        let mut body = frame(false, b"whole");
        body.extend(&frame(false, b"cut off here")[..9]);
        let split = split_messages(&Bytes::from(body.clone()), 100);
        assert_eq!(split.messages.len(), 1);
        assert_eq!(
            split.cut_off,
            Some(CutOffMessage {
                declared_length: Some(12),
                captured: 9
            })
        );
        body.truncate(13);
        let split = split_messages(&Bytes::from(body), 100);
        assert_eq!(
            split.cut_off,
            Some(CutOffMessage {
                declared_length: None,
                captured: 3
            })
        );
    }

    #[test]
    fn messages_past_the_limit_are_counted_not_kept() {
        let body: Vec<u8> = (0..10).flat_map(|_| frame(false, b"")).collect();
        let split = split_messages(&Bytes::from(body), 4);
        assert_eq!(split.messages.len(), 4);
        assert_eq!(split.omitted, 6);
    }

    #[test]
    fn captured_counts_are_exact_when_whole_and_lower_bounds_when_not() {
        let mut full = Vec::new();
        for i in 0..10u8 {
            full.extend(frame(false, &[i; 20]));
        }
        let whole = CapturedBody {
            data: Bytes::from(full.clone()),
            size: full.len() as u64,
        };
        assert_eq!(
            count_captured(&whole),
            MessageCount {
                messages: 10,
                exact: true
            }
        );
        // Capture 2 messages and the prefix of the third: three are known.
        let part = CapturedBody {
            data: Bytes::from(full[..2 * 25 + 7].to_vec()),
            size: full.len() as u64,
        };
        assert_eq!(
            count_captured(&part),
            MessageCount {
                messages: 3,
                exact: false
            }
        );
        // A body that really ended mid-message does not count that message.
        let ended = CapturedBody {
            data: Bytes::from(full[..2 * 25 + 7].to_vec()),
            size: 2 * 25 + 7,
        };
        assert_eq!(
            count_captured(&ended),
            MessageCount {
                messages: 2,
                exact: true
            }
        );
    }

    #[test]
    fn gzip_and_deflate_messages_decompress() {
        let text = b"a protobuf payload, compressed".repeat(10);
        for (payload, encoding) in [(gzip(&text), "gzip"), (zlib(&text), "deflate")] {
            let message = FramedMessage {
                compressed: true,
                payload: Bytes::from(payload),
            };
            let out = decompress(&message, Some(encoding), 1 << 20).unwrap();
            assert_eq!(out.data, text, "{encoding}");
            assert!(!out.truncated);
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let message = FramedMessage {
            compressed: true,
            payload: Bytes::from(gzip(&vec![0; 1 << 20])),
        };
        let out = decompress(&message, Some("gzip"), 1000).unwrap();
        assert_eq!(out.data.len(), 1000);
        assert!(out.truncated);
    }

    #[test]
    fn unknown_or_missing_encodings_are_reported() {
        let message = FramedMessage {
            compressed: true,
            payload: Bytes::from_static(b"??"),
        };
        assert_eq!(
            decompress(&message, Some("snappy"), 10),
            Err("cannot decompress grpc-encoding \"snappy\"".to_string())
        );
        assert!(decompress(&message, None, 10)
            .unwrap_err()
            .contains("absent"));
        // Uncompressed messages ignore the encoding.
        let plain = FramedMessage {
            compressed: false,
            payload: Bytes::from_static(b"raw"),
        };
        assert_eq!(
            &decompress(&plain, Some("zstd"), 10).unwrap().data[..],
            b"raw"
        );
    }
}
