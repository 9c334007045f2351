use serde_json::json;

use super::fields::{Ns, Side, Ty};
use super::{Query, QueryError};
use crate::events::fixtures::event;
use crate::events::Event;

fn http() -> Event {
    event(
        json!({"seq": 10, "type": "request.completed", "timestamp": "2026-12-03T10:00:00Z",
        "request": {"source": "web", "target": "orders", "method": "POST", "path": "/orders?x=1",
            "status_code": 503, "latency_ms": 72.5, "request_size": 27, "response_size": 9,
            "request_headers": {"content-type": "application/json", "x-request-id": "r-1"},
            "response_headers": {"content-type": "text/plain"},
            "request_body": "{\"sku\":\"A-7\",\"qty\":2,\"tags\":[\"x\",\"y\"]}",
            "response_body": "try later", "warnings": ["request: odd framing"]}}),
    )
}

fn grpc() -> Event {
    event(json!({"seq": 11, "type": "grpc.call.completed",
        "grpc_call": {"source": "orders", "target": "inventory", "service": "shop.Inventory",
            "method": "Reserve", "path": "/shop.Inventory/Reserve", "grpc_status": 5,
            "grpc_status_name": "NOT_FOUND", "grpc_message": "no such sku", "latency_ms": 12.0,
            "request_metadata": {"x-tenant": "t1"},
            "request_body_decoded": [{"sku": "A-7", "quantity": 3, "lines": [{"n": 1}]}],
            "response_body_decoded": []}}))
}

fn kafka() -> Event {
    event(json!({"seq": 12, "type": "kafka.request.completed",
        "kafka_request": {"source": "orders", "target": "broker", "api_key": 0,
            "api_name": "Produce", "api_version": 9, "latency_ms": 3.0, "error_code": 0,
            "topics": [
                {"topic": "orders", "partition": 0, "records": 2, "bytes": 100, "error_code": 0},
                {"topic": "orders", "partition": 1, "records": 1, "bytes": 50, "error_code": 0},
                {"topic": "audit", "partition": 0, "records": 4, "bytes": 10, "error_code": 0}]}}))
}

fn sql() -> Event {
    event(json!({"seq": 13, "type": "postgres.query.completed",
        "query": {"source": "orders", "target": "db", "sql": "UPDATE orders SET status = $1",
            "command": "UPDATE", "rows": 1, "params": ["placed", 7], "latency_ms": 1.5,
            "database": "shop", "error": {"severity": "ERROR", "code": "23505",
            "message": "duplicate key"}}}))
}

fn redis() -> Event {
    event(json!({"seq": 14, "type": "redis.command.completed",
        "command": {"source": "orders", "target": "cache", "command": "GET",
            "args": ["cart:9"], "arg_count": 1, "latency_ms": 0.4,
            "reply": {"type": "bulk", "value": "\"full\"", "truncated": false, "replies": 1}}}))
}

fn lifecycle() -> Event {
    event(
        json!({"seq": 15, "type": "service.failed", "service": "orders",
        "lifecycle": {"state": "failed", "reason": "exited with status 3", "exit_code": 3}}),
    )
}

fn all() -> Vec<Event> {
    vec![http(), grpc(), kafka(), sql(), redis(), lifecycle()]
}

/// The seqs of the events `text` matches.
fn seqs(text: &str) -> Vec<u64> {
    let query = Query::parse(text).unwrap_or_else(|e| panic!("{e}"));
    all()
        .iter()
        .filter(|e| query.matches(e))
        .map(|e| e.seq)
        .collect()
}

fn error(text: &str) -> QueryError {
    match Query::parse(text) {
        Ok(_) => panic!("{text} parsed"),
        Err(e) => e,
    }
}

#[test]
fn envelope_and_edge() {
    assert_eq!(seqs("seq == 12"), [12]);
    assert_eq!(seqs("seq > 13"), [14, 15]);
    assert_eq!(seqs(r#"type == "service.failed""#), [15]);
    assert_eq!(seqs(r#"type.startsWith("grpc.")"#), [11]);
    assert_eq!(seqs(r#"edge == "orders->inventory""#), [11]);
    assert_eq!(
        seqs(r#"source == "orders" && target != "db""#),
        [11, 12, 14]
    );
    assert_eq!(seqs(r#"service == "orders""#), [15]);
    assert_eq!(seqs(r#"environment == "e" && seq == 10"#), [10]);
    assert_eq!(
        seqs(r#"timestamp >= timestamp("2026-12-03T00:00:00Z")"#),
        [10]
    );
}

#[test]
fn http_fields_headers_and_bodies() {
    assert_eq!(seqs("http.status >= 500"), [10]);
    assert_eq!(
        seqs(r#"http.method == "POST" && http.path.startsWith("/orders")"#),
        [10]
    );
    assert_eq!(
        seqs(r#"http.request.headers["x-request-id"] == "r-1""#),
        [10]
    );
    // Header names in any case, and `in` for presence.
    assert_eq!(
        seqs(r#"http.request.headers["X-Request-ID"] == "r-1""#),
        [10]
    );
    assert_eq!(seqs(r#"!("x-request-id" in http.response.headers)"#), [10]);
    assert_eq!(
        seqs(r#""x-request-id" in http.response.headers"#),
        Vec::<u64>::new()
    );
    assert_eq!(seqs(r#"http.request.json.sku == "A-7""#), [10]);
    assert_eq!(
        seqs(r#"http.request.json.qty > 1 && "y" in http.request.json.tags"#),
        [10]
    );
    assert_eq!(seqs(r#"http.response.body.contains("later")"#), [10]);
    assert_eq!(
        seqs("http.request.size == 27 && !http.response.truncated"),
        [10]
    );
    assert_eq!(seqs("size(http.warnings) == 1"), [10]);
    // The payload by its JSON name reaches every field.
    assert_eq!(seqs("request.status_code == 503"), [10]);
    assert_eq!(
        seqs(r#"request.request_headers["content-type"] == "application/json""#),
        [10]
    );
}

#[test]
fn grpc_kafka_sql_redis_and_lifecycle() {
    assert_eq!(
        seqs(r#"grpc.method == "Reserve" && grpc.request.sku == "A-7""#),
        [11]
    );
    assert_eq!(
        seqs(r#"grpc.code == "NOT_FOUND" && grpc.status == 5"#),
        [11]
    );
    assert_eq!(seqs(r#"grpc.metadata["x-tenant"] == "t1""#), [11]);
    assert_eq!(seqs("grpc.request.lines[0].n == 1"), [11]);
    assert_eq!(seqs(r#"grpc.requests.exists(m, m.quantity >= 3)"#), [11]);
    // No response message: `grpc.response` is missing, so false.
    assert_eq!(seqs("grpc.response.sku == 1"), Vec::<u64>::new());
    assert_eq!(seqs(r#"kafka.topic == "orders""#), [12]);
    assert_eq!(
        seqs(r#""audit" in kafka.topics && kafka.records == 7"#),
        [12]
    );
    assert_eq!(
        seqs(r#"kafka.api == "Produce" && kafka.version >= 9"#),
        [12]
    );
    assert_eq!(seqs(r#"sql.command == "UPDATE""#), [13]);
    assert_eq!(
        seqs(r#"sql.error.code == "23505" && sql.params[0] == "placed""#),
        [13]
    );
    assert_eq!(
        seqs(r#"redis.command == "GET" && redis.key.startsWith("cart:")"#),
        [14]
    );
    assert_eq!(
        seqs(r#"lifecycle.state == "failed" && lifecycle.exit_code == 3"#),
        [15]
    );
    assert_eq!(seqs(r#"error.contains("status 3")"#), [15]);
    assert_eq!(seqs(r#"error == "duplicate key""#), [13]);
}

#[test]
fn durations_numbers_strings_in_and_regex() {
    assert_eq!(seqs(r#"latency > duration("50ms")"#), [10]);
    assert_eq!(seqs(r#"latency <= duration("3ms")"#), [12, 13, 14]);
    assert_eq!(seqs(r#"grpc.latency == duration("12ms")"#), [11]);
    // int and double compare as numbers.
    assert_eq!(seqs("http.status == 503.0"), [10]);
    assert_eq!(seqs(r#"http.method in ["PUT", "POST"]"#), [10]);
    assert_eq!(seqs(r#"http.path.matches("^/orders\\?x=[0-9]$")"#), [10]);
    assert_eq!(seqs(r#"redis.key < "d""#), [14]);
}

#[test]
fn precedence() {
    // && binds tighter than ||.
    assert_eq!(seqs("seq == 10 || seq == 11 && seq == 12"), [10]);
    assert_eq!(seqs("(seq == 10 || seq == 11) && seq == 11"), [11]);
    assert_eq!(seqs("!(seq == 10) && seq < 12"), [11]);
    assert_eq!(seqs("seq == 10 ? true : seq == 15"), [10, 15]);
    assert_eq!(seqs("seq + 1 == 11 * 1"), [10]);
}

#[test]
fn a_missing_field_is_false_not_an_error() {
    // Every event but the HTTP one lacks `http`; both forms are false there.
    assert_eq!(seqs("http.status >= 500"), [10]);
    assert_eq!(seqs("!(http.status >= 500)"), Vec::<u64>::new());
    // `||` still matches where the other side holds.
    assert_eq!(seqs("http.status >= 500 || grpc.status == 5"), [10, 11]);
    assert_eq!(seqs("has(http.status)"), [10]);
    assert_eq!(
        seqs(r#"has(http.request.headers.authorization)"#),
        Vec::<u64>::new()
    );
    assert_eq!(seqs("kafka.client_id == \"x\""), Vec::<u64>::new());
}

#[test]
fn syntax_errors_say_where() {
    let e = error("http.status >= ");
    assert_eq!((e.line, e.column), (1, 16), "{e}");
    assert!(e.message.starts_with("syntax error:"), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("query error at 1:16: syntax error"),
        "{text}"
    );
    assert!(
        text.ends_with("  http.status >= \n                 ^"),
        "{text:?}"
    );
    let e = error("seq == 1 &&\n  (type == ");
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn unknown_names_and_fields_say_what_is_expected() {
    let e = error("http.sttus >= 500");
    assert_eq!((e.line, e.column), (1, 5), "{e}");
    assert!(
        e.message
            .starts_with("unknown field `sttus` of `http`; expected one of: method, path, status,"),
        "{e}"
    );
    let e = error(r#"htp.status == 1 || seq == 1"#);
    assert_eq!(e.column, 1, "{e}");
    assert!(
        e.message
            .contains("unknown name `htp`; expected one of: seq, type"),
        "{e}"
    );
    let e = error(r#"http.request.hedaers["a"] == "b""#);
    assert!(
        e.message
            .contains("unknown field `hedaers` of `http.request`"),
        "{e}"
    );
    let e = error(r#"seq.foo == 1"#);
    assert!(e.message.contains("a int has no fields"), "{e}");
    let e = error(r#"nosuchfn(seq)"#);
    assert!(e.message.contains("unknown function `nosuchfn`"), "{e}");
    // Comprehension variables are names too, inside their macro only.
    assert_eq!(seqs(r#"kafka.topics.all(t, t != "x")"#), [12]);
    let e = error(r#"kafka.topics.all(t, t != "x") && t == "y""#);
    assert!(e.message.contains("unknown name `t`"), "{e}");
}

#[test]
fn type_errors_say_where_and_what_was_expected() {
    let e = error(r#"http.status == "500""#);
    assert_eq!((e.line, e.column), (1, 16), "{e}");
    assert_eq!(
        e.message,
        "cannot compare a int with a string (write the number without quotes)"
    );
    let e = error("latency > 50");
    assert!(
        e.message
            .contains(r#"write a duration: `duration("50ms")`"#),
        "{e}"
    );
    let e = error(r#"latency > duration("50 parsecs")"#);
    assert!(e.message.starts_with(r#"bad duration "50 parsecs""#), "{e}");
    assert_eq!(e.column, 20, "{e}");
    let e = error(r#"http.path.matches("[")"#);
    assert!(e.message.starts_with("bad regex"), "{e}");
    let e = error("http.status");
    assert!(
        e.message.starts_with("a query must be true or false"),
        "{e}"
    );
    let e = error(r#"http.status == "1" && seq == "2""#);
    assert!(e.message.ends_with("(and 1 more problem)"), "{e}");
}

#[test]
fn queries_join_with_and() {
    let q = Query::all(["seq > 10".to_string(), "seq < 12".into()])
        .unwrap()
        .unwrap();
    assert_eq!(q.text(), "(seq > 10) && (seq < 12)");
    assert!(Query::all(Vec::<String>::new()).unwrap().is_none());
    // A problem is reported in the text it was written in.
    let e = Query::all(["seq > 1".to_string(), "htp == 1".into()]).unwrap_err();
    assert_eq!((e.query.as_str(), e.column), ("htp == 1", 1));
}

/// The checker's table and the per-event views agree: every name the
/// checker accepts resolves, on an event of its kind, to a value of the
/// declared type.
#[test]
fn every_declared_field_resolves_to_its_type() {
    let full = event(json!({"seq": 3, "type": "request.completed",
        "request": {"status_code": 200, "latency_ms": 1.0, "error": "cut",
            "request_body": "{}", "response_body": "{}", "warnings": ["w"],
            "request_trailers": {"t": "1"}, "response_trailers": {"t": "1"}}}));
    let grpc = event(
        json!({"type": "grpc.call.completed", "grpc_call": {"grpc_status": 0,
        "grpc_status_name": "OK", "grpc_message": "m", "http_status": 200, "latency_ms": 1.0,
        "request_body_decoded": [{}], "response_body_decoded": [{}], "error": "e",
        "decoded_with": "schemaless"}}),
    );
    let kafka = event(json!({"type": "kafka.request.completed", "kafka_request": {
        "api_name": "Fetch", "client_id": "c", "latency_ms": 1.0, "error_code": 0,
        "response_size": 1, "topics": [{"topic": "t", "partition": 0, "records": 1, "bytes": 1,
        "error_code": 0}]}}));
    let sql = event(
        json!({"type": "postgres.query.completed", "query": {"command": "SELECT",
        "rows": 1, "statement": "s", "database": "d", "user": "u", "transaction": "t",
        "error": {"severity": "ERROR", "code": "1", "message": "m", "detail": "d", "hint": "h"}}}),
    );
    let redis = event(
        json!({"type": "redis.command.completed", "command": {"args": ["k"],
        "latency_ms": 1.0, "reply": {"type": "bulk", "value": "v", "truncated": false,
        "replies": 1}, "error": {"code": "ERR", "message": "m"}}}),
    );
    let cases: [(&str, Ns, &Event); 7] = [
        ("http", Ns::Http, &full),
        ("http.request", Ns::HttpSide(Side::Request), &full),
        ("http.response", Ns::HttpSide(Side::Response), &full),
        ("grpc", Ns::Grpc, &grpc),
        ("kafka", Ns::Kafka, &kafka),
        ("sql", Ns::Sql, &sql),
        ("redis", Ns::Redis, &redis),
    ];
    for (prefix, ns, event) in cases {
        for (name, ty) in ns.fields() {
            let path = format!("{prefix}.{name}");
            let test = match ty {
                Ty::Int => format!("type({path}) == int"),
                Ty::Double => format!("type({path}) == double"),
                Ty::String => format!("type({path}) == string"),
                Ty::Bool => format!("type({path}) == bool"),
                Ty::Duration => format!(r#"{path} >= duration("0s")"#),
                Ty::Timestamp => format!(r#"{path} >= timestamp("1970-01-01T00:00:00Z")"#),
                Ty::Headers | Ty::Ns(_) => format!("type({path}) == map"),
                Ty::Strings => format!("type({path}) == list"),
                Ty::Dyn => format!("has({path})"),
            };
            let query = Query::parse(&test).unwrap_or_else(|e| panic!("{e}"));
            assert!(query.matches(event), "{test} on {prefix}");
        }
    }
    let sql_error = &sql;
    for (name, _) in Ns::SqlError.fields() {
        let test = format!("type(sql.error.{name}) == string");
        assert!(Query::parse(&test).unwrap().matches(sql_error), "{test}");
    }
    for (name, _) in Ns::Root.fields() {
        // Each top-level name parses; what it holds is covered above.
        Query::parse(&format!("{name} == {name}")).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_lower_bound_on_seq_at_the_top_level_is_where_a_reader_may_start() {
    let first = |q: &str| Query::parse(q).unwrap().first_seq();
    assert_eq!(first("seq > 1000"), Some(1001));
    assert_eq!(first("seq >= 1000"), Some(1000));
    assert_eq!(first("999 < seq"), Some(1000));
    assert_eq!(
        first("10 <= seq && type == \"request.completed\""),
        Some(10)
    );
    assert_eq!(
        first("seq > 5 && http.status >= 500 && seq >= 50"),
        Some(50)
    );
    assert_eq!(first("seq > 5 && seq < 60"), Some(6));
    // Not a bound on every match: an `||`, a negation, an upper bound.
    assert_eq!(first("seq > 1000 || http.status >= 500"), None);
    assert_eq!(first("!(seq > 1000)"), None);
    assert_eq!(first("seq < 1000"), None);
    assert_eq!(first("http.status >= 500"), None);
    assert_eq!(first("seq > -5"), None);
}
