//! What of a secret header's value is hidden: the credentials after an
//! authorization scheme, a cookie's values, or the whole value.

use super::cuts::Cut;

/// How a secret header's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `authorization`, `proxy-authorization`: `Scheme credentials`, the
    /// scheme kept (`Bearer <redacted 43 bytes>`).
    Credentials,
    /// `cookie`: `name=value; name=value`, the names kept.
    Cookie,
    /// `set-cookie`: `name=value; Path=/; HttpOnly`, the name and the
    /// attributes kept.
    SetCookie,
    /// Anything else: the whole value.
    Whole,
}

impl Shape {
    pub fn of(name: &str) -> Self {
        if name.eq_ignore_ascii_case("authorization")
            || name.eq_ignore_ascii_case("proxy-authorization")
        {
            Shape::Credentials
        } else if name.eq_ignore_ascii_case("cookie") {
            Shape::Cookie
        } else if name.eq_ignore_ascii_case("set-cookie") {
            Shape::SetCookie
        } else {
            Shape::Whole
        }
    }
}

/// Adds the cuts that hide `value`'s secret parts. An empty value (or an
/// empty cookie value, as in a deletion) hides nothing and is kept.
pub(crate) fn cuts(shape: Shape, value: &str, cuts: &mut Vec<Cut>) {
    match shape {
        Shape::Credentials => credentials(value, cuts),
        Shape::Cookie => {
            let mut at = 0;
            for pair in value.split(';') {
                cookie_pair(value, at, pair, cuts);
                at += pair.len() + 1;
            }
        }
        Shape::SetCookie => {
            let first = value.split(';').next().unwrap_or("");
            cookie_pair(value, 0, first, cuts);
        }
        Shape::Whole => whole(value, 0, value.len(), cuts),
    }
}

fn whole(text: &str, start: usize, end: usize, cuts: &mut Vec<Cut>) {
    let part = &text[start..end];
    let trimmed = part.trim_matches(|c| c == ' ' || c == '\t');
    if !trimmed.is_empty() {
        let start = start + (part.len() - part.trim_start_matches([' ', '\t']).len());
        cuts.push(Cut::plain(start, start + trimmed.len()));
    }
}

/// `Scheme credentials`: the scheme is a token (RFC 9110 §11.1) followed
/// by spaces; without one, the whole value is credentials.
fn credentials(value: &str, cuts: &mut Vec<Cut>) {
    let lead = value.len() - value.trim_start_matches([' ', '\t']).len();
    let rest = &value[lead..];
    let scheme_len = rest
        .bytes()
        .take_while(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b))
        .count();
    let after = &rest[scheme_len..];
    if scheme_len > 0 && after.starts_with([' ', '\t']) {
        let spaces = after.len() - after.trim_start_matches([' ', '\t']).len();
        let start = lead + scheme_len + spaces;
        whole(value, start, value.len(), cuts);
    } else {
        whole(value, 0, value.len(), cuts);
    }
}

/// One `name=value` of a cookie header, at `at` in `value`: the value is
/// hidden, the name kept; a pair without `=` is hidden whole.
fn cookie_pair(value: &str, at: usize, pair: &str, cuts: &mut Vec<Cut>) {
    match pair.find('=') {
        Some(eq) => whole(value, at + eq + 1, at + pair.len(), cuts),
        None => whole(value, at, at + pair.len(), cuts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(name: &str, value: &str) -> String {
        let mut found = Vec::new();
        cuts(Shape::of(name), value, &mut found);
        super::super::cuts::apply(value, &mut found).unwrap_or_else(|| value.to_string())
    }

    #[test]
    fn authorization_keeps_its_scheme_and_the_length() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig";
        assert_eq!(token.len(), 43);
        assert_eq!(
            redacted("Authorization", &format!("Bearer {token}")),
            "Bearer <redacted 43 bytes>"
        );
        assert_eq!(
            redacted("proxy-authorization", "Basic dXNlcjpwYXNz"),
            "Basic <redacted 12 bytes>"
        );
        assert_eq!(
            redacted("authorization", "Digest username=\"a\", response=\"b\""),
            "Digest <redacted 26 bytes>"
        );
        // No scheme: all of it.
        assert_eq!(
            redacted("authorization", "abc123secret"),
            "<redacted 12 bytes>"
        );
        assert_eq!(
            redacted("authorization", "Bearer  x "),
            "Bearer  <redacted 1 bytes> "
        );
        assert_eq!(redacted("authorization", "Bearer"), "<redacted 6 bytes>");
        assert_eq!(redacted("authorization", ""), "");
    }

    #[test]
    fn cookies_keep_their_names_and_attributes() {
        assert_eq!(
            redacted("cookie", "session=0123456789abcdef; theme=dark;flag"),
            "session=<redacted 16 bytes>; theme=<redacted 4 bytes>;<redacted 4 bytes>"
        );
        assert_eq!(
            redacted(
                "set-cookie",
                "session=0123456789abcdef0123456789abcdef; Path=/; HttpOnly; Expires=Wed, 21 Oct 2026 07:28:00 GMT"
            ),
            "session=<redacted 32 bytes>; Path=/; HttpOnly; Expires=Wed, 21 Oct 2026 07:28:00 GMT"
        );
        assert_eq!(
            redacted("set-cookie", "session=; Max-Age=0"),
            "session=; Max-Age=0"
        );
        assert_eq!(redacted("cookie", "a=\"q\""), "a=<redacted 3 bytes>");
    }

    #[test]
    fn other_headers_are_hidden_whole() {
        assert_eq!(redacted("x-api-key", "k-12345"), "<redacted 7 bytes>");
        assert_eq!(redacted("x-api-key", "Bearer k"), "<redacted 8 bytes>");
        assert_eq!(redacted("x-api-key", "   "), "   ");
    }
}
