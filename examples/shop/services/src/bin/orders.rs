//! The shop's orders service (HTTP): `POST /orders` reserves stock with the
//! inventory over gRPC, then publishes the order to Kafka's `orders` topic;
//! `GET /items/{sku}` asks the inventory. Its egresses arrive as
//! `INVENTORY_HOSTPORT` and `BROKER_HOSTPORT`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use shop_services::proto::inventory_client::InventoryClient;
use shop_services::proto::{ItemRequest, ReserveRequest};
use shop_services::{json, HttpResponse, SimpleRequest};
use tonic::transport::Channel;

struct Orders {
    inventory: InventoryClient<Channel>,
    producer: FutureProducer,
    next_id: AtomicU64,
}

#[derive(serde::Deserialize)]
struct NewOrder {
    sku: String,
    quantity: i32,
}

fn grpc_error(status: tonic::Status) -> HttpResponse {
    let code = match status.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::FailedPrecondition => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    };
    json(code, json!({ "error": status.message() }))
}

impl Orders {
    async fn handle(&self, request: SimpleRequest) -> HttpResponse {
        let path = request.path.as_str();
        match (&request.method, path) {
            (&Method::GET, "/health") => json(StatusCode::OK, json!({ "status": "ok" })),
            (&Method::POST, "/orders") => self.place(&request.body).await,
            (&Method::GET, _) if path.starts_with("/items/") => {
                let sku = path.trim_start_matches("/items/").to_string();
                match self.inventory.clone().get_item(ItemRequest { sku }).await {
                    Ok(item) => {
                        let item = item.into_inner();
                        json(StatusCode::OK, json!({ "sku": item.sku, "name": item.name, "stock": item.stock, "price_cents": item.price_cents }))
                    }
                    Err(status) => grpc_error(status),
                }
            }
            _ => json(StatusCode::NOT_FOUND, json!({ "error": "no such route" })),
        }
    }

    async fn place(&self, body: &[u8]) -> HttpResponse {
        let Ok(order) = serde_json::from_slice::<NewOrder>(body) else {
            return json(StatusCode::BAD_REQUEST, json!({ "error": "want {\"sku\", \"quantity\"}" }));
        };
        let order_id = format!("order-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let reserve = ReserveRequest { sku: order.sku.clone(), quantity: order.quantity, order_id: order_id.clone() };
        let reservation = match self.inventory.clone().reserve(reserve).await {
            Ok(r) => r.into_inner(),
            Err(status) => return grpc_error(status),
        };
        let event = json!({ "order_id": order_id, "sku": order.sku, "quantity": order.quantity });
        let payload = event.to_string();
        let record = FutureRecord::to("orders").key(&order_id).payload(&payload);
        if let Err((e, _)) = self.producer.send(record, Duration::from_secs(10)).await {
            return json(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": format!("kafka: {e}") }));
        }
        json(StatusCode::CREATED, json!({ "order_id": order_id, "sku": order.sku, "quantity": order.quantity, "remaining": reservation.remaining }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = shop_services::listen_addr();
    let inventory = format!("http://{}", shop_services::wiring("INVENTORY_HOSTPORT"));
    let inventory = InventoryClient::new(Channel::from_shared(inventory)?.connect_lazy());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", shop_services::wiring("BROKER_HOSTPORT"))
        .set("client.id", "orders")
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "5");
    // librdkafka properties (`key=value` lines) rendered by the spec's
    // prestart hook, over the defaults above.
    if let Ok(path) = std::env::var("ORDERS_KAFKA_PROPERTIES") {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (key, value) = line.split_once('=').ok_or_else(|| format!("{path}: not key=value: {line}"))?;
            config.set(key.trim(), value.trim());
        }
        eprintln!("orders: Kafka properties from {path}");
    }
    let producer: FutureProducer = config.create()?;
    let orders = Arc::new(Orders { inventory, producer, next_id: AtomicU64::new(1) });
    eprintln!("orders: HTTP on {addr}");
    shop_services::serve_http(addr, move |request| {
        let orders = orders.clone();
        async move { orders.handle(request).await }
    })
    .await?;
    Ok(())
}
