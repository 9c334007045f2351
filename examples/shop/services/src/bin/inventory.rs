//! The shop's inventory: a tonic gRPC service with health and reflection.
//! Stock lives in memory; `sku-5` is nearly sold out, so some reservations
//! fail with FAILED_PRECONDITION and the traffic shows an error now and then.

use std::collections::HashMap;
use std::sync::Mutex;

use shop_services::proto::inventory_server::{Inventory, InventoryServer};
use shop_services::proto::{Item, ItemRequest, Reservation, ReserveRequest};
use tonic::{Request, Response, Status};

struct Stock(Mutex<HashMap<String, Item>>);

impl Stock {
    fn new() -> Self {
        let names = ["kettle", "teapot", "mug", "saucer", "strainer"];
        let items = names.iter().enumerate().map(|(i, name)| {
            let sku = format!("sku-{}", i + 1);
            let stock = if i == 4 { 3 } else { 1_000_000 };
            let item = Item { sku: sku.clone(), name: name.to_string(), stock, price_cents: 450 * (i as i64 + 1) };
            (sku, item)
        });
        Self(Mutex::new(items.collect()))
    }
}

#[tonic::async_trait]
impl Inventory for Stock {
    async fn get_item(&self, request: Request<ItemRequest>) -> Result<Response<Item>, Status> {
        let sku = request.into_inner().sku;
        let items = self.0.lock().unwrap();
        match items.get(&sku) {
            Some(item) => Ok(Response::new(item.clone())),
            None => Err(Status::not_found(format!("no item {sku}"))),
        }
    }

    async fn reserve(&self, request: Request<ReserveRequest>) -> Result<Response<Reservation>, Status> {
        let ReserveRequest { sku, quantity, .. } = request.into_inner();
        let mut items = self.0.lock().unwrap();
        let item = items.get_mut(&sku).ok_or_else(|| Status::not_found(format!("no item {sku}")))?;
        if quantity <= 0 || quantity > item.stock {
            return Err(Status::failed_precondition(format!(
                "{sku}: {quantity} wanted, {} in stock",
                item.stock
            )));
        }
        item.stock -= quantity;
        Ok(Response::new(Reservation { sku, reserved: quantity, remaining: item.stock }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = shop_services::listen_addr();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<InventoryServer<Stock>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(shop_services::DESCRIPTOR_SET)
        .build_v1()?;
    eprintln!("inventory: gRPC on {addr}");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(InventoryServer::new(Stock::new()))
        .serve(addr)
        .await?;
    Ok(())
}
