//! YAML text to the value tree the spec reader walks. serde-saphyr parses
//! (serde_yaml, used before, is no longer maintained); this seed builds the
//! tree itself so that a duplicate key is refused with its path
//! (`services: duplicate entry with key "a"`), as the spec's other errors
//! are, and not only with its line.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::join;

/// Parses `text`. Only YAML 1.2's booleans are booleans: `command: [echo,
/// yes]` keeps its string.
pub(super) fn from_str(text: &str) -> Result<Value, String> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::PassThrough,
    };
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |d| {
        Node { path: "" }.deserialize(d)
    })
    .map_err(|e| e.to_string())
}

/// A value at `path` (dotted keys from the top).
struct Node<'p> {
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{}: {v} is not a finite number", self.path)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Node {
            path: &format!("{}[{}]", self.path, items.len()),
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Key>()? {
            let key = key.0;
            if out.contains_key(&key) {
                let at = if self.path.is_empty() {
                    "the top"
                } else {
                    self.path
                };
                return Err(de::Error::custom(format!(
                    "{at}: duplicate entry with key {key:?}"
                )));
            }
            let value = map.next_value_seed(Node {
                path: &join(self.path, &key),
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key: a string, or a number or boolean written as one (`1: x`
/// is the key "1").
struct Key(String);

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match (Node { path: "" }).deserialize(d)? {
            Value::String(s) => Ok(Key(s)),
            Value::Number(n) => Ok(Key(n.to_string())),
            Value::Bool(b) => Ok(Key(b.to_string())),
            other => Err(de::Error::custom(format!(
                "a key must be a string, not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_with_their_path() {
        let err = from_str("a:\n  b: {c: 1, c: 2}\n").unwrap_err();
        assert!(err.contains("a.b: duplicate entry with key \"c\""), "{err}");
        let err = from_str("x: 1\nx: 2\n").unwrap_err();
        assert!(
            err.contains("the top: duplicate entry with key \"x\""),
            "{err}"
        );
    }

    #[test]
    fn values_as_yaml_1_2_reads_them() {
        let v = from_str("a: [yes, true, 1, 1.5, ~, '2']\n1: x\nb: &n {c: 1}\nd: *n\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": ["yes", true, 1, 1.5, null, "2"], "1": "x", "b": {"c": 1}, "d": {"c": 1}})
        );
    }
}
