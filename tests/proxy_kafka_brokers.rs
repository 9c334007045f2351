//! The cap on a Kafka edge's broker listeners: `tapmesh proxy --protocol
//! kafka` in front of a fake broker whose Metadata responses name as many
//! brokers as a test wants (50,000 at most), with kcat as an independent
//! client. Past the cap a response crosses byte for byte as the broker sent
//! it, one `decode.error` says why, no listener is opened past the cap and
//! other clients are still served.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{of_type, ProxyProcess};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, MetadataRequest, MetadataResponse, RequestHeader,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde_json::Value;

/// Brokers the largest answer names.
const HUGE: i32 = 50_000;

/// A broker that answers ApiVersions and Metadata, the latter naming the
/// brokers [`FakeBroker::brokers_for`] picks by the request's client id.
/// Every response frame it writes is kept, by client id.
struct FakeBroker {
    addr: SocketAddr,
    sent: Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>>,
}

impl FakeBroker {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent: Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>> = Arc::default();
        let record = sent.clone();
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let record = record.clone();
                thread::spawn(move || serve(stream, addr, &record));
            }
        });
        Self { addr, sent }
    }

    /// What `client_id`'s Metadata requests were answered with, in order.
    fn sent_to(&self, client_id: &str) -> Vec<Vec<u8>> {
        self.sent.lock().unwrap()[client_id].clone()
    }

    fn brokers_for(client_id: &str, me: SocketAddr) -> Vec<(i32, String, i32)> {
        let local = |id: i32, port: i32| (id, "127.0.0.1".to_string(), port);
        match client_id {
            "huge" => (1..=HUGE)
                .map(|i| (i, format!("broker-{i}.invalid"), 9092))
                .collect(),
            "pair" => vec![local(1, me.port().into()), local(2, 1002)],
            "more" => vec![local(3, 1003), local(4, 1004)],
            // kcat, and anyone else: a one-broker cluster.
            _ => vec![local(1, me.port().into())],
        }
    }
}

fn serve(mut stream: TcpStream, me: SocketAddr, record: &Mutex<HashMap<String, Vec<Vec<u8>>>>) {
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
        let client_id = header.client_id.as_deref().unwrap_or("").to_string();
        let mut body = BytesMut::new();
        match api {
            ApiKey::ApiVersions => ApiVersionsResponse::default()
                .with_api_keys(vec![
                    ApiVersion::default()
                        .with_api_key(ApiKey::ApiVersions as i16)
                        .with_max_version(3),
                    ApiVersion::default()
                        .with_api_key(ApiKey::Metadata as i16)
                        .with_max_version(12),
                ])
                .encode(&mut body, version.min(3))
                .unwrap(),
            ApiKey::Metadata => {
                let brokers = FakeBroker::brokers_for(&client_id, me)
                    .into_iter()
                    .map(|(id, host, port)| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(id))
                            .with_host(StrBytes::from_string(host))
                            .with_port(port)
                    })
                    .collect();
                MetadataResponse::default()
                    .with_brokers(brokers)
                    .encode(&mut body, version)
                    .unwrap()
            }
            other => panic!("the fake broker got a {other:?} request"),
        }
        let mut response = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut response, api.response_header_version(version))
            .unwrap();
        response.extend_from_slice(&body);
        let mut out = (response.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&response);
        if api == ApiKey::Metadata {
            let mut sent = record.lock().unwrap();
            sent.entry(client_id).or_default().push(out.clone());
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// Sends a Metadata v12 request (all topics) as `client_id` on a new
/// connection and returns the whole response frame as it arrived.
fn metadata(proxy: SocketAddr, client_id: &str) -> Vec<u8> {
    let mut request = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(12)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())))
        .encode(&mut request, ApiKey::Metadata.request_header_version(12))
        .unwrap();
    MetadataRequest::default()
        .with_topics(None)
        .encode(&mut request, 12)
        .unwrap();
    let mut stream = TcpStream::connect(proxy).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(&(request.len() as i32).to_be_bytes())
        .unwrap();
    stream.write_all(&request).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut frame = size.to_vec();
    frame.resize(4 + i32::from_be_bytes(size) as usize, 0);
    stream.read_exact(&mut frame[4..]).unwrap();
    frame
}

/// The (node id, host, port) of every broker a Metadata v12 frame names.
fn brokers_in(frame: &[u8]) -> Vec<(i32, String, i32)> {
    let mut buf = Bytes::copy_from_slice(&frame[4..]);
    ResponseHeader::decode(&mut buf, ApiKey::Metadata.response_header_version(12)).unwrap();
    MetadataResponse::decode(&mut buf, 12)
        .unwrap()
        .brokers
        .into_iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect()
}

/// TCP sockets process `pid` is listening on.
fn listening_sockets(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    ["tcp", "tcp6"]
        .iter()
        .flat_map(|table| {
            std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|row| {
            let f: Vec<&str> = row.split_whitespace().collect();
            f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9])
        })
        .count()
}

/// `kafka broker listener` lines the proxy has logged: one per listener
/// opened for a broker.
fn broker_listener_lines(proxy: &ProxyProcess) -> usize {
    proxy
        .log_lines()
        .iter()
        .filter(|l| l.contains("kafka broker listener"))
        .count()
}

fn start_proxy(broker: &FakeBroker, extra: &[&str]) -> ProxyProcess {
    let mut args = vec!["--protocol", "kafka", "--source", "app"];
    args.extend_from_slice(&["--target-name", "kafka"]);
    args.extend_from_slice(extra);
    ProxyProcess::start(broker.addr, &args)
}

/// Waits for the `n`th `decode.error` and returns its payload.
fn decode_error(proxy: &ProxyProcess, n: usize) -> Value {
    proxy.wait_for_event(&format!("decode.error #{n}"), |_| {
        of_type(&proxy.events(), "decode.error").len() >= n
    });
    of_type(&proxy.events(), "decode.error")[n - 1]["decode_error"].clone()
}

fn assert_same_frame(got: &[u8], sent: &[u8]) {
    // Not assert_eq!: a megabyte of bytes in a failure message helps no one.
    assert_eq!(got.len(), sent.len(), "the response's length changed");
    let first_difference = got.iter().zip(sent).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "the response was altered");
}

const RAISE: &str = "raise it with `tapmesh proxy --max-brokers N` (ProxyConfig::max_brokers)";

#[test]
fn a_metadata_response_naming_50000_brokers_passes_unchanged_and_opens_no_listener() {
    let broker = FakeBroker::start();
    let proxy = start_proxy(&broker, &[]);
    assert_eq!(listening_sockets(proxy.pid()), 1, "the edge's own listener");

    let got = metadata(proxy.addr, "huge");
    let sent = broker.sent_to("huge");
    assert_eq!(sent.len(), 1);
    // About 1.3 MB: under the 4 MiB the proxy holds for rewriting, so it was
    // held, decoded and refused by the cap, not passed for its size.
    assert!(
        (1_000_000..4 << 20).contains(&sent[0].len()),
        "{}",
        sent[0].len()
    );
    assert_same_frame(&got, &sent[0]);
    assert_eq!(brokers_in(&got).len(), HUGE as usize);

    let error = decode_error(&proxy, 1);
    let reason = format!(
        "could not rewrite the broker addresses in a Metadata v12 response: it names {HUGE} brokers, more than this edge's cap of 64 broker listeners; {RAISE}"
    );
    assert_eq!(error["reason"], reason.as_str());
    assert_eq!(error["protocol"], "kafka");
    assert_eq!(error["direction"], "target_to_client");
    assert_eq!(error["offset"], 0);
    assert_eq!(error["source"], "app");
    assert_eq!(error["target"], "kafka");
    assert_eq!(error["ingress"], "default");
    assert_eq!(listening_sockets(proxy.pid()), 1);
    assert_eq!(broker_listener_lines(&proxy), 0);

    // An independent client is still served, and told of the proxy only.
    let out = Command::new("timeout")
        .args([
            "30",
            "kcat",
            "-L",
            "-b",
            &proxy.addr.to_string(),
            "-m",
            "10",
        ])
        .output()
        .expect("kcat is not installed: apt-get install -y kcat");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listing.contains(&format!(" 1 brokers:\n  broker 1 at {}", proxy.addr)),
        "{listing}"
    );
    assert_eq!(listening_sockets(proxy.pid()), 1);

    let events = proxy.stop();
    assert_eq!(of_type(&events, "decode.error").len(), 1, "{events:#?}");
    let requests: Vec<&Value> = of_type(&events, "kafka.request.completed")
        .into_iter()
        .map(|e| &e["kafka_request"])
        .collect();
    let huge = requests
        .iter()
        .find(|r| r["client_id"] == "huge")
        .expect("the huge Metadata's event");
    assert_eq!(huge["api_name"], "Metadata");
    assert_eq!(huge["api_version"], 12);
    assert_eq!(huge["correlation_id"], 7);
    assert_eq!(huge["response_size"], sent[0].len() as u64);
    assert_eq!(huge["error_code"], Value::Null);
    assert!(
        requests
            .iter()
            .any(|r| r["client_id"] == "rdkafka" && r["api_name"] == "Metadata"),
        "{requests:#?}"
    );
}

#[test]
fn listeners_stop_at_the_cap_across_responses() {
    let broker = FakeBroker::start();
    let proxy = start_proxy(&broker, &["--max-brokers", "3"]);
    let edge_port = i32::from(proxy.addr.port());

    // Two brokers: the edge's target (its own listener) and one more.
    let pair = brokers_in(&metadata(proxy.addr, "pair"));
    assert_eq!(pair[0], (1, "127.0.0.1".to_string(), edge_port));
    let (node, host, broker_2) = pair[1].clone();
    assert_eq!((node, host.as_str()), (2, "127.0.0.1"));
    assert_ne!(broker_2, 1002, "broker 2 was not rewritten");
    assert_eq!(pair.len(), 2);
    assert_eq!(listening_sockets(proxy.pid()), 2);
    assert_eq!(broker_listener_lines(&proxy), 1);

    // More brokers than the cap in one response: refused before any opens.
    let got = metadata(proxy.addr, "huge");
    assert_same_frame(&got, &broker.sent_to("huge")[0]);
    let error = decode_error(&proxy, 1);
    assert_eq!(
        error["reason"],
        format!("could not rewrite the broker addresses in a Metadata v12 response: it names {HUGE} brokers, more than this edge's cap of 3 broker listeners; {RAISE}").as_str()
    );
    assert_eq!(listening_sockets(proxy.pid()), 2);

    // Two new brokers with room for one: broker 3 gets the last listener,
    // broker 4 meets the cap, and the response goes through as it came.
    let got = metadata(proxy.addr, "more");
    assert_same_frame(&got, &broker.sent_to("more")[0]);
    assert_eq!(brokers_in(&got)[1], (4, "127.0.0.1".to_string(), 1004));
    let error = decode_error(&proxy, 2);
    assert_eq!(
        error["reason"],
        format!("could not rewrite the broker addresses in a Metadata v12 response: broker 4 at 127.0.0.1:1004 would be past this edge's cap of 3 broker listeners, all in use; {RAISE}").as_str()
    );
    assert_eq!(error["offset"], 0);
    assert_eq!(listening_sockets(proxy.pid()), 3);
    assert_eq!(broker_listener_lines(&proxy), 2);

    // Brokers that have listeners are still rewritten, to the same ones.
    let again = brokers_in(&metadata(proxy.addr, "pair"));
    assert_eq!(again, pair);
    assert_eq!(listening_sockets(proxy.pid()), 3);
    let events = proxy.stop();
    assert_eq!(of_type(&events, "decode.error").len(), 2, "{events:#?}");
}
