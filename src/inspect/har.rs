//! HTTP exchanges as a HAR 1.2 log, openable in a browser's devtools.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::payload;

/// A HAR 1.2 document with one entry per `request.completed`, in order.
pub fn to_har(events: &[Value]) -> Value {
    let entries: Vec<Value> = events
        .iter()
        .filter(|e| e["type"] == "request.completed")
        .filter_map(|e| entry(e, payload(e)?))
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

fn entry(event: &Value, r: &Value) -> Option<Value> {
    let completed: DateTime<Utc> = event["timestamp"].as_str()?.parse().ok()?;
    let latency = r["latency_ms"].as_f64().unwrap_or(0.0).max(0.0);
    let started = completed - Duration::microseconds((latency * 1000.0) as i64);
    let version = r["version"].as_str().unwrap_or("HTTP/1.1");
    let request_headers = headers(&r["request_headers"]);
    let host = ["host", ":authority"]
        .iter()
        .find_map(|h| r["request_headers"][*h].as_str())
        .or_else(|| r["target"].as_str())
        .unwrap_or("localhost");
    let path = r["path"].as_str().unwrap_or("/");
    let url = if path.starts_with('/') {
        format!("http://{host}{path}")
    } else {
        // CONNECT's authority form, or an absolute URL sent to a proxy.
        path.to_string()
    };
    let mut request = json!({
        "method": r["method"].as_str().unwrap_or(""),
        "url": url,
        "httpVersion": version,
        "cookies": [],
        "headers": request_headers,
        "queryString": query_string(path),
        "headersSize": -1,
        "bodySize": r["request_size"].as_u64().unwrap_or(0),
    });
    if r["request_size"].as_u64().unwrap_or(0) > 0 {
        let mut post = Map::new();
        post.insert(
            "mimeType".into(),
            json!(r["request_headers"]["content-type"].as_str().unwrap_or("")),
        );
        post.insert("text".into(), r["request_body"].clone());
        if r["request_body_encoding"] == "base64" {
            post.insert("comment".into(), json!("text is base64"));
        }
        request["postData"] = Value::Object(post);
    }
    let mut content = json!({
        "size": r["response_size"].as_u64().unwrap_or(0),
        "mimeType": r["response_headers"]["content-type"].as_str().unwrap_or(""),
        "text": r["response_body"].clone(),
    });
    if r["response_body_encoding"] == "base64" {
        content["encoding"] = json!("base64");
    }
    if r["response_body_truncated"] == true {
        content["comment"] = json!("truncated at the capture limit");
    }
    let status = r["status_code"].as_u64().unwrap_or(0);
    let mut entry = json!({
        "startedDateTime": started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "time": latency,
        "request": request,
        "response": {
            "status": status,
            "statusText": status_text(status),
            "httpVersion": version,
            "cookies": [],
            "headers": headers(&r["response_headers"]),
            "content": content,
            "redirectURL": r["response_headers"]["location"].as_str().unwrap_or(""),
            "headersSize": -1,
            "bodySize": r["response_size"].as_u64().unwrap_or(0),
        },
        "cache": {},
        "timings": {"send": 0, "wait": latency, "receive": 0},
        "connection": r["connection"].to_string(),
    });
    if let Some(error) = r["error"].as_str() {
        entry["comment"] = json!(error);
    }
    Some(entry)
}

fn headers(map: &Value) -> Vec<Value> {
    map.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| json!({"name": k, "value": v.as_str().unwrap_or("")}))
                .collect()
        })
        .unwrap_or_default()
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

fn status_text(status: u64) -> &'static str {
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

    #[test]
    fn an_exchange_becomes_an_entry() {
        let e = json!({"seq": 1, "type": "request.completed", "timestamp": "2026-11-23T10:00:01.010Z",
            "environment": "e", "request": {"connection": 3, "source": "c", "target": "web",
            "version": "HTTP/1.1", "method": "POST", "path": "/a?x=1&y=", "status_code": 201,
            "latency_ms": 10.0, "request_size": 2, "response_size": 3,
            "request_headers": {"host": "h:80", "content-type": "text/plain"},
            "response_headers": {"content-type": "text/plain"},
            "request_body": "hi", "request_body_encoding": "utf8", "request_body_truncated": false,
            "response_body": "ok\n", "response_body_encoding": "utf8", "response_body_truncated": false}});
        let har = to_har(&[
            e,
            json!({"seq": 2, "type": "connection.closed", "connection": {}}),
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
