//! PostgreSQL through `tapmesh proxy --protocol postgres`: a real server
//! (Debian's PostgreSQL), real clients (`psql`, `pgbench -M prepared`), and
//! every statement checked field by field in the events. The password the
//! clients authenticate with (SCRAM-SHA-256) appears nowhere in them.

mod common;

use common::postgres::{client, find, queries, run, PgServer, PASSWORD};
use common::ProxyProcess;
use serde_json::Value;

#[test]
fn psql_statements_errors_and_transactions_field_by_field() {
    let server = PgServer::start();
    let proxy = ProxyProcess::start(
        server.addr,
        &[
            "--protocol",
            "postgres",
            "--source",
            "api",
            "--target-name",
            "db",
        ],
    );
    let mut psql = client("psql", proxy.addr);
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=0"]).args([
        "-c",
        "CREATE TABLE stock (sku text PRIMARY KEY, qty int)",
        "-c",
        "INSERT INTO stock VALUES ('A-7', 3), ('B-1', 5)",
        "-c",
        "SELECT sku, qty FROM stock ORDER BY sku",
        "-c",
        "BEGIN; UPDATE stock SET qty = qty - 1 WHERE sku = 'A-7'; COMMIT",
        "-c",
        "SELECT 1/0",
    ]);
    let out = psql.output().unwrap();
    // psql exits 1 after the failed statement; the others ran.
    assert!(String::from_utf8_lossy(&out.stderr).contains("division by zero"));
    let events = proxy.stop();
    let all = queries(&events);

    let create = find(&all, "CREATE TABLE stock (sku text PRIMARY KEY, qty int)");
    assert_eq!(create["source"], "api");
    assert_eq!(create["target"], "db");
    assert_eq!(create["database"], "postgres");
    assert_eq!(create["user"], "tapmesh");
    assert_eq!(create["protocol"], "simple");
    assert_eq!(create["command"], "CREATE TABLE");
    assert_eq!(create["error"], Value::Null);
    assert_eq!(create["transaction"], "idle");

    let insert = find(&all, "INSERT INTO stock VALUES ('A-7', 3), ('B-1', 5)");
    assert_eq!(
        (insert["command"].as_str(), insert["rows"].as_u64()),
        (Some("INSERT"), Some(2))
    );
    let select = find(&all, "SELECT sku, qty FROM stock ORDER BY sku");
    assert_eq!(
        (select["command"].as_str(), select["rows"].as_u64()),
        (Some("SELECT"), Some(2))
    );
    assert!(select["response_size"].as_u64().unwrap() > 0);
    assert!(select["latency_ms"].as_f64().unwrap() >= 0.0);

    // One Query message of three statements: three events, in order, each
    // with the transaction state after it.
    let begin = find(&all, "BEGIN");
    let update = find(&all, "UPDATE stock SET qty = qty - 1 WHERE sku = 'A-7'");
    let commit = find(&all, "COMMIT");
    assert_eq!(begin["command"], "BEGIN");
    assert_eq!(
        (update["command"].as_str(), update["rows"].as_u64()),
        (Some("UPDATE"), Some(1))
    );
    assert_eq!(commit["command"], "COMMIT");
    assert_eq!(commit["transaction"], "idle");

    let failed = find(&all, "SELECT 1/0");
    assert_eq!(failed["command"], Value::Null);
    assert_eq!(failed["error"]["severity"], "ERROR");
    assert_eq!(failed["error"]["code"], "22012");
    assert_eq!(failed["error"]["message"], "division by zero");

    // Nothing of the SCRAM exchange's secret was kept.
    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(!text.contains(PASSWORD));
    assert!(
        common::of_type(&events, "decode.error").is_empty(),
        "{events:#?}"
    );
}

#[test]
fn pgbench_prepared_statements_with_their_parameters() {
    let server = PgServer::start();
    // Its tables, created directly (not observed).
    let mut init = client("pgbench", server.addr);
    init.args(["-i", "-q", "-s", "1"]);
    run(init);
    let proxy = ProxyProcess::start(server.addr, &["--protocol", "postgres"]);
    let mut bench = client("pgbench", proxy.addr);
    bench.args(["-M", "prepared", "-S", "-t", "20", "-n"]);
    run(bench);
    let events = proxy.stop();
    let selects: Vec<&Value> = queries(&events)
        .into_iter()
        .filter(|q| {
            q["sql"]
                .as_str()
                .is_some_and(|s| s.contains("FROM pgbench_accounts WHERE aid"))
        })
        .collect();
    assert_eq!(selects.len(), 20, "{selects:#?}");
    for q in &selects {
        assert_eq!(q["protocol"], "extended");
        assert_eq!(q["command"], "SELECT");
        assert_eq!(q["rows"], 1);
        // Named once by Parse, executed by name: the text is recovered.
        assert!(
            q["statement"].as_str().is_some_and(|s| !s.is_empty()),
            "{q}"
        );
        let aid = q["params"][0].as_str().and_then(|s| s.parse::<u64>().ok());
        assert!(aid.is_some_and(|a| (1..=100_000).contains(&a)), "{q}");
    }
    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(!text.contains(PASSWORD));
}
