use std::collections::BTreeMap;
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

#[test]
fn jobs_dependencies_hooks_and_external_services() {
    let text = r#"
name: real
services:
  db:
    type: external
    address: 127.0.0.1:5432
  migrate:
    type: script
    script: ./migrate.sh
    job: true
    egresses: { db: db }
  api:
    command: [api, --port, $PORT]
    ingresses: { default: { protocol: http }, admin: {} }
    depends_on: { migrate: completed, cache: { condition: started }, mail: }
    prestart: 'echo "$DB_HOSTPORT"'
    init: { command: [seed, --to, "${HOSTPORT}"], timeout: 30s }
    egresses: { db: db }
  cache: { command: [cache], depends_on: [db] }
  mail: { command: [mail] }
  ldap:
    type: external
    ingresses: { default: { address: "ldap:389", protocol: tcp }, tls: { address: "ldap:636" } }
"#;
    let spec = Spec::parse_in(text, Path::new("/envs")).unwrap_or_else(|e| panic!("{e}"));
    let db = &spec.services["db"];
    assert!(db.is_external());
    assert_eq!(
        db.ingresses["default"].address.as_deref(),
        Some("127.0.0.1:5432")
    );
    assert_eq!(db.ingresses["default"].protocol, Protocol::Tcp);
    assert_eq!(
        spec.services["ldap"].ingresses["tls"].address.as_deref(),
        Some("ldap:636")
    );
    assert!(spec.services["migrate"].job);
    let api = &spec.services["api"];
    assert_eq!(
        api.depends_on,
        BTreeMap::from([
            ("cache".to_string(), Condition::Started),
            ("mail".to_string(), Condition::Ready),
            ("migrate".to_string(), Condition::Completed),
        ])
    );
    assert_eq!(
        api.dependencies(),
        BTreeMap::from([
            ("cache", Condition::Started),
            ("db", Condition::Ready),
            ("mail", Condition::Ready),
            ("migrate", Condition::Completed),
        ])
    );
    assert_eq!(
        api.prestart,
        Some(Hook {
            run: HookRun::Script("echo \"$DB_HOSTPORT\"".into()),
            timeout: Duration::from_secs(300),
        })
    );
    assert_eq!(
        api.init,
        Some(Hook {
            run: HookRun::Command(vec!["seed".into(), "--to".into(), "${HOSTPORT}".into()]),
            timeout: Duration::from_secs(30),
        })
    );
    assert_eq!(
        spec.services["cache"].depends_on,
        BTreeMap::from([("db".to_string(), Condition::Ready)])
    );
}

#[test]
fn what_the_new_keys_refuse() {
    let text = r#"
name: bad
services:
  a: { command: [a], depends_on: { nope: ready, b: completed, a: started } }
  b: { command: [b], depends_on: { c: sometime } }
  c: { command: [c], depends_on: [d] }
  d: { command: [d], depends_on: [c] }
  e: { type: external, ingresses: { default: { ready: { type: log, pattern: x } } } }
  f: { command: [f], address: "h:1", prestart: [], init: { command: [x], script: y } }
  g: { type: external, address: "h:1", command: [g], job: true }
"#;
    let errors = Spec::parse(text).unwrap_err().0;
    let found: Vec<(String, String)> = errors
        .iter()
        .map(|e| (e.path.clone(), e.message.clone()))
        .collect();
    let expect = [
        ("services.a.depends_on.nope", "unknown service \"nope\""),
        ("services.a.depends_on.b", "\"b\" is not a job"),
        ("services.a.depends_on.a", "cannot depend on itself"),
        ("services.b.depends_on.c", "unknown condition \"sometime\""),
        (
            "services.c.depends_on",
            "dependency cycle (egresses and depends_on): c -> d -> c",
        ),
        (
            "services.e.ingresses.default.address",
            "missing: each ingress of an external",
        ),
        (
            "services.e.ingresses.default.ready",
            "not tapmesh's to read",
        ),
        (
            "services.f.address",
            "only an external service has an address",
        ),
        (
            "services.f.prestart",
            "empty: a hook needs something to run",
        ),
        ("services.f.init", "a command or a script, not both"),
        ("services.g.command", "not started by tapmesh"),
        (
            "services.g.job",
            "an external service is not started by tapmesh",
        ),
    ];
    for (path, message) in expect {
        assert!(
            found.iter().any(|(p, m)| p == path && m.contains(message)),
            "no {path}: …{message}… in {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}

#[test]
fn yaml_1_1_booleans_stay_strings() {
    let spec = Spec::parse("name: x\nservices:\n  a: { command: [echo, yes, no, on] }\n").unwrap();
    assert_eq!(
        spec.services["a"].launch,
        Launch::Process {
            command: vec!["echo".into(), "yes".into(), "no".into(), "on".into()]
        }
    );
}

#[test]
fn faults_on_an_egress_are_read_and_checked_against_its_edge() {
    let spec = Spec::parse(
        r#"
name: f
services:
  db: { type: script, script: "x", ingresses: { default: { protocol: postgres } } }
  api:
    type: script
    script: "x"
    ingresses: { default: { protocol: http } }
  web:
    type: script
    script: "x"
    egresses:
      api:
        service: api
        faults:
          - { type: abort, first: 2, attributes: { http_status: 503 } }
          - { name: slow, type: latency, attributes: { latency: 100 } }
"#,
    )
    .unwrap();
    let faults = &spec.services["web"].egresses["api"].faults;
    assert_eq!(faults.len(), 2);
    assert_eq!(
        (faults[0].name.as_str(), faults[0].first),
        ("abort", Some(2))
    );
    assert_eq!(faults[1].name, "slow");

    let errors = Spec::parse(
        r#"
name: f
services:
  db: { type: script, script: "x", ingresses: { default: { protocol: postgres } } }
  api: { type: script, script: "x", ingresses: { default: { protocol: http } } }
  web:
    type: script
    script: "x"
    egresses:
      db:
        service: db
        faults: [{ type: drop }, { type: down }]
      api:
        service: api
        faults: [{ type: latency, attributes: { latency: 1 } }, { type: latency, attributes: { latency: 2 } }, { type: boom }]
"#,
    )
    .unwrap_err();
    let said: Vec<String> = errors
        .0
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect();
    let said = said.join("\n");
    for expected in [
        "services.web.egresses.db.faults[0].type: a drop fault acts on HTTP requests; this edge is postgres",
        "services.web.egresses.api.faults[1].name: a second fault named \"latency\" on this edge",
        "services.web.egresses.api.faults[2].type: unknown fault type \"boom\"",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
    assert!(
        !said.contains("faults[1].type"),
        "down acts on any edge:\n{said}"
    );

    let errors = Spec::parse(
        "name: f\nobserve: false\nservices:\n  api: { type: script, script: x, ingresses: { default: { protocol: http } } }\n  web: { type: script, script: x, egresses: { api: { service: api, faults: [{ type: down }] } } }\n",
    )
    .unwrap_err();
    assert!(
        errors
            .to_string()
            .contains("faults[0]: faults act through the edge's proxy"),
        "{errors}"
    );
}
