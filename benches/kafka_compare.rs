//! Producer throughput direct to a broker vs through `tapmesh proxy
//! --protocol kafka`, in one run: an rdkafka producer sends 1 KiB messages
//! to librdkafka's mock broker (in this process), alternately direct and
//! through the proxy, and reports messages per second and the ratio.
//!
//!   TAPMESH_BIN=target/release/tapmesh cargo bench --bench kafka_compare
//!
//! (`bash benches/compare.sh kafka` builds the binary and runs this.)
//! Environment: MESSAGES per measurement (default 200000), ROUNDS (3).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 3;
const MESSAGE: usize = 1024;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// Sends `count` 1 KiB messages and waits for every delivery; messages/s.
fn produce(bootstrap: &str, count: usize) -> f64 {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("creating the producer");
    let payload = vec![b'm'; MESSAGE];
    let start = Instant::now();
    for i in 0..count {
        let key = (i as u32).to_be_bytes();
        let mut record = BaseRecord::to(TOPIC)
            .key(&key[..])
            .payload(&payload[..])
            .partition(i as i32 % PARTITIONS);
        let mut tries = 0;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                    tries += 1;
                    assert!(tries < 100_000, "the producer queue never drained");
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("flushing the producer");
    count as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let bin = std::env::var("TAPMESH_BIN").unwrap_or_else(|_| "target/release/tapmesh".into());
    let messages = env_number("MESSAGES", 200_000);
    let rounds = env_number("ROUNDS", 3);

    let cluster = MockCluster::new(1).expect("starting the mock cluster");
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    let broker = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let mut proxy = Command::new(&bin)
        .args(["proxy", "--protocol", "kafka", "--listen", "127.0.0.1:0"])
        .args(["--target", &broker, "--events"])
        .arg(&events)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"));
    let mut stderr = BufReader::new(proxy.stderr.take().unwrap());
    let mut line = String::new();
    let listen: SocketAddr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "tapmesh exited");
        if let Some(rest) = line.split("listen=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});
    let through = listen.to_string();

    // Warm-up, then alternating rounds so drift hits both alike.
    produce(&broker, messages / 10);
    produce(&through, messages / 10);
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        direct.push(produce(&broker, messages));
        proxied.push(produce(&through, messages));
        eprintln!(
            "round {round}: direct {:.0} msg/s, tapmesh {:.0} msg/s",
            direct[round - 1],
            proxied[round - 1]
        );
    }
    // SAFETY: kill(2) on our own child; SIGTERM makes it flush its events.
    unsafe { libc::kill(proxy.id() as i32, libc::SIGTERM) };
    let status = proxy.wait().unwrap();
    assert!(status.success(), "tapmesh exited with {status}");

    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (d, p) = (mean(&direct), mean(&proxied));
    println!();
    println!("kafka producer, {MESSAGE}-byte messages, {messages} per run, {rounds} alternating rounds (mock broker, acks=all)");
    println!(
        "{:28} {:>10.0} msg/s {:>8.1} MiB/s",
        "direct",
        d,
        d * MESSAGE as f64 / (1 << 20) as f64
    );
    println!(
        "{:28} {:>10.0} msg/s {:>8.1} MiB/s  {:.2}x direct",
        "tapmesh --protocol kafka",
        p,
        p * MESSAGE as f64 / (1 << 20) as f64,
        p / d
    );

    // What the proxy saw: every Produce, every record accounted for.
    let text = std::fs::read_to_string(&events).unwrap();
    let (mut produces, mut with_topics, mut records, mut errors) = (0u64, 0u64, 0u64, 0u64);
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        match e["type"].as_str() {
            Some("decode.error") => errors += 1,
            Some("kafka.request.completed") if e["kafka_request"]["api_name"] == "Produce" => {
                produces += 1;
                if let Some(topics) = e["kafka_request"]["topics"].as_array() {
                    with_topics += 1;
                    records += topics
                        .iter()
                        .map(|t| t["records"].as_u64().unwrap())
                        .sum::<u64>();
                }
            }
            _ => {}
        }
    }
    println!(
        "tapmesh events: {produces} Produce requests, {with_topics} with their topics decoded, \
         {records} records counted in those (of {} sent through it; records in batches past \
         the capture limit are not counted), {errors} decode.error",
        messages * rounds + messages / 10
    );
    assert_eq!(errors, 0, "the proxy reported decode errors");
}
