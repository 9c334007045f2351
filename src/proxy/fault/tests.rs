use std::time::Duration;

use serde_json::json;
use tapmesh_protocols::http::HeaderBlock;
use tapmesh_protocols::http1::{RequestHead, Verdict};

use super::*;
use crate::spec::read_fault;

fn fault(value: serde_json::Value) -> FaultSpec {
    read_fault(&value).unwrap()
}

fn requests() -> RequestFaults {
    RequestFaults {
        source: "orders".into(),
        target: "inventory".into(),
        ingress: "default".into(),
        connection: 1,
        dice: Dice::new(3),
    }
}

fn verdict(edge: &EdgeFaults, faults: &mut RequestFaults, method: &str, path: &str) -> Verdict {
    let mut headers = HeaderBlock::new();
    headers.push("x-test", b"yes");
    let head = RequestHead {
        version: "HTTP/1.1",
        method,
        path,
        headers: &headers,
        has_body: false,
    };
    faults.decide_http1(&edge.current(), &head).0
}

#[test]
fn names_are_unique_on_an_edge_and_removal_is_by_name() {
    let edge = EdgeFaults::default();
    edge.add(fault(
        json!({"type": "latency", "attributes": {"latency": 5}}),
    ))
    .unwrap();
    let again = edge
        .add(fault(
            json!({"type": "latency", "attributes": {"latency": 9}}),
        ))
        .unwrap_err();
    assert!(
        again.contains("already has a fault named \"latency\""),
        "{again}"
    );
    edge.add(fault(
        json!({"name": "slow2", "type": "latency", "attributes": {"latency": 9}}),
    ))
    .unwrap();
    assert_eq!(edge.list().len(), 2);
    assert!(edge.remove("latency"));
    assert!(!edge.remove("latency"));
    assert_eq!(edge.list()[0].name, "slow2");
    assert_eq!(edge.clear(), 1);
    assert!(edge.current().is_empty());
}

#[test]
fn first_n_then_every_request_passes() {
    let edge = EdgeFaults::default();
    edge.add(fault(
        json!({"type": "abort", "match": "http.path == \"/a\"", "first": 2,
        "attributes": {"http_status": 503, "body": "try later"}}),
    ))
    .unwrap();
    let mut faults = requests();
    let mut answered = Vec::new();
    for path in ["/b", "/a", "/b", "/a", "/a", "/a"] {
        answered.push(match verdict(&edge, &mut faults, "GET", path) {
            Verdict::Respond(r) => {
                assert_eq!(&r.body[..], b"try later");
                assert!(r
                    .headers
                    .contains(&("x-tapmesh-fault".into(), "abort".into())));
                r.status
            }
            Verdict::Pass => 0,
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(answered, [0, 503, 0, 503, 0, 0]);
}

#[test]
fn every_nth_match_and_the_first_rule_that_selects_wins() {
    let edge = EdgeFaults::default();
    edge.add(fault(
        json!({"type": "delay", "every": 3, "attributes": {"delay": 40, "on": "response"}}),
    ))
    .unwrap();
    edge.add(fault(
        json!({"type": "drop", "match": "http.method == \"DELETE\""}),
    ))
    .unwrap();
    let mut faults = requests();
    let got: Vec<Verdict> = ["GET", "GET", "GET", "DELETE", "GET", "DELETE"]
        .into_iter()
        .map(|m| verdict(&edge, &mut faults, m, "/"))
        .collect();
    let held = Verdict::DelayResponse(Duration::from_millis(40));
    assert_eq!(
        got,
        [
            Verdict::Pass,
            Verdict::Pass,
            held.clone(),
            Verdict::Close,
            Verdict::Pass,
            held
        ]
    );
}

#[test]
fn a_match_on_headers_sees_the_request_and_never_the_response() {
    let edge = EdgeFaults::default();
    edge.add(fault(
        json!({"type": "abort", "match": "http.request.headers[\"x-test\"] == \"yes\"",
        "attributes": {"http_status": 500}}),
    ))
    .unwrap();
    edge.add(fault(
        json!({"name": "never", "type": "drop", "match": "http.status == 200"}),
    ))
    .unwrap();
    let mut faults = requests();
    assert!(
        matches!(verdict(&edge, &mut faults, "GET", "/"), Verdict::Respond(r) if r.status == 500)
    );
    edge.remove("abort");
    assert_eq!(verdict(&edge, &mut faults, "GET", "/"), Verdict::Pass);
}

#[test]
fn aborts_that_would_not_act_yet_are_refused_not_kept() {
    let edge = EdgeFaults::default();
    let grpc = edge
        .add(fault(
            json!({"type": "abort", "attributes": {"grpc_status": 14}}),
        ))
        .unwrap_err();
    assert!(grpc.contains("gRPC status is not built yet"), "{grpc}");
    let kafka = edge
        .add(fault(
            json!({"type": "abort", "attributes": {"kafka_error": 6}}),
        ))
        .unwrap_err();
    assert!(
        kafka.contains("Kafka error code is not built yet"),
        "{kafka}"
    );
    assert!(edge.current().is_empty());
}

#[test]
fn down_is_seen_by_the_set() {
    let edge = EdgeFaults::default();
    assert!(!edge.current().is_down());
    edge.add(fault(json!({"type": "down"}))).unwrap();
    assert!(edge.current().is_down());
    assert_eq!(
        edge.current()
            .connection_rules(crate::spec::Stream::Downstream)
            .count(),
        0
    );
}
