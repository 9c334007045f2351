use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::rewrite::{BrokerAddressMap, ResponseRewriter};
use super::*;
use crate::FailureKind;

/// A v2 record batch holding `count` records (the records themselves are
/// opaque filler: only the header is read).
fn batch(count: i32, payload: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_i64(0); // base offset
    b.put_i32(0); // batch length, set below
    b.put_i32(0); // partition leader epoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc
    b.put_i16(0); // attributes
    b.put_i32(count - 1); // last offset delta
    b.put_i64(0);
    b.put_i64(0);
    b.put_i64(-1); // producer id
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(count);
    b.extend(std::iter::repeat_n(0xab, payload));
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b
}

fn request_frame(key: i16, version: i16, correlation: i32, body: &impl Encodable) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(key)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("test-client")));
    let header_version = api::request_header_version(key, version).unwrap();
    frame(|b| {
        header.encode(b, header_version).unwrap();
        body.encode(b, version).unwrap();
    })
}

fn response_frame(key: i16, version: i16, correlation: i32, body: &impl Encodable) -> Bytes {
    let header = ResponseHeader::default().with_correlation_id(correlation);
    let header_version = api::response_header_version(key, version).unwrap();
    frame(|b| {
        header.encode(b, header_version).unwrap();
        body.encode(b, version).unwrap();
    })
}

fn frame(fill: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0);
    fill(&mut b);
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b.freeze()
}

fn produce(acks: i16) -> ProduceRequest {
    let partition = |index, records: Vec<u8>| {
        PartitionProduceData::default()
            .with_index(index)
            .with_records(Some(Bytes::from(records)))
    };
    let mut two = batch(3, 40);
    two.extend(batch(2, 10));
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partition_data(vec![
                partition(0, batch(5, 100)),
                partition(1, two),
            ])])
}

fn produce_response() -> ProduceResponse {
    ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_static_str("orders")))
        .with_partition_responses(vec![
            PartitionProduceResponse::default().with_index(0),
            PartitionProduceResponse::default()
                .with_index(1)
                .with_error_code(6),
        ])])
}

/// Feeds `chunks` alternately as given, returning every output.
fn run(decoder: &mut KafkaDecoder, chunks: &[(Direction, Bytes)]) -> Vec<Decoded> {
    let mut out = Vec::new();
    for (i, (d, c)) in chunks.iter().enumerate() {
        decoder.feed(*d, c, Timestamp(1_000_000 * (i as u64 + 1)), &mut out);
    }
    out
}

fn exchanges(out: &[Decoded]) -> Vec<&KafkaExchange> {
    out.iter()
        .map(|d| match d {
            Decoded::Kafka(x) => &**x,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

const C2T: Direction = Direction::ClientToTarget;
const T2C: Direction = Direction::TargetToClient;

#[test]
fn produce_paired_with_its_response() {
    for version in [3, 7, 9, 11] {
        let request = request_frame(0, version, 42, &produce(-1));
        let response = response_frame(0, version, 42, &produce_response());
        let mut decoder = KafkaDecoder::new(KafkaConfig::default());
        let out = run(
            &mut decoder,
            &[(C2T, request.clone()), (T2C, response.clone())],
        );
        let x = exchanges(&out);
        assert_eq!(x.len(), 1, "v{version}");
        let x = x[0];
        assert_eq!(x.api_key, 0);
        assert_eq!(x.api_name, Some("Produce"));
        assert_eq!(x.api_version, version);
        assert_eq!(x.correlation_id, 42);
        assert_eq!(x.client_id.as_deref(), Some("test-client"));
        assert_eq!(x.request_size, request.len() as u64);
        assert_eq!(x.response_size, Some(response.len() as u64));
        assert_eq!(x.latency_ms(), Some(1.0));
        assert_eq!(x.error_code, None);
        let topics = x.topics.as_ref().unwrap();
        assert_eq!(
            topics,
            &vec![
                TopicPartition {
                    topic: "orders".into(),
                    partition: 0,
                    records: 5,
                    bytes: 161,
                    error_code: Some(0)
                },
                TopicPartition {
                    topic: "orders".into(),
                    partition: 1,
                    records: 5,
                    bytes: 61 + 40 + 61 + 10,
                    error_code: Some(6)
                },
            ],
            "v{version}"
        );
        assert_eq!(decoder.pending(), 0);
    }
}

#[test]
fn produce_with_acks_0_completes_without_a_response() {
    let request = request_frame(0, 9, 1, &produce(0));
    let mut decoder = KafkaDecoder::new(KafkaConfig::default());
    let out = run(&mut decoder, &[(C2T, request)]);
    let x = exchanges(&out)[0];
    assert_eq!(x.response_size, None);
    assert_eq!(x.latency_ms(), None);
    assert_eq!(x.topics.as_ref().unwrap()[0].records, 5);
    assert_eq!(decoder.pending(), 0);
    // The next request's response pairs as usual.
    let meta = request_frame(3, 12, 2, &MetadataRequest::default());
    let resp = response_frame(3, 12, 2, &MetadataResponse::default());
    let out = run(&mut decoder, &[(C2T, meta), (T2C, resp)]);
    assert_eq!(exchanges(&out)[0].api_name, Some("Metadata"));
}

#[test]
fn byte_by_byte_gives_the_same_exchanges() {
    let mut stream_up = request_frame(0, 9, 7, &produce(1)).to_vec();
    stream_up.extend_from_slice(&request_frame(1, 12, 8, &FetchRequest::default()));
    let records = batch(4, 20);
    let fetch = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("orders")))
        .with_partitions(vec![PartitionData::default()
            .with_partition_index(2)
            .with_records(Some(Bytes::from(records.clone())))])]);
    let mut stream_down = response_frame(0, 9, 7, &produce_response()).to_vec();
    stream_down.extend_from_slice(&response_frame(1, 12, 8, &fetch));

    let mut whole = KafkaDecoder::new(KafkaConfig::default());
    let expected = run(
        &mut whole,
        &[
            (C2T, stream_up.clone().into()),
            (T2C, stream_down.clone().into()),
        ],
    );
    let mut bytewise = KafkaDecoder::new(KafkaConfig::default());
    let mut out = Vec::new();
    for b in &stream_up {
        bytewise.feed(
            C2T,
            &Bytes::copy_from_slice(&[*b]),
            Timestamp(1_000_000),
            &mut out,
        );
    }
    for b in &stream_down {
        bytewise.feed(
            T2C,
            &Bytes::copy_from_slice(&[*b]),
            Timestamp(2_000_000),
            &mut out,
        );
    }
    assert_eq!(out, expected);
    let x = exchanges(&out);
    assert_eq!(x.len(), 2);
    assert_eq!(x[1].api_name, Some("Fetch"));
    assert_eq!(x[1].error_code, Some(0));
    assert_eq!(
        x[1].topics.as_ref().unwrap(),
        &vec![TopicPartition {
            topic: "orders".into(),
            partition: 2,
            records: 4,
            bytes: records.len() as u64,
            error_code: Some(0)
        }]
    );
}

#[test]
fn past_the_capture_limit_only_the_header_is_reported() {
    let config = KafkaConfig {
        capture_limit: 100,
        ..KafkaConfig::default()
    };
    let mut decoder = KafkaDecoder::new(config);
    // Past both the capture limit and the bytes kept for any header.
    let mut big = produce(1);
    big.topic_data[0].partition_data[0].records = Some(batch(5, 10_000).into());
    let request = request_frame(0, 9, 3, &big);
    assert!(request.len() > HEADER_KEEP);
    let response = response_frame(0, 9, 3, &produce_response());
    let out = run(&mut decoder, &[(C2T, request.clone()), (T2C, response)]);
    let x = exchanges(&out)[0];
    assert_eq!(x.request_size, request.len() as u64);
    assert_eq!(x.client_id.as_deref(), Some("test-client"));
    // The response (small) still names its partitions and their errors.
    let topics = x.topics.as_ref().unwrap();
    assert_eq!(topics.len(), 2);
    assert_eq!((topics[1].records, topics[1].error_code), (0, Some(6)));
}

#[test]
fn api_versions_error_reply_in_the_v0_layout() {
    let request = request_frame(18, 3, 1, &ApiVersionsRequest::default());
    // UNSUPPORTED_VERSION, answered in the v0 layout: header v0, error
    // code, an empty api_keys array.
    let reply = frame(|b| {
        b.put_i32(1);
        b.put_i16(35);
        b.put_i32(0);
    });
    let mut decoder = KafkaDecoder::new(KafkaConfig::default());
    let out = run(&mut decoder, &[(C2T, request), (T2C, reply)]);
    let x = exchanges(&out)[0];
    assert_eq!(x.api_name, Some("ApiVersions"));
    assert_eq!(x.api_version, 3);
    assert_eq!(x.error_code, Some(35));
}

#[test]
fn top_level_error_codes() {
    let request = request_frame(10, 3, 5, &FindCoordinatorRequest::default());
    let response = response_frame(
        10,
        3,
        5,
        &FindCoordinatorResponse::default().with_error_code(15),
    );
    let mut decoder = KafkaDecoder::new(KafkaConfig::default());
    let out = run(&mut decoder, &[(C2T, request), (T2C, response)]);
    assert_eq!(exchanges(&out)[0].error_code, Some(15));
    // ListOffsets has no top-level error code.
    let request = request_frame(2, 5, 6, &ListOffsetsRequest::default());
    let response = response_frame(2, 5, 6, &ListOffsetsResponse::default());
    let out = run(&mut decoder, &[(C2T, request), (T2C, response)]);
    assert_eq!(exchanges(&out)[0].error_code, None);
    assert_eq!(exchanges(&out)[0].api_name, Some("ListOffsets"));
}

#[test]
fn malformed_frames_give_one_failure() {
    let mut decoder = KafkaDecoder::new(KafkaConfig::default());
    let mut out = Vec::new();
    decoder.feed(
        C2T,
        &Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
        Timestamp(0),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let Decoded::Failure(f) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((f.protocol, f.direction, f.offset), ("kafka", C2T, 0));

    // A response nobody asked for.
    let mut decoder = KafkaDecoder::new(KafkaConfig::default());
    let out = run(
        &mut decoder,
        &[(T2C, response_frame(3, 1, 9, &MetadataResponse::default()))],
    );
    assert!(
        matches!(&out[..], [Decoded::Failure(f)] if f.kind == FailureKind::UnexpectedMessage && f.detail.contains("correlation id 9"))
    );
}

#[test]
fn pending_requests_are_bounded_and_cleared_on_close() {
    let config = KafkaConfig {
        max_pending: 2,
        ..KafkaConfig::default()
    };
    let mut decoder = KafkaDecoder::new(config);
    let r = |c| (C2T, request_frame(3, 12, c, &MetadataRequest::default()));
    let out = run(&mut decoder, &[r(1), r(2)]);
    assert!(out.is_empty());
    assert_eq!(decoder.pending(), 2);
    let mut out = Vec::new();
    decoder.finish(Timestamp(9), &mut out);
    assert!(out.is_empty());
    assert_eq!(decoder.pending(), 0);

    let mut decoder = KafkaDecoder::new(KafkaConfig {
        max_pending: 2,
        ..KafkaConfig::default()
    });
    let out = run(&mut decoder, &[r(1), r(2), r(3)]);
    assert!(
        matches!(&out[..], [Decoded::Failure(f)] if f.kind == FailureKind::LimitExceeded && f.detail.contains("more than 2"))
    );
}

struct TestMap;

impl BrokerAddressMap for TestMap {
    fn proxy_address(
        &mut self,
        node_id: i32,
        host: &str,
        port: i32,
    ) -> Result<(String, i32), String> {
        if host == "fail" {
            return Err("no listener".into());
        }
        Ok((format!("proxy-{node_id}"), port + 1000))
    }
}

fn metadata_response(hosts: &[(i32, &str, i32)]) -> MetadataResponse {
    MetadataResponse::default().with_brokers(
        hosts
            .iter()
            .map(|(id, host, port)| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(*id))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(*port)
            })
            .collect(),
    )
}

/// Runs the rewriter over a response stream cut at every `step` bytes.
fn rewrite_stream(
    rewriter: &mut ResponseRewriter,
    stream: &[u8],
    step: usize,
) -> (Vec<u8>, Vec<rewrite::RewriteFailure>) {
    let mut forwarded = Vec::new();
    let mut failures = Vec::new();
    let mut out = Vec::new();
    for piece in stream.chunks(step) {
        rewriter.rewrite_response(
            Bytes::copy_from_slice(piece),
            &mut TestMap,
            &mut out,
            &mut failures,
        );
        for b in out.drain(..) {
            forwarded.extend_from_slice(&b);
        }
    }
    (forwarded, failures)
}

#[test]
fn rewrites_broker_addresses_and_passes_the_rest() {
    for version in [1, 9, 12] {
        let requests = [
            request_frame(3, version, 1, &MetadataRequest::default()),
            request_frame(1, 12, 2, &FetchRequest::default()),
            request_frame(3, version, 3, &MetadataRequest::default()),
        ];
        let brokers = [(1, "broker-a", 9092), (2, "127.0.0.1", 39000)];
        let meta = response_frame(3, version, 1, &metadata_response(&brokers));
        let fetch = response_frame(1, 12, 2, &FetchResponse::default());
        let meta2 = response_frame(3, version, 3, &metadata_response(&brokers[1..]));
        let stream: Vec<u8> = [&meta[..], &fetch[..], &meta2[..]].concat();

        let expected_meta = response_frame(
            3,
            version,
            1,
            &metadata_response(&[(1, "proxy-1", 10092), (2, "proxy-2", 40000)]),
        );
        let expected_meta2 =
            response_frame(3, version, 3, &metadata_response(&[(2, "proxy-2", 40000)]));
        let expected: Vec<u8> = [&expected_meta[..], &fetch[..], &expected_meta2[..]].concat();

        for step in [1, 3, 7, 8, 9, 64, stream.len()] {
            let mut rewriter = ResponseRewriter::new(1 << 20);
            for r in &requests {
                rewriter.observe_request(r);
            }
            let (forwarded, failures) = rewrite_stream(&mut rewriter, &stream, step);
            assert!(failures.is_empty(), "{failures:?}");
            assert_eq!(forwarded, expected, "v{version} step {step}");
        }
    }
}

#[test]
fn find_coordinator_single_and_batched_and_describe_cluster() {
    let single = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(4))
        .with_host(StrBytes::from_static_str("b4"))
        .with_port(1);
    let batched = FindCoordinatorResponse::default().with_coordinators(vec![
        Coordinator::default()
            .with_key(StrBytes::from_static_str("group"))
            .with_node_id(BrokerId(5))
            .with_host(StrBytes::from_static_str("b5"))
            .with_port(2),
        // An error answer: no broker to rewrite.
        Coordinator::default()
            .with_node_id(BrokerId(-1))
            .with_error_code(15),
    ]);
    let cluster =
        DescribeClusterResponse::default().with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(6))
            .with_host(StrBytes::from_static_str("b6"))
            .with_port(3)]);
    let cases: Vec<(i16, i16, Bytes, Bytes)> = vec![
        (
            10,
            3,
            response_frame(10, 3, 1, &single),
            response_frame(
                10,
                3,
                1,
                &single
                    .clone()
                    .with_host(StrBytes::from_static_str("proxy-4"))
                    .with_port(1001),
            ),
        ),
        (10, 4, response_frame(10, 4, 1, &batched), {
            let mut b = batched.clone();
            b.coordinators[0].host = StrBytes::from_static_str("proxy-5");
            b.coordinators[0].port = 1002;
            response_frame(10, 4, 1, &b)
        }),
        (60, 1, response_frame(60, 1, 1, &cluster), {
            let mut c = cluster.clone();
            c.brokers[0].host = StrBytes::from_static_str("proxy-6");
            c.brokers[0].port = 1003;
            response_frame(60, 1, 1, &c)
        }),
    ];
    for (key, version, original, expected) in cases {
        let rewritten = rewrite::rewrite_frame(&original, key, version, &mut TestMap).unwrap();
        assert_eq!(rewritten, expected, "key {key} v{version}");
    }
}

#[test]
fn a_response_that_cannot_be_rewritten_goes_through_unchanged() {
    let mut rewriter = ResponseRewriter::new(1 << 20);
    rewriter.observe_request(&request_frame(3, 12, 1, &MetadataRequest::default()));
    rewriter.observe_request(&request_frame(3, 12, 2, &MetadataRequest::default()));
    let failing = response_frame(3, 12, 1, &metadata_response(&[(1, "fail", 1)]));
    // Correlation 2 with a body that is not a Metadata response.
    let garbage = frame(|b| {
        b.put_i32(2);
        b.put_slice(b"\xff\xff\xff");
    });
    let stream: Vec<u8> = [&failing[..], &garbage[..]].concat();
    let (forwarded, failures) = rewrite_stream(&mut rewriter, &stream, 5);
    assert_eq!(forwarded, stream);
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].offset, 0);
    assert!(failures[0].detail.contains("no listener"), "{failures:?}");
    assert_eq!(failures[0].kind, FailureKind::RewriteFailed);
    assert_eq!(failures[1].offset, failing.len() as u64);
}

/// Admits at most `cap` distinct brokers per response and records what it
/// was asked.
struct CappedMap {
    cap: usize,
    admitted: Vec<usize>,
    mapped: usize,
}

impl BrokerAddressMap for CappedMap {
    fn proxy_address(&mut self, node_id: i32, _: &str, port: i32) -> Result<(String, i32), String> {
        self.mapped += 1;
        Ok((format!("proxy-{node_id}"), port + 1000))
    }

    fn admit(&mut self, brokers: usize) -> Result<(), String> {
        self.admitted.push(brokers);
        if brokers > self.cap {
            return Err(format!("{brokers} brokers, cap {}", self.cap));
        }
        Ok(())
    }
}

#[test]
fn a_response_past_the_maps_cap_is_refused_before_any_broker_is_mapped() {
    // Node 3 repeats node 1's address, and node -1 is an error entry: two
    // distinct brokers.
    let brokers = [
        (1, "b1", 9092),
        (2, "b2", 9092),
        (3, "b1", 9092),
        (-1, "", -1),
    ];
    let original = response_frame(3, 12, 1, &metadata_response(&brokers));
    let mut map = CappedMap {
        cap: 2,
        admitted: Vec::new(),
        mapped: 0,
    };
    let rewritten = rewrite::rewrite_frame(&original, 3, 12, &mut map).unwrap();
    assert_ne!(rewritten, original);
    assert_eq!((map.admitted.as_slice(), map.mapped), (&[2][..], 3));

    let mut map = CappedMap {
        cap: 1,
        admitted: Vec::new(),
        mapped: 0,
    };
    let err = rewrite::rewrite_frame(&original, 3, 12, &mut map).unwrap_err();
    assert_eq!(err, "2 brokers, cap 1");
    assert_eq!((map.admitted.as_slice(), map.mapped), (&[2][..], 0));

    // Through the stream rewriter: forwarded unchanged, one failure naming why.
    let mut rewriter = ResponseRewriter::new(1 << 20);
    rewriter.observe_request(&request_frame(3, 12, 1, &MetadataRequest::default()));
    let (mut out, mut failures) = (Vec::new(), Vec::new());
    rewriter.rewrite_response(original.clone(), &mut map, &mut out, &mut failures);
    assert_eq!(out.concat(), original);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].offset, 0);
    assert_eq!(
        failures[0].detail,
        "could not rewrite the broker addresses in a Metadata v12 response: 2 brokers, cap 1"
    );
}

#[test]
fn large_responses_pass_and_a_large_metadata_is_not_held() {
    let mut rewriter = ResponseRewriter::new(64);
    rewriter.observe_request(&request_frame(1, 12, 1, &FetchRequest::default()));
    rewriter.observe_request(&request_frame(3, 12, 2, &MetadataRequest::default()));
    let fetch = frame(|b| {
        b.put_i32(1);
        b.put_slice(&[7; 1000]);
    });
    let brokers: Vec<(i32, &str, i32)> = (0..10).map(|i| (i, "a-long-broker-name", 1)).collect();
    let meta = response_frame(3, 12, 2, &metadata_response(&brokers));
    assert!(meta.len() > 64);
    let stream: Vec<u8> = [&fetch[..], &meta[..]].concat();
    let (forwarded, failures) = rewrite_stream(&mut rewriter, &stream, 100);
    assert_eq!(forwarded, stream);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].offset, fetch.len() as u64);
    assert!(
        failures[0].detail.contains("past the 64 bytes"),
        "{failures:?}"
    );
    assert_eq!(failures[0].kind, FailureKind::LimitExceeded);
}

#[test]
fn a_held_response_is_released_at_end_of_stream() {
    let mut rewriter = ResponseRewriter::new(1 << 20);
    rewriter.observe_request(&request_frame(3, 12, 1, &MetadataRequest::default()));
    let meta = response_frame(3, 12, 1, &metadata_response(&[(1, "a", 1)]));
    let (mut forwarded, _) = rewrite_stream(&mut rewriter, &meta[..10], 10);
    assert!(forwarded.is_empty());
    let mut out = Vec::new();
    rewriter.end_of_stream(&mut out);
    for b in out {
        forwarded.extend_from_slice(&b);
    }
    assert_eq!(forwarded, &meta[..10]);
}

#[test]
fn counts_past_the_bytes_left_are_refused_not_allocated() {
    // Produce v7 whose topic array claims i32::MAX entries (the crate this
    // module avoids would reserve hundreds of gigabytes for it).
    let body = frame(|b| {
        b.put_i16(0);
        b.put_i16(7);
        b.put_i32(1);
        b.put_i16(-1); // client id
        b.put_i16(-1); // transactional id
        b.put_i16(1);
        b.put_i32(1000);
        b.put_i32(i32::MAX);
        b.put_slice(b"tiny");
    });
    let mut decoder = KafkaDecoder::new(KafkaConfig::default());
    let out = run(&mut decoder, &[(C2T, body)]);
    assert!(out.is_empty());
    assert_eq!(decoder.pending(), 1);
    // Its response pairs, with no topics to report.
    let response = frame(|b| {
        b.put_i32(1);
        b.put_i32(i32::MAX);
    });
    let out = run(&mut decoder, &[(T2C, response)]);
    let x = exchanges(&out)[0];
    assert_eq!(x.topics, Some(vec![]));
    assert!(body::metadata_response(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff], 1).is_none());
}
