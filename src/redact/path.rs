//! JSON paths that name fields to hide wherever else they are named:
//! `$.card.number`, `$.cards[*].number`, `$.items[0].secret`, `$.*.pin`.
//!
//! `$` is the document (for gRPC, each message); `.name` a member of that
//! name (exactly, case and all), `.*` any member, `[*]` any element of an
//! array, `[N]` element N. A member whose name holds `.`, `[` or `]`
//! cannot be named.

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Member(Box<str>),
    AnyMember,
    AnyElement,
    Element(usize),
}

/// A parsed JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath {
    steps: Vec<Step>,
}

/// Where a value lies, one step at a time, as a scanner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At<'a> {
    Member(&'a str),
    Element(usize),
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(mut rest) = text.strip_prefix('$') else {
            return Err(format!(
                "{text:?}: a path starts at the document, `$` (as in $.card.number)"
            ));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[', ']']).unwrap_or(after.len());
                let name = &after[..end];
                steps.push(match name {
                    "" => return Err(format!("{text:?}: a `.` with no member name after it")),
                    "*" => Step::AnyMember,
                    name => Step::Member(name.into()),
                });
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let Some(close) = after.find(']') else {
                    return Err(format!("{text:?}: a `[` that is not closed"));
                };
                let inside = after[..close].trim();
                steps.push(match inside {
                    "*" => Step::AnyElement,
                    n => Step::Element(n.parse().map_err(|_| {
                        format!("{text:?}: `[{n}]`: between brackets, `*` or an index (0, 1 …)")
                    })?),
                });
                rest = &after[close + 1..];
            } else {
                return Err(format!(
                    "{text:?}: expected `.name`, `.*`, `[*]` or `[N]` at {rest:?}"
                ));
            }
        }
        if steps.is_empty() {
            return Err(format!(
                "{text:?}: `$` alone is the whole document; name a field in it"
            ));
        }
        Ok(Self { steps })
    }

    /// Whether the value at `outer` then `last` is this path's.
    pub fn matches<'a>(&self, outer: impl ExactSizeIterator<Item = At<'a>>, last: At<'a>) -> bool {
        if outer.len() + 1 != self.steps.len() {
            return false;
        }
        outer
            .chain(std::iter::once(last))
            .zip(&self.steps)
            .all(|(at, step)| match (step, at) {
                (Step::Member(name), At::Member(key)) => **name == *key,
                (Step::AnyMember, At::Member(_)) => true,
                (Step::AnyElement, At::Element(_)) => true,
                (Step::Element(n), At::Element(i)) => *n == i,
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(path: &str, at: &[At<'_>]) -> bool {
        let (last, outer) = at.split_last().unwrap();
        JsonPath::parse(path)
            .unwrap()
            .matches(outer.iter().copied(), *last)
    }

    #[test]
    fn paths_parse_and_match() {
        use At::{Element as E, Member as M};
        assert!(matches("$.card.number", &[M("card"), M("number")]));
        assert!(!matches("$.card.number", &[M("card"), M("Number")]));
        assert!(!matches("$.card.number", &[M("number")]));
        assert!(!matches("$.card", &[M("card"), M("number")]));
        assert!(matches(
            "$.cards[*].number",
            &[M("cards"), E(3), M("number")]
        ));
        assert!(matches(
            "$.cards[1].number",
            &[M("cards"), E(1), M("number")]
        ));
        assert!(!matches(
            "$.cards[1].number",
            &[M("cards"), E(0), M("number")]
        ));
        assert!(matches("$.*.pin", &[M("anything"), M("pin")]));
        assert!(!matches("$.*.pin", &[E(0), M("pin")]));
        assert!(matches("$[*]", &[E(0)]));
    }

    #[test]
    fn bad_paths_say_why() {
        for (path, says) in [
            ("card.number", "starts at the document"),
            ("$", "whole document"),
            ("$.card..number", "no member name"),
            ("$.cards[x]", "an index"),
            ("$.cards[*", "not closed"),
            ("$card", "expected `.name`"),
            ("$.a]", "expected `.name`"),
        ] {
            let err = JsonPath::parse(path).unwrap_err();
            assert!(err.contains(says), "{path}: {err}");
        }
    }
}
