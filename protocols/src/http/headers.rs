//! Header and trailer blocks as they crossed the wire.

/// One header (or trailer) block as it crossed the wire: names with their
/// case, fields in order, repeats kept; values that are not UTF-8 are shown
/// lossily, except binary fields (names ending in `-bin`, gRPC's binary
/// metadata), which are shown as base64 of their bytes (see
/// [`HeaderBlock::push`]).
///
/// Every name and value lives in one string, with a list of spans into it:
/// a decoder makes two allocations per block instead of two per field, and
/// an event can adopt the block without copying it. This runs for every
/// request the proxy sees.
#[derive(Clone, Default)]
pub struct HeaderBlock {
    /// May hold bytes of fields [`HeaderBlock::retain`] dropped: only the
    /// spans say what is in the block.
    text: String,
    spans: Vec<FieldSpan>,
}

/// Where one field's name and value lie in its block's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    /// Where the name begins.
    pub name_start: u32,
    /// Where the name ends and the value begins.
    pub value_start: u32,
    /// Where the value ends.
    pub value_end: u32,
}

impl FieldSpan {
    /// The name, in the text of the block the span belongs to.
    pub fn name<'a>(&self, text: &'a str) -> &'a str {
        &text[self.name_start as usize..self.value_start as usize]
    }

    /// The value, in the text of the block the span belongs to.
    pub fn value<'a>(&self, text: &'a str) -> &'a str {
        &text[self.value_start as usize..self.value_end as usize]
    }
}

/// One field of a [`HeaderBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field's name, with its case as sent.
    pub name: &'a str,
    /// The field's value (see [`HeaderBlock::push`] for binary fields).
    pub value: &'a str,
}

impl HeaderBlock {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `fields` fields of `bytes` name and value bytes in all.
    pub fn with_capacity(fields: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(fields),
        }
    }

    /// Appends a field as it came off the wire; a value that is not UTF-8
    /// is kept lossily. A binary field (name ending in `-bin`) is kept as
    /// padded standard base64 of its bytes, one way however it was sent
    /// (gRPC's HTTP/2 mapping): a value starting with a NUL byte is "true
    /// binary", the bytes after the NUL; otherwise it is base64 text,
    /// padded or not, possibly several comma-separated values, each
    /// re-encoded padded. A value that is neither is shown as base64 of
    /// the bytes sent, so nothing is lost either way.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        if is_binary_field(name) {
            return self.push_str(name, &binary_value(value));
        }
        match std::str::from_utf8(value) {
            Ok(value) => self.push_str(name, value),
            Err(_) => self.push_str(name, &String::from_utf8_lossy(value)),
        }
    }

    /// Appends a field whose value is text already, as it is.
    pub fn push_str(&mut self, name: &str, value: &str) {
        // Decoders bound a header block far below 4 GiB.
        let at = |len: usize| u32::try_from(len).expect("a header block under 4 GiB");
        let name_start = at(self.text.len());
        self.text.push_str(name);
        let value_start = at(self.text.len());
        self.text.push_str(value);
        self.spans.push(FieldSpan {
            name_start,
            value_start,
            value_end: at(self.text.len()),
        });
    }

    /// How many fields the block holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the block holds no field.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The fields in the order they were sent.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = Field<'_>> + ExactSizeIterator + Clone + '_ {
        self.spans.iter().map(|span| self.field(span))
    }

    /// The first field of that name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }

    /// Keeps only the fields `keep` accepts, in order, without copying any.
    pub fn retain(&mut self, mut keep: impl FnMut(Field<'_>) -> bool) {
        let text = &self.text;
        self.spans.retain(|span| {
            keep(Field {
                name: span.name(text),
                value: span.value(text),
            })
        });
    }

    /// The block's text and its fields' spans, for a consumer that
    /// rearranges them in place.
    pub fn into_parts(self) -> (String, Vec<FieldSpan>) {
        (self.text, self.spans)
    }

    fn field(&self, span: &FieldSpan) -> Field<'_> {
        Field {
            name: span.name(&self.text),
            value: span.value(&self.text),
        }
    }
}

/// gRPC's binary metadata suffix, in any case (HTTP/1 names keep theirs).
fn is_binary_field(name: &str) -> bool {
    let name = name.as_bytes();
    name.len() >= 4 && name[name.len() - 4..].eq_ignore_ascii_case(b"-bin")
}

/// A binary field's value as padded standard base64 of its bytes.
fn binary_value(wire: &[u8]) -> String {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
    use base64::engine::DecodePaddingMode;
    use base64::Engine;
    // gRPC's decoders take padded and unpadded values alike.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    if let Some(raw) = wire.strip_prefix(b"\0") {
        return STANDARD.encode(raw);
    }
    let mut shown = String::with_capacity(wire.len() + 4);
    for (i, part) in wire.split(|&b| b == b',').enumerate() {
        let Ok(bytes) = LENIENT.decode(part.trim_ascii()) else {
            return STANDARD.encode(wire);
        };
        if i > 0 {
            shown.push_str(", ");
        }
        STANDARD.encode_string(bytes, &mut shown);
    }
    shown
}

/// Two blocks are equal when they hold the same fields in the same order.
impl PartialEq for HeaderBlock {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for HeaderBlock {}

impl std::fmt::Debug for HeaderBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|field| (field.name, field.value)))
            .finish()
    }
}

impl<'a> FromIterator<Field<'a>> for HeaderBlock {
    fn from_iter<I: IntoIterator<Item = Field<'a>>>(iter: I) -> Self {
        let mut block = Self::new();
        for field in iter {
            block.push_str(field.name, field.value);
        }
        block
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for HeaderBlock {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        iter.into_iter()
            .map(|(name, value)| Field { name, value })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_keeps_case_order_and_repeats_in_one_string() {
        let mut block = HeaderBlock::with_capacity(3, 64);
        block.push("Content-Type", b"text/plain");
        block.push("Set-Cookie", b"a=1");
        block.push("set-cookie", b"b=\xff");
        let fields: Vec<_> = block.iter().map(|f| (f.name, f.value)).collect();
        assert_eq!(
            fields,
            [
                ("Content-Type", "text/plain"),
                ("Set-Cookie", "a=1"),
                ("set-cookie", "b=\u{fffd}"),
            ]
        );
        assert_eq!(block.get("SET-COOKIE"), Some("a=1"), "the first, any case");
        assert_eq!(block.get("content-length"), None);
        let (text, spans) = block.clone().into_parts();
        assert_eq!(
            text,
            "Content-Typetext/plainSet-Cookiea=1set-cookieb=\u{fffd}"
        );
        assert_eq!(spans.len(), 3);
        let same: HeaderBlock = fields.iter().copied().collect();
        assert_eq!(same, block);

        let mut kept = block.clone();
        kept.retain(|f| !f.name.eq_ignore_ascii_case("set-cookie"));
        assert_eq!(kept, [("Content-Type", "text/plain")].into_iter().collect());
        assert_ne!(kept, block);
    }

    #[test]
    fn binary_fields_are_base64_of_their_bytes_however_sent() {
        let cases: [(&str, &[u8], &str); 9] = [
            // True binary: a NUL, then the raw bytes (not UTF-8 here).
            ("trace-bin", b"\0\xff\xfe\x80", "//6A"),
            ("trace-bin", b"\0", ""),
            // Base64 text, padded or not, comes out padded.
            ("trace-bin", b"//6A", "//6A"),
            ("Trace-Bin", b"AQ", "AQ=="),
            ("trace-bin", b"AQ==", "AQ=="),
            // Several values in one field, each normalised.
            ("trace-bin", b"AQ,AgM= , //6A", "AQ==, AgM=, //6A"),
            ("trace-bin", b"", ""),
            // Neither: the bytes as sent, so nothing is lost.
            ("trace-bin", b"\xff\xfe\x80", "//6A"),
            ("trace-bin", b"not base64!", "bm90IGJhc2U2NCE="),
        ];
        for (name, wire, shown) in cases {
            let mut block = HeaderBlock::new();
            block.push(name, wire);
            assert_eq!(block.get(name), Some(shown), "{name}: {wire:x?}");
        }
        // Only the suffix counts; other fields keep their text.
        let mut block = HeaderBlock::new();
        block.push("binary", b"AQ");
        block.push("x-bin-count", b"AQ");
        block.push("x-ok", b"\xff");
        let fields: Vec<_> = block.iter().map(|f| (f.name, f.value)).collect();
        assert_eq!(
            fields,
            [
                ("binary", "AQ"),
                ("x-bin-count", "AQ"),
                ("x-ok", "\u{fffd}")
            ]
        );
    }
}
