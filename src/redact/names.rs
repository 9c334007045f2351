//! Which JSON field (and form or query parameter) names are secret.
//!
//! A name is split into words: at anything that is not an ASCII letter or
//! digit (`_`, `-`, `.`, spaces), where a lower-case letter meets an upper-case
//! one (`accessToken`), before the last capital of a run that starts a word
//! (`DBPassword` → `DB`, `Password`) and where letters meet digits
//! (`password2`). A name is secret when some run of consecutive words,
//! joined and compared without regard to ASCII case, is one of the listed
//! names, itself written without its separators (`access_token` is
//! `accesstoken`). So `password` catches `password`, `db_password`,
//! `DB_PASSWORD`, `userPassword` and `password2`, `token` catches
//! `accessToken` and `refresh-token`, and `access_token` also catches
//! `accesstoken`; but `token` does not catch `max_tokens` or `tokenizer`,
//! and `password` not `dbpassword` (one lower-case word: list it).

/// The listed names, each lower-cased with its separators taken out.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecretNames {
    /// Every entry's bytes, one after another (kept together: a name is
    /// compared with the entries that start as its words do, and reading
    /// them should not mean a cache miss each).
    text: Vec<u8>,
    /// Each entry's end in `text`, and its first byte.
    ends: Vec<usize>,
    starts_with: Vec<u8>,
    shortest: usize,
    /// The entries' first bytes (ASCII, lower-cased), as a bit set: most
    /// words of most names start with none of them and are passed over
    /// at the cost of one test.
    firsts: [u64; 2],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Lower,
    Upper,
    Digit,
    Separator,
}

fn class(b: u8) -> Class {
    match b {
        b'a'..=b'z' => Class::Lower,
        b'A'..=b'Z' => Class::Upper,
        b'0'..=b'9' => Class::Digit,
        // Bytes of non-ASCII letters: part of a word, without case.
        0x80.. => Class::Lower,
        _ => Class::Separator,
    }
}

/// Whether a word ends before `name[j]` (`j > 0`, `name[j - 1]` in a word).
fn boundary(name: &[u8], j: usize) -> bool {
    let (before, here) = (class(name[j - 1]), class(name[j]));
    match (before, here) {
        (_, Class::Separator) => true,
        (Class::Lower, Class::Upper) => true,
        (Class::Digit, c) | (c, Class::Digit) if c != Class::Digit => true,
        // `DBPassword`: the P starts a word.
        (Class::Upper, Class::Upper) => name.get(j + 1).is_some_and(|&b| class(b) == Class::Lower),
        _ => false,
    }
}

/// The words of `name` from byte `from` (which must start a word or be a
/// separator), as byte ranges.
struct Words<'a> {
    name: &'a [u8],
    at: usize,
}

impl Iterator for Words<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let name = self.name;
        while self.at < name.len() && class(name[self.at]) == Class::Separator {
            self.at += 1;
        }
        if self.at >= name.len() {
            return None;
        }
        let start = self.at;
        let mut end = start + 1;
        while end < name.len() && !boundary(name, end) {
            end += 1;
        }
        self.at = end;
        Some((start, end))
    }
}

fn words(name: &[u8], from: usize) -> Words<'_> {
    Words { name, at: from }
}

/// `name` lower-cased with its separators taken out: how an entry is kept.
fn compact(name: &str) -> Vec<u8> {
    let bytes = name.as_bytes();
    words(bytes, 0)
        .flat_map(|(s, e)| bytes[s..e].iter().map(u8::to_ascii_lowercase))
        .collect()
}

impl SecretNames {
    /// The names listed; an entry with no letter or digit is refused (it
    /// would match nothing), named by its index.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, (usize, String)> {
        let mut entries: Vec<Box<[u8]>> = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let entry = compact(name);
            if entry.is_empty() {
                return Err((i, format!("{name:?} has no letter or digit to match")));
            }
            if !entries.iter().any(|e| **e == *entry) {
                entries.push(entry.into_boxed_slice());
            }
        }
        let shortest = entries.iter().map(|e| e.len()).min().unwrap_or(0);
        let text: Vec<u8> = entries.concat();
        let ends = entries
            .iter()
            .scan(0, |end, e| {
                *end += e.len();
                Some(*end)
            })
            .collect();
        let starts_with = entries.iter().map(|e| e[0]).collect();
        let mut firsts = [0u64; 2];
        for entry in &entries {
            match entry[0] {
                b @ 0..=127 => firsts[usize::from(b >> 6)] |= 1 << (b & 63),
                // A non-ASCII first byte: every word must be tried.
                _ => firsts = [u64::MAX; 2],
            }
        }
        Ok(Self {
            text,
            ends,
            starts_with,
            shortest,
            firsts,
        })
    }

    /// Whether `name` is secret (see the module's documentation).
    pub fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        if self.ends.is_empty() || name.len() < self.shortest {
            return false;
        }
        words(name, 0).any(|(start, end)| {
            let first = name[start].to_ascii_lowercase();
            let possible =
                first >= 128 || self.firsts[usize::from(first >> 6)] & (1 << (first & 63)) != 0;
            let word = &name[start..end];
            possible
                && (0..self.ends.len()).any(|i| {
                    self.starts_with[i] == first && {
                        let entry = self.entry(i);
                        entry.len() >= word.len()
                            && entry[..word.len()].eq_ignore_ascii_case(word)
                            && spells(name, end, &entry[word.len()..])
                    }
                })
        })
    }
}

impl SecretNames {
    fn entry(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// Whether the words of `name` from byte `from` on, joined, begin with
/// exactly `entry` at a word's end (an empty `entry` is spelled already).
fn spells(name: &[u8], from: usize, entry: &[u8]) -> bool {
    if entry.is_empty() {
        return true;
    }
    let mut matched = 0;
    for (s, e) in words(name, from) {
        let word = &name[s..e];
        let rest = &entry[matched..];
        if word.len() > rest.len() || !rest[..word.len()].eq_ignore_ascii_case(word) {
            return false;
        }
        matched += word.len();
        if matched == entry.len() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(name: &str) -> Vec<&str> {
        words(name.as_bytes(), 0)
            .map(|(s, e)| &name[s..e])
            .collect()
    }

    #[test]
    fn words_split_at_separators_case_and_digits() {
        assert_eq!(split("db_password"), ["db", "password"]);
        assert_eq!(split("accessToken"), ["access", "Token"]);
        assert_eq!(split("DBPassword"), ["DB", "Password"]);
        assert_eq!(split("X-API-Key"), ["X", "API", "Key"]);
        assert_eq!(split("password2"), ["password", "2"]);
        assert_eq!(split("__a..b  "), ["a", "b"]);
        assert_eq!(split("clé_secrète"), ["clé", "secrète"]);
        assert_eq!(split(""), Vec::<&str>::new());
    }

    #[test]
    fn runs_of_words_match_compacted_entries() {
        let names = SecretNames::new(["password", "token", "access_token", "api_key"]).unwrap();
        for secret in [
            "password",
            "PASSWORD",
            "db_password",
            "DB_PASSWORD",
            "userPassword",
            "password2",
            "new-password-confirm",
            "accessToken",
            "access_token",
            "accesstoken",
            "refresh-token",
            "apiKey",
            "x-api-key",
            "API_KEY",
            "apikey",
        ] {
            assert!(names.matches(secret), "{secret} should be secret");
        }
        for plain in [
            "max_tokens",
            "tokenizer",
            "passwords",
            "dbpassword",
            "user",
            "key",
            "api",
            "",
            "_",
        ] {
            assert!(!names.matches(plain), "{plain} should not be secret");
        }
    }

    #[test]
    fn entries_without_letters_are_refused() {
        let err = SecretNames::new(["ok", "__"]).unwrap_err();
        assert_eq!(err.0, 1);
        assert!(!SecretNames::new(Vec::<&str>::new()).unwrap().matches("x"));
    }
}
