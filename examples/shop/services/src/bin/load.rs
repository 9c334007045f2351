//! Keeps the shop busy: a few requests a second to the front
//! (`FRONT_HOSTPORT`): orders (some for the nearly sold-out sku-5), item
//! lookups (cached), reads of placed orders, and a lookup of an item that
//! does not exist. Stops after
//! `LOAD_MAX` requests (default 100000).

use std::time::Duration;

use hyper::Method;
use serde_json::json;
use shop_services::HttpClient;

#[tokio::main]
async fn main() {
    let front = shop_services::wiring("FRONT_HOSTPORT");
    let max: u64 = std::env::var("LOAD_MAX").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let interval: u64 = std::env::var("LOAD_INTERVAL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(250);
    let mut client = HttpClient::new(front.clone());
    eprintln!("load: {max} requests to {front}, one every {interval} ms");
    for n in 0..max {
        let sku = format!("sku-{}", n % 5 + 1);
        let (method, path, body) = match n % 5 {
            0 | 1 => (Method::POST, "/api/orders".to_string(), Some(json!({ "sku": sku, "quantity": n % 3 + 1 }))),
            2 => (Method::GET, format!("/api/items/{sku}"), None),
            3 => (Method::GET, format!("/api/orders/order-{}", n / 5 + 1), None),
            _ => (Method::GET, "/api/items/sku-404".to_string(), None),
        };
        match client.send(method.clone(), &path, body).await {
            Ok((status, _)) => eprintln!("load: {method} {path} -> {}", status.as_u16()),
            Err(e) => eprintln!("load: {method} {path} failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(interval)).await;
    }
}
