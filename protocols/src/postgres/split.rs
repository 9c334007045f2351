//! A simple `Query` may hold several statements (`BEGIN; UPDATE …; COMMIT`)
//! and the server answers each in turn. To name each answer's statement the
//! text is cut at its top-level semicolons, the way PostgreSQL's own lexer
//! would: not inside quotes (`'…'`, `E'…'` with backslash escapes, `"…"`),
//! dollar quotes (`$tag$…$tag$`), comments (`-- …`, nested `/* … */`) or
//! parentheses (a `CREATE RULE … (a; b)`). Statements that are only
//! whitespace and comments are dropped, since the server does not answer
//! them either. It is a best effort: when the answers do not match the
//! statements one to one, the decoder falls back to the whole text.

use std::ops::Range;

/// The byte ranges of the statements in `sql`, trimmed, at most `max`
/// (the last range then runs to the end of the text).
pub fn statements(sql: &str, max: usize) -> Vec<Range<usize>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let skip_to = match c {
            b'\'' => {
                let escapes = i > 0 && matches!(b[i - 1], b'e' | b'E') && !ident_before(b, i - 1);
                Some(quoted(b, i + 1, b'\'', escapes))
            }
            b'"' => Some(quoted(b, i + 1, b'"', false)),
            b'-' if next == Some(b'-') => Some(
                b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(b.len(), |p| i + p + 1),
            ),
            b'/' if next == Some(b'*') => Some(block_comment(b, i + 2)),
            b'$' if !ident_before(b, i) => dollar_quoted(b, i),
            _ => None,
        };
        let is_comment = matches!((c, next), (b'-', Some(b'-')) | (b'/', Some(b'*')));
        if let Some(end) = skip_to {
            has_code |= !is_comment;
            i = end.max(i + 1);
            continue;
        }
        match c {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b';' if depth == 0 => {
                if has_code && out.len() + 1 < max {
                    out.push(trim(sql, start..i));
                } else if has_code {
                    break;
                }
                start = i + 1;
                has_code = false;
            }
            _ => {}
        }
        if c != b';' && !c.is_ascii_whitespace() {
            has_code = true;
        }
        i += 1;
    }
    if has_code || (out.is_empty() && start < b.len()) || (out.len() + 1 == max && start < b.len())
    {
        let r = trim(sql, start..b.len());
        if !r.is_empty() {
            out.push(r);
        }
    }
    out
}

/// Whether the byte before `i` continues an identifier (so `$1` or `a$b`
/// is not a dollar quote, and `name'…'` is not an `E'…'` string).
fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] >= 0x80)
}

/// The index after the quote closing a string opened before `from`; a
/// doubled quote is an escaped one.
fn quoted(b: &[u8], from: usize, quote: u8, backslashes: bool) -> usize {
    let mut i = from;
    while i < b.len() {
        if backslashes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn block_comment(b: &[u8], from: usize) -> usize {
    let mut depth = 1;
    let mut i = from;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// `$tag$ … $tag$` starting at `at`: the index after its end, or `None`
/// if `$` does not open one (a parameter `$1`).
fn dollar_quoted(b: &[u8], at: usize) -> Option<usize> {
    let tag_len = b[at + 1..]
        .iter()
        .position(|&x| !(x.is_ascii_alphanumeric() || x == b'_' || x >= 0x80))?;
    if b[at + 1..].first().is_some_and(u8::is_ascii_digit) || b[at + 1 + tag_len] != b'$' {
        return None;
    }
    let tag = &b[at..at + tag_len + 2];
    let body = at + tag.len();
    let end = b[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(b.len(), |p| body + p + tag.len());
    Some(end)
}

fn trim(sql: &str, r: Range<usize>) -> Range<usize> {
    let s = &sql[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead == s.len() {
        return r.start..r.start;
    }
    r.start + lead..r.end - trail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sql: &str) -> Vec<&str> {
        statements(sql, 100).into_iter().map(|r| &sql[r]).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        assert_eq!(
            split("BEGIN; UPDATE t SET a = 'x;y' WHERE b = \"c;d\"; COMMIT;"),
            [
                "BEGIN",
                "UPDATE t SET a = 'x;y' WHERE b = \"c;d\"",
                "COMMIT"
            ]
        );
        assert_eq!(
            split("SELECT $$a;b$$; SELECT $f$ $$; $f$, $1;"),
            ["SELECT $$a;b$$", "SELECT $f$ $$; $f$, $1"]
        );
        assert_eq!(
            split("SELECT 1 -- x; y\n; /* a; /* b; */ c; */ SELECT E'\\';'"),
            ["SELECT 1 -- x; y", "/* a; /* b; */ c; */ SELECT E'\\';'"]
        );
        assert_eq!(
            split("SELECT 'it''s;'; ;; SELECT 2"),
            ["SELECT 'it''s;'", "SELECT 2"]
        );
        assert_eq!(
            split("CREATE RULE r AS ON INSERT TO t DO (a; b); X"),
            ["CREATE RULE r AS ON INSERT TO t DO (a; b)", "X"]
        );
    }

    #[test]
    fn comment_only_pieces_are_not_statements() {
        assert_eq!(split("SELECT 1; -- done"), ["SELECT 1"]);
        assert_eq!(split("  "), Vec::<&str>::new());
        assert_eq!(split("-- only"), ["-- only"]);
    }

    #[test]
    fn caps_the_count() {
        let sql = "a;b;c;d";
        let r: Vec<&str> = statements(sql, 2).into_iter().map(|r| &sql[r]).collect();
        assert_eq!(r, ["a", "b;c;d"]);
    }
}
