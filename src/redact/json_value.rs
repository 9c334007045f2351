//! Secret members of decoded JSON (gRPC messages): the value is replaced
//! in the tree by the marker as a string; patterns apply to every string.

use serde_json::Value;

use super::path::At;
use super::Redactor;

/// Deeper than this, a subtree is hidden whole rather than walked (a
/// decoded message is far shallower; protobuf decoders stop at 100).
const MAX_DEPTH: usize = 128;

/// Hides the secrets of one document (`$` of a JSON path).
pub(crate) fn redact(redactor: &Redactor, value: &mut Value) {
    let mut path = Vec::new();
    walk(redactor, value, &mut path);
}

fn walk<'a>(redactor: &Redactor, value: &'a mut Value, path: &mut Vec<At<'a>>) {
    if path.len() >= MAX_DEPTH {
        hide(value);
        return;
    }
    let secret = |path: &[At<'_>], at: At<'_>| {
        matches!(at, At::Member(name) if redactor.names.matches(name))
            || redactor
                .paths
                .iter()
                .any(|p| p.matches(path.iter().copied(), at))
    };
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                let at = At::Member(name);
                if secret(path, at) {
                    hide(member);
                } else {
                    path.push(at);
                    walk(redactor, member, path);
                    path.pop();
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let at = At::Element(i);
                if secret(path, at) {
                    hide(item);
                } else {
                    path.push(at);
                    walk(redactor, item, path);
                    path.pop();
                }
            }
        }
        Value::String(text) => {
            if let Some(redacted) = redactor.patterns_in(text) {
                *text = redacted;
            }
        }
        _ => {}
    }
}

/// The value as the marker. `null` and `""` hide nothing and stay.
fn hide(value: &mut Value) {
    let len = match &*value {
        Value::Null => return,
        Value::String(s) if s.is_empty() => return,
        Value::String(s) => s.len(),
        other => serde_json::to_string(other).map_or(0, |s| s.len()),
    };
    *value = Value::String(super::marker(len));
}
