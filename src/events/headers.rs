//! Header fields as events carry them.
//!
//! Building an event runs once per request on a relay thread, and the event
//! stays in memory until the writer has put it on disk. A map of owned
//! strings costs two allocations per field plus tree nodes; [`HeaderMap`]
//! adopts the decoder's [`HeaderBlock`] (one string, one list of spans) and
//! rearranges it in place, so a typical exchange allocates nothing more here.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tapmesh_protocols::http::{FieldSpan, HeaderBlock};

/// Header fields (or gRPC metadata) as an event shows them: names
/// lower-cased, sorted, and a repeated field's values joined with `, `
/// (RFC 9110 §5.3). Serialised as a JSON object, exactly as a
/// `BTreeMap<String, String>` of the same fields would be.
#[derive(Clone, Default)]
pub struct HeaderMap {
    /// May hold bytes no span covers (see [`HeaderBlock::retain`]).
    text: String,
    /// Sorted by name; names unique.
    spans: Vec<FieldSpan>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The fields of a block as it crossed the wire (any case, any order,
    /// repeats allowed).
    pub fn from_block(block: HeaderBlock) -> Self {
        let (mut text, spans) = block.into_parts();
        for span in &spans {
            text[span.name_start as usize..span.value_start as usize].make_ascii_lowercase();
        }
        let mut map = Self { text, spans };
        map.sort_and_join();
        map
    }

    /// The value of the field with this (lower-case) name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.spans
            .binary_search_by(|span| self.name(span).cmp(name))
            .ok()
            .map(|i| self.value(&self.spans[i]))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .map(|span| (self.name(span), self.value(span)))
    }

    fn name(&self, span: &FieldSpan) -> &str {
        span.name(&self.text)
    }

    fn value(&self, span: &FieldSpan) -> &str {
        span.value(&self.text)
    }

    fn sort_and_join(&mut self) {
        let text = &self.text;
        // Stable, so a repeated field's values keep the order they were sent in.
        self.spans.sort_by(|a, b| a.name(text).cmp(b.name(text)));
        if !self
            .spans
            .windows(2)
            .any(|w| w[0].name(text) == w[1].name(text))
        {
            return;
        }
        let mut joined = HeaderBlock::with_capacity(self.spans.len(), self.text.len());
        let mut i = 0;
        while i < self.spans.len() {
            let field_name = self.name(&self.spans[i]);
            let mut end = i + 1;
            while end < self.spans.len() && self.name(&self.spans[end]) == field_name {
                end += 1;
            }
            let values: Vec<&str> = self.spans[i..end].iter().map(|s| self.value(s)).collect();
            joined.push_str(field_name, &values.join(", "));
            i = end;
        }
        (self.text, self.spans) = joined.into_parts();
    }
}

/// Equal when they hold the same fields.
impl PartialEq for HeaderMap {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for HeaderMap {}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for HeaderMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for HeaderMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;

        impl<'de> Visitor<'de> for MapVisitor {
            type Value = HeaderMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of header names to string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<HeaderMap, A::Error> {
                let mut block = HeaderBlock::new();
                while let Some((name, value)) = access.next_entry::<String, String>()? {
                    block.push_str(&name, &value);
                }
                Ok(HeaderMap::from_block(block))
            }
        }

        deserializer.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn map(fields: &[(&str, &str)]) -> HeaderMap {
        HeaderMap::from_block(fields.iter().copied().collect())
    }

    #[test]
    fn names_are_lower_cased_sorted_and_repeats_joined_in_order() {
        let map = map(&[
            ("Server", "nginx"),
            ("Set-Cookie", "a=1"),
            ("content-type", "text/plain"),
            ("set-cookie", "b=2"),
            ("Accept-Ranges", "bytes"),
            ("SET-COOKIE", "c=3"),
        ]);
        let pairs: Vec<_> = map.iter().collect();
        assert_eq!(
            pairs,
            [
                ("accept-ranges", "bytes"),
                ("content-type", "text/plain"),
                ("server", "nginx"),
                ("set-cookie", "a=1, b=2, c=3"),
            ]
        );
        assert_eq!(map.get("set-cookie"), Some("a=1, b=2, c=3"));
        assert_eq!(map.get("Server"), None, "lookups take lower-case names");
        assert_eq!(map.get("server"), Some("nginx"));
        assert_eq!(map.get("x-missing"), None);
        assert!(map.contains_key("accept-ranges"));
        assert_eq!(map.len(), 4);
    }

    #[test]
    fn json_is_what_a_btree_map_of_the_same_fields_gives() {
        let fields = [
            ("Host", "example.test"),
            ("accept", "*/*"),
            ("X-Trace", "1"),
            ("x-trace", "2"),
            (":path", "/a?b=c"),
            ("empty", ""),
        ];
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in fields {
            expected
                .entry(name.to_ascii_lowercase())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_string());
        }
        let map = map(&fields);
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, serde_json::to_string(&expected).unwrap());
        let back: HeaderMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
    }

    #[test]
    fn escapes_round_trip() {
        let map = map(&[("X-Name", "Zoë \"quoted\"\tand\u{7f}")]);
        let back: HeaderMap = serde_json::from_str(&serde_json::to_string(&map).unwrap()).unwrap();
        assert_eq!(back.get("x-name"), Some("Zoë \"quoted\"\tand\u{7f}"));
    }

    #[test]
    fn empty_map_is_an_empty_object_and_non_strings_are_refused() {
        assert_eq!(serde_json::to_string(&HeaderMap::new()).unwrap(), "{}");
        let empty: HeaderMap = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
        let err = serde_json::from_str::<HeaderMap>(r#"{"a": 1}"#).unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
}
