//! Secret parameters of a URL's query or a form body
//! (`application/x-www-form-urlencoded`): `name=value` pairs joined by `&`,
//! each value whose name is secret hidden, as written (still
//! percent-encoded). Names are matched as written, not percent-decoded.

use super::cuts::Cut;
use super::names::SecretNames;

/// Adds a cut for every secret parameter's value in `text`, which starts
/// at `offset` in the text the cuts are for.
pub(crate) fn cuts(text: &str, offset: usize, names: &SecretNames, cuts: &mut Vec<Cut>) {
    let mut at = offset;
    for pair in text.split('&') {
        if let Some(eq) = pair.find('=') {
            let (name, value) = (&pair[..eq], &pair[eq + 1..]);
            if !value.is_empty() && names.matches(name) {
                cuts.push(Cut::plain(at + eq + 1, at + pair.len()));
            }
        }
        at += pair.len() + 1;
    }
}

/// Where the query of a request target (`/path?query#fragment`) lies.
pub(crate) fn query(target: &str) -> Option<(usize, usize)> {
    let start = target.find('?')? + 1;
    let end = target[start..]
        .find('#')
        .map_or(target.len(), |e| start + e);
    Some((start, end))
}
