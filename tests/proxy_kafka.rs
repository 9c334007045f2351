//! `tapmesh proxy --protocol kafka` between real Kafka clients (rdkafka,
//! kcat) and librdkafka's mock cluster: every message delivered, every
//! request one `kafka.request.completed`, checked field by field, and no
//! client ever reaching a broker except through the proxy.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::kafka::{
    connections_to, consume, expected_api_name, kafka_requests, produce, MockKafka,
};
use common::{assert_gap_free, of_type, ProxyProcess};
use serde_json::Value;

const TOPIC: &str = "orders";

fn start_proxy(mock: &MockKafka) -> ProxyProcess {
    ProxyProcess::start(
        mock.brokers[0],
        &[
            "--protocol",
            "kafka",
            "--source",
            "app",
            "--target-name",
            "kafka",
        ],
    )
}

/// Checks what every `kafka.request.completed` must hold, and that on each
/// connection the correlation ids run without a gap (librdkafka numbers
/// its requests 1, 2, 3 … per connection), so no request went unreported.
fn check_every_request(events: &[Value], requests: &[Value]) {
    assert!(of_type(events, "decode.error").is_empty(), "{events:#?}");
    let mut by_connection: HashMap<u64, Vec<i64>> = HashMap::new();
    for r in requests {
        let key = r["api_key"].as_i64().unwrap();
        assert_eq!(r["api_name"], expected_api_name(key), "{r}");
        assert!(r["api_version"].as_i64().unwrap() >= 0, "{r}");
        assert_eq!(r["source"], "app");
        assert!(r["target"].as_str().unwrap().starts_with("kafka"), "{r}");
        assert_eq!(r["ingress"], "default");
        assert!(r["client_id"].is_string(), "{r}");
        assert!(r["request_size"].as_u64().unwrap() >= 12, "{r}");
        assert!(r["response_size"].as_u64().unwrap() >= 8, "{r}");
        assert!(r["latency_ms"].as_f64().unwrap() >= 0.0, "{r}");
        if key != 0 && key != 1 {
            assert!(r["topics"].is_null(), "{r}");
        }
        by_connection
            .entry(r["connection"].as_u64().unwrap())
            .or_default()
            .push(r["correlation_id"].as_i64().unwrap());
    }
    for (connection, mut ids) in by_connection {
        ids.sort();
        for pair in ids.windows(2) {
            assert_eq!(
                pair[1],
                pair[0] + 1,
                "connection {connection}: a request between correlation ids {} and {} has no event",
                pair[0],
                pair[1]
            );
        }
    }
}

/// Produce records per partition, from the Produce events.
fn produced_per_partition(requests: &[Value]) -> BTreeMap<i64, u64> {
    let mut per = BTreeMap::new();
    for r in requests.iter().filter(|r| r["api_name"] == "Produce") {
        assert!(r["api_version"].as_i64().unwrap() >= 3, "{r}");
        let topics = r["topics"].as_array().unwrap_or_else(|| panic!("{r}"));
        assert!(!topics.is_empty(), "{r}");
        for t in topics {
            assert_eq!(t["topic"], TOPIC, "{r}");
            assert_eq!(t["error_code"], 0, "{r}");
            let records = t["records"].as_u64().unwrap();
            let bytes = t["bytes"].as_u64().unwrap();
            // A v2 batch header is 61 bytes, and each record has its key and value.
            assert!(bytes >= 61 + records * 14, "{r}");
            *per.entry(t["partition"].as_i64().unwrap()).or_default() += records;
        }
    }
    per
}

fn round_trip(brokers: i32) {
    let partitions = 3;
    let count = 60;
    let mock = MockKafka::start(brokers, TOPIC, partitions);
    let proxy = start_proxy(&mock);
    let bootstrap = proxy.addr.to_string();
    let broker_ports: Vec<u16> = mock.brokers.iter().map(|b| b.port()).collect();

    produce(&bootstrap, TOPIC, partitions, count);
    assert!(
        connections_to(&broker_ports).is_empty(),
        "a client connected straight to a broker: {:?}",
        connections_to(&broker_ports)
    );
    let (got, seen_brokers) = consume(&bootstrap, TOPIC, "group-1", count);
    let expected: BTreeMap<String, String> = (0..count)
        .map(|i| (format!("key-{i}"), format!("value-{i}")))
        .collect();
    assert_eq!(got, expected);
    assert!(
        connections_to(&broker_ports).is_empty(),
        "a consumer connected straight to a broker: {:?}",
        connections_to(&broker_ports)
    );

    // The clients were told only of proxy listeners, one per broker.
    assert_eq!(seen_brokers.len(), brokers as usize, "{seen_brokers:?}");
    let distinct: HashSet<&String> = seen_brokers.iter().collect();
    assert_eq!(distinct.len(), brokers as usize);
    assert!(seen_brokers.contains(&bootstrap), "{seen_brokers:?}");
    for b in &seen_brokers {
        let addr: std::net::SocketAddr = b.parse().unwrap();
        assert!(!mock.brokers.contains(&addr), "a real broker leaked: {b}");
    }

    // Every connection closes before the proxy stops, so the file is complete.
    thread::sleep(Duration::from_millis(500));
    let events = proxy.stop();
    assert_gap_free(&events);
    let requests = kafka_requests(&events);
    check_every_request(&events, &requests);

    let names: HashSet<&str> = requests
        .iter()
        .map(|r| r["api_name"].as_str().unwrap())
        .collect();
    for name in [
        "ApiVersions",
        "Metadata",
        "Produce",
        "FindCoordinator",
        "JoinGroup",
        "SyncGroup",
        "OffsetFetch",
        "Fetch",
    ] {
        assert!(names.contains(name), "no {name} request in {names:?}");
    }
    let per_partition = produced_per_partition(&requests);
    let expected_per: BTreeMap<i64, u64> = (0..partitions as i64)
        .map(|p| (p, (count as u64).div_ceil(partitions as u64)))
        .collect();
    assert_eq!(per_partition, expected_per);

    // Every record produced was fetched back, from its own partition.
    let mut fetched: BTreeMap<i64, u64> = BTreeMap::new();
    for r in requests.iter().filter(|r| r["api_name"] == "Fetch") {
        assert!(r["api_version"].as_i64().unwrap() >= 4);
        assert_eq!(r["error_code"], 0, "{r}");
        for t in r["topics"].as_array().unwrap() {
            assert_eq!(t["topic"], TOPIC);
            *fetched.entry(t["partition"].as_i64().unwrap()).or_default() +=
                t["records"].as_u64().unwrap();
        }
    }
    for p in 0..partitions as i64 {
        assert!(
            fetched.get(&p).copied().unwrap_or(0) >= expected_per[&p],
            "{fetched:?}"
        );
    }

    // One connection per broker at least, each named after its broker.
    let targets: HashSet<&str> = of_type(&events, "connection.opened")
        .iter()
        .map(|e| e["connection"]["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), brokers as usize, "{targets:?}");
    assert!(targets.contains("kafka"));
    for id in 2..=brokers {
        assert!(
            targets.contains(format!("kafka/broker-{id}").as_str()),
            "{targets:?}"
        );
    }
}

#[test]
fn rdkafka_through_the_proxy_to_one_broker() {
    round_trip(1);
}

#[test]
fn rdkafka_through_the_proxy_to_three_brokers() {
    round_trip(3);
}

/// kcat (Debian's, librdkafka 2.0) produces and consumes through the proxy.
#[test]
fn kcat_produces_and_consumes_through_the_proxy() {
    let mock = MockKafka::start(1, "kcat-topic", 1);
    let proxy = start_proxy(&mock);
    let broker = proxy.addr.to_string();
    let lines: Vec<String> = (0..20).map(|i| format!("line-{i}")).collect();
    let mut producer = Command::new("kcat")
        .args(["-P", "-b", &broker, "-t", "kcat-topic", "-p", "0"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is not installed: apt-get install -y kcat");
    producer
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let out = producer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new("timeout")
        .args(["60", "kcat", "-C", "-b", &broker, "-t", "kcat-topic"])
        .args(["-p", "0", "-o", "beginning", "-c", "20", "-e"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let consumed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(consumed, lines);

    let events = proxy.stop();
    assert!(of_type(&events, "decode.error").is_empty(), "{events:#?}");
    let requests = kafka_requests(&events);
    let produced: u64 = requests
        .iter()
        .filter(|r| r["api_name"] == "Produce")
        .flat_map(|r| r["topics"].as_array().unwrap().clone())
        .map(|t| {
            assert_eq!(t["topic"], "kcat-topic");
            assert_eq!(t["partition"], 0);
            t["records"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(produced, 20);
    assert!(requests.iter().any(|r| r["api_name"] == "Fetch"));
    assert!(
        requests.iter().all(|r| r["client_id"] == "rdkafka"),
        "{requests:#?}"
    );
}

/// ApiVersions v0, correlation id 5, client id "x".
const API_VERSIONS: [u8; 15] = [0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 5, 0, 1, b'x'];
/// Its answer: correlation id 5, UNSUPPORTED_VERSION (35), no keys.
const API_VERSIONS_REPLY: [u8; 14] = [0, 0, 0, 10, 0, 0, 0, 5, 0, 35, 0, 0, 0, 0];

/// Answers the ApiVersions request, then writes back whatever it reads.
fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut request = [0u8; API_VERSIONS.len()];
            if s.read_exact(&mut request).is_err() || request != API_VERSIONS {
                return;
            }
            s.write_all(&API_VERSIONS_REPLY).unwrap();
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = s.shutdown(Shutdown::Write);
        }
    });
    addr
}

#[test]
fn a_malformed_frame_is_forwarded_and_reported_once() {
    let target = echo_server();
    let proxy = ProxyProcess::start(target, &["--protocol", "kafka"]);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let read_back = |client: &mut TcpStream, n: usize| {
        let mut buf = vec![0; n];
        client.read_exact(&mut buf).unwrap();
        buf
    };
    let api_versions = API_VERSIONS;
    client.write_all(&api_versions).unwrap();
    assert_eq!(
        read_back(&mut client, API_VERSIONS_REPLY.len()),
        API_VERSIONS_REPLY
    );
    // A frame claiming -1 bytes.
    let garbage = b"\xff\xff\xff\xffnot kafka at all";
    client.write_all(garbage).unwrap();
    assert_eq!(read_back(&mut client, garbage.len()), garbage);
    // The connection is still up and still forwards.
    client.write_all(b"still here").unwrap();
    assert_eq!(read_back(&mut client, 10), b"still here");
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    proxy.wait_for_event("connection.closed", |e| e["type"] == "connection.closed");

    let events = proxy.stop();
    let errors = of_type(&events, "decode.error");
    assert_eq!(errors.len(), 1, "{events:#?}");
    let e = &errors[0]["decode_error"];
    assert_eq!(e["protocol"], "kafka");
    assert_eq!(e["direction"], "client_to_target");
    assert_eq!(e["offset"], api_versions.len());
    assert!(e["reason"].as_str().unwrap().contains("-1"), "{e}");
    let requests = kafka_requests(&events);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["api_name"], "ApiVersions");
    assert_eq!(requests[0]["correlation_id"], 5);
    assert_eq!(requests[0]["client_id"], "x");
    assert_eq!(requests[0]["error_code"], 35);
    assert_eq!(requests[0]["request_size"], API_VERSIONS.len());
    assert_eq!(requests[0]["response_size"], API_VERSIONS_REPLY.len());
    let closed = &of_type(&events, "connection.closed")[0]["connection"];
    let echoed = (garbage.len() + 10) as u64;
    assert_eq!(closed["bytes_in"], api_versions.len() as u64 + echoed);
    assert_eq!(
        closed["bytes_out"],
        API_VERSIONS_REPLY.len() as u64 + echoed
    );
    assert!(closed.get("error").is_none(), "{closed}");
}
