//! Spans of a text to replace with the marker, gathered from every rule
//! (a header's credentials, a JSON value, a pattern's match) and applied
//! in one pass, so the text is copied once and only when something is
//! secret.

/// One span of the text to hide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    pub start: usize,
    pub end: usize,
    /// The `N` of the marker: the secret's length in bytes (a JSON
    /// string's decoded length, which its span, quotes and escapes
    /// included, may exceed).
    pub len: usize,
    /// A JSON value: replaced by the marker as a JSON string (`"<…>"`).
    pub quoted: bool,
}

impl Cut {
    /// A span replaced by the bare marker, `N` its length.
    pub fn plain(start: usize, end: usize) -> Self {
        Self {
            start,
            end,
            len: end - start,
            quoted: false,
        }
    }
}

/// Appends `<redacted N bytes>`.
pub(crate) fn push_marker(out: &mut String, len: usize) {
    out.push_str("<redacted ");
    out.push_str(itoa::Buffer::new().format(len));
    out.push_str(" bytes>");
}

/// `text` with every cut replaced, or `None` when there is none. Cuts may
/// come in any order and overlap: one inside another is dropped, two that
/// overlap otherwise become one bare marker over both (hiding a little
/// more rather than leaving part of either).
pub(crate) fn apply(text: &str, cuts: &mut [Cut]) -> Option<String> {
    if cuts.is_empty() {
        return None;
    }
    // Of cuts with one span, a JSON value's (quoted) stands.
    cuts.sort_unstable_by_key(|c| (c.start, std::cmp::Reverse(c.end), !c.quoted));
    let mut out = String::with_capacity(text.len() + 24 * cuts.len());
    let mut merged: Option<Cut> = None;
    let mut copied = 0;
    let emit = |out: &mut String, cut: Cut, copied: &mut usize| {
        out.push_str(&text[*copied..cut.start]);
        if cut.quoted {
            out.push('"');
            push_marker(out, cut.len);
            out.push('"');
        } else {
            push_marker(out, cut.len);
        }
        *copied = cut.end;
    };
    for &cut in cuts.iter() {
        match &mut merged {
            Some(current) if cut.start < current.end => {
                if cut.end > current.end {
                    *current = Cut::plain(current.start, cut.end);
                }
            }
            _ => {
                if let Some(done) = merged.replace(cut) {
                    emit(&mut out, done, &mut copied);
                }
            }
        }
    }
    if let Some(done) = merged {
        emit(&mut out, done, &mut copied);
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_cut_is_no_copy() {
        assert_eq!(apply("abc", &mut []), None);
    }

    #[test]
    fn cuts_in_any_order_overlapping_or_nested() {
        let text = "0123456789";
        let mut cuts = [Cut::plain(6, 8), Cut::plain(1, 3)];
        assert_eq!(
            apply(text, &mut cuts).unwrap(),
            "0<redacted 2 bytes>345<redacted 2 bytes>89"
        );
        // Nested: the outer one stands, as it was (quoted here).
        let mut cuts = [
            Cut::plain(3, 4),
            Cut {
                start: 2,
                end: 6,
                len: 2,
                quoted: true,
            },
        ];
        assert_eq!(
            apply(text, &mut cuts).unwrap(),
            "01\"<redacted 2 bytes>\"6789"
        );
        // Overlapping: one bare marker over both.
        let mut cuts = [Cut::plain(2, 5), Cut::plain(4, 9)];
        assert_eq!(apply(text, &mut cuts).unwrap(), "01<redacted 7 bytes>9");
        // Touching is not overlapping.
        let mut cuts = [Cut::plain(0, 2), Cut::plain(2, 10)];
        assert_eq!(
            apply(text, &mut cuts).unwrap(),
            "<redacted 2 bytes><redacted 8 bytes>"
        );
    }
}
