//! One direction of an HTTP/1.x connection cut into its parts: heads, body
//! pieces, trailers, message ends.
//!
//! This is the incremental half that `httparse` does not do: finding a head
//! that may arrive split across any number of chunks, following a body
//! framed by length, by chunks (with extensions and trailers) or by the
//! connection's close, and doing it without copying body bytes: body pieces
//! come out as slices of the chunk the proxy forwarded.

use bytes::{Bytes, BytesMut};

use crate::decoder::Fault;

/// How the body after a head is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    UntilClose,
    /// No more HTTP on this connection (after 101 or CONNECT): ignore the rest.
    Tunnel,
}

/// A part of the stream.
#[derive(Debug)]
pub(super) enum Part {
    /// A complete message head, CRLFs included.
    Head(Bytes),
    Body(Bytes),
    /// The trailer section of a chunked body (empty if there is none),
    /// which also ends the body.
    Trailers(Bytes),
}

#[derive(Debug)]
enum State {
    Head,
    Length { remaining: u64 },
    ChunkSize,
    ChunkData { remaining: u64 },
    ChunkDataEnd,
    Trailers,
    UntilClose,
    Tunnel,
}

/// Upper bounds that keep a connection's memory in check.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

pub(super) struct Reader {
    state: State,
    /// A head, chunk-size line or trailer section that spans chunks.
    pending: BytesMut,
    max_head: usize,
    /// Bytes of this direction consumed so far.
    offset: u64,
    /// Where the head, line or trailer block being read began: the offset a
    /// failure to parse it points at.
    unit_start: u64,
}

impl Reader {
    pub(super) fn new(max_head: usize) -> Self {
        Self {
            state: State::Head,
            pending: BytesMut::new(),
            max_head,
            offset: 0,
            unit_start: 0,
        }
    }

    /// Whether the reader is between messages (nothing of the next one seen).
    pub(super) fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.pending.is_empty()
    }

    /// The stream offset of the unit (head, chunk line, trailers) read last
    /// or being read: where a parse failure points.
    pub(super) fn unit_start(&self) -> u64 {
        self.unit_start
    }

    pub(super) fn is_until_close(&self) -> bool {
        matches!(self.state, State::UntilClose)
    }

    /// After a head: how its body is framed.
    pub(super) fn set_framing(&mut self, framing: Framing) {
        self.state = match framing {
            Framing::Length(0) => State::Head,
            Framing::Length(n) => State::Length { remaining: n },
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
            Framing::Tunnel => State::Tunnel,
        };
    }

    /// The next part from `chunk[*pos..]`, advancing `pos`; `Ok(None)` when
    /// the chunk is used up (or only part of a head/line remains, which is
    /// kept for the next chunk). A zero-length body is reported by the caller
    /// after `set_framing(Length(0))`, not here.
    pub(super) fn next(&mut self, chunk: &Bytes, pos: &mut usize) -> Result<Option<Part>, Fault> {
        loop {
            let rest = &chunk[*pos..];
            if rest.is_empty() {
                return Ok(None);
            }
            match &mut self.state {
                State::Tunnel => {
                    self.advance(pos, rest.len());
                    return Ok(None);
                }
                State::Head => {
                    // Empty lines between messages are allowed and skipped.
                    if self.skip_empty_lines(chunk, pos) > 0 {
                        continue;
                    }
                    return match self.take_block(chunk, pos, self.max_head, "message head")? {
                        Some(head) => Ok(Some(Part::Head(head))),
                        None => Ok(None),
                    };
                }
                State::Length { remaining } => {
                    let n = (*remaining).min(rest.len() as u64) as usize;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Head;
                    }
                    let body = chunk.slice(*pos..*pos + n);
                    self.advance(pos, n);
                    return Ok(Some(Part::Body(body)));
                }
                State::UntilClose => {
                    let body = chunk.slice(*pos..);
                    self.advance(pos, rest.len());
                    return Ok(Some(Part::Body(body)));
                }
                State::ChunkSize => {
                    let Some(line) = self.take_line(chunk, pos)? else {
                        return Ok(None);
                    };
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData { remaining: size }
                    };
                }
                State::ChunkData { remaining } => {
                    let n = (*remaining).min(rest.len() as u64) as usize;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::ChunkDataEnd;
                    }
                    let body = chunk.slice(*pos..*pos + n);
                    self.advance(pos, n);
                    return Ok(Some(Part::Body(body)));
                }
                State::ChunkDataEnd => {
                    let Some(line) = self.take_line(chunk, pos)? else {
                        return Ok(None);
                    };
                    if !line.iter().all(|&b| b == b'\r' || b == b'\n') {
                        return Err(Fault::malformed(
                            "chunk data is longer than its declared size",
                        ));
                    }
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    // The trailer section ends at an empty line; often it is
                    // just that empty line.
                    if self.pending.is_empty()
                        && (rest.starts_with(b"\r\n") || rest.starts_with(b"\n"))
                    {
                        let n = if rest[0] == b'\r' { 2 } else { 1 };
                        self.advance(pos, n);
                        self.state = State::Head;
                        return Ok(Some(Part::Trailers(Bytes::new())));
                    }
                    if rest == b"\r" && self.pending.is_empty() {
                        // The empty line is split across chunks.
                        self.pending.extend_from_slice(rest);
                        self.advance(pos, 1);
                        return Ok(None);
                    }
                    if self.pending.as_ref() == b"\r" && rest[0] == b'\n' {
                        self.pending.clear();
                        self.advance(pos, 1);
                        self.state = State::Head;
                        return Ok(Some(Part::Trailers(Bytes::new())));
                    }
                    return match self.take_block(chunk, pos, MAX_TRAILERS, "trailer section")? {
                        Some(block) => {
                            self.state = State::Head;
                            Ok(Some(Part::Trailers(block)))
                        }
                        None => Ok(None),
                    };
                }
            }
        }
    }

    /// Skips the empty lines allowed between messages (RFC 9112 §2.2), if
    /// the reader is between messages; returns how many bytes. The request
    /// gate calls this itself to tell those bytes, which it forwards at
    /// once, from the bytes of a head, which it holds.
    pub(super) fn skip_empty_lines(&mut self, chunk: &[u8], pos: &mut usize) -> usize {
        if !self.is_idle() {
            return 0;
        }
        let skip = chunk[*pos..]
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        self.advance(pos, skip);
        skip
    }

    /// The bytes kept of an unfinished head, line or trailer section,
    /// leaving the reader with none. After a failed `next` they may also
    /// hold bytes of that call's chunk that `pos` was not advanced over.
    pub(super) fn take_pending(&mut self) -> BytesMut {
        self.pending.split()
    }

    /// Whether the message just finished (the state went back to `Head`
    /// after a body). The caller asks after each `Body`/`Trailers` part.
    pub(super) fn body_complete(&self) -> bool {
        matches!(self.state, State::Head)
    }

    fn advance(&mut self, pos: &mut usize, n: usize) {
        *pos += n;
        self.offset += n as u64;
    }

    /// A block ending with an empty line (a head or trailer section),
    /// possibly spread over chunks. Returned as a slice of `chunk` when it
    /// lies within it, else joined (bounded by `max`).
    fn take_block(
        &mut self,
        chunk: &Bytes,
        pos: &mut usize,
        max: usize,
        what: &str,
    ) -> Result<Option<Bytes>, Fault> {
        let rest = &chunk[*pos..];
        if self.pending.is_empty() {
            self.unit_start = self.offset;
            if let Some(end) = find_block_end(rest, 0) {
                let block = chunk.slice(*pos..*pos + end);
                self.advance(pos, end);
                return Ok(Some(block));
            }
            if rest.len() > max {
                return Err(Fault::limit(format!("{what} longer than {max} bytes")));
            }
            self.pending.extend_from_slice(rest);
            self.advance(pos, rest.len());
            return Ok(None);
        }
        // Search from a little before the join, where the terminator may straddle it.
        let resume = self.pending.len().saturating_sub(3);
        let room = max.saturating_sub(self.pending.len());
        let take = rest.len().min(room + 4);
        self.pending.extend_from_slice(&rest[..take]);
        match find_block_end(&self.pending, resume) {
            Some(end) => {
                let from_chunk = end - (self.pending.len() - take);
                self.pending.truncate(end);
                self.advance(pos, from_chunk);
                Ok(Some(self.pending.split().freeze()))
            }
            None if self.pending.len() > max => {
                Err(Fault::limit(format!("{what} longer than {max} bytes")))
            }
            None => {
                self.advance(pos, take);
                Ok(None)
            }
        }
    }

    /// A line (up to and including its LF), possibly spread over chunks.
    fn take_line(&mut self, chunk: &Bytes, pos: &mut usize) -> Result<Option<Bytes>, Fault> {
        let rest = &chunk[*pos..];
        if self.pending.is_empty() {
            self.unit_start = self.offset;
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = if self.pending.is_empty() {
                    chunk.slice(*pos..*pos + i + 1)
                } else {
                    self.pending.extend_from_slice(&rest[..=i]);
                    self.pending.split().freeze()
                };
                self.advance(pos, i + 1);
                if line.len() > MAX_CHUNK_LINE {
                    return Err(Fault::limit(format!(
                        "chunk line longer than {MAX_CHUNK_LINE} bytes"
                    )));
                }
                Ok(Some(line))
            }
            None => {
                if self.pending.len() + rest.len() > MAX_CHUNK_LINE {
                    return Err(Fault::limit(format!(
                        "chunk line longer than {MAX_CHUNK_LINE} bytes"
                    )));
                }
                self.pending.extend_from_slice(rest);
                self.advance(pos, rest.len());
                Ok(None)
            }
        }
    }
}

/// The length of a block up to and including its terminating empty line
/// (`\n\n` or `\n\r\n`), searching from `from`.
fn find_block_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        let nl = buf[i..].iter().position(|&b| b == b'\n')? + i;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// `1a;ext=1\r\n` → 26.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Fault> {
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((_, size))) => Ok(size),
        _ => Err(Fault::malformed(format!(
            "invalid chunk size line {:?}",
            String::from_utf8_lossy(line).trim_end()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureKind;

    /// Feeds `input` in pieces of `step` bytes, collecting parts as text.
    fn parts(input: &[u8], step: usize, framing_after_head: Framing) -> Vec<String> {
        let mut r = Reader::new(1024);
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            let chunk = Bytes::copy_from_slice(piece);
            let mut pos = 0;
            while let Some(part) = r.next(&chunk, &mut pos).unwrap() {
                match part {
                    Part::Head(h) => {
                        out.push(format!(
                            "head:{}",
                            String::from_utf8_lossy(&h).replace("\r\n", "|")
                        ));
                        r.set_framing(framing_after_head);
                    }
                    Part::Body(b) => out.push(format!("body:{}", String::from_utf8_lossy(&b))),
                    Part::Trailers(t) => out.push(format!(
                        "trailers:{}",
                        String::from_utf8_lossy(&t).replace("\r\n", "|")
                    )),
                }
            }
        }
        // Join adjacent body pieces: how the stream was split must not matter.
        let mut joined: Vec<String> = Vec::new();
        for p in out {
            match (joined.last_mut(), p.strip_prefix("body:")) {
                (Some(last), Some(more)) if last.starts_with("body:") => last.push_str(more),
                _ => joined.push(p),
            }
        }
        joined
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers_in_any_split() {
        let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Sum: 9\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
        let expected = vec![
            "head:POST / HTTP/1.1|Transfer-Encoding: chunked||".to_string(),
            "body:Wikipedia".to_string(),
            "trailers:X-Sum: 9||".to_string(),
            "head:GET /next HTTP/1.1||".to_string(),
        ];
        for step in 1..=input.len() {
            // The second head also gets chunked framing, but no body follows.
            let got = parts(input, step, Framing::Chunked);
            assert_eq!(got, expected, "split every {step} bytes");
        }
    }

    #[test]
    fn chunked_without_trailers_split_at_the_final_crlf() {
        let input = b"HTTP/1.1 200 OK\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        for step in 1..=input.len() {
            let got = parts(input, step, Framing::Chunked);
            assert_eq!(
                got,
                ["head:HTTP/1.1 200 OK||", "body:abc", "trailers:"],
                "step {step}"
            );
        }
    }

    #[test]
    fn length_framed_bodies_back_to_back() {
        let input = b"HTTP/1.1 200 OK\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\nworld";
        for step in 1..=input.len() {
            let got = parts(input, step, Framing::Length(5));
            assert_eq!(
                got,
                [
                    "head:HTTP/1.1 200 OK||",
                    "body:hello",
                    "head:HTTP/1.1 200 OK||",
                    "body:world"
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn bare_lf_heads_and_leading_empty_lines() {
        let got = parts(
            b"\r\n\r\nGET / HTTP/1.1\nHost: a\n\n",
            100,
            Framing::Length(0),
        );
        assert_eq!(got, ["head:GET / HTTP/1.1\nHost: a\n\n"]);
    }

    #[test]
    fn oversized_head_is_an_error() {
        let mut r = Reader::new(64);
        let chunk = Bytes::from(vec![b'a'; 100]);
        let mut pos = 0;
        let fault = r.next(&chunk, &mut pos).unwrap_err();
        assert_eq!(fault.kind, FailureKind::LimitExceeded);
        assert!(fault.detail.contains("longer than 64"));
    }

    #[test]
    fn bad_chunk_size_is_an_error() {
        let mut r = Reader::new(1024);
        r.set_framing(Framing::Chunked);
        let chunk = Bytes::from_static(b"zz\r\n");
        let mut pos = 0;
        let fault = r.next(&chunk, &mut pos).unwrap_err();
        assert_eq!(fault.kind, FailureKind::Malformed);
        assert!(fault.detail.contains("invalid chunk size"));
    }

    #[test]
    fn block_end_detection() {
        assert_eq!(find_block_end(b"a\r\n\r\nrest", 0), Some(5));
        assert_eq!(find_block_end(b"a\n\nrest", 0), Some(3));
        assert_eq!(find_block_end(b"a\r\nb\r\n", 0), None);
    }
}
