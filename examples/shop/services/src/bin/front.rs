//! The shop's front door (HTTP): `/api/…` is passed on to the orders
//! service (`ORDERS_HOSTPORT`) over one keep-alive connection per client
//! connection's request; `/health` answers itself.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;
use shop_services::{json, respond, HttpClient, SimpleRequest};
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = shop_services::listen_addr();
    let orders = Arc::new(Mutex::new(HttpClient::new(shop_services::wiring("ORDERS_HOSTPORT"))));
    eprintln!("front: HTTP on {addr}");
    shop_services::serve_http(addr, move |request: SimpleRequest| {
        let orders = orders.clone();
        async move {
            if request.path == "/health" {
                return json(StatusCode::OK, json!({ "status": "ok" }));
            }
            let Some(path) = request.path.strip_prefix("/api") else {
                return json(StatusCode::NOT_FOUND, json!({ "error": "try /api/orders or /api/items/sku-1" }));
            };
            let body = (!request.body.is_empty())
                .then(|| serde_json::from_slice(&request.body).unwrap_or(json!(null)));
            match orders.lock().await.send(request.method, path, body).await {
                Ok((status, body)) => respond(status, "application/json", body),
                Err(e) => json(StatusCode::BAD_GATEWAY, json!({ "error": format!("orders: {e}") })),
            }
        }
    })
    .await?;
    Ok(())
}
