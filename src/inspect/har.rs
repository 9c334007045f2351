//! HTTP exchanges as a HAR 1.2 log, openable in a browser's devtools.

use chrono::Duration;
use serde_json::{json, Map, Value};

use crate::events::{BodyEncoding, Event, EventKind, HeaderMap, RequestInfo};

/// A HAR 1.2 document with one entry per `request.completed`, in order.
pub fn to_har<'a>(events: impl IntoIterator<Item = &'a Event>) -> Value {
    let entries: Vec<Value> = events
        .into_iter()
        .filter(|e| e.kind == EventKind::RequestCompleted)
        .filter_map(|e| Some(entry(e, e.request()?)))
        .collect();
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "tapmesh", "version": env!("CARGO_PKG_VERSION")},
            "pages": [],
            "entries": entries,
        }
    })
}

fn entry(event: &Event, r: &RequestInfo) -> Value {
    let latency = r.latency_ms.unwrap_or(0.0).max(0.0);
    let started = event.timestamp - Duration::microseconds((latency * 1000.0) as i64);
    let host = ["host", ":authority"]
        .iter()
        .find_map(|h| r.request_headers.get(h))
        .unwrap_or(&r.target);
    let path = r.path.as_str();
    let url = if path.starts_with('/') {
        format!("http://{host}{path}")
    } else {
        // CONNECT's authority form, or an absolute URL sent to a proxy.
        path.to_string()
    };
    let mut request = json!({
        "method": r.method,
        "url": url,
        "httpVersion": r.version,
        "cookies": [],
        "headers": headers(&r.request_headers),
        "queryString": query_string(path),
        "headersSize": -1,
        "bodySize": r.request_size,
    });
    if r.request_size > 0 {
        let mut post = Map::new();
        post.insert(
            "mimeType".into(),
            json!(r.request_headers.get("content-type").unwrap_or("")),
        );
        post.insert("text".into(), json!(r.request_body));
        if r.request_body_encoding == BodyEncoding::Base64 {
            post.insert("comment".into(), json!("text is base64"));
        }
        request["postData"] = Value::Object(post);
    }
    let mut content = json!({
        "size": r.response_size,
        "mimeType": r.response_headers.get("content-type").unwrap_or(""),
        "text": r.response_body,
    });
    if r.response_body_encoding == BodyEncoding::Base64 {
        content["encoding"] = json!("base64");
    }
    if r.response_body_truncated {
        content["comment"] = json!("truncated at the capture limit");
    }
    let status = r.status_code.unwrap_or(0);
    let mut entry = json!({
        "startedDateTime": started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "time": latency,
        "request": request,
        "response": {
            "status": status,
            "statusText": status_text(status),
            "httpVersion": r.version,
            "cookies": [],
            "headers": headers(&r.response_headers),
            "content": content,
            "redirectURL": r.response_headers.get("location").unwrap_or(""),
            "headersSize": -1,
            "bodySize": r.response_size,
        },
        "cache": {},
        "timings": {"send": 0, "wait": latency, "receive": 0},
        "connection": r.connection.to_string(),
    });
    if let Some(error) = &r.error {
        entry["comment"] = json!(error);
    }
    entry
}

fn headers(map: &HeaderMap) -> Vec<Value> {
    map.iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

fn query_string(path: &str) -> Vec<Value> {
    let Some((_, query)) = path.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            json!({"name": name, "value": value})
        })
        .collect()
}

fn status_text(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixtures::event;

    #[test]
    fn an_exchange_becomes_an_entry() {
        let e = event(
            json!({"seq": 1, "type": "request.completed", "timestamp": "2026-11-23T10:00:01.010Z",
            "environment": "e", "request": {"connection": 3, "source": "c", "target": "web",
            "version": "HTTP/1.1", "method": "POST", "path": "/a?x=1&y=", "status_code": 201,
            "latency_ms": 10.0, "request_size": 2, "response_size": 3,
            "request_headers": {"host": "h:80", "content-type": "text/plain"},
            "response_headers": {"content-type": "text/plain"},
            "request_body": "hi", "request_body_encoding": "utf8", "request_body_truncated": false,
            "response_body": "ok\n", "response_body_encoding": "utf8", "response_body_truncated": false}}),
        );
        let har = to_har(&[
            e,
            event(json!({"seq": 2, "type": "connection.closed", "connection": {}})),
        ]);
        let entries = har["log"]["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let x = &entries[0];
        assert_eq!(x["startedDateTime"], "2026-11-23T10:00:01.000000Z");
        assert_eq!(x["request"]["url"], "http://h:80/a?x=1&y=");
        assert_eq!(
            x["request"]["queryString"][1],
            json!({"name": "y", "value": ""})
        );
        assert_eq!(x["request"]["postData"]["text"], "hi");
        assert_eq!(x["response"]["status"], 201);
        assert_eq!(x["response"]["statusText"], "Created");
        assert_eq!(x["response"]["content"]["text"], "ok\n");
        assert_eq!(x["timings"]["wait"], 10.0);
    }
}
