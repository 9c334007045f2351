//! PostgreSQL through `tapmesh proxy --protocol postgres`: a real server
//! (Debian's PostgreSQL), real clients (`psql`, `pgbench -M prepared`), and
//! every statement checked field by field in the events. The password the
//! clients authenticate with (SCRAM-SHA-256) appears nowhere in them.

mod common;

use common::postgres::{client, find, observe, queries, run, PgServer, PASSWORD};
use common::ProxyProcess;
use serde_json::Value;

#[test]
fn psql_statements_errors_and_transactions_field_by_field() {
    let server = PgServer::start();
    let proxy = observe(&server, "api");
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

#[test]
fn psql_copy_in_and_out_counted_field_by_field() {
    let server = PgServer::start();
    let mut create = client("psql", server.addr);
    create.args([
        "-X",
        "-q",
        "-c",
        "CREATE TABLE stock (sku text PRIMARY KEY, qty int)",
    ]);
    run(create);
    let dir = tempfile::tempdir().unwrap();
    let rows = "A-7\t3\nB-1\t5\nC-2\t8\n";
    let bad = "D-4\tnot-a-number\n";
    std::fs::write(dir.path().join("in.tsv"), rows).unwrap();
    std::fs::write(dir.path().join("bad.tsv"), bad).unwrap();
    let copied_out = dir.path().join("out.tsv");

    let proxy = observe(&server, "loader");
    let mut psql = client("psql", proxy.addr);
    psql.current_dir(dir.path()).args([
        "-X",
        "-q",
        "-c",
        r"\copy stock FROM 'in.tsv'",
        "-c",
        r"\copy (SELECT sku, qty FROM stock ORDER BY sku) TO 'out.tsv'",
        "-c",
        r"\copy stock FROM 'bad.tsv'",
    ]);
    let out = psql.output().unwrap();
    // The last \copy fails (psql exits 1); the first two ran.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid input syntax for type integer"),
        "{stderr}"
    );
    // What psql wrote out is what it read in: the rows went both ways.
    assert_eq!(std::fs::read_to_string(&copied_out).unwrap(), rows);
    let events = proxy.stop();
    let all = queries(&events);
    assert_eq!(all.len(), 3, "{all:#?}");

    // psql turns `\copy … FROM 'file'` into COPY … FROM STDIN and sends the
    // file as CopyData: three rows of 18 bytes fit in one message.
    let copy_in = all[0];
    assert_eq!(copy_in["sql"], "COPY  stock FROM STDIN");
    assert_eq!(copy_in["protocol"], "simple");
    assert_eq!(copy_in["source"], "loader");
    assert_eq!(copy_in["target"], "db");
    assert_eq!(copy_in["database"], "postgres");
    assert_eq!(copy_in["user"], "tapmesh");
    assert_eq!(copy_in["command"], "COPY");
    assert_eq!(copy_in["rows"], 3);
    assert_eq!(copy_in["error"], Value::Null);
    assert_eq!(copy_in["transaction"], "idle");
    assert_eq!(
        copy_in["copy"],
        serde_json::json!({"direction": "in", "messages": 1, "bytes": rows.len()})
    );
    // The request counts the Query (psql's text ends in a space, which
    // `sql` leaves out) and every COPY message after it: CopyData's 5
    // bytes of header and its data, CopyDone's 5 bytes.
    let query_message = 1 + 4 + "COPY  stock FROM STDIN ".len() + 1;
    assert_eq!(
        copy_in["request_size"],
        query_message + 5 + rows.len() + 5,
        "{copy_in}"
    );

    // COPY TO STDOUT: the server sends one CopyData per row. (psql
    // re-spaces the query it lexed out of the \copy line.)
    let copy_out = all[1];
    assert_eq!(
        copy_out["sql"],
        "COPY  ( SELECT sku, qty FROM stock ORDER BY sku ) TO STDOUT"
    );
    assert_eq!(copy_out["command"], "COPY");
    assert_eq!(copy_out["rows"], 3);
    assert_eq!(
        copy_out["copy"],
        serde_json::json!({"direction": "out", "messages": 3, "bytes": rows.len()})
    );
    assert!(copy_out["response_size"].as_u64().unwrap() > rows.len() as u64);

    // A row the server refuses: the COPY fails with its error, its data
    // still counted.
    let refused = all[2];
    assert_eq!(refused["sql"], "COPY  stock FROM STDIN");
    assert_eq!(refused["command"], Value::Null);
    assert_eq!(refused["rows"], Value::Null);
    assert_eq!(refused["error"]["severity"], "ERROR");
    assert_eq!(refused["error"]["code"], "22P02");
    assert_eq!(
        refused["error"]["message"],
        "invalid input syntax for type integer: \"not-a-number\""
    );
    assert_eq!(refused["copy"]["direction"], "in");
    assert_eq!(refused["copy"]["bytes"], bad.len());
    assert_eq!(refused["transaction"], "idle");
    // All three on psql's one connection.
    assert!(all.iter().all(|q| q["connection"] == all[0]["connection"]));

    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(!text.contains(PASSWORD));
    assert!(common::of_type(&events, "decode.error").is_empty());
}

/// What a raw client sends and gets back on one connection: everything it
/// reads until the other side closes.
fn exchange(addr: std::net::SocketAddr, parts: &[&[u8]], shut: bool) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    for part in parts {
        stream.write_all(part).unwrap();
    }
    if shut {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    got
}

/// Bytes that are not the protocol, and a startup cut short: the server's
/// answer reaches the client exactly as it does without the proxy, every
/// byte is counted, and the decoder gives up once, saying why.
#[test]
fn malformed_and_truncated_input_is_forwarded_and_reported_once() {
    let server = PgServer::start();
    let proxy = observe(&server, "raw");

    // A startup packet claiming 2 bytes (less than its own length field).
    let bogus: &[u8] = b"\x00\x00\x00\x02garbage that is not PostgreSQL";
    let direct = exchange(server.addr, &[bogus], true);
    let proxied = exchange(proxy.addr, &[bogus], true);
    assert_eq!(proxied, direct, "the server's answer, unchanged");

    // A protocol version no server speaks: PostgreSQL answers with an
    // ErrorResponse; the decoder says it is unsupported.
    let mut unsupported = Vec::new();
    unsupported.extend_from_slice(&16u32.to_be_bytes());
    unsupported.extend_from_slice(&0x0009_0001u32.to_be_bytes());
    unsupported.extend_from_slice(b"user\0x\0\0\0");
    unsupported.truncate(16);
    let answer = exchange(proxy.addr, &[&unsupported], true);
    assert_eq!(answer.first(), Some(&b'E'), "{answer:?}");
    assert_eq!(answer, exchange(server.addr, &[&unsupported], true));

    // Half a startup packet, then the client goes away.
    let half: &[u8] = b"\x00\x00\x00\x29\x00\x03\x00\x00user\0tap";
    let cut = exchange(proxy.addr, &[half], true);
    assert!(cut.is_empty(), "{cut:?}");

    proxy.wait_for_event("three connections closed", |_| {
        common::of_type(&proxy.events(), "connection.closed").len() == 3
    });
    let events = proxy.stop();
    let mut closed: Vec<&Value> = common::of_type(&events, "connection.closed")
        .into_iter()
        .map(|e| &e["connection"])
        .collect();
    // In the order the connections were made: a connection's close may be
    // logged after the next one's.
    closed.sort_by_key(|c| c["id"].as_u64());
    let sent: Vec<u64> = closed
        .iter()
        .map(|c| c["bytes_in"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sent,
        [bogus.len(), unsupported.len(), half.len()].map(|n| n as u64)
    );
    assert_eq!(closed[0]["bytes_out"], direct.len() as u64);

    let errors: Vec<&Value> = common::of_type(&events, "decode.error")
        .into_iter()
        .map(|e| &e["decode_error"])
        .collect();
    assert_eq!(errors.len(), 2, "one per bad connection: {errors:#?}");
    assert_eq!(errors[0]["protocol"], "postgres");
    assert_eq!(errors[0]["connection"], closed[0]["id"]);
    assert_eq!(errors[0]["kind"], "malformed");
    assert_eq!(errors[0]["direction"], "client_to_target");
    assert_eq!(errors[0]["offset"], 0);
    assert_eq!(errors[1]["connection"], closed[1]["id"]);
    assert_eq!(errors[1]["kind"], "unsupported");
    assert!(queries(&events).is_empty());
}
