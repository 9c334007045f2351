use std::path::Path;
use std::time::Duration;

use super::*;

const SHOP: &str = r#"
name: shop
capture_limit: 16KiB
services:
  inventory:
    type: process
    command: ["./bin/inventory", "--port", "${PORT}"]
    ingresses:
      default:
        protocol: grpc
        ready: { type: grpc }
        proto: { files: [protos/inventory.proto], include: [protos] }
  orders:
    command: ./bin/orders
    ingresses: { default: { protocol: http, ready: { path: /health } } }
    egresses:
      inventory: { service: inventory }
    restart: { max_restarts: 3, backoff: 200ms }
"#;

#[test]
fn yaml_with_defaults() {
    let spec = Spec::parse_in(SHOP, Path::new("/envs")).unwrap();
    assert_eq!(spec.name, "shop");
    assert!(spec.observe);
    assert_eq!(spec.capture_limit, 16 << 10);
    let orders = &spec.services["orders"];
    assert_eq!(
        orders.launch,
        Launch::Process {
            command: vec!["./bin/orders".into()]
        }
    );
    let ingress = &orders.ingresses["default"];
    assert_eq!(ingress.protocol, Protocol::Http);
    assert_eq!(
        ingress.ready.probe,
        ReadyProbe::Http {
            path: "/health".into()
        }
    );
    assert_eq!(orders.egresses["inventory"].ingress, "default");
    assert_eq!(orders.restart.max_restarts, 3);
    assert_eq!(orders.restart.backoff, Duration::from_millis(200));
    assert_eq!(orders.stop_grace, Duration::from_secs(5));
    assert!(!orders.optional);
    let inventory = &spec.services["inventory"];
    assert_eq!(inventory.ingresses["default"].ready.probe, ReadyProbe::Grpc);
    assert_eq!(
        inventory.ingresses["default"].proto.files,
        vec![std::path::PathBuf::from("protos/inventory.proto")]
    );
}

#[test]
fn rigs_json_shape_is_the_same_spec() {
    let json = r#"{
      "name": "shop", "capture_limit": "16KiB",
      "services": {
        "inventory": {"type": "process",
          "config": {"command": ["./bin/inventory", "--port", "${PORT}"]},
          "ingresses": {"default": {"protocol": "grpc", "ready": {"type": "grpc"},
            "proto": {"files": ["protos/inventory.proto"], "include": ["protos"]}}}},
        "orders": {"type": "process", "config": {"command": ["./bin/orders"]},
          "ingresses": {"default": {"protocol": "http", "ready": {"type": "http", "path": "/health"}}},
          "egresses": {"inventory": {"service": "inventory"}},
          "restart": {"max_restarts": 3, "backoff": "200ms"}}
      }
    }"#;
    let from_json = Spec::parse_in(json, Path::new("/envs")).unwrap();
    let from_yaml = Spec::parse_in(SHOP, Path::new("/envs")).unwrap();
    assert_eq!(from_json, from_yaml);
}

#[test]
fn a_cycle_is_named_once_with_its_path() {
    let text = r#"
name: loop
services:
  a: { command: [a], ingresses: { default: {} }, egresses: { b: { service: b } } }
  b: { command: [b], ingresses: { default: {} }, egresses: { c: { service: c } } }
  c: { command: [c], ingresses: { default: {} }, egresses: { a: { service: a } } }
"#;
    let errors = Spec::parse(text).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "services.a.egresses");
    assert_eq!(errors[0].message, "egress cycle: a -> b -> c -> a");
}

#[test]
fn duplicate_service_keys_are_refused_with_the_line() {
    let text = "name: x\nservices:\n  a: { command: [a] }\n  a: { command: [b] }\n";
    let errors = Spec::parse(text).unwrap_err().0;
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("duplicate"), "{errors:?}");
    assert!(
        errors[0]
            .message
            .contains("services: duplicate entry with key \"a\""),
        "{errors:?}"
    );
}

#[test]
fn a_spec_past_the_size_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let mut text = String::from("name: huge\nservices:\n");
    while text.len() <= MAX_SPEC_BYTES {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, &text).unwrap();
    let err = Spec::from_path(&path).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].path, "");
    assert!(
        err.0[0]
            .message
            .contains("a spec may be at most 1048576 bytes"),
        "{err}"
    );
    let err = Spec::parse(&text).unwrap_err();
    assert!(err.0[0].message.contains("at most 1048576 bytes"), "{err}");
}
