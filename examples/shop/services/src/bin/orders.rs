//! The shop's orders service (HTTP): `POST /orders` records the order in
//! PostgreSQL, reserves stock with the inventory over gRPC, publishes the
//! order to Kafka's `orders` topic and marks it placed (or rejected);
//! `GET /orders/{id}` reads it back; `GET /items/{sku}` answers from the
//! Redis cache, else asks the inventory and caches the answer for a few
//! seconds (a reservation drops it). Its egresses arrive as
//! `INVENTORY_HOSTPORT`, `BROKER_BROKERS`, `DB_URL` and `CACHE_URL`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
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
    db: tokio_postgres::Client,
    cache: MultiplexedConnection,
    cache_hits: AtomicU64,
}

/// How long a cached item answers for the inventory.
const CACHE_SECONDS: u64 = 5;

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
            (&Method::GET, _) if path.starts_with("/items/") => self.item(path.trim_start_matches("/items/")).await,
            (&Method::GET, _) if path.starts_with("/orders/") => self.order(path.trim_start_matches("/orders/")).await,
            _ => json(StatusCode::NOT_FOUND, json!({ "error": "no such route" })),
        }
    }

    async fn item(&self, sku: &str) -> HttpResponse {
        let key = format!("item:{sku}");
        let mut cache = self.cache.clone();
        if let Ok(Some(cached)) = cache.get::<_, Option<String>>(&key).await {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            let mut item: serde_json::Value = serde_json::from_str(&cached).unwrap_or_default();
            item["cached"] = json!(true);
            return json(StatusCode::OK, item);
        }
        match self.inventory.clone().get_item(ItemRequest { sku: sku.to_string() }).await {
            Ok(item) => {
                let item = item.into_inner();
                let item = json!({ "sku": item.sku, "name": item.name, "stock": item.stock, "price_cents": item.price_cents });
                let _: Result<(), _> = cache.set_ex(&key, item.to_string(), CACHE_SECONDS).await;
                json(StatusCode::OK, item)
            }
            Err(status) => grpc_error(status),
        }
    }

    async fn order(&self, id: &str) -> HttpResponse {
        let Ok(id) = id.trim_start_matches("order-").parse::<i64>() else {
            return json(StatusCode::BAD_REQUEST, json!({ "error": "want /orders/order-N" }));
        };
        let row = self
            .db
            .query_opt("SELECT sku, quantity, status, remaining FROM orders WHERE id = $1", &[&id])
            .await;
        match row {
            Ok(Some(row)) => json(
                StatusCode::OK,
                json!({ "order_id": format!("order-{id}"), "sku": row.get::<_, String>(0), "quantity": row.get::<_, i32>(1), "status": row.get::<_, String>(2), "remaining": row.get::<_, Option<i32>>(3) }),
            ),
            Ok(None) => json(StatusCode::NOT_FOUND, json!({ "error": "no such order" })),
            Err(e) => json(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": format!("database: {e}") })),
        }
    }

    async fn place(&self, body: &[u8]) -> HttpResponse {
        let Ok(order) = serde_json::from_slice::<NewOrder>(body) else {
            return json(StatusCode::BAD_REQUEST, json!({ "error": "want {\"sku\", \"quantity\"}" }));
        };
        let row = self
            .db
            .query_one("INSERT INTO orders (sku, quantity) VALUES ($1, $2) RETURNING id", &[&order.sku, &order.quantity])
            .await;
        let id: i64 = match row {
            Ok(row) => row.get(0),
            // The CHECK on quantity, say: the database's answer is the error.
            Err(e) => return json(StatusCode::BAD_REQUEST, json!({ "error": format!("database: {e}") })),
        };
        let order_id = format!("order-{id}");
        let reserve = ReserveRequest { sku: order.sku.clone(), quantity: order.quantity, order_id: order_id.clone() };
        // A failure of the call rather than an answer (UNAVAILABLE, or the
        // connection cut: CANCELLED, UNKNOWN) is worth another try: three
        // attempts, 100 ms apart.
        let mut attempt = 1;
        let reservation = loop {
            match self.inventory.clone().reserve(reserve.clone()).await {
                Ok(r) => break r.into_inner(),
                Err(status) if retriable(status.code()) && attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => {
                    let _ = self.db.execute("UPDATE orders SET status = 'rejected' WHERE id = $1", &[&id]).await;
                    return grpc_error(status);
                }
            }
        };
        let _: Result<(), _> = self.cache.clone().del(format!("item:{}", order.sku)).await;
        let event = json!({ "order_id": order_id, "sku": order.sku, "quantity": order.quantity });
        let payload = event.to_string();
        let record = FutureRecord::to("orders").key(&order_id).payload(&payload);
        if let Err((e, _)) = self.producer.send(record, Duration::from_secs(10)).await {
            return json(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": format!("kafka: {e}") }));
        }
        let placed = self
            .db
            .execute("UPDATE orders SET status = 'placed', remaining = $2 WHERE id = $1", &[&id, &reservation.remaining])
            .await;
        if let Err(e) = placed {
            return json(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": format!("database: {e}") }));
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
        .set("bootstrap.servers", shop_services::wiring("BROKER_BROKERS"))
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
    let (db, connection) = tokio_postgres::connect(&shop_services::wiring("DB_URL"), tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to the database: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            // Its restart policy brings it back with a new connection.
            eprintln!("orders: database connection lost: {e}");
            std::process::exit(1);
        }
    });
    let cache = redis::Client::open(shop_services::wiring("CACHE_URL"))?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("connecting to the cache: {e}"))?;
    let orders = Arc::new(Orders { inventory, producer, db, cache, cache_hits: AtomicU64::new(0) });
    eprintln!("orders: HTTP on {addr}");
    shop_services::serve_http(addr, move |request| {
        let orders = orders.clone();
        async move { orders.handle(request).await }
    })
    .await?;
    Ok(())
}

fn retriable(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown)
}
