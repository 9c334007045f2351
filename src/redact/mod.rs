//! Redaction: secrets are replaced before an event exists, once, where a
//! decoder's output becomes an event, so everything that reads events
//! (the events file, the daemon's streams, HAR and JSON Lines exports,
//! `summary.json`, the Rust API) only ever sees the redacted form.
//!
//! What is hidden by default (each replaced by `<redacted N bytes>`, `N`
//! the secret's length in bytes):
//! - header fields and trailers (HTTP) and metadata (gRPC) named in
//!   [`DEFAULT_HEADERS`]: the credentials after an authorization scheme
//!   (`Bearer <redacted 43 bytes>`), each cookie's value
//!   (`session=<redacted 32 bytes>; Path=/`), or the whole value;
//! - in JSON bodies (and decoded gRPC messages), the value of every member
//!   whose name is secret ([`DEFAULT_JSON_FIELDS`], matched word by word:
//!   see [`names`]), as the string `"<redacted N bytes>"`; a body cut off
//!   at the capture limit is scanned as far as it goes;
//! - in a URL's query and in form bodies, the value of every parameter
//!   whose name is secret.
//!
//! A spec's `redact:` adds header and metadata names, JSON member names,
//! JSON paths ([`path`]) and regular expressions (whose matches, or only
//! their capture groups, are hidden in header values, paths and body
//! text), or turns redaction off. PostgreSQL and Redis authentication is
//! redacted by their decoders, with or without this.

mod cuts;
mod form;
mod header;
mod json_text;
mod json_value;
pub mod names;
pub mod path;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use regex::Regex;
use tapmesh_protocols::http::HeaderBlock;

use cuts::Cut;
use names::SecretNames;
use path::JsonPath;

/// Header fields (and gRPC metadata keys) hidden unless redaction is off.
pub const DEFAULT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
    "private-token",
    "x-amz-security-token",
    "x-goog-api-key",
];

/// JSON member (and query or form parameter) names hidden unless
/// redaction is off, matched as [`names`] says.
pub const DEFAULT_JSON_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "client_secret",
    "private_key",
    "credentials",
    "credential",
    "authorization",
    "cookie",
];

/// What to redact, as a spec's `redact:` says: on or off, and what to add
/// to the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactConfig {
    /// `redact: false` turns all of it off.
    pub enabled: bool,
    pub headers: Vec<String>,
    pub metadata: Vec<String>,
    pub json_fields: Vec<String>,
    pub json_paths: Vec<String>,
    pub patterns: Vec<String>,
}

impl Default for RedactConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            headers: Vec::new(),
            metadata: Vec::new(),
            json_fields: Vec::new(),
            json_paths: Vec::new(),
            patterns: Vec::new(),
        }
    }
}

/// A problem with one entry of a [`RedactConfig`]: `path` names it within
/// `redact` (`patterns[2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactError {
    pub path: String,
    pub message: String,
}

/// The redaction rules of an environment or a proxy, ready to apply.
#[derive(Debug)]
pub struct Redactor {
    headers: HeaderNames,
    metadata: HeaderNames,
    names: SecretNames,
    paths: Vec<JsonPath>,
    patterns: Vec<Regex>,
}

/// Secret header names, lower-case, with a bit set of what their lengths
/// and last letters hash to: a field whose name hashes elsewhere (nearly
/// every ordinary one) is passed over at once.
#[derive(Debug)]
struct HeaderNames {
    names: Vec<Box<str>>,
    hashes: u64,
}

impl HeaderNames {
    fn new(names: Vec<Box<str>>) -> Self {
        let hashes = names.iter().fold(0, |set, n| set | Self::bit(n));
        Self { names, hashes }
    }

    /// One of 64 bits, from the length and the last byte without its case.
    fn bit(name: &str) -> u64 {
        let last = name.as_bytes().last().map_or(0, |b| b.to_ascii_lowercase());
        1 << ((name.len() + 7 * usize::from(last)) & 63)
    }

    fn contains(&self, name: &str) -> bool {
        self.hashes & Self::bit(name) != 0
            && self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// The marker that stands for a hidden secret of `len` bytes.
pub fn marker(len: usize) -> String {
    let mut out = String::with_capacity(24);
    cuts::push_marker(&mut out, len);
    out
}

/// Whether `name` may be a header field's name (an RFC 9110 token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Redactor {
    /// The rules `config` gives, or `None` when it turns redaction off.
    /// Every invalid entry is reported, each with its path.
    pub fn new(config: &RedactConfig) -> Result<Option<Self>, Vec<RedactError>> {
        let mut errors = Vec::new();
        let mut error = |path: String, message: String| errors.push(RedactError { path, message });
        let mut header_names = |what: &str, extra: &[String]| {
            let mut names: Vec<Box<str>> = DEFAULT_HEADERS.iter().map(|&n| n.into()).collect();
            for (i, name) in extra.iter().enumerate() {
                if !is_token(name) {
                    error(
                        format!("{what}[{i}]"),
                        format!("{name:?} is not a header name"),
                    );
                } else if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    names.push(name.to_ascii_lowercase().into());
                }
            }
            HeaderNames::new(names)
        };
        let headers = header_names("headers", &config.headers);
        let metadata = header_names("metadata", &config.metadata);
        let mut fields: Vec<&str> = DEFAULT_JSON_FIELDS.to_vec();
        for (i, name) in config.json_fields.iter().enumerate() {
            match SecretNames::new([name.as_str()]) {
                Ok(_) => fields.push(name),
                Err((_, message)) => error(format!("json_fields[{i}]"), message),
            }
        }
        let names = SecretNames::new(fields).unwrap_or_default();
        let mut paths = Vec::new();
        for (i, text) in config.json_paths.iter().enumerate() {
            match JsonPath::parse(text) {
                Ok(path) => paths.push(path),
                Err(message) => error(format!("json_paths[{i}]"), message),
            }
        }
        let mut patterns = Vec::new();
        for (i, text) in config.patterns.iter().enumerate() {
            match Regex::new(text) {
                Ok(re) => patterns.push(re),
                Err(e) => error(format!("patterns[{i}]"), regex_problem(text, &e)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(config.enabled.then_some(Self {
            headers,
            metadata,
            names,
            paths,
            patterns,
        }))
    }

    /// The default rules, shared.
    pub fn default_shared() -> Arc<Self> {
        static DEFAULT: OnceLock<Arc<Redactor>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                let rules = Redactor::new(&RedactConfig::default());
                Arc::new(rules.ok().flatten().expect("the default rules are valid"))
            })
            .clone()
    }

    /// `block` (HTTP header fields or trailers) with secret values hidden.
    /// A block with nothing secret is returned as it came, untouched.
    pub fn headers(&self, block: HeaderBlock) -> HeaderBlock {
        self.block(block, &self.headers)
    }

    /// `block` (gRPC metadata) with secret values hidden.
    pub fn metadata(&self, block: HeaderBlock) -> HeaderBlock {
        self.block(block, &self.metadata)
    }

    fn block(&self, block: HeaderBlock, names: &HeaderNames) -> HeaderBlock {
        let secret = |name: &str| names.contains(name);
        let patterned = |value: &str| self.patterns.iter().any(|p| p.is_match(value));
        let patterns = !self.patterns.is_empty();
        if !block
            .iter()
            .any(|f| secret(f.name) || (patterns && patterned(f.value)))
        {
            return block;
        }
        let mut out = HeaderBlock::with_capacity(block.len(), 0);
        let mut found = Vec::new();
        for field in block.iter() {
            found.clear();
            if secret(field.name) {
                header::cuts(header::Shape::of(field.name), field.value, &mut found);
            }
            self.pattern_cuts(field.value, &mut found);
            match cuts::apply(field.value, &mut found) {
                Some(value) => out.push_str(field.name, &value),
                None => out.push_str(field.name, field.value),
            }
        }
        out
    }

    /// Hides the secrets of a captured body given as text (a body shown
    /// as base64 is left alone), by its `content-type` and
    /// `content-encoding`: JSON (a `json` media type, or text that starts
    /// with `{` or `[`) by member name and path, a form by parameter
    /// name; patterns in any text. A compressed body is kept as sent.
    pub fn body(
        &self,
        body: &mut String,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) {
        let coded = content_encoding.is_some_and(|c| !c.trim().eq_ignore_ascii_case("identity"));
        if coded || body.is_empty() {
            return;
        }
        let mut found = Vec::new();
        let first = body.trim_start().as_bytes().first().copied();
        if content_type.is_some_and(is_json) || matches!(first, Some(b'{' | b'[')) {
            json_text::cuts(body, &self.rules(), &mut found);
        } else if content_type.is_some_and(is_form) {
            form::cuts(body, 0, &self.names, &mut found);
        }
        self.pattern_cuts(body, &mut found);
        if let Some(redacted) = cuts::apply(body, &mut found) {
            *body = redacted;
        }
    }

    /// Hides secret query parameters and pattern matches in a request
    /// target (`/login?token=…`).
    pub fn target(&self, target: &mut String) {
        let mut found = Vec::new();
        if let Some((start, end)) = form::query(target) {
            form::cuts(&target[start..end], start, &self.names, &mut found);
        }
        self.pattern_cuts(target, &mut found);
        if let Some(redacted) = cuts::apply(target, &mut found) {
            *target = redacted;
        }
    }

    /// Hides the secrets of decoded gRPC messages: an array of messages
    /// (each one a document for JSON paths), or one message.
    pub fn messages(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Array(messages) => {
                for message in messages {
                    json_value::redact(self, message);
                }
            }
            message => json_value::redact(self, message),
        }
    }

    /// `text` with every pattern's match hidden, or `None` if none matched.
    pub fn patterns_in(&self, text: &str) -> Option<String> {
        let mut found = Vec::new();
        self.pattern_cuts(text, &mut found);
        cuts::apply(text, &mut found)
    }

    fn pattern_cuts(&self, text: &str, found: &mut Vec<Cut>) {
        for pattern in &self.patterns {
            if pattern.captures_len() > 1 {
                for captures in pattern.captures_iter(text) {
                    for group in captures.iter().skip(1).flatten() {
                        if !group.is_empty() {
                            found.push(Cut::plain(group.start(), group.end()));
                        }
                    }
                }
            } else {
                for m in pattern.find_iter(text).filter(|m| !m.is_empty()) {
                    found.push(Cut::plain(m.start(), m.end()));
                }
            }
        }
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            names: &self.names,
            paths: &self.paths,
        }
    }
}

/// What the JSON scanner needs of a [`Redactor`].
pub(crate) struct Rules<'r> {
    pub names: &'r SecretNames,
    pub paths: &'r [JsonPath],
}

/// A media type whose essence mentions JSON (`application/json`,
/// `application/problem+json`, `application/x-ndjson`, `text/json`).
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").as_bytes();
    essence.windows(4).any(|w| w.eq_ignore_ascii_case(b"json"))
}

fn is_form(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// A regex error in one line: what is wrong, not the multi-line drawing.
fn regex_problem(pattern: &str, error: &regex::Error) -> String {
    let detail = match error {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(text.as_str())
            .to_string(),
        other => other.to_string(),
    };
    format!("{pattern:?} is not a valid regular expression: {detail}")
}
