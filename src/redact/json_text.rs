//! Secret values in JSON text, found by a scanner that never fails: a
//! complete document, a prefix of one (a body cut off at the capture
//! limit), several in a row (NDJSON) or something that only looks like
//! JSON are all read as far as they go, and every value whose member name
//! (or path) is secret becomes a cut. Nothing is parsed into a tree and
//! nothing is copied: the text is only read.

use super::cuts::Cut;
use super::path::At;
use super::Rules;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Key,
    Colon,
    Value,
    Comma,
}

/// An object or array being read.
struct Frame<'a> {
    object: bool,
    expect: Expect,
    /// The member whose value comes next (objects).
    key: &'a str,
    /// The element that comes next (arrays).
    index: usize,
    /// Where this container lies in its parent (unused for a document).
    at: At<'a>,
}

/// Adds a cut for every secret value in `text`.
pub(crate) fn cuts(text: &str, rules: &Rules<'_>, cuts: &mut Vec<Cut>) {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        stack: Vec::new(),
        rules,
    };
    scanner.run(cuts);
}

struct Scanner<'a, 'r> {
    text: &'a str,
    bytes: &'a [u8],
    stack: Vec<Frame<'a>>,
    rules: &'r Rules<'r>,
}

impl<'a> Scanner<'a, '_> {
    fn run(&mut self, cuts: &mut Vec<Cut>) {
        let b = self.bytes;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if c == b'}' || c == b']' {
                // Whichever container is open ends here.
                self.stack.pop();
                i += 1;
                continue;
            }
            let Some(top) = self.stack.last_mut() else {
                i = self.value(i, cuts);
                continue;
            };
            match (top.object, top.expect) {
                (true, Expect::Key) => {
                    if c == b',' {
                        i += 1;
                        continue;
                    }
                    let end = if c == b'"' {
                        let (end, closed) = string_end(b, i);
                        top.key = &self.text[i + 1..end - usize::from(closed)];
                        end
                    } else {
                        // An unquoted key, as far as it goes.
                        let end = scalar_end(self.text, i);
                        top.key = &self.text[i..end];
                        end
                    };
                    top.expect = Expect::Colon;
                    i = end;
                }
                (_, Expect::Colon) => {
                    top.expect = Expect::Value;
                    if c == b':' {
                        i += 1;
                    }
                }
                (_, Expect::Value) | (_, Expect::Key) => {
                    if c == b',' {
                        // A missing value.
                        top.expect = Expect::Comma;
                        continue;
                    }
                    i = self.value(i, cuts);
                }
                (object, Expect::Comma) => {
                    top.expect = if object { Expect::Key } else { Expect::Value };
                    if !object {
                        top.index += 1;
                    }
                    if c == b',' {
                        i += 1;
                    }
                }
            }
        }
    }

    /// Reads the value at `i` (hiding it if its place is secret) and
    /// returns where it ends; a container is entered rather than skipped.
    fn value(&mut self, i: usize, cuts: &mut Vec<Cut>) -> usize {
        let b = self.bytes;
        let at = match self.stack.last_mut() {
            Some(top) => {
                top.expect = Expect::Comma;
                Some(if top.object {
                    At::Member(top.key)
                } else {
                    At::Element(top.index)
                })
            }
            None => None,
        };
        if at.is_some_and(|at| self.secret(at)) {
            return hide(self.text, i, cuts);
        }
        match b[i] {
            b'{' | b'[' => {
                self.stack.push(Frame {
                    object: b[i] == b'{',
                    expect: if b[i] == b'{' {
                        Expect::Key
                    } else {
                        Expect::Value
                    },
                    key: "",
                    index: 0,
                    at: at.unwrap_or(At::Element(0)),
                });
                i + 1
            }
            b'"' => string_end(b, i).0,
            _ => scalar_end(self.text, i),
        }
    }

    fn secret(&self, at: At<'_>) -> bool {
        if let At::Member(name) = at {
            if self.rules.names.matches(name) {
                return true;
            }
        }
        let outer = || self.stack[1..].iter().map(|f| f.at);
        self.rules.paths.iter().any(|p| p.matches(outer(), at))
    }
}

/// Hides the value at `i` and returns where it ends. `null` and `""` hide
/// nothing and stay.
fn hide(text: &str, i: usize, cuts: &mut Vec<Cut>) -> usize {
    let b = text.as_bytes();
    let (end, len) = match b[i] {
        b'"' => {
            let (end, closed) = string_end(b, i);
            (end, decoded_len(&b[i + 1..end - usize::from(closed)]))
        }
        b'{' | b'[' => {
            let end = container_end(b, i);
            (end, end - i)
        }
        _ => {
            let end = scalar_end(text, i);
            if &b[i..end] == b"null" {
                return end;
            }
            (end, end - i)
        }
    };
    if len > 0 {
        cuts.push(Cut {
            start: i,
            end,
            len,
            quoted: true,
        });
    }
    end
}

/// The end of the string starting at `i` (after its closing quote, or the
/// text's end), and whether it was closed.
fn string_end(b: &[u8], i: usize) -> (usize, bool) {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return (j + 1, true),
            _ => j += 1,
        }
    }
    (b.len(), false)
}

/// The end of a number, literal or anything unquoted at `i`: the next
/// delimiter, at least one character on.
fn scalar_end(text: &str, i: usize) -> usize {
    let b = text.as_bytes();
    let mut j = i;
    while j < b.len()
        && !matches!(b[j], b',' | b':' | b'{' | b'}' | b'[' | b']' | b'"')
        && !b[j].is_ascii_whitespace()
    {
        j += 1;
    }
    if j == i {
        // A delimiter where a value was due: step over it.
        j += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    j
}

/// The end of the object or array at `i` (after its closing bracket, or
/// the text's end).
fn container_end(b: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'"' => {
                j = string_end(b, j).0;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len()
}

/// The length in bytes of a JSON string's content once its escapes are
/// undone (`\u00e9` is two bytes, a surrogate pair four).
fn decoded_len(raw: &[u8]) -> usize {
    let hex = |j: usize| -> Option<u32> {
        let digits = std::str::from_utf8(raw.get(j..j + 4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let (mut n, mut j) = (0, 0);
    while j < raw.len() {
        if raw[j] != b'\\' {
            n += 1;
            j += 1;
            continue;
        }
        match raw.get(j + 1) {
            None => break,
            Some(b'u') => match hex(j + 2) {
                Some(0xD800..=0xDBFF)
                    if raw.get(j + 6..j + 8) == Some(&b"\\u"[..])
                        && hex(j + 8).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) =>
                {
                    n += 4;
                    j += 12;
                }
                Some(cp) => {
                    n += match cp {
                        0..=0x7F => 1,
                        0x80..=0x7FF => 2,
                        _ => 3,
                    };
                    j += 6;
                }
                // Cut off inside the escape.
                None => break,
            },
            Some(_) => {
                n += 1;
                j += 2;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::decoded_len;

    #[test]
    fn decoded_lengths() {
        assert_eq!(decoded_len(b"hunter2"), 7);
        assert_eq!(decoded_len(br#"a\"b\\c\n"#), 6);
        assert_eq!(decoded_len(br"caf\u00e9"), 5);
        assert_eq!(decoded_len("café".as_bytes()), 5);
        assert_eq!(decoded_len(br"\ud83d\ude00"), 4);
        assert_eq!(decoded_len(br"\u20ac"), 3);
        assert_eq!(decoded_len(br"ab\u00"), 2);
        assert_eq!(decoded_len(br"ab\"), 2);
    }
}
