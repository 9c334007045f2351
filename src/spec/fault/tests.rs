use serde_json::json;

use super::*;

fn errors(value: Value) -> Vec<(String, String)> {
    read_fault(&value).expect_err("the fault is refused")
}

#[test]
fn toxiproxy_shapes_read_with_their_units() {
    let f = read_fault(&json!({"type": "latency", "attributes": {"latency": 100, "jitter": 10}}))
        .unwrap();
    assert_eq!(f.name, "latency");
    assert_eq!(f.stream, Stream::Downstream);
    assert_eq!(f.toxicity, 1.0);
    assert_eq!(
        f.action,
        FaultAction::Latency {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(10)
        }
    );
    let f = read_fault(&json!({"name": "s", "type": "slicer", "stream": "upstream",
        "toxicity": 0.5, "attributes": {"average_size": 10, "delay": 250}}))
    .unwrap();
    assert_eq!(f.stream, Stream::Upstream);
    assert_eq!(f.toxicity, 0.5);
    assert_eq!(
        f.action,
        FaultAction::Slicer {
            average_size: 10,
            size_variation: 0,
            delay: Duration::from_micros(250)
        }
    );
    // A duration may be written with its unit.
    let f =
        read_fault(&json!({"type": "delay", "attributes": {"delay": "1.5s", "on": "response"}}))
            .unwrap();
    assert_eq!(
        f.action,
        FaultAction::Delay {
            delay: Duration::from_millis(1500),
            on: Phase::Response
        }
    );
}

#[test]
fn request_faults_take_a_match_and_a_selection() {
    let f = read_fault(
        &json!({"type": "abort", "match": "grpc.method == \"Reserve\"",
        "first": 2, "attributes": {"grpc_status": 14, "message": "down for a test"}}),
    )
    .unwrap();
    assert_eq!(f.when.as_deref(), Some("grpc.method == \"Reserve\""));
    assert_eq!((f.first, f.every), (Some(2), None));
    assert_eq!(
        f.action,
        FaultAction::Abort(Abort::Grpc {
            grpc_status: 14,
            message: "down for a test".into()
        })
    );
}

#[test]
fn what_is_written_reads_back_the_same() {
    for value in [
        json!({"type": "latency", "attributes": {"latency": 100, "jitter": 3}}),
        json!({"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 1250}}),
        json!({"type": "slow_close", "attributes": {"delay": 20}}),
        json!({"type": "timeout", "attributes": {"timeout": 0}}),
        json!({"type": "reset_peer", "toxicity": 0.25, "attributes": {"timeout": 5}}),
        json!({"type": "slicer", "attributes": {"average_size": 3, "size_variation": 1, "delay": 10}}),
        json!({"type": "limit_data", "attributes": {"bytes": 7}}),
        json!({"type": "down"}),
        json!({"name": "slow", "type": "delay", "match": "http.path == \"/a\"", "every": 3,
            "attributes": {"delay": 50, "on": "request"}}),
        json!({"type": "abort", "attributes": {"http_status": 503, "body": "no"}}),
        json!({"type": "abort", "attributes": {"kafka_error": 7}}),
        json!({"type": "drop", "first": 1}),
    ] {
        let fault = read_fault(&value).unwrap();
        let written = serde_json::to_value(&fault).unwrap();
        assert_eq!(read_fault(&written).unwrap(), fault, "{written}");
    }
}

#[test]
fn every_problem_is_named_with_its_path() {
    let found = errors(json!({"type": "latency", "toxicity": 2, "first": 1,
        "attributes": {"latency": 5, "extra": 1}, "colour": "red"}));
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    for path in ["colour", "toxicity", "first", "attributes.extra"] {
        assert!(paths.contains(&path), "{path} missing from {found:?}");
    }
    let found = errors(json!({"type": "latency", "attributes": {"latency": "soon"}}));
    assert_eq!(found[0].0, "attributes.latency", "{found:?}");
    assert!(found[0].1.contains("not a duration"), "{found:?}");
    let found = errors(json!({"type": "abort", "match": "http.status >=", "attributes": {}}));
    assert!(
        found
            .iter()
            .any(|(p, m)| p == "match" && m.contains("at 1:15")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(p, m)| p == "attributes" && m.contains("exactly one")),
        "{found:?}"
    );
    let found = errors(json!({"type": "abort", "attributes": {"http_status": 700}}));
    assert_eq!(found[0].0, "attributes.http_status");
    let found = errors(json!({"type": "explode"}));
    assert!(found[0].1.contains("unknown fault type"), "{found:?}");
    assert_eq!(errors(json!({"attributes": {}}))[0].0, "type");
    assert_eq!(errors(json!({"type": "bandwidth"}))[0].0, "attributes.rate");
}
