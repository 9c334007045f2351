//! What the shop's services share: their wiring (the environment variables
//! tapmesh sets), a tiny HTTP/1.1 server and client on hyper, and the
//! inventory's generated gRPC code.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

pub mod proto {
    tonic::include_proto!("shop");
}

/// The compiled shop.proto, for the inventory's reflection service.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/shop_descriptor.bin"));

/// A variable tapmesh's wiring sets (`PORT`, `INVENTORY_HOSTPORT` …); a
/// service started without it says so and exits.
pub fn wiring(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set: run this service with `tapmesh up examples/shop/shop.yaml`");
        std::process::exit(2)
    })
}

/// `127.0.0.1:$PORT`.
pub fn listen_addr() -> SocketAddr {
    let port: u16 = wiring("PORT").parse().expect("PORT is a port number");
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub type HttpResponse = Response<Full<Bytes>>;

pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("a valid response")
}

pub fn json(status: StatusCode, value: serde_json::Value) -> HttpResponse {
    respond(status, "application/json", value.to_string())
}

/// A request as the handlers see it: method, path and the whole body.
pub struct SimpleRequest {
    pub method: Method,
    pub path: String,
    pub body: Bytes,
}

/// Serves HTTP/1.1 on `addr`, one task per connection, keep-alive on.
pub async fn serve_http<H, F>(addr: SocketAddr, handler: H) -> std::io::Result<()>
where
    H: Fn(SimpleRequest) -> F + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let handler = Arc::new(handler);
    loop {
        let (stream, _) = listener.accept().await?;
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
                    let request = SimpleRequest { method: parts.method, path, body };
                    Ok::<_, Infallible>(handler(request).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A keep-alive HTTP/1.1 connection to one upstream, reopened when it breaks.
pub struct HttpClient {
    hostport: String,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl HttpClient {
    pub fn new(hostport: String) -> Self {
        Self { hostport, sender: None }
    }

    /// Sends one request; returns the status and the whole body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, Bytes), Box<dyn std::error::Error + Send + Sync>> {
        let sender = match self.sender.as_mut().filter(|s| !s.is_closed()) {
            Some(sender) => sender,
            None => {
                let stream = TcpStream::connect(&self.hostport).await?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                self.sender.insert(sender)
            }
        };
        sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.hostport);
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(value.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let response = sender.send_request(request.body(body)?).await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}
