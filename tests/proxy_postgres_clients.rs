//! PostgreSQL client libraries through `tapmesh proxy --protocol postgres`,
//! against a real server: Python psycopg 3 (libpq; server-side prepared
//! statements, binary parameters, pipeline mode, an error, a transaction
//! rolled back; tests/peers/pg_client.py) and Rust's tokio-postgres (typed
//! binary parameters, a statement prepared once and run twice, a
//! transaction). Every event is checked field by field, against literals
//! and against what the client itself reported.

mod common;

use common::postgres::{
    assert_clean, client, observe, on_connection, queries, run, PgServer, PASSWORD,
};
use serde_json::{json, Value};

/// The one query whose text is `sql` (its connection's other queries are
/// found through it).
fn only<'a>(all: &[&'a Value], sql: &str) -> &'a Value {
    let found: Vec<&Value> = all.iter().copied().filter(|q| q["sql"] == sql).collect();
    assert_eq!(found.len(), 1, "queries {sql:?}: {all:#?}");
    found[0]
}

/// The queries of the connection that ran `sql`, in order.
fn connection_of<'a>(all: &[&'a Value], sql: &str) -> Vec<&'a Value> {
    on_connection(all, &only(all, sql)["connection"])
}

/// `(sql, command, rows, transaction)` of each query, for checking a
/// connection's whole story at once.
fn story(queries: &[&Value]) -> Vec<(String, Value, Value, Value)> {
    queries
        .iter()
        .map(|q| {
            (
                q["sql"].as_str().unwrap_or_default().to_string(),
                q["command"].clone(),
                q["rows"].clone(),
                q["transaction"].clone(),
            )
        })
        .collect()
}

fn step(
    sql: &str,
    command: &str,
    rows: Option<u64>,
    transaction: &str,
) -> (String, Value, Value, Value) {
    (
        sql.to_string(),
        json!(command),
        rows.map_or(Value::Null, Value::from),
        json!(transaction),
    )
}

#[test]
fn psycopg_prepared_binary_pipeline_error_and_rollback() {
    let server = PgServer::start();
    let proxy = observe(&server, "shop");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pg_client.py");
    // libpq's defaults (sslmode=prefer: an SSLRequest the server refuses
    // first); the password from the environment, as psql takes it.
    let mut python = client(common::peer_python().to_str().unwrap(), proxy.addr);
    python.env_remove("PGSSLMODE").arg(&script).arg(format!(
        "host=127.0.0.1 port={} user=tapmesh dbname=postgres",
        proxy.addr.port()
    ));
    let out = run(python);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("pg_client.py printed no report ({e}): {out:?}"));
    let events = proxy.stop();
    assert_clean(&events);
    let all = queries(&events);
    for q in &all {
        assert_eq!((&q["source"], &q["target"]), (&json!("shop"), &json!("db")));
        assert_eq!(
            (&q["database"], &q["user"]),
            (&json!("postgres"), &json!("tapmesh"))
        );
    }

    // Binary parameters (%b): each decoded by the type psycopg declared.
    let insert = only(
        &all,
        "INSERT INTO gadgets (id, name, data, uid, made, ok, price) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    );
    assert_eq!(insert["protocol"], "extended");
    assert_eq!(insert["statement"], Value::Null, "the unnamed statement");
    assert_eq!(
        insert["params"],
        json!([
            1,
            "sprocket",
            "\\x00ff41",
            "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b",
            "2024-05-06T07:08:09.250000Z",
            true,
            2.5
        ])
    );
    assert_eq!(
        (&insert["command"], &insert["rows"]),
        (&json!("INSERT"), &json!(1))
    );
    assert_eq!(insert["error"], Value::Null);
    assert_eq!(insert["transaction"], "idle");
    // Binary results asked for (binary=True): the rows are counted alike.
    let binary_select = only(&all, "SELECT name, uid, made FROM gadgets WHERE id = $1");
    assert_eq!(binary_select["params"], json!([1]));
    assert_eq!(
        (&binary_select["command"], &binary_select["rows"]),
        (&json!("SELECT"), &json!(report["binary"]["rows"]))
    );
    assert_eq!(
        binary_select["connection"], insert["connection"],
        "one connection per scenario"
    );

    // prepare=True: parsed once under a name, executed three times by it;
    // the name is the one the server lists in pg_prepared_statements.
    let prepared = connection_of(
        &all,
        "SELECT name FROM pg_prepared_statements ORDER BY name",
    );
    let name = &report["prepared"]["statements"][0];
    assert_eq!(
        report["prepared"]["statements"].as_array().unwrap().len(),
        1
    );
    assert_eq!(prepared.len(), 4, "{prepared:#?}");
    for (q, (id, rows)) in prepared[..3].iter().zip([(1, 1), (2, 0), (1, 1)]) {
        assert_eq!(q["sql"], "SELECT name FROM gadgets WHERE id = $1");
        assert_eq!(q["protocol"], "extended");
        assert_eq!(&q["statement"], name, "{q}");
        assert_eq!(q["params"], json!([id]));
        assert_eq!(
            (&q["command"], &q["rows"]),
            (&json!("SELECT"), &json!(rows))
        );
        assert_eq!(q["transaction"], "idle");
    }
    assert_eq!(prepared[3]["statement"], Value::Null);

    // Pipeline mode: three statements sent before any answer was read,
    // reported in the order the server ran them.
    let pipeline = connection_of(&all, "INSERT INTO gadgets (id, name) VALUES ($1, $2)");
    assert_eq!(
        story(&pipeline),
        [
            step(
                "INSERT INTO gadgets (id, name) VALUES ($1, $2)",
                "INSERT",
                Some(1),
                "idle"
            ),
            step(
                "UPDATE gadgets SET price = $1 WHERE id = $2",
                "UPDATE",
                Some(1),
                "idle"
            ),
            step(
                "SELECT id, name FROM gadgets ORDER BY id",
                "SELECT",
                Some(2),
                "idle"
            ),
        ]
    );
    assert_eq!(pipeline[0]["params"], json!([2, "widget"]));
    assert_eq!(pipeline[1]["params"], json!([4.75, 2]));
    assert!(pipeline
        .iter()
        .all(|q| q["protocol"] == "extended" && q["error"].is_null()));

    // A unique violation: the error as psycopg itself saw it.
    let seen = &report["error"];
    let failed = only(&all, "INSERT INTO gadgets (name, id) VALUES ($1, $2)");
    assert_eq!(failed["params"], json!(["duplicate", 1]));
    assert_eq!(failed["command"], Value::Null);
    assert_eq!(failed["rows"], Value::Null);
    assert_eq!(
        failed["error"],
        json!({
            "severity": "ERROR",
            "code": "23505",
            "message": "duplicate key value violates unique constraint \"gadgets_pkey\"",
            "detail": "Key (id)=(1) already exists."
        })
    );
    assert_eq!(
        (
            &failed["error"]["severity"],
            &failed["error"]["code"],
            &failed["error"]["message"],
            &failed["error"]["detail"]
        ),
        (
            &seen["severity"],
            &seen["code"],
            &seen["message"],
            &seen["detail"]
        )
    );
    assert_eq!(failed["transaction"], "idle");

    // A transaction (autocommit off) rolled back. psycopg sends a
    // statement with parameters by the extended protocol and one without
    // (BEGIN, ROLLBACK, the count) as a simple Query.
    let rolled_back = on_connection(&all, &only(&all, "ROLLBACK")["connection"]);
    assert_eq!(
        story(&rolled_back),
        [
            step("BEGIN", "BEGIN", None, "in_transaction"),
            step(
                "INSERT INTO gadgets (id, name, ok) VALUES ($1, $2, $3)",
                "INSERT",
                Some(1),
                "in_transaction"
            ),
            step(
                "SELECT count(*) FROM gadgets",
                "SELECT",
                Some(1),
                "in_transaction"
            ),
            step("ROLLBACK", "ROLLBACK", None, "idle"),
        ]
    );
    let protocols: Vec<&Value> = rolled_back.iter().map(|q| &q["protocol"]).collect();
    assert_eq!(
        protocols,
        [
            &json!("simple"),
            &json!("extended"),
            &json!("simple"),
            &json!("simple")
        ]
    );
    assert_eq!(rolled_back[1]["params"], json!([3, "ghost", false]));
    // Only the failed INSERT carries an error.
    let errors: Vec<&Value> = all
        .iter()
        .copied()
        .filter(|q| !q["error"].is_null())
        .collect();
    assert_eq!(errors, [failed]);
    // After the rollback, a new connection counts the two rows committed.
    let after = only(&all, "SELECT count(*) AS n FROM gadgets");
    assert_eq!(
        (&after["rows"], &after["transaction"]),
        (&json!(1), &json!("idle"))
    );
    assert_eq!(
        (
            report["rollback"]["inside"].as_u64(),
            report["rollback"]["after"].as_u64()
        ),
        (Some(3), Some(2))
    );

    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(!text.contains(PASSWORD));
}

/// tokio-postgres sends every parameter in binary and declares no types in
/// its `Parse`: it asks the server for them (`Describe` statement) first.
#[test]
fn tokio_postgres_typed_parameters_field_by_field() {
    let server = PgServer::start();
    let proxy = observe(&server, "api");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (first, second) = runtime.block_on(async {
        let (mut db, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(proxy.addr.port())
            .user("tapmesh")
            .password(PASSWORD)
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .expect("tokio-postgres connects through the proxy");
        let driver = tokio::spawn(connection);
        db.batch_execute(
            "CREATE TABLE stock (sku text PRIMARY KEY, qty int, weight float8, active bool, tag bytea, note text)",
        )
        .await
        .unwrap();
        let inserted = db
            .execute(
                "INSERT INTO stock VALUES ($1, $2, $3, $4, $5, $6)",
                &[&"A-7", &3i32, &0.25f64, &true, &vec![0xde_u8, 0xad], &None::<&str>],
            )
            .await
            .unwrap();
        assert_eq!(inserted, 1);
        // Prepared once, run twice by name.
        let by_qty = db
            .prepare("SELECT sku, qty FROM stock WHERE qty >= $1 ORDER BY sku")
            .await
            .unwrap();
        let first = db.query(&by_qty, &[&2i32]).await.unwrap().len();
        let second = db.query(&by_qty, &[&10i32]).await.unwrap().len();
        let row = db
            .query_one("SELECT $1::int8 + 1, $2::text", &[&(1i64 << 40), &"x"])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), (1 << 40) + 1);
        let tx = db.transaction().await.unwrap();
        let updated = tx
            .execute("UPDATE stock SET qty = qty - $1 WHERE sku = $2", &[&1i32, &"A-7"])
            .await
            .unwrap();
        assert_eq!(updated, 1);
        tx.commit().await.unwrap();
        drop(db);
        driver.await.unwrap().unwrap();
        (first, second)
    });
    assert_eq!((first, second), (1, 0));
    let events = proxy.stop();
    assert_clean(&events);
    let all = queries(&events);
    assert!(all.iter().all(|q| q["connection"] == all[0]["connection"]));
    assert!(all
        .iter()
        .all(|q| q["user"] == "tapmesh" && q["database"] == "postgres"));

    let create = &all[0];
    assert_eq!(create["protocol"], "simple");
    assert_eq!(create["command"], "CREATE TABLE");

    let insert = only(&all, "INSERT INTO stock VALUES ($1, $2, $3, $4, $5, $6)");
    assert_eq!(insert["protocol"], "extended");
    assert_eq!(
        insert["params"],
        json!(["A-7", 3, 0.25, true, "\\xdead", null])
    );
    assert_eq!(
        (&insert["command"], &insert["rows"]),
        (&json!("INSERT"), &json!(1))
    );
    assert!(
        insert["statement"].is_string(),
        "tokio-postgres names its statements: {insert}"
    );

    let selects: Vec<&Value> = all
        .iter()
        .copied()
        .filter(|q| q["sql"] == "SELECT sku, qty FROM stock WHERE qty >= $1 ORDER BY sku")
        .collect();
    assert_eq!(selects.len(), 2, "{all:#?}");
    assert_eq!(selects[0]["params"], json!([2]));
    assert_eq!(selects[0]["rows"], 1);
    assert_eq!(selects[1]["params"], json!([10]));
    assert_eq!(selects[1]["rows"], 0);
    assert!(selects.iter().all(|q| q["command"] == "SELECT"));
    assert_eq!(selects[0]["statement"], selects[1]["statement"]);
    assert_ne!(selects[0]["statement"], insert["statement"]);

    let sum = only(&all, "SELECT $1::int8 + 1, $2::text");
    assert_eq!(sum["params"], json!([1_u64 << 40, "x"]));
    assert_eq!(sum["rows"], 1);

    // The transaction: tokio-postgres's START TRANSACTION and COMMIT as
    // simple queries around it.
    let n = all.len();
    assert_eq!(
        story(&all[n - 3..]),
        [
            step(
                "START TRANSACTION",
                "START TRANSACTION",
                None,
                "in_transaction"
            ),
            step(
                "UPDATE stock SET qty = qty - $1 WHERE sku = $2",
                "UPDATE",
                Some(1),
                "in_transaction"
            ),
            step("COMMIT", "COMMIT", None, "idle"),
        ]
    );
    assert_eq!(all[n - 2]["params"], json!([1, "A-7"]));
    assert_eq!(
        [
            &all[n - 3]["protocol"],
            &all[n - 2]["protocol"],
            &all[n - 1]["protocol"]
        ],
        ["simple", "extended", "simple"]
    );
    // CREATE, INSERT, two SELECTs, the sum, and the transaction's three.
    assert_eq!(n, 8, "{all:#?}");
    // Each statement tokio-postgres prepared has a name of its own.
    let mut names: Vec<&str> = [insert, selects[0], sum, all[n - 2]]
        .iter()
        .map(|q| q["statement"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 4, "{names:?}");
}
