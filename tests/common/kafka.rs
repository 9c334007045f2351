//! Kafka peers for the integration tests: librdkafka's mock cluster (a real
//! broker protocol implementation, in process) and rdkafka clients.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::Value;

/// A mock cluster of `brokers` brokers with topic `topic` of `partitions`
/// partitions, led in turn by each broker.
pub struct MockKafka {
    pub cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub brokers: Vec<SocketAddr>,
}

impl MockKafka {
    pub fn start(brokers: i32, topic: &str, partitions: i32) -> Self {
        let cluster = MockCluster::new(brokers).expect("starting the mock cluster");
        cluster
            .create_topic(topic, partitions, brokers.min(3))
            .expect("creating the topic");
        for p in 0..partitions {
            cluster
                .partition_leader(topic, p, Some(p % brokers + 1))
                .expect("setting a partition leader");
        }
        let brokers = cluster
            .bootstrap_servers()
            .split(',')
            .map(|a| a.parse().expect("a broker address"))
            .collect();
        Self { cluster, brokers }
    }
}

/// Every message is `key-N` → `value-N`, sent to partition N % partitions.
pub fn produce(bootstrap: &str, topic: &str, partitions: i32, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000")
        .create()
        .expect("creating the producer");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut deliveries = Vec::new();
        for i in 0..count {
            let key = format!("key-{i}");
            let value = format!("value-{i}");
            let record = FutureRecord::to(topic)
                .key(&key)
                .payload(&value)
                .partition(i as i32 % partitions);
            deliveries.push(producer.send_result(record).expect("queueing a message"));
        }
        for (i, d) in deliveries.into_iter().enumerate() {
            d.await
                .expect("the delivery was cancelled")
                .unwrap_or_else(|(e, _)| panic!("message {i} was not delivered: {e}"));
        }
    });
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Consumes `count` messages in consumer group `group`, from the
/// beginning; returns them (key → value) and the consumer's view of the
/// brokers (their addresses as the cluster told it).
pub fn consume(
    bootstrap: &str,
    topic: &str,
    group: &str,
    count: usize,
) -> (BTreeMap<String, String>, Vec<String>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("creating the consumer");
    consumer.subscribe(&[topic]).unwrap();
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count} messages in 60 s",
            got.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let m = message.expect("a consumer error");
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            got.insert(key, value);
        }
    }
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("fetching metadata");
    let brokers = metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    consumer.unsubscribe();
    drop(consumer);
    (got, brokers)
}

/// Established TCP connections of this process whose remote port is one of
/// `ports` (a client connected straight to a broker).
pub fn connections_to(ports: &[u16]) -> Vec<String> {
    let mut inodes = HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(link) = std::fs::read_link(fd.path()) {
            let link = link.to_string_lossy().into_owned();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut found = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "01" || !inodes.contains(f[9]) {
                continue;
            }
            let remote_port = f[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if remote_port.is_some_and(|p| ports.contains(&p)) {
                found.push(line.trim().to_string());
            }
        }
    }
    found
}

/// The `kafka_request` payloads of the events, in order.
pub fn kafka_requests(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "kafka.request.completed")
        .map(|e| e["kafka_request"].clone())
        .collect()
}

/// Kafka's names for the keys the clients in these tests use.
pub fn expected_api_name(key: i64) -> &'static str {
    match key {
        0 => "Produce",
        1 => "Fetch",
        2 => "ListOffsets",
        3 => "Metadata",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        11 => "JoinGroup",
        12 => "Heartbeat",
        13 => "LeaveGroup",
        14 => "SyncGroup",
        15 => "DescribeGroups",
        16 => "ListGroups",
        18 => "ApiVersions",
        19 => "CreateTopics",
        22 => "InitProducerId",
        23 => "OffsetForLeaderEpoch",
        32 => "DescribeConfigs",
        36 => "SaslAuthenticate",
        60 => "DescribeCluster",
        68 => "ConsumerGroupHeartbeat",
        71 => "GetTelemetrySubscriptions",
        72 => "PushTelemetry",
        other => panic!("a key these clients were not expected to use: {other}"),
    }
}
