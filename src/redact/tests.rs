//! The redactor's rules, one at a time and together.

use serde_json::{json, Value};
use tapmesh_protocols::http::HeaderBlock;

use super::*;

fn default() -> Arc<Redactor> {
    Redactor::default_shared()
}

fn with(config: RedactConfig) -> Redactor {
    Redactor::new(&config).unwrap().expect("redaction on")
}

fn block(fields: &[(&str, &str)]) -> HeaderBlock {
    let mut block = HeaderBlock::new();
    for (name, value) in fields {
        block.push_str(name, value);
    }
    block
}

fn fields(block: &HeaderBlock) -> Vec<(String, String)> {
    block
        .iter()
        .map(|f| (f.name.to_string(), f.value.to_string()))
        .collect()
}

fn json_body(redactor: &Redactor, text: &str) -> String {
    let mut body = text.to_string();
    redactor.body(&mut body, Some("application/json"), None);
    body
}

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl";

#[test]
fn every_default_header_is_hidden_keeping_scheme_names_and_lengths() {
    let bearer = format!("Bearer {TOKEN}");
    let out = default().headers(block(&[
        ("Host", "shop.test"),
        ("Authorization", &bearer),
        ("Proxy-Authorization", "Basic YWxpY2U6czNjcmV0"),
        (
            "Cookie",
            "session=0123456789abcdef0123456789abcdef; theme=dark",
        ),
        ("X-API-Key", "k_live_123456"),
        ("x-auth-token", "tok"),
        ("Accept", "*/*"),
    ]));
    assert_eq!(
        fields(&out),
        [
            ("Host", "shop.test"),
            (
                "Authorization",
                &*format!("Bearer <redacted {} bytes>", TOKEN.len())
            ),
            ("Proxy-Authorization", "Basic <redacted 16 bytes>"),
            (
                "Cookie",
                "session=<redacted 32 bytes>; theme=<redacted 4 bytes>"
            ),
            ("X-API-Key", "<redacted 13 bytes>"),
            ("x-auth-token", "<redacted 3 bytes>"),
            ("Accept", "*/*"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
    );
    assert_eq!(TOKEN.len(), 62);
}

#[test]
fn each_set_cookie_field_keeps_its_name_and_attributes() {
    let out = default().headers(block(&[
        ("set-cookie", "session=abcdef; Path=/; HttpOnly"),
        (
            "set-cookie",
            "csrf=xyz; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Secure",
        ),
    ]));
    let map = crate::events::HeaderMap::from_block(out);
    assert_eq!(
        map.get("set-cookie"),
        Some(
            "session=<redacted 6 bytes>; Path=/; HttpOnly, \
             csrf=<redacted 3 bytes>; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Secure"
        )
    );
}

#[test]
fn a_block_with_nothing_secret_comes_back_as_it_was() {
    let sent = block(&[("content-type", "application/json"), ("x-request-id", "42")]);
    let out = default().headers(sent.clone());
    assert_eq!(out, sent);
}

#[test]
fn metadata_and_headers_have_their_own_added_names() {
    let redactor = with(RedactConfig {
        headers: vec!["X-Session".into()],
        metadata: vec!["tenant-secret".into()],
        ..Default::default()
    });
    let fields_in = [
        ("authorization", "Bearer abc"),
        ("x-session", "s1"),
        ("tenant-secret", "t1"),
    ];
    assert_eq!(
        fields(&redactor.headers(block(&fields_in))),
        [
            ("authorization", "Bearer <redacted 3 bytes>"),
            ("x-session", "<redacted 2 bytes>"),
            ("tenant-secret", "t1"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
    );
    assert_eq!(
        fields(&redactor.metadata(block(&fields_in))),
        [
            ("authorization", "Bearer <redacted 3 bytes>"),
            ("x-session", "s1"),
            ("tenant-secret", "<redacted 2 bytes>"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
    );
}

#[test]
fn json_members_named_like_secrets_are_hidden_at_any_depth() {
    let sent = r#"{
  "user": "alice",
  "password": "hunter2",
  "profile": {"db_password": "p@ss", "accessToken": "abc.def", "max_tokens": 512},
  "keys": [{"api_key": "k1"}, {"name": "n", "client_secret": "shh"}],
  "credentials": {"user": "u", "pass": "p"},
  "pin_code": 1234,
  "token": null,
  "secret": "",
  "note": "password is not a member here"
}"#;
    let out = json_body(&default(), sent);
    let got: Value = serde_json::from_str(&out).expect("still JSON");
    assert_eq!(
        got,
        json!({
            "user": "alice",
            "password": "<redacted 7 bytes>",
            "profile": {
                "db_password": "<redacted 4 bytes>",
                "accessToken": "<redacted 7 bytes>",
                "max_tokens": 512
            },
            "keys": [{"api_key": "<redacted 2 bytes>"}, {"name": "n", "client_secret": "<redacted 3 bytes>"}],
            "credentials": "<redacted 26 bytes>",
            "pin_code": 1234,
            "token": null,
            "secret": "",
            "note": "password is not a member here"
        })
    );
    // The layout is kept: only the values changed.
    assert!(out.starts_with("{\n  \"user\": \"alice\",\n  \"password\": \"<redacted 7 bytes>\","));
}

#[test]
fn escapes_count_as_the_bytes_they_stand_for() {
    let out = json_body(&default(), r#"{"password":"caf\u00e9\"x","secret":9.5e3}"#);
    assert_eq!(
        out,
        r#"{"password":"<redacted 7 bytes>","secret":"<redacted 5 bytes>"}"#
    );
}

#[test]
fn a_body_cut_off_mid_value_leaks_nothing() {
    let whole =
        r#"{"user":"alice","password":"correct-horse-battery","profile":{"token":"abcdefgh"}}"#;
    for cut in 1..whole.len() {
        let out = json_body(&default(), &whole[..cut]);
        for secret in ["correct-horse-battery", "abcdefgh"] {
            // No prefix of a secret longer than one byte survives.
            for len in 2..=secret.len() {
                assert!(
                    !out.contains(&format!("\"{}", &secret[..len])),
                    "cut at {cut}: {out}"
                );
            }
        }
    }
    assert_eq!(
        json_body(&default(), r#"{"user":"alice","password":"correct-hor"#),
        r#"{"user":"alice","password":"<redacted 11 bytes>""#
    );
    assert_eq!(
        json_body(&default(), r#"[{"credentials":{"a":"b","c":["#),
        r#"[{"credentials":"<redacted 14 bytes>""#
    );
}

#[test]
fn several_documents_and_odd_json_are_scanned_as_far_as_they_go() {
    let ndjson = "{\"token\":\"a1\"}\n{\"token\":\"b22\"}\n";
    let mut body = ndjson.to_string();
    default().body(&mut body, Some("application/x-ndjson"), None);
    assert_eq!(
        body,
        "{\"token\":\"<redacted 2 bytes>\"}\n{\"token\":\"<redacted 3 bytes>\"}\n"
    );
    // Unquoted keys, a missing value, a mismatched closer: no panic,
    // secrets gone.
    let out = json_body(
        &default(),
        r#"{password: 'x y', "a":, "token": "t", "list": [1,2}, "secret": "s"#,
    );
    for secret in ["'x", "\"t\""] {
        assert!(!out.contains(secret), "{out}");
    }
    assert!(out.ends_with(r#""secret": "<redacted 1 bytes>""#), "{out}");
    // Non-ASCII everywhere.
    let out = json_body(
        &default(),
        r#"{"clé":"é","mot_de_passe":"x","password":"日本"}"#,
    );
    assert_eq!(
        out,
        r#"{"clé":"é","mot_de_passe":"x","password":"<redacted 6 bytes>"}"#
    );
}

#[test]
fn json_is_recognised_by_media_type_or_by_its_first_byte() {
    let sent = r#"{"password":"pw"}"#;
    let redacted = r#"{"password":"<redacted 2 bytes>"}"#;
    for content_type in [
        Some("application/json; charset=utf-8"),
        Some("application/problem+json"),
        Some("application/x-www-form-urlencoded"), // curl -d '{…}'
        Some("text/plain"),
        None,
    ] {
        let mut body = sent.to_string();
        default().body(&mut body, content_type, None);
        assert_eq!(body, redacted, "{content_type:?}");
    }
    // Compressed: kept as sent (it is base64 in events anyway).
    let mut body = sent.to_string();
    default().body(&mut body, Some("application/json"), Some("gzip"));
    assert_eq!(body, sent);
    let mut body = sent.to_string();
    default().body(&mut body, Some("application/json"), Some("identity"));
    assert_eq!(body, redacted);
}

#[test]
fn forms_and_queries_hide_secret_parameters() {
    let mut body = "user=alice&password=hunter2&remember=1&user%5Btoken%5D=x".to_string();
    default().body(&mut body, Some("application/x-www-form-urlencoded"), None);
    assert_eq!(
        body,
        "user=alice&password=<redacted 7 bytes>&remember=1&user%5Btoken%5D=x"
    );
    let mut body = "user[password]=pw&a=b".to_string();
    default().body(&mut body, Some("application/x-www-form-urlencoded"), None);
    assert_eq!(body, "user[password]=<redacted 2 bytes>&a=b");
    // Not a form: left alone.
    let mut body = "password=hunter2".to_string();
    default().body(&mut body, Some("text/plain"), None);
    assert_eq!(body, "password=hunter2");

    let mut target = "/cb?code=ok&access_token=abc123&state=s#token=frag".to_string();
    default().target(&mut target);
    assert_eq!(
        target,
        "/cb?code=ok&access_token=<redacted 6 bytes>&state=s#token=frag"
    );
    let mut target = "/plain/path".to_string();
    default().target(&mut target);
    assert_eq!(target, "/plain/path");
}

#[test]
fn added_fields_and_paths() {
    let redactor = with(RedactConfig {
        json_fields: vec!["ssn".into(), "card_number".into()],
        json_paths: vec![
            "$.card.number".into(),
            "$.items[*].code".into(),
            "$[1]".into(),
        ],
        ..Default::default()
    });
    let out = json_body(
        &redactor,
        r#"{"ssn":"123-45-6789","cardNumber":"4111","card":{"number":"4242","exp":"12/30"},
"number":"top","items":[{"code":"c1"},{"code":"c2","name":"n"}],"code":"kept"}"#,
    );
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        got,
        json!({
            "ssn": "<redacted 11 bytes>", "cardNumber": "<redacted 4 bytes>",
            "card": {"number": "<redacted 4 bytes>", "exp": "12/30"},
            "number": "top",
            "items": [{"code": "<redacted 2 bytes>"}, {"code": "<redacted 2 bytes>", "name": "n"}],
            "code": "kept"
        })
    );
    assert_eq!(
        json_body(&redactor, r#"["a","bb",{"c":1}]"#),
        r#"["a","<redacted 2 bytes>",{"c":1}]"#
    );
}

#[test]
fn patterns_hide_matches_or_only_their_groups() {
    let redactor = with(RedactConfig {
        patterns: vec![r"sk_live_[A-Za-z0-9]+".into(), r"ssn=(\d+)".into()],
        ..Default::default()
    });
    let out = redactor.headers(block(&[
        ("x-note", "key sk_live_abc123 used"),
        ("x-id", "7"),
    ]));
    assert_eq!(
        fields(&out),
        [("x-note", "key <redacted 14 bytes> used"), ("x-id", "7")]
            .map(|(n, v)| (n.to_string(), v.to_string()))
    );
    let mut body = "charged with sk_live_zz; ssn=123456789 done".to_string();
    redactor.body(&mut body, Some("text/plain"), None);
    assert_eq!(
        body,
        "charged with <redacted 10 bytes>; ssn=<redacted 9 bytes> done"
    );
    // In JSON, beside the member rules.
    let out = json_body(&redactor, r#"{"note":"sk_live_q","password":"sk_live_w"}"#);
    assert_eq!(
        out,
        r#"{"note":"<redacted 9 bytes>","password":"<redacted 9 bytes>"}"#
    );
    let mut target = "/pay?ref=sk_live_t".to_string();
    redactor.target(&mut target);
    assert_eq!(target, "/pay?ref=<redacted 9 bytes>");
    assert_eq!(redactor.patterns_in("nothing here"), None);
}

#[test]
fn grpc_messages_are_redacted_in_the_tree() {
    let redactor = with(RedactConfig {
        json_paths: vec!["$.card.number".into()],
        patterns: vec!["sk_live_\\w+".into()],
        ..Default::default()
    });
    let mut messages = json!([
        {"user": "alice", "password": "hunter2", "apiKey": "k-1",
         "card": {"number": "4242424242424242"}, "note": "uses sk_live_abc",
         "nested": [{"refreshToken": {"value": "r"}}], "token": null},
        {"card": {"number": 42}}
    ]);
    redactor.messages(&mut messages);
    assert_eq!(
        messages,
        json!([
            {"user": "alice", "password": "<redacted 7 bytes>", "apiKey": "<redacted 3 bytes>",
             "card": {"number": "<redacted 16 bytes>"}, "note": "uses <redacted 11 bytes>",
             "nested": [{"refreshToken": "<redacted 13 bytes>"}], "token": null},
            {"card": {"number": "<redacted 2 bytes>"}}
        ])
    );
}

#[test]
fn redaction_off_is_no_redactor() {
    let off = RedactConfig {
        enabled: false,
        ..Default::default()
    };
    assert!(Redactor::new(&off).unwrap().is_none());
}

#[test]
fn every_bad_entry_is_reported_with_its_path() {
    let errors = Redactor::new(&RedactConfig {
        headers: vec!["ok".into(), "bad header".into()],
        metadata: vec!["".into()],
        json_fields: vec!["fine".into(), "__".into()],
        json_paths: vec!["card.number".into()],
        patterns: vec!["ok".into(), "(unclosed".into()],
        ..Default::default()
    })
    .unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "headers[1]",
            "metadata[0]",
            "json_fields[1]",
            "json_paths[0]",
            "patterns[1]"
        ]
    );
    let pattern = &errors[4].message;
    assert!(
        pattern.contains("\"(unclosed\" is not a valid regular expression: unclosed group"),
        "{pattern}"
    );
    assert!(!pattern.contains('\n'), "{pattern}");
}

#[test]
fn the_spec_reads_redact() {
    let spec = |redact: &str| {
        crate::spec::Spec::parse(&format!(
            "name: r\n{redact}\nservices:\n  a: {{ type: script, script: 'true' }}\n"
        ))
    };
    assert_eq!(spec("").unwrap().redact, RedactConfig::default());
    assert!(!spec("redact: false").unwrap().redact.enabled);
    assert!(spec("redact: true").unwrap().redact.enabled);
    let added = spec(
        "redact:\n  headers: [x-session]\n  metadata: [tenant-key]\n  json_fields: [ssn]\n  \
         json_paths: [$.card.number]\n  patterns: ['sk_live_\\w+']",
    )
    .unwrap()
    .redact;
    assert_eq!(
        added,
        RedactConfig {
            enabled: true,
            headers: vec!["x-session".into()],
            metadata: vec!["tenant-key".into()],
            json_fields: vec!["ssn".into()],
            json_paths: vec!["$.card.number".into()],
            patterns: vec!["sk_live_\\w+".into()],
        }
    );
    let errors = spec(
        "redact:\n  patterns: ['(x', ok]\n  json_paths: [card.number]\n  headers: ['a b']\n  colour: red",
    )
    .unwrap_err();
    let found: Vec<(&str, &str)> = errors
        .0
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    for (path, says) in [
        ("redact.colour", "unknown field"),
        ("redact.patterns[0]", "not a valid regular expression"),
        ("redact.json_paths[0]", "starts at the document"),
        ("redact.headers[0]", "not a header name"),
    ] {
        assert!(
            found.iter().any(|(p, m)| *p == path && m.contains(says)),
            "{path}: {found:?}"
        );
    }
    let wrong = spec("redact: 3").unwrap_err();
    assert_eq!(wrong.0[0].path, "redact");
    assert!(wrong.0[0].message.contains("true, false or a mapping"));
    let wrong = spec("redact: { patterns: sk }").unwrap_err();
    assert_eq!(wrong.0[0].path, "redact.patterns");
}

/// Text made of JSON's punctuation, secret names, escapes and multi-byte
/// characters in any order: the scanner neither panics nor loops, and
/// whatever it makes of it, a complete `"password":"…"` pair never keeps
/// its value.
#[test]
fn any_text_is_scanned_without_panic() {
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        " ",
        "\\",
        "\\u00e9",
        "\\ud83d",
        "password",
        "token",
        "x",
        "1",
        "null",
        "é",
        "日本",
        "\"password\":\"hunter2\"",
        "\n",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let redactor = default();
    for _ in 0..20_000 {
        let len = next() % 24;
        let text: String = (0..len)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let mut body = text.clone();
        redactor.body(&mut body, Some("application/json"), None);
        let mut body = format!("{{{text}");
        redactor.body(&mut body, None, None);
        let mut clean = format!("{{\"password\":\"hunter2\",{text}");
        redactor.body(&mut clean, None, None);
        assert!(!clean.starts_with("{\"password\":\"hunter2\""), "{clean}");
    }
}
