//! Request and response headers, read by hand.
//!
//! Hand-written rather than through `kafka-protocol` because the header must
//! be read for every key and version, including ones the crate does not
//! know (keys 4–7, versions older than it decodes), and from a frame's
//! prefix alone; and because the proxy reads it on every frame, where a
//! few byte reads beat building a `RequestHeader` with a map of tagged fields.

/// The fields of a request header (v0, v1 or v2) the events use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<std::ops::Range<usize>>,
    /// Where the request body starts within the frame, when the header's
    /// layout was known and it lay within the bytes given.
    pub body_offset: Option<usize>,
}

/// A cursor over a frame's bytes.
pub(crate) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    pub fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn unsigned_varint(&mut self) -> Option<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = *self.take(1)?.first()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A nullable string with an i16 length.
    pub fn nullable_string(&mut self) -> Option<Option<&'a [u8]>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        self.take(len as usize).map(Some)
    }

    /// Skips a tagged-field section.
    pub fn skip_tagged_fields(&mut self) -> Option<()> {
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            self.take(size as usize)?;
        }
        Some(())
    }
}

/// Reads a request header from the start of a frame. `None` if even the
/// fixed fields (key, version, correlation id) are not there.
pub fn parse_request_header(frame: &[u8]) -> Option<RequestHeader> {
    let mut r = Reader::new(frame);
    let api_key = r.i16()?;
    let api_version = r.i16()?;
    let correlation_id = r.i32()?;
    let mut header = RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id: None,
        body_offset: None,
    };
    let Some(header_version) = super::api::request_header_version(api_key, api_version) else {
        return Some(header);
    };
    if header_version >= 1 {
        // The client id is a classic (non-compact) string even in v2.
        match r.nullable_string() {
            Some(id) => header.client_id = id.map(|b| r.pos - b.len()..r.pos),
            None => return Some(header),
        }
    }
    if header_version >= 2 && r.skip_tagged_fields().is_none() {
        return Some(header);
    }
    header.body_offset = Some(r.pos);
    Some(header)
}

/// Where a response body starts after its correlation id and, in header
/// v1, its tagged fields.
pub fn response_body_offset(frame: &[u8], header_version: i16) -> Option<usize> {
    let mut r = Reader::new(frame);
    r.i32()?;
    if header_version >= 1 {
        r.skip_tagged_fields()?;
    }
    Some(r.pos)
}

/// The correlation id at the start of a response frame.
pub fn response_correlation_id(frame: &[u8]) -> Option<i32> {
    Reader::new(frame).i32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_v1_and_v2() {
        // Metadata v4 (header v1), client id "rk".
        let v1 = [0, 3, 0, 4, 0, 0, 0, 7, 0, 2, b'r', b'k', 0xaa];
        let h = parse_request_header(&v1).unwrap();
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (3, 4, 7));
        assert_eq!(h.client_id.map(|r| &v1[r]), Some(&b"rk"[..]));
        assert_eq!(h.body_offset, Some(12));

        // Produce v9 (header v2): null client id, one tagged field of 2 bytes.
        let v2 = [0, 0, 0, 9, 0, 0, 1, 0, 0xff, 0xff, 1, 5, 2, 9, 9, 0xbb];
        let h = parse_request_header(&v2).unwrap();
        assert_eq!(h.correlation_id, 256);
        assert_eq!(h.client_id, None);
        assert_eq!(h.body_offset, Some(15));
    }

    #[test]
    fn header_v0_and_unknown_keys() {
        // ControlledShutdown v0: no client id.
        let h = parse_request_header(&[0, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3]).unwrap();
        assert_eq!(h.body_offset, Some(8));
        let h = parse_request_header(&[1, 0, 0, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(h.api_key, 256);
        assert_eq!(h.body_offset, None);
        assert!(parse_request_header(&[0, 3, 0]).is_none());
        // A client id longer than the frame.
        let h = parse_request_header(&[0, 3, 0, 4, 0, 0, 0, 7, 0, 9, b'r']).unwrap();
        assert_eq!(h.body_offset, None);
    }
}
