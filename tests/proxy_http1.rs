//! `tapmesh proxy --protocol http` between curl and nginx: every exchange
//! one `request.completed`, checked field by field.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::nginx::Nginx;
use common::{assert_gap_free, curl, of_type, peer_python, requests_after, url, ProxyProcess};

fn start(nginx: &Nginx, extra: &[&str]) -> ProxyProcess {
    let mut args = vec![
        "--protocol",
        "http",
        "--source",
        "curl",
        "--target-name",
        "nginx",
    ];
    args.extend_from_slice(extra);
    ProxyProcess::start(nginx.http_addr(), &args)
}

#[test]
fn keep_alive_gets_query_and_404_on_one_connection() {
    let nginx = Nginx::start();
    let proxy = start(&nginx, &[]);
    let out = curl(&[
        &url(&proxy, "/echo-query?a=1&b=two"),
        &url(&proxy, "/small.txt"),
        &url(&proxy, "/missing"),
    ]);
    assert!(out.starts_with("a=1&b=two\n"), "{out}");
    let (events, r) = requests_after(proxy, 3);

    // curl reused one connection for all three.
    assert_eq!(of_type(&events, "connection.opened").len(), 1);
    assert!(r.iter().all(|x| x["connection"] == r[0]["connection"]));

    assert_eq!(r[0]["method"], "GET");
    assert_eq!(r[0]["path"], "/echo-query?a=1&b=two");
    assert_eq!(r[0]["status_code"], 200);
    assert_eq!(r[0]["version"], "HTTP/1.1");
    assert_eq!(r[0]["source"], "curl");
    assert_eq!(r[0]["target"], "nginx");
    assert_eq!(r[0]["response_body"], "a=1&b=two\n");
    assert_eq!(r[0]["response_body_encoding"], "utf8");
    assert_eq!(r[0]["response_size"], 10);
    assert_eq!(r[0]["request_size"], 0);
    assert_eq!(r[0]["request_body"], "");
    assert!(r[0]["request_headers"]["host"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(r[0]["request_headers"]["user-agent"]
        .as_str()
        .unwrap()
        .starts_with("curl/"));
    assert_eq!(
        r[0]["response_headers"]["server"]
            .as_str()
            .map(|s| s.starts_with("nginx")),
        Some(true)
    );
    assert!(r[0]["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(r[0].get("error").is_none());

    assert_eq!(r[1]["path"], "/small.txt");
    assert_eq!(r[1]["status_code"], 200);
    assert_eq!(r[1]["response_size"], 1000);
    assert_eq!(r[1]["response_body"], "a".repeat(1000));
    assert_eq!(r[1]["response_headers"]["content-length"], "1000");
    assert_eq!(r[1]["response_body_truncated"], false);

    assert_eq!(r[2]["path"], "/missing");
    assert_eq!(r[2]["status_code"], 404);
    let len: u64 = r[2]["response_headers"]["content-length"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r[2]["response_size"], len);
}

#[test]
fn post_bodies_by_length_chunked_and_after_100_continue() {
    let nginx = Nginx::start();
    let proxy = start(&nginx, &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    // 100 KiB of text, past the default 64 KiB capture limit.
    let body: Vec<u8> = (0..100 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&file, &body).unwrap();
    let at_file = format!("@{}", file.display());

    let upload = url(&proxy, "/upload");
    assert_eq!(curl(&["--data-binary", &at_file, &upload]), "created\n");
    assert_eq!(
        curl(&[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at_file,
            &upload
        ]),
        "created\n"
    );
    assert_eq!(
        curl(&[
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &at_file,
            &upload
        ]),
        "created\n"
    );
    let (_, r) = requests_after(proxy, 3);

    for (i, r) in r.iter().enumerate() {
        assert_eq!(r["method"], "POST", "request {i}");
        assert_eq!(r["path"], "/upload");
        assert_eq!(
            r["status_code"], 201,
            "the final status, never the interim 100"
        );
        assert_eq!(
            r["request_size"],
            body.len(),
            "request {i} counts every body byte"
        );
        assert_eq!(r["request_body_truncated"], true);
        let captured = r["request_body"].as_str().unwrap();
        assert_eq!(captured.len(), 64 * 1024);
        assert_eq!(captured.as_bytes(), &body[..64 * 1024]);
        assert_eq!(r["response_body"], "created\n");
        assert_eq!(r["response_size"], 8);
    }
    assert_eq!(r[0]["request_headers"]["content-length"], "102400");
    assert_eq!(r[1]["request_headers"]["transfer-encoding"], "chunked");
    assert!(r[1]["request_headers"].get("content-length").is_none());
    assert_eq!(r[2]["request_headers"]["expect"], "100-continue");
}

#[test]
fn head_has_no_body_and_a_small_capture_limit_truncates() {
    let nginx = Nginx::start();
    let proxy = start(&nginx, &["--capture-limit", "100"]);
    let head = curl(&["-I", &url(&proxy, "/small.txt")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    curl(&["-o", "/dev/null", &url(&proxy, "/small.txt")]);
    let (_, r) = requests_after(proxy, 2);

    assert_eq!(r[0]["method"], "HEAD");
    assert_eq!(r[0]["status_code"], 200);
    assert_eq!(r[0]["response_headers"]["content-length"], "1000");
    assert_eq!(r[0]["response_size"], 0, "no body after HEAD");

    assert_eq!(r[1]["response_size"], 1000);
    assert_eq!(r[1]["response_body"], "a".repeat(100));
    assert_eq!(r[1]["response_body_truncated"], true);
}

#[test]
fn three_pipelined_requests_in_one_packet() {
    let nginx = Nginx::start();
    let proxy = start(&nginx, &[]);
    let mut conn = TcpStream::connect(proxy.addr).unwrap();
    conn.write_all(
        b"GET /echo-query?n=1 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /missing HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /echo-query?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut responses = String::new();
    conn.read_to_string(&mut responses).unwrap();
    assert_eq!(responses.matches("HTTP/1.1 ").count(), 3, "{responses}");
    let (_, r) = requests_after(proxy, 3);
    let got: Vec<(&str, u64)> = r
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap(),
                r["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/echo-query?n=1", 200),
            ("/missing", 404),
            ("/echo-query?n=3", 200)
        ]
    );
    assert_eq!(r[0]["response_body"], "n=1\n");
    assert_eq!(r[2]["response_body"], "n=3\n");
}

/// Answers one HTTP request properly, then echoes every byte it receives.
fn answer_once_then_echo() -> (SocketAddr, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            conn.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        let mut echoed = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n]).unwrap();
            echoed.extend_from_slice(&buf[..n]);
        }
        echoed
    });
    (addr, handle)
}

#[test]
fn garbage_after_a_valid_request_is_forwarded_and_reported_once() {
    let (target, server) = answer_once_then_echo();
    let proxy = ProxyProcess::start(target, &["--protocol", "http"]);
    let mut conn = TcpStream::connect(proxy.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n";
    conn.write_all(request).unwrap();
    let mut response = [0u8; 40];
    conn.read_exact(&mut response).unwrap();
    assert!(response.ends_with(b"ok"));

    // Not HTTP: arbitrary bytes, including a NUL and invalid UTF-8.
    let garbage: Vec<u8> = (0..=255u8).chain(*b"\r\n\r\nmore\r\n\r\n").collect();
    conn.write_all(&garbage).unwrap();
    let mut back = vec![0u8; garbage.len()];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, garbage, "forwarded byte for byte, both ways");
    // The connection stays up after the decoder gave up.
    conn.write_all(b"still here").unwrap();
    let mut back = [0u8; 10];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still here");
    conn.shutdown(Shutdown::Write).unwrap();
    assert_eq!(conn.read(&mut [0u8; 1]).unwrap(), 0);
    let echoed = server.join().unwrap();
    assert_eq!(echoed.len(), garbage.len() + 10);

    proxy.wait_for_event("connection.closed", |e| e["type"] == "connection.closed");
    let events = proxy.stop();
    let requests = of_type(&events, "request.completed");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["request"]["path"], "/first");
    assert_eq!(requests[0]["request"]["status_code"], 200);
    let errors = of_type(&events, "decode.error");
    assert_eq!(errors.len(), 1, "exactly one decode.error: {events:#?}");
    let e = &errors[0]["decode_error"];
    assert_eq!(e["protocol"], "http1");
    assert_eq!(e["direction"], "client_to_target");
    assert_eq!(
        e["offset"],
        request.len(),
        "the garbage starts right after the request"
    );
    assert!(e["reason"]
        .as_str()
        .unwrap()
        .contains("invalid request head"));
    let closed = of_type(&events, "connection.closed");
    assert_eq!(
        closed[0]["connection"]["bytes_in"],
        (request.len() + garbage.len() + 10) as u64
    );
    assert!(closed[0]["connection"].get("error").is_none());
}

#[test]
fn websocket_upgrade_is_one_exchange_and_the_echo_passes_unchanged() {
    let python = peer_python();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/ws_echo.py");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&python)
        .arg(&script)
        .args(["server", &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut ready = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
    }
    let proxy = ProxyProcess::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &["--protocol", "http"],
    );
    let client = Command::new(&python)
        .arg(&script)
        .args(["client", &format!("ws://{}/chat?room=1", proxy.addr), "20"])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        client.status.success(),
        "the WebSocket client failed through the proxy: {}{}",
        String::from_utf8_lossy(&client.stdout),
        String::from_utf8_lossy(&client.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&client.stdout).trim(),
        "20 echoes ok"
    );

    proxy.wait_for_event("connection.closed", |e| e["type"] == "connection.closed");
    let events = proxy.stop();
    assert_gap_free(&events);
    let requests = of_type(&events, "request.completed");
    assert_eq!(
        requests.len(),
        1,
        "one exchange for the upgrade: {events:#?}"
    );
    let r = &requests[0]["request"];
    assert_eq!(r["method"], "GET");
    assert_eq!(r["path"], "/chat?room=1");
    assert_eq!(r["status_code"], 101);
    assert_eq!(r["request_headers"]["upgrade"], "websocket");
    assert_eq!(r["response_headers"]["upgrade"], "websocket");
    assert!(r["response_headers"]["sec-websocket-accept"].is_string());
    assert!(
        of_type(&events, "decode.error").is_empty(),
        "frames after 101 are not an error"
    );
    // Everything after the handshake was relayed and counted.
    let closed = &of_type(&events, "connection.closed")[0]["connection"];
    let echoed: u64 = (0..20u64)
        .map(|i| {
            if i % 2 == 0 {
                format!("message {i}").len() as u64
            } else {
                i * 100 + 1
            }
        })
        .sum();
    assert!(closed["bytes_in"].as_u64().unwrap() > echoed, "{closed}");
    assert!(closed["bytes_out"].as_u64().unwrap() > echoed, "{closed}");
}

#[test]
fn gzip_bodies_are_kept_as_sent_and_decode_on_demand() {
    let nginx = Nginx::start();
    let proxy = start(&nginx, &[]);
    let body = curl(&["--compressed", &url(&proxy, "/small.txt")]);
    assert_eq!(
        body,
        "a".repeat(1000),
        "curl itself decodes the gzip it received"
    );
    let (events, r) = requests_after(proxy, 1);
    let r = &r[0];
    assert_eq!(r["response_headers"]["content-encoding"], "gzip");
    assert_eq!(
        r["response_body_encoding"], "base64",
        "the event keeps the gzip bytes as sent"
    );
    let wire_size = r["response_size"].as_u64().unwrap();
    assert!(
        wire_size < 100,
        "1000 identical bytes compress well: {wire_size}"
    );

    // The Rust API decodes it for display.
    let event: tapmesh::events::Event =
        serde_json::from_value(of_type(&events, "request.completed")[0].clone()).unwrap();
    let tapmesh::events::Payload::Request(info) = &event.payload else {
        panic!("{event:?}");
    };
    assert_eq!(info.response_body_bytes().unwrap().len() as u64, wire_size);
    let decoded = info
        .decoded_response_body(1 << 20)
        .unwrap()
        .expect("gzip is a content coding");
    assert_eq!(decoded.data, vec![b'a'; 1000]);
    assert_eq!(decoded.codings, ["gzip"]);
    assert!(!decoded.truncated);
}

/// curl sends both `Content-Length` and `Transfer-Encoding: chunked`, the
/// shape of a request-smuggling attempt. The proxy forwards it as sent,
/// frames it by its chunks as RFC 9112 §6.3 says (nginx refuses such a
/// request with a 400), and flags the exchange.
#[test]
fn content_length_with_chunked_is_framed_by_the_chunks_and_flagged() {
    let nginx = Nginx::start();
    let proxy = start(&nginx, &[]);
    let status = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Length: 5",
        "--data-binary",
        "hello",
        &url(&proxy, "/upload"),
    ]);
    assert_eq!(status, "400");
    let (events, r) = requests_after(proxy, 1);
    assert!(of_type(&events, "decode.error").is_empty(), "{events:#?}");
    let r = &r[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], "/upload");
    assert_eq!(r["status_code"], 400);
    assert_eq!(r["request_headers"]["content-length"], "5");
    assert_eq!(r["request_headers"]["transfer-encoding"], "chunked");
    // The chunk's data, not its framing.
    assert_eq!(r["request_body"], "hello");
    assert_eq!(r["request_size"], 5);
    assert_eq!(r["request_body_truncated"], false);
    assert_eq!(
        r["warnings"],
        serde_json::json!(["request: content-length and transfer-encoding both present"])
    );
    assert!(r["response_body"]
        .as_str()
        .unwrap()
        .contains("400 Bad Request"));
    assert!(r.get("error").is_none(), "{r}");
}
