//! Counting gRPC messages on the fly, whatever the capture limit.
//!
//! A captured body stops at the capture limit, so counting messages in it
//! undercounts long streams. [`GrpcMessageCounter`] is fed every DATA
//! payload of one direction of a stream as it passes, and follows only the
//! 5-byte length prefixes: it copies nothing, allocates nothing and skips
//! over payloads in O(1) per chunk, so the HTTP/2 decoder can run one per
//! direction of every gRPC stream and report exact counts.

use crate::Direction;

/// The gRPC length-prefixed message framing, followed across chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcMessageCounter {
    /// Messages whose payload has been seen to its end.
    complete: u64,
    /// Of those, the ones whose compressed flag was set.
    compressed: u64,
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading a prefix: `have` of its 5 bytes are in `prefix`.
    Prefix { have: u8, prefix: [u8; 5] },
    /// Skipping the payload of a message: `remaining` bytes still to come.
    Payload { remaining: u32, compressed: bool },
}

impl Default for State {
    fn default() -> Self {
        State::Prefix {
            have: 0,
            prefix: [0; 5],
        }
    }
}

impl GrpcMessageCounter {
    /// A counter at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows the next bytes of the body (a DATA frame's payload, padding
    /// excluded), in order.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Prefix { have, prefix } => {
                    let start = usize::from(*have);
                    let take = (5 - start).min(data.len());
                    prefix[start..start + take].copy_from_slice(&data[..take]);
                    *have += take as u8;
                    data = &data[take..];
                    if *have == 5 {
                        let compressed = prefix[0] & 1 == 1;
                        let length =
                            u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
                        self.start_payload(length, compressed);
                    }
                }
                State::Payload {
                    remaining,
                    compressed,
                } => {
                    let take = (*remaining as usize).min(data.len());
                    *remaining -= take as u32;
                    data = &data[take..];
                    if *remaining == 0 {
                        let compressed = *compressed;
                        self.complete_message(compressed);
                    }
                }
            }
        }
    }

    fn start_payload(&mut self, length: u32, compressed: bool) {
        if length == 0 {
            self.complete_message(compressed);
        } else {
            self.state = State::Payload {
                remaining: length,
                compressed,
            };
        }
    }

    fn complete_message(&mut self, compressed: bool) {
        self.complete += 1;
        self.compressed += u64::from(compressed);
        self.state = State::default();
    }

    /// Messages seen to their last byte. A message cut off (by a reset, or
    /// a body that ended early) is not among them; see [`Self::in_message`].
    pub fn messages(&self) -> u64 {
        self.complete
    }

    /// How many of [`Self::messages`] had their compressed flag set.
    pub fn compressed_messages(&self) -> u64 {
        self.compressed
    }

    /// Whether the bytes fed so far end inside a message (or its prefix):
    /// true at the end of a body means its last message was cut off.
    pub fn in_message(&self) -> bool {
        !matches!(self.state, State::Prefix { have: 0, .. })
    }
}

/// The two counters of one gRPC stream (one per direction), as the HTTP/2
/// decoder keeps them next to the stream's other state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamMessageCounters {
    /// Client to server.
    pub request: GrpcMessageCounter,
    /// Server to client.
    pub response: GrpcMessageCounter,
}

impl StreamMessageCounters {
    /// Feeds a DATA payload that travelled in `direction`
    /// (`ClientToTarget` is the request).
    pub fn feed(&mut self, direction: Direction, data: &[u8]) {
        match direction {
            Direction::ClientToTarget => self.request.feed(data),
            Direction::TargetToClient => self.response.feed(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(compressed: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::from(compressed)];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn body() -> Vec<u8> {
        let mut body = frame(false, b"first");
        body.extend(frame(false, b""));
        body.extend(frame(true, &[7; 300]));
        body.extend(frame(false, b"x"));
        body
    }

    #[test]
    fn counts_a_whole_body_in_one_chunk() {
        let mut c = GrpcMessageCounter::new();
        c.feed(&body());
        assert_eq!(c.messages(), 4);
        assert_eq!(c.compressed_messages(), 1);
        assert!(!c.in_message());
    }

    #[test]
    fn counts_the_same_across_every_split_point_and_byte_by_byte() {
        let body = body();
        for split in 0..=body.len() {
            let mut c = GrpcMessageCounter::new();
            c.feed(&body[..split]);
            c.feed(&body[split..]);
            assert_eq!(c.messages(), 4, "split at {split}");
            assert!(!c.in_message());
        }
        let mut c = GrpcMessageCounter::new();
        for byte in &body {
            c.feed(std::slice::from_ref(byte));
        }
        assert_eq!(c.messages(), 4);
        assert_eq!(c.compressed_messages(), 1);
    }

    #[test]
    fn counts_messages_only_when_complete() {
        let body = frame(false, b"hello");
        let mut c = GrpcMessageCounter::new();
        c.feed(&body[..3]);
        assert_eq!(c.messages(), 0);
        assert!(c.in_message(), "inside the prefix");
        c.feed(&body[3..8]);
        assert_eq!(c.messages(), 0);
        assert!(c.in_message(), "inside the payload");
        c.feed(&body[8..]);
        assert_eq!(c.messages(), 1);
        assert!(!c.in_message());
    }

    #[test]
    fn a_huge_declared_length_is_skipped_without_buffering() {
        let mut c = GrpcMessageCounter::new();
        c.feed(&[0, 0xff, 0xff, 0xff, 0xff]);
        for _ in 0..4 {
            c.feed(&[0u8; 1 << 16]);
        }
        assert_eq!(c.messages(), 0);
        assert!(c.in_message());
    }

    #[test]
    fn stream_counters_route_by_direction() {
        let mut s = StreamMessageCounters::default();
        s.feed(Direction::ClientToTarget, &frame(false, b"req"));
        s.feed(Direction::TargetToClient, &frame(false, b"a"));
        s.feed(Direction::TargetToClient, &frame(false, b"b"));
        assert_eq!(s.request.messages(), 1);
        assert_eq!(s.response.messages(), 2);
    }
}
