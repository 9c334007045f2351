//! `tapmesh proxy --protocol http` with HTTP/2 clients and servers: curl
//! and h2load to nginx over h2c (prior knowledge), and curl's `Upgrade: h2c`
//! to hypercorn. Every stream is one `request.completed`.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::nginx::{free_port, listening, Nginx};
use common::{curl, of_type, peer_python, requests_after, url, ProxyProcess};

fn start(target: SocketAddr, extra: &[&str]) -> ProxyProcess {
    let mut args = vec![
        "--protocol",
        "http",
        "--source",
        "client",
        "--target-name",
        "server",
    ];
    args.extend_from_slice(extra);
    ProxyProcess::start(target, &args)
}

#[test]
fn curl_prior_knowledge_to_nginx_field_by_field() {
    let nginx = Nginx::start();
    let proxy = start(nginx.h2c_addr(), &[]);
    // nghttp multiplexes its three GETs on one connection. (curl 7.88 does
    // not: its second request on an h2c connection to nginx fails even
    // without the proxy.)
    let out = Command::new("nghttp")
        .arg(url(&proxy, "/echo-query?a=1&b=two"))
        .arg(url(&proxy, "/small.txt"))
        .arg(url(&proxy, "/missing"))
        .output()
        .expect("nghttp is not installed: apt-get install -y nghttp2-client");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("a=1&b=two\n"));
    let h2 = "--http2-prior-knowledge";
    let upload = "u".repeat(5000);
    let out = curl(&[h2, "--data-binary", &upload, &url(&proxy, "/upload")]);
    assert_eq!(out, "created\n");
    curl(&[h2, "--head", &url(&proxy, "/small.txt")]);
    let authority = proxy.addr.to_string();
    let (events, r) = requests_after(proxy, 5);

    let opened = of_type(&events, "connection.opened");
    assert_eq!(opened.len(), 3);
    assert!(r[..3].iter().all(|x| x["connection"] == r[0]["connection"]));
    assert!(of_type(&events, "decode.error").is_empty(), "{events:#?}");

    for (i, x) in r.iter().enumerate() {
        assert_eq!(x["version"], "HTTP/2");
        assert_eq!(x["source"], "client");
        assert_eq!(x["target"], "server");
        assert!(x.get("error").is_none(), "{x}");
        assert!(x["latency_ms"].as_f64().unwrap() > 0.0);
        assert_eq!(x["request_headers"][":scheme"], "http");
        assert_eq!(x["request_headers"][":authority"], authority);
        let agent = if i < 3 { "nghttp2/" } else { "curl/" };
        assert!(x["request_headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with(agent));
        assert!(x["response_headers"]["server"]
            .as_str()
            .unwrap()
            .starts_with("nginx"));
    }

    // nghttp asks for gzip and nginx compresses text/plain: the events keep
    // the bytes as sent; the Rust API decodes them.
    assert_eq!(r[0]["method"], "GET");
    assert_eq!(r[0]["path"], "/echo-query?a=1&b=two");
    assert_eq!(r[0]["status_code"], 200);
    assert_eq!(r[0]["request_headers"]["accept-encoding"], "gzip, deflate");
    assert_eq!(r[0]["response_headers"]["content-encoding"], "gzip");
    assert_eq!(decoded_response_body(&events, 0), "a=1&b=two\n");
    assert_eq!(r[0]["request_size"], 0);

    assert_eq!(r[1]["path"], "/small.txt");
    assert_eq!(decoded_response_body(&events, 1), "a".repeat(1000));
    assert_eq!(r[1]["response_headers"]["content-type"], "text/plain");
    assert!(r[1]["response_size"].as_u64().unwrap() < 100, "compressed");

    assert_eq!(r[2]["path"], "/missing");
    assert_eq!(r[2]["status_code"], 404);
    assert_eq!(r[2]["response_headers"]["content-type"], "text/html");
    assert!(decoded_response_body(&events, 2).contains("<title>404 Not Found</title>"));

    assert_eq!(r[3]["method"], "POST");
    assert_eq!(r[3]["path"], "/upload");
    assert_eq!(r[3]["status_code"], 201);
    assert_eq!(r[3]["request_size"], 5000);
    assert_eq!(r[3]["request_body"], upload);
    assert_eq!(r[3]["request_headers"]["content-length"], "5000");
    assert_eq!(r[3]["response_body"], "created\n");

    assert_eq!(r[4]["method"], "HEAD");
    assert_eq!(r[4]["path"], "/small.txt");
    assert_eq!(r[4]["status_code"], 200);
    assert_eq!(r[4]["response_size"], 0);
    assert_eq!(r[4]["response_headers"]["content-length"], "1000");
}

/// The `n`th request's response body, content coding undone.
fn decoded_response_body(events: &[serde_json::Value], n: usize) -> String {
    let event: tapmesh::events::Event =
        serde_json::from_value(of_type(events, "request.completed")[n].clone()).unwrap();
    let tapmesh::events::Payload::Request(info) = &event.payload else {
        panic!("{event:?}");
    };
    let decoded = info
        .decoded_response_body(1 << 20)
        .unwrap()
        .expect("a content coding");
    String::from_utf8(decoded.data).unwrap()
}

#[test]
fn capture_limit_truncates_http2_bodies() {
    let nginx = Nginx::start();
    let proxy = start(nginx.h2c_addr(), &["--capture-limit", "100"]);
    curl(&["--http2-prior-knowledge", &url(&proxy, "/large.bin")]);
    let (_, r) = requests_after(proxy, 1);
    assert_eq!(r[0]["response_size"], 1 << 20);
    assert_eq!(r[0]["response_body_truncated"], true);
    assert_eq!(r[0]["response_body_encoding"], "base64");
    let body = r[0]["response_body"].as_str().unwrap();
    assert_eq!(body.len(), 136, "100 bytes in base64");
}

#[test]
fn h2load_500_requests_10_streams_deep_are_500_events() {
    let nginx = Nginx::start();
    let proxy = start(nginx.h2c_addr(), &[]);
    let out = Command::new("h2load")
        .args(["-n", "500", "-c", "2", "-m", "10"])
        .arg(url(&proxy, "/small.txt"))
        .output()
        .expect("h2load is not installed: apt-get install -y nghttp2-client");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "h2load failed: {report}");
    assert!(
        report.contains("500 succeeded, 0 failed, 0 errored"),
        "{report}"
    );
    assert!(report.contains("h2c"), "h2load spoke HTTP/2: {report}");
    let (events, r) = requests_after(proxy, 500);
    assert!(of_type(&events, "decode.error").is_empty());
    assert_eq!(of_type(&events, "connection.opened").len(), 2);
    for x in &r {
        assert_eq!(x["version"], "HTTP/2");
        assert_eq!(x["method"], "GET");
        assert_eq!(x["path"], "/small.txt");
        assert_eq!(x["status_code"], 200);
        assert_eq!(x["response_size"], 1000);
        assert!(x.get("error").is_none(), "{x}");
    }
    // None unpaired: the access log has exactly as many requests as events.
    assert_eq!(nginx.access_log().lines().count(), 500);
}

/// hypercorn serving `tests/peers/h2c_server.py` on a free port.
struct Hypercorn {
    child: Child,
    addr: SocketAddr,
}

impl Hypercorn {
    fn start() -> Self {
        let port = free_port();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/h2c_server.py");
        let mut child = Command::new(peer_python())
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !listening(port) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the h2c server exited: {status}");
            }
            assert!(Instant::now() < deadline, "the h2c server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for Hypercorn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn curl_upgrade_h2c_to_hypercorn_continues_as_http2() {
    let server = Hypercorn::start();
    let proxy = start(server.addr, &[]);
    let out = curl(&[
        "--http2",
        &url(&proxy, "/first?x=1"),
        &url(&proxy, "/status/404"),
    ]);
    assert_eq!(out, "GET /first?x=1 2 bytes=0\nGET /status/404 2 bytes=0\n");
    let (events, r) = requests_after(proxy, 2);
    assert!(of_type(&events, "decode.error").is_empty(), "{events:#?}");
    assert_eq!(of_type(&events, "connection.opened").len(), 1);

    // The upgrade request, answered over HTTP/2 on stream 1.
    assert_eq!(r[0]["version"], "HTTP/2");
    assert_eq!(r[0]["method"], "GET");
    assert_eq!(r[0]["path"], "/first?x=1");
    assert_eq!(r[0]["status_code"], 200);
    assert_eq!(r[0]["request_headers"]["upgrade"], "h2c");
    assert!(r[0]["request_headers"].get("http2-settings").is_some());
    assert_eq!(r[0]["response_body"], "GET /first?x=1 2 bytes=0\n");
    assert_eq!(r[0]["response_headers"]["content-type"], "text/plain");
    assert!(r[0]["latency_ms"].as_f64().unwrap() > 0.0);

    // The next request, a plain HTTP/2 stream on the same connection.
    assert_eq!(r[1]["version"], "HTTP/2");
    assert_eq!(r[1]["path"], "/status/404");
    assert_eq!(r[1]["status_code"], 404);
    assert_eq!(r[1]["response_body"], "GET /status/404 2 bytes=0\n");
    assert_eq!(r[1]["connection"], r[0]["connection"]);
}
