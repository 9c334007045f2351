//! Redaction on one edge: `tapmesh proxy` redacts by default, adds what its
//! flags say, keeps everything with `--no-redact`, and refuses a bad flag
//! before it listens. And Kafka's SASL/PLAIN: kcat, configured for it,
//! authenticates through `tapmesh proxy --protocol kafka` to a broker that
//! speaks SASL (librdkafka's mock cluster does not: see the README's
//! "Redaction"), and no event holds the password it sent.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, MetadataResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde_json::{json, Value};

const BEARER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.Pq83proxySigVw2";
const PASSWORD: &str = "proxy-password-Hc61Nt4Ws";
const SSN: &str = "ssn-503-21-9984";
const CARD: &str = "4539876512345678";
const LIVE_KEY: &str = "sk_live_Rm27Tq9Xb";
// The HTTP peer's own (tests/peers/login_peers.py).
const HTTP_SESSION: &str = "srv-session-7Yq2xW9pLm4Nc8Rt";
const HTTP_TOKEN: &str = "srv-token-Hd83kQp0Zr5Vx2Lw9sTy";
const KAFKA_USER: &str = "alice";
const KAFKA_PASSWORD: &str = "kafka-password-Zt82Lq5Mv";

fn marker(len: usize) -> String {
    format!("<redacted {len} bytes>")
}

fn login_body() -> String {
    json!({
        "user": "bob",
        "password": PASSWORD,
        "profile": {"ssn": SSN},
        "card": {"number": CARD},
        "note": format!("paid with {LIVE_KEY}"),
    })
    .to_string()
}

/// The HTTP server of `login_peers.py`, outside any environment.
struct HttpPeer(std::process::Child, SocketAddr);

impl HttpPeer {
    fn start() -> Self {
        let port = common::free_port_below_ephemeral();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/login_peers.py");
        let mut child = Command::new(common::peer_python())
            .args([script, "http", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening"), "{line:?}");
        Self(child, ([127, 0, 0, 1], port).into())
    }
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn login_through(proxy: &common::ProxyProcess) -> Value {
    common::curl(&[
        &format!("http://{}/login", proxy.addr),
        "-H",
        &format!("Authorization: Bearer {BEARER}"),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &login_body(),
    ]);
    proxy.wait_for_event("the login", |e| e["type"] == "request.completed")["request"].clone()
}

#[test]
fn tapmesh_proxy_redacts_by_default() {
    let peer = HttpPeer::start();
    let flags = [
        "--protocol",
        "http",
        "--redact-field",
        "ssn",
        "--redact-pattern",
        "sk_live_\\w+",
    ];
    let proxy = common::ProxyProcess::start(peer.1, &flags);
    let request = login_through(&proxy);
    assert_eq!(
        request["request_headers"]["authorization"],
        format!("Bearer {}", marker(BEARER.len()))
    );
    let body: Value = serde_json::from_str(request["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(body["password"], marker(PASSWORD.len()));
    assert_eq!(body["profile"]["ssn"], marker(SSN.len()), "--redact-field");
    assert_eq!(body["card"]["number"], CARD, "no --redact-path given");
    assert_eq!(
        body["note"],
        format!("paid with {}", marker(LIVE_KEY.len())),
        "--redact-pattern"
    );
    let reply: Value = serde_json::from_str(request["response_body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["access_token"], marker(HTTP_TOKEN.len()));
    let events = proxy.stop();
    let text = serde_json::to_string(&events).unwrap();
    for secret in [BEARER, PASSWORD, SSN, LIVE_KEY, HTTP_TOKEN, HTTP_SESSION] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    let proxy = common::ProxyProcess::start(peer.1, &["--protocol", "http", "--no-redact"]);
    let request = login_through(&proxy);
    assert_eq!(
        request["request_headers"]["authorization"],
        format!("Bearer {BEARER}")
    );
    assert!(request["request_body"].as_str().unwrap().contains(PASSWORD));
    assert!(request["response_body"]
        .as_str()
        .unwrap()
        .contains(HTTP_TOKEN));
    assert!(proxy
        .log_lines()
        .iter()
        .any(|l| l.contains("--no-redact: events keep credentials")));

    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args(["proxy", "--listen", "127.0.0.1:0", "--target"])
        .arg(peer.1.to_string())
        .args(["--protocol", "http", "--redact-pattern", "(open"])
        .args(["--redact-path", "card", "--redact-header", "a b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for says in [
        "--redact-path: \"card\": a path starts at the document",
        "--redact-pattern: \"(open\" is not a valid regular expression: unclosed group",
        "--redact-header: \"a b\" is not a header name",
    ] {
        assert!(stderr.contains(says), "{says}: {stderr}");
    }
}

/// A broker that speaks just enough Kafka for `kcat -L` over SASL/PLAIN:
/// ApiVersions, SaslHandshake (PLAIN), SaslAuthenticate (which checks the
/// password and keeps every one it is sent) and Metadata (one broker: itself).
struct SaslBroker {
    addr: SocketAddr,
    passwords: Arc<Mutex<Vec<String>>>,
}

impl SaslBroker {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let passwords: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = passwords.clone();
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let seen = seen.clone();
                thread::spawn(move || serve_sasl(stream, addr, &seen));
            }
        });
        Self { addr, passwords }
    }
}

/// One response body for a request of `api` at `version`.
fn answer(
    api: ApiKey,
    version: i16,
    mut body: Bytes,
    me: SocketAddr,
    seen: &Mutex<Vec<String>>,
) -> BytesMut {
    let mut out = BytesMut::new();
    let versions = |key: ApiKey, max: i16| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_max_version(max)
    };
    match api {
        ApiKey::ApiVersions => ApiVersionsResponse::default()
            .with_api_keys(vec![
                versions(ApiKey::ApiVersions, 3),
                versions(ApiKey::Metadata, 12),
                versions(ApiKey::SaslHandshake, 1),
                versions(ApiKey::SaslAuthenticate, 2),
            ])
            .encode(&mut out, version.min(3)),
        ApiKey::SaslHandshake => {
            let request = SaslHandshakeRequest::decode(&mut body, version).unwrap();
            assert_eq!(request.mechanism.as_str(), "PLAIN");
            SaslHandshakeResponse::default()
                .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")])
                .encode(&mut out, version)
        }
        ApiKey::SaslAuthenticate => {
            // PLAIN: [authzid] NUL user NUL password.
            let request = SaslAuthenticateRequest::decode(&mut body, version).unwrap();
            let parts: Vec<&[u8]> = request.auth_bytes.split(|&b| b == 0).collect();
            let password = String::from_utf8_lossy(parts.last().unwrap()).into_owned();
            let good = parts.get(1) == Some(&KAFKA_USER.as_bytes()) && password == KAFKA_PASSWORD;
            seen.lock().unwrap().push(password);
            // 58: SASL_AUTHENTICATION_FAILED.
            SaslAuthenticateResponse::default()
                .with_error_code(if good { 0 } else { 58 })
                .with_error_message((!good).then(|| StrBytes::from_static_str("bad password")))
                .encode(&mut out, version)
        }
        ApiKey::Metadata => MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(me.port().into())])
            .encode(&mut out, version),
        other => panic!("the SASL broker got a {other:?} request"),
    }
    .unwrap();
    out
}

fn serve_sasl(mut stream: TcpStream, me: SocketAddr, seen: &Mutex<Vec<String>>) {
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        stream.read_exact(&mut frame).unwrap();
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api = ApiKey::try_from(key).unwrap();
        let mut buf = Bytes::from(frame);
        let header = RequestHeader::decode(&mut buf, api.request_header_version(version)).unwrap();
        let body = answer(api, version, buf, me, seen);
        let mut response = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut response, api.response_header_version(version))
            .unwrap();
        response.extend_from_slice(&body);
        let mut out = (response.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&response);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// `kcat -L` through `proxy` as KAFKA_USER with `password`; its exit status
/// and output.
fn kcat_list(proxy: SocketAddr, password: &str) -> std::process::Output {
    let mut kcat = Command::new("kcat")
        .args(["-L", "-J", "-b", &proxy.to_string()])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=PLAIN",
        ])
        .arg("-X")
        .arg(format!("sasl.username={KAFKA_USER}"))
        .arg("-X")
        .arg(format!("sasl.password={password}"))
        .args(["-m", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is not installed: apt-get install -y kcat");
    let deadline = Instant::now() + Duration::from_secs(30);
    while kcat.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = kcat.kill();
        }
        thread::sleep(Duration::from_millis(50));
    }
    kcat.wait_with_output().unwrap()
}

#[test]
fn kafka_sasl_plain_passwords_never_reach_events() {
    let broker = SaslBroker::start();
    let proxy = common::ProxyProcess::start(broker.addr, &["--protocol", "kafka"]);
    let listed = kcat_list(proxy.addr, KAFKA_PASSWORD);
    assert!(listed.status.success(), "{listed:?}");
    let metadata: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        metadata["brokers"].as_array().unwrap().len(),
        1,
        "{metadata}"
    );
    let wrong = format!("{KAFKA_PASSWORD}-wrong");
    let refused = kcat_list(proxy.addr, &wrong);
    assert!(!refused.status.success(), "{refused:?}");
    proxy.wait_for_event("the refused SaslAuthenticate", |e| {
        e["kafka_request"]["api_name"] == "SaslAuthenticate"
            && e["kafka_request"]["error_code"] == 58
    });
    let events = proxy.stop();

    // The credentials crossed the proxy: the broker checked them.
    let seen = broker.passwords.lock().unwrap().clone();
    assert!(seen.contains(&KAFKA_PASSWORD.to_string()), "{seen:?}");
    assert!(seen.contains(&wrong), "{seen:?}");
    // What the events say of the exchange: its header fields, no bytes.
    let sasl: Vec<&Value> = events
        .iter()
        .map(|e| &e["kafka_request"])
        .filter(|k| {
            k["api_name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Sasl"))
        })
        .collect();
    let names: Vec<(&str, i64)> = sasl
        .iter()
        .map(|k| {
            (
                k["api_name"].as_str().unwrap(),
                k["error_code"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    for expected in [
        ("SaslHandshake", 0),
        ("SaslAuthenticate", 0),
        ("SaslAuthenticate", 58),
    ] {
        assert!(names.contains(&expected), "{expected:?} not in {names:?}");
    }
    for k in &sasl {
        assert_eq!(k["client_id"], "rdkafka", "{k}");
        assert_eq!(k["topics"], Value::Null, "{k}");
    }
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains(KAFKA_PASSWORD),
        "the password is in the events"
    );
}
