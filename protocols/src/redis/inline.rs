//! Inline commands: a line of words, as a person types into `telnet` or
//! `nc` (`SET "my key" 'a value'`).
//!
//! The words are split the way Redis splits them (`sdssplitargs`): blanks
//! separate words, double quotes allow `\n`, `\xHH` and friends, single
//! quotes allow `\'`, and a closing quote must end its word. What Redis
//! would refuse ("unbalanced quotes") is refused here too.

/// Whether `b` can start an inline command. Redis takes any line that does
/// not start with `*` for one, but a line of bytes no person types (binary,
/// control characters) is far likelier garbage than a command, and a
/// decoder that followed it would report nonsense.
pub fn may_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || matches!(b, b' ' | b'\t' | b'"' | b'\'')
}

/// Whether `word` looks like a command name: letters first, then letters,
/// digits and the punctuation module commands use (`JSON.SET`, `FT._LIST`).
fn is_command_name(word: &[u8]) -> bool {
    word.first().is_some_and(u8::is_ascii_alphabetic)
        && word
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'|' | b':'))
}

/// The words of an inline line (without its line end).
pub fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_blank(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let (word, next) = word(line, i)?;
        words.push(word);
        i = next;
    }
    if let Some(first) = words.first() {
        if !is_command_name(first) {
            return Err(format!(
                "inline line starts with {:?}, which is no command name",
                String::from_utf8_lossy(&first[..first.len().min(32)])
            ));
        }
    }
    Ok(words)
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0)
}

/// One word from `start`; returns it and where the next search begins.
fn word(line: &[u8], mut i: usize) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let unbalanced = || Err("unbalanced quotes in inline command".to_string());
    loop {
        let Some(&c) = line.get(i) else {
            return Ok((out, i));
        };
        match c {
            b'"' => i = double_quoted(line, i + 1, &mut out)?,
            b'\'' => i = single_quoted(line, i + 1, &mut out)?,
            c if is_blank(c) => return Ok((out, i)),
            c => {
                out.push(c);
                i += 1;
                continue;
            }
        }
        // A closing quote must end the word.
        match line.get(i) {
            None => return Ok((out, i)),
            Some(&c) if is_blank(c) => return Ok((out, i)),
            Some(_) => return unbalanced(),
        }
    }
}

/// From after an opening `"` to after the closing one.
fn double_quoted(line: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        match line.get(i) {
            None => return Err("unbalanced quotes in inline command".into()),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') if i + 3 < line.len() && line[i + 1] == b'x' => {
                match (hex(line[i + 2]), hex(line[i + 3])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 4;
                    }
                    _ => {
                        out.push(b'x');
                        i += 2;
                    }
                }
            }
            Some(b'\\') if i + 1 < line.len() => {
                out.push(match line[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    c => c,
                });
                i += 2;
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// From after an opening `'` to after the closing one.
fn single_quoted(line: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        match line.get(i) {
            None => return Err("unbalanced quotes in inline command".into()),
            Some(b'\'') => return Ok(i + 1),
            Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line.as_bytes())
            .unwrap()
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn splits_like_redis() {
        assert_eq!(words("PING"), ["PING"]);
        assert_eq!(words("  set  k   v "), ["set", "k", "v"]);
        assert_eq!(
            words(r#"SET "my key" 'it\'s' "a\x41\n""#),
            ["SET", "my key", "it's", "aA\n"]
        );
        assert_eq!(words(r#"SET k """#), ["SET", "k", ""]);
        assert!(words("").is_empty());
    }

    #[test]
    fn refuses_unbalanced_quotes_and_non_commands() {
        assert!(split(br#"GET "abc"#).is_err());
        assert!(split(br#"GET "a"b"#).is_err());
        assert!(split(b"GET 'x").is_err());
        assert!(split(b"12 x").is_err());
        assert!(split("ÿ x".as_bytes()).is_err());
    }
}
