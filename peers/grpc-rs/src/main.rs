//! A tonic gRPC peer for tapmesh's tests and benchmarks: a server of the
//! `tapmesh.test.Inventory` service (with reflection and health) and a client
//! that makes each shape of call once, or a unary load.
//!
//! ```text
//! grpc-peer serve --port P [--no-reflection]
//! grpc-peer call --addr HOST:PORT CASE      CASE: unary | server-stream |
//!     client-stream | bidi | not-found | deadline | gzip | cancel | health
//! grpc-peer bench --addr HOST:PORT --calls N --concurrency C
//! grpc-peer descriptor-set FILE
//! ```
//!
//! Every message is a pure function of its inputs (see [`item`]), so a test
//! knows what was sent and answered without being told. `call` prints one JSON
//! line: the case, the status code and message the client saw, and how many
//! messages went each way.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio_stream::{Stream, StreamExt};
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

pub mod proto {
    tonic::include_proto!("tapmesh.test");
}

use proto::inventory_client::InventoryClient;
use proto::inventory_server::{Inventory, InventoryServer};
use proto::{AddSummary, GetItemRequest, Item, ListItemsRequest, Note};

/// The compiled `inventory.proto`, for reflection and `descriptor-set`.
const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/inventory_descriptor.bin"));

/// The item numbered `n` under `prefix`. Tests compute the same values.
pub fn item(prefix: &str, n: i32) -> Item {
    Item {
        id: format!("{prefix}-{n}"),
        name: format!("Item {n}"),
        quantity: n,
        price: f64::from(n) + 0.25,
        tags: vec![format!("t{n}")],
        in_stock: n % 2 == 1,
    }
}

/// The time the caller allows, from its `grpc-timeout` header (`200m`,
/// `2S`, …).
fn request_deadline<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (amount, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = amount.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// `widget-7` → `("widget", 7)`.
fn parse_id(id: &str) -> Option<(&str, i32)> {
    let (prefix, n) = id.rsplit_once('-')?;
    Some((prefix, n.parse().ok()?))
}

#[derive(Default)]
struct InventoryService;

type ItemStream = Pin<Box<dyn Stream<Item = Result<Item, Status>> + Send>>;
type NoteStream = Pin<Box<dyn Stream<Item = Result<Note, Status>> + Send>>;

#[tonic::async_trait]
impl Inventory for InventoryService {
    async fn get_item(&self, request: Request<GetItemRequest>) -> Result<Response<Item>, Status> {
        let deadline = request_deadline(&request);
        // Binary metadata comes back as `echo-bin`, for tests of how it is shown.
        let echo = request.metadata().get_bin("trace-bin").cloned();
        let id = request.into_inner().id;
        if id == "slow" {
            // Like a service that passes its deadline on to slow work: give
            // up just before the caller's deadline with DEADLINE_EXCEEDED
            // (tonic's own timeout would answer CANCELLED at the deadline).
            // Half the time left, so the answer beats the deadline on a
            // loaded machine too.
            let work = Duration::from_secs(5);
            let allowed = deadline.map_or(work, |d| d / 2);
            tokio::time::sleep(work.min(allowed)).await;
            if allowed < work {
                return Err(Status::deadline_exceeded(
                    "deadline exceeded while fetching slow",
                ));
            }
            return Ok(Response::new(item("slow", 1)));
        }
        let mut response = match parse_id(&id) {
            Some((prefix, n)) => Response::new(item(prefix, n)),
            None => return Err(Status::not_found(format!("no item {id}"))),
        };
        if let Some(echo) = echo {
            response.metadata_mut().insert_bin("echo-bin", echo);
        }
        Ok(response)
    }

    type ListItemsStream = ItemStream;

    async fn list_items(
        &self,
        request: Request<ListItemsRequest>,
    ) -> Result<Response<Self::ListItemsStream>, Status> {
        let ListItemsRequest { count, prefix } = request.into_inner();
        let items = (1..=count).map(move |n| Ok(item(&prefix, n)));
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn add_items(
        &self,
        request: Request<Streaming<Item>>,
    ) -> Result<Response<AddSummary>, Status> {
        let mut stream = request.into_inner();
        let mut summary = AddSummary::default();
        while let Some(item) = stream.next().await {
            let item = item?;
            summary.added += 1;
            summary.total_quantity += i64::from(item.quantity);
        }
        Ok(Response::new(summary))
    }

    type ChatStream = NoteStream;

    async fn chat(
        &self,
        request: Request<Streaming<Note>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let mut notes = request.into_inner();
        // The first note decides: "hold …" means answer nothing until the
        // caller ends or resets its side, so a caller that gives up meets
        // a stream no answer can have closed first.
        let Some(first) = notes.message().await? else {
            return Ok(Response::new(Box::pin(tokio_stream::empty::<
                Result<Note, Status>,
            >())));
        };
        if first.text.starts_with("hold") {
            while notes.message().await?.is_some() {}
            return Err(Status::cancelled("the caller ended a held chat"));
        }
        let notes = tokio_stream::once(Ok::<_, Status>(first)).chain(notes);
        let echoes = notes.map(|note| {
            note.map(|note| Note {
                text: format!("echo: {}", note.text),
                seq: note.seq,
            })
        });
        Ok(Response::new(Box::pin(echoes)))
    }
}

async fn serve(port: u16, reflection: bool) -> Result<(), Box<dyn std::error::Error>> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<InventoryServer<InventoryService>>()
        .await;
    let inventory = InventoryServer::new(InventoryService)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut router = Server::builder()
        .add_service(health_service)
        .add_service(inventory);
    if reflection {
        let v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
            .build_v1()?;
        let v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
            .build_v1alpha()?;
        router = router.add_service(v1).add_service(v1alpha);
    }
    eprintln!("grpc-peer serving on {addr} (reflection: {reflection})");
    router
        .serve_with_shutdown(addr, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// What one call ended with, as the client saw it.
struct Outcome {
    status: Result<(), Status>,
    sent: usize,
    received: usize,
}

fn finished(result: Result<usize, Status>, sent: usize) -> Outcome {
    match result {
        Ok(received) => Outcome {
            status: Ok(()),
            sent,
            received,
        },
        Err(status) => Outcome {
            status: Err(status),
            sent,
            received: 0,
        },
    }
}

async fn call(addr: &str, case: &str) -> Result<Outcome, Box<dyn std::error::Error>> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = InventoryClient::new(channel);
    let outcome = match case {
        "unary" | "not-found" => {
            let id = if case == "unary" {
                "widget-7"
            } else {
                "missing"
            };
            let result = client.get_item(GetItemRequest { id: id.into() }).await;
            finished(result.map(|_| 1), 1)
        }
        "gzip" => {
            let mut client = client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
            let result = client
                .get_item(GetItemRequest {
                    id: "gzip-9".into(),
                })
                .await;
            finished(result.map(|_| 1), 1)
        }
        "binary-metadata" => {
            // Not UTF-8 (ff fe 80), and two bytes, whose base64 needs padding.
            let mut request = Request::new(GetItemRequest {
                id: "meta-3".into(),
            });
            let metadata = request.metadata_mut();
            metadata.insert_bin("trace-bin", MetadataValue::from_bytes(&[0xff, 0xfe, 0x80]));
            metadata.insert_bin("pair-bin", MetadataValue::from_bytes(&[0xff, 0x00]));
            finished(client.get_item(request).await.map(|_| 1), 1)
        }
        "deadline" => {
            let mut request = Request::new(GetItemRequest { id: "slow".into() });
            request.set_timeout(Duration::from_millis(1000));
            finished(client.get_item(request).await.map(|_| 1), 1)
        }
        "server-stream" => {
            let request = ListItemsRequest {
                count: 10,
                prefix: "list".into(),
            };
            let result = async {
                let mut stream = client.list_items(request).await?.into_inner();
                let mut received = 0;
                while let Some(item) = stream.next().await {
                    item?;
                    received += 1;
                }
                Ok(received)
            }
            .await;
            finished(result, 1)
        }
        "client-stream" => {
            let items = tokio_stream::iter((1..=5).map(|n| item("add", n)));
            finished(client.add_items(items).await.map(|_| 1), 5)
        }
        "bidi" => {
            let notes = tokio_stream::iter((1..=4).map(|seq| Note {
                text: format!("note {seq}"),
                seq,
            }));
            let result = async {
                let mut stream = client.chat(notes).await?.into_inner();
                let mut received = 0;
                while let Some(note) = stream.next().await {
                    note?;
                    received += 1;
                }
                Ok(received)
            }
            .await;
            finished(result, 4)
        }
        "cancel" => {
            // The server holds its answer to a "hold" note; the client gives
            // up waiting and drops the call while its own side is still
            // open, so hyper resets the stream (RST_STREAM CANCEL). Ending
            // the request first would race the server's trailers.
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(Note {
                text: "hold 1".into(),
                seq: 1,
            })
            .await?;
            let call = client.chat(tokio_stream::wrappers::ReceiverStream::new(rx));
            let answered = tokio::time::timeout(Duration::from_millis(300), call).await;
            // Let the reset reach the wire before the request side ends.
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(tx);
            Outcome {
                status: match answered {
                    Err(_elapsed) => Err(Status::cancelled("cancelled by the client")),
                    Ok(Err(status)) => Err(status),
                    Ok(Ok(_)) => Err(Status::unknown("a held chat was answered")),
                },
                sent: 1,
                received: 0,
            }
        }
        "health" => {
            let mut health = tonic_health::pb::health_client::HealthClient::new(
                Channel::from_shared(format!("http://{addr}"))?
                    .connect()
                    .await?,
            );
            let request = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            finished(health.check(request).await.map(|_| 1), 1)
        }
        other => return Err(format!("unknown case {other:?}").into()),
    };
    Ok(outcome)
}

/// `calls` unary calls over one channel (one HTTP/2 connection), `concurrency`
/// at a time.
async fn bench(addr: &str, calls: u64, concurrency: u64) -> Result<(), Box<dyn std::error::Error>> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let mut client = InventoryClient::new(channel.clone());
        let share = calls / concurrency + u64::from(worker < calls % concurrency);
        workers.push(tokio::spawn(async move {
            for n in 0..share {
                let id = format!("bench-{}", n % 1000 + 1);
                client.get_item(GetItemRequest { id }).await?;
            }
            Ok::<_, Status>(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "calls": calls,
            "concurrency": concurrency,
            "seconds": seconds,
            "calls_per_sec": calls as f64 / seconds,
        })
    );
    Ok(())
}

fn usage() -> ! {
    eprintln!(
        "usage: grpc-peer serve --port P [--no-reflection]\n       grpc-peer call --addr HOST:PORT CASE\n       grpc-peer bench --addr HOST:PORT --calls N --concurrency C\n       grpc-peer descriptor-set FILE"
    );
    std::process::exit(2)
}

/// The value after `--name`, if present.
fn option(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let port = option(&args, "--port").unwrap_or_else(|| usage()).parse()?;
            serve(port, !args.iter().any(|a| a == "--no-reflection")).await
        }
        Some("call") => {
            let addr = option(&args, "--addr").unwrap_or_else(|| usage());
            let case = args
                .last()
                .filter(|c| !c.starts_with('-'))
                .unwrap_or_else(|| usage());
            let outcome = call(&addr, case).await?;
            let (code, message) = match &outcome.status {
                Ok(()) => (0, String::new()),
                Err(status) => (status.code() as i32, status.message().to_string()),
            };
            println!(
                "{}",
                serde_json::json!({
                    "case": case,
                    "code": code,
                    "message": message,
                    "sent": outcome.sent,
                    "received": outcome.received,
                })
            );
            Ok(())
        }
        Some("bench") => {
            let addr = option(&args, "--addr").unwrap_or_else(|| usage());
            let calls = option(&args, "--calls").map_or(Ok(10_000), |v| v.parse())?;
            let concurrency = option(&args, "--concurrency").map_or(Ok(8), |v| v.parse())?;
            bench(&addr, calls, concurrency.max(1)).await
        }
        Some("descriptor-set") => {
            let path = args.get(1).unwrap_or_else(|| usage());
            std::fs::write(path, DESCRIPTOR_SET)?;
            Ok(())
        }
        _ => usage(),
    }
}
