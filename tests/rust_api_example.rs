//! How to use tapmesh from your own Rust tests: bring an environment up
//! from its spec, call it through the endpoint tapmesh gives you, and
//! assert on what crossed the edges inside it, here a gRPC call two hops
//! away, decoded from the service's `.proto`.
//!
//! Only the public API (`tapmesh::{Environment, Spec}` and the event types)
//! is used. Run it alone with `cargo test --test rust_api_example`; the
//! first run builds the example shop's services (a few minutes), later runs
//! reuse the build.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tapmesh::{Environment, EventKind, Spec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_through_the_front_reserves_stock_over_grpc(
) -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = Spec::from_path(&root.join("examples/shop/shop.yaml"))?;
    let state = tempfile::tempdir()?;
    // `Environment::up(spec)` is all it takes; the builder here keeps this
    // test's files in a temporary directory and shares the build cache
    // with the project's other tests.
    let env = Environment::builder(spec)
        .state_dir(state.path())
        .cache_dir(root.join("target/tapmesh-test-cache/tapmesh"))
        .up()
        .await?;

    // The front's endpoint goes through the `~test` proxy: this call is
    // observed like any other.
    let front = env.endpoint("front")?;
    let (status, body) = post_json(
        front,
        "/api/orders",
        &json!({"sku": "sku-2", "quantity": 7}),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let order_id = body["order_id"].as_str().expect("an order id").to_string();

    // orders → inventory: the Reserve call for this order, decoded.
    let event = env
        .wait_for(
            |e| {
                e.grpc_call().is_some_and(|call| {
                    call.method == "Reserve"
                        && call.request_body_decoded[0]["orderId"] == order_id.as_str()
                })
            },
            Duration::from_secs(20),
        )
        .await?;
    assert_eq!(event.kind, EventKind::GrpcCallCompleted);
    let call = event.grpc_call().expect("a gRPC call");
    assert_eq!((&*call.source, &*call.target), ("orders", "inventory"));
    assert_eq!(call.service, "shop.Inventory");
    assert_eq!(call.grpc_status, Some(0));
    assert_eq!(call.grpc_status_name.as_deref(), Some("OK"));
    // Decoded with the spec's `proto: { files: [...] }`, in protobuf's JSON
    // mapping (camelCase names, one entry per message of the call).
    assert_eq!(call.decoded_with.as_deref(), Some("descriptor_set"));
    assert_eq!(
        call.request_body_decoded,
        json!([{"sku": "sku-2", "quantity": 7, "orderId": order_id}])
    );
    assert_eq!(
        call.response_body_decoded,
        json!([{"sku": "sku-2", "reserved": 7, "remaining": body["remaining"]}])
    );

    // The test's own request is an event too, on the `~test` → front edge.
    let mine = env
        .events()
        .into_iter()
        .find(|e| {
            e.request()
                .is_some_and(|r| &*r.source == "~test" && r.path == "/api/orders")
        })
        .expect("the test's own request was observed");
    assert_eq!(mine.request().unwrap().status_code, Some(201));

    // Stops every service gracefully and keeps the events and a summary.
    let summary = env.down().await?;
    assert!(summary
        .edges
        .iter()
        .any(|e| e.source == "orders" && e.target == "inventory"));
    assert!(state.path().join(&summary.id).join("summary.json").exists());
    Ok(())
}

/// A bare HTTP/1.1 POST, so the example needs no HTTP client crate.
async fn post_json(
    addr: std::net::SocketAddr,
    path: &str,
    body: &Value,
) -> std::io::Result<(u16, Value)> {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}
