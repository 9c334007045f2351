//! The observing proxy: one listener per edge, relaying every accepted
//! connection to the edge's target and publishing what it sees.
//!
//! Per connection: accept, connect to the target (with a timeout), relay both
//! directions until each side's FIN has crossed (or a side resets, which is
//! carried across as a reset), then publish `connection.closed` with the
//! bytes each way. A failing connection never affects the listener.

mod connection;
pub mod fault;
pub mod grpc;
mod kafka;
mod node;
mod observe;
mod pipe;
mod pool;
mod redis;
mod relay;
mod shards;
mod sql;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tapmesh_protocols::grpc::SchemaRegistry;
use tapmesh_protocols::http::HttpDecoder;
use tapmesh_protocols::kafka::{KafkaConfig, KafkaDecoder};
use tapmesh_protocols::Decoder;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::EventLog;
use crate::redact::Redactor;

pub use relay::RelayMode;

/// Makes one decoder per connection.
pub type DecoderFactory = Arc<dyn Fn() -> Box<dyn Decoder> + Send + Sync>;

/// Connections the kernel may queue before the proxy accepts them.
const LISTEN_BACKLOG: i32 = 4096;

/// Everything a proxy needs to know about its edge.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The service that connects through this proxy (`source` in events).
    pub source: Arc<str>,
    /// The service behind it (`target` in events).
    pub target: Arc<str>,
    /// The target's ingress (`ingress` in events).
    pub ingress: Arc<str>,
    /// Where connections are relayed to.
    pub target_addr: SocketAddr,
    pub connect_timeout: Duration,
    /// A decoder for each connection; `None` on a `tcp` edge.
    pub decoder: Option<DecoderFactory>,
    /// How to move bytes when there is no decoder (a decoder needs `Copy`).
    pub mode: RelayMode,
    /// On HTTP edges: gRPC calls become `grpc.call.completed`, decoded
    /// with these schemas.
    pub grpc: Option<Arc<grpc::GrpcSchemas>>,
    /// A Kafka edge: rewrite broker addresses in responses to proxy
    /// listeners, one per broker (see [`kafka`]).
    pub rewrite_kafka_brokers: bool,
    /// A Kafka edge opens listeners for at most this many brokers, its own
    /// listener included (see [`DEFAULT_MAX_BROKERS`]).
    pub max_brokers: usize,
    /// What is hidden of headers, metadata and bodies before an event is
    /// made of them ([`Redactor::default_shared`] unless told otherwise);
    /// `None` keeps everything as sent.
    pub redact: Option<Arc<Redactor>>,
    /// The edge's faults; `None` on a proxy that can never have any.
    pub faults: Option<Arc<fault::EdgeFaults>>,
}

/// Brokers a Kafka edge listens for unless told otherwise. A local
/// environment runs one to a few brokers; 64 leaves room for a sizeable
/// cluster behind an `external` service while keeping a runaway (or
/// hostile) Metadata response to 64 descriptors and tasks per edge, so a
/// dozen Kafka edges stay under the common default open-file limit of 1,024
/// even where the proxy cannot raise it.
pub const DEFAULT_MAX_BROKERS: usize = 64;

impl ProxyConfig {
    /// A `tcp` edge from `source` to `target` at `target_addr`.
    pub fn tcp(
        source: impl Into<Arc<str>>,
        target: impl Into<Arc<str>>,
        target_addr: SocketAddr,
    ) -> Self {
        Self {
            source: source.into(),
            target: target.into(),
            ingress: "default".into(),
            target_addr,
            connect_timeout: Duration::from_secs(5),
            decoder: None,
            mode: RelayMode::Splice,
            grpc: None,
            rewrite_kafka_brokers: false,
            max_brokers: DEFAULT_MAX_BROKERS,
            redact: Some(Redactor::default_shared()),
            faults: None,
        }
    }

    /// An `http` edge: every HTTP/1.x exchange and every HTTP/2 stream
    /// (told apart by the client's first bytes, h2c upgrades followed)
    /// becomes a `request.completed`, with bodies captured up to
    /// `capture_limit` bytes each. gRPC calls on it become
    /// `grpc.call.completed`, decoded schema-less until
    /// [`ProxyConfig::with_grpc`] gives schemas.
    pub fn http(
        source: impl Into<Arc<str>>,
        target: impl Into<Arc<str>>,
        target_addr: SocketAddr,
        capture_limit: usize,
    ) -> Self {
        Self::tcp(source, target, target_addr)
            .with_decoder(Arc::new(move || {
                Box::new(HttpDecoder::with_capture_limit(capture_limit)) as Box<dyn Decoder>
            }))
            .with_grpc(SchemaRegistry::new(), true)
    }

    /// How gRPC calls on this edge are decoded: the schemas given, then
    /// (if `reflection`) the target's gRPC server reflection.
    pub fn with_grpc(mut self, registry: SchemaRegistry, reflection: bool) -> Self {
        let target = reflection.then_some(self.target_addr);
        self.grpc = Some(Arc::new(grpc::GrpcSchemas::new(registry, target)));
        self
    }

    /// A `kafka` edge: every request and its response becomes a
    /// `kafka.request.completed`; Produce and Fetch bodies are decoded for
    /// their topics when within `capture_limit` bytes. Broker addresses in
    /// responses are rewritten so clients reach every broker through a
    /// listener of this proxy.
    pub fn kafka(
        source: impl Into<Arc<str>>,
        target: impl Into<Arc<str>>,
        target_addr: SocketAddr,
        capture_limit: usize,
    ) -> Self {
        let config = KafkaConfig {
            capture_limit,
            ..KafkaConfig::default()
        };
        let mut edge = Self::tcp(source, target, target_addr).with_decoder(Arc::new(move || {
            Box::new(KafkaDecoder::new(config.clone())) as Box<dyn Decoder>
        }));
        edge.rewrite_kafka_brokers = true;
        edge
    }

    /// A `postgres` edge: every statement becomes a
    /// `postgres.query.completed` (its text, parameters, command, rows,
    /// error and transaction state), statement text and parameters
    /// captured up to `capture_limit` bytes; authentication secrets never
    /// are.
    pub fn postgres(
        source: impl Into<Arc<str>>,
        target: impl Into<Arc<str>>,
        target_addr: SocketAddr,
        capture_limit: usize,
    ) -> Self {
        let config = tapmesh_protocols::postgres::PostgresConfig {
            capture_limit,
            ..Default::default()
        };
        Self::tcp(source, target, target_addr).with_decoder(Arc::new(move || {
            Box::new(tapmesh_protocols::postgres::PostgresDecoder::new(
                config.clone(),
            )) as Box<dyn Decoder>
        }))
    }

    /// A `redis` edge: every command and its reply becomes a
    /// `redis.command.completed` (arguments and a rendering of the reply
    /// captured up to `capture_limit` bytes, `AUTH` secrets never), every
    /// message the server pushes a `redis.push`.
    pub fn redis(
        source: impl Into<Arc<str>>,
        target: impl Into<Arc<str>>,
        target_addr: SocketAddr,
        capture_limit: usize,
    ) -> Self {
        let config = tapmesh_protocols::redis::RedisConfig {
            capture_limit,
            render_limit: capture_limit,
            ..Default::default()
        };
        Self::tcp(source, target, target_addr).with_decoder(Arc::new(move || {
            Box::new(tapmesh_protocols::redis::RedisDecoder::new(config.clone()))
                as Box<dyn Decoder>
        }))
    }

    pub fn with_decoder(mut self, factory: DecoderFactory) -> Self {
        self.decoder = Some(factory);
        self
    }

    pub fn with_mode(mut self, mode: RelayMode) -> Self {
        self.mode = mode;
        self
    }

    /// The most brokers a Kafka edge opens listeners for (at least 1).
    pub fn with_max_brokers(mut self, max_brokers: usize) -> Self {
        self.max_brokers = max_brokers.max(1);
        self
    }

    /// The redaction rules for this edge's events; `None` turns redaction off.
    pub fn with_redact(mut self, redact: Option<Arc<Redactor>>) -> Self {
        self.redact = redact;
        self
    }

    /// Faults on this edge, changed while it runs through `faults`.
    pub fn with_faults(mut self, faults: Arc<fault::EdgeFaults>) -> Self {
        self.faults = Some(faults);
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// A bound proxy listener, ready to [`run`](Proxy::run).
pub struct Proxy {
    /// Watched by this runtime's epoll only for readiness: what it accepts
    /// is registered once, on the shard that relays it.
    listener: AsyncFd<std::net::TcpListener>,
    config: Arc<ProxyConfig>,
    log: EventLog,
    /// A Kafka edge's listeners, shared by all of them.
    kafka_brokers: Option<Arc<kafka::Brokers>>,
    /// Whether this is the edge's own listener, which stops the others.
    owns_brokers: bool,
    /// Where it listens (to listen there again after the edge was `down`).
    addr: SocketAddr,
}

impl Proxy {
    /// Binds `listen` (port 0 picks a free port).
    pub async fn bind(listen: SocketAddr, config: ProxyConfig, log: EventLog) -> io::Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(listen),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&listen.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        Self::from_listener(socket.into(), config, log)
    }

    /// Uses a listener bound elsewhere (for instance a port reserved before
    /// the services start). It must be in non-blocking mode.
    pub fn from_listener(
        listener: std::net::TcpListener,
        config: ProxyConfig,
        log: EventLog,
    ) -> io::Result<Self> {
        let listener = watch_listener(listener)?;
        let kafka_brokers = if config.rewrite_kafka_brokers {
            Some(kafka::Brokers::new(
                listener.get_ref().local_addr()?,
                config.clone(),
                log.clone(),
            ))
        } else {
            None
        };
        Ok(Self {
            addr: listener.get_ref().local_addr()?,
            listener,
            config: Arc::new(config),
            log,
            owns_brokers: kafka_brokers.is_some(),
            kafka_brokers,
        })
    }

    /// A listener in front of one more broker of a Kafka edge.
    fn with_brokers(
        listener: std::net::TcpListener,
        config: ProxyConfig,
        log: EventLog,
        brokers: Arc<kafka::Brokers>,
    ) -> io::Result<Self> {
        let listener = watch_listener(listener)?;
        Ok(Self {
            addr: listener.get_ref().local_addr()?,
            listener,
            config: Arc::new(config),
            log,
            kafka_brokers: Some(brokers),
            owns_brokers: false,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    /// Accepts and relays connections until `cancel` fires, then closes every
    /// open connection (each publishes its `connection.closed`) and returns.
    pub async fn run(mut self, cancel: CancellationToken) {
        let tasks = TaskTracker::new();
        let mut faults = self.config.faults.as_ref().map(|f| f.subscribe());
        let mut down = false;
        loop {
            let is_down = faults
                .as_mut()
                .is_some_and(|f| f.borrow_and_update().is_down());
            if is_down != down {
                match self.set_down(is_down) {
                    Ok(()) => down = is_down,
                    Err(e) => {
                        tracing::warn!(error = %e, down = is_down, "switching the edge's listener failed")
                    }
                }
            }
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                () = fault_change(&mut faults) => continue,
                accepted = accept(&self.listener), if !down => accepted,
            };
            match accepted {
                Ok((client, peer)) => {
                    let connection = connection::Connection::new(
                        client,
                        peer,
                        self.config.clone(),
                        self.log.clone(),
                        self.kafka_brokers.clone(),
                    );
                    shards::Shards::get()
                        .spawn(tasks.track_future(connection.serve(cancel.clone())));
                }
                Err(e) => {
                    // Out of descriptors or memory: the listener itself is
                    // fine, so pause briefly and keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        tasks.close();
        tasks.wait().await;
        if let Some(brokers) = self.kafka_brokers.as_ref().filter(|_| self.owns_brokers) {
            brokers.shutdown().await;
        }
    }
}

impl Proxy {
    /// A `down` edge refuses connections as a stopped server would: its
    /// listener stops listening (Linux lets a listening socket be shut
    /// down, which refuses what is queued and what comes) rather than
    /// accepting and resetting, which clients report differently. Up
    /// again, a new socket listens on the same address (the old one may
    /// still hold it bound, so it cannot simply listen again).
    fn set_down(&mut self, down: bool) -> io::Result<()> {
        if down {
            return socket2::SockRef::from(self.listener.get_ref())
                .shutdown(std::net::Shutdown::Read);
        }
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(self.addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&self.addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        self.listener = watch_listener(socket.into())?;
        Ok(())
    }
}

/// Resolves when the edge's faults change; never without faults.
async fn fault_change(faults: &mut Option<tokio::sync::watch::Receiver<Arc<fault::FaultSet>>>) {
    match faults {
        Some(rx) => {
            if rx.changed().await.is_err() {
                *faults = None;
            }
        }
        None => std::future::pending().await,
    }
}

/// Registers a listener with this runtime's epoll, for readability only.
fn watch_listener(listener: std::net::TcpListener) -> io::Result<AsyncFd<std::net::TcpListener>> {
    // SAFETY: the listener owns its descriptor, which stays open and the
    // same for as long as the AsyncFd owns the listener.
    Ok(unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }?)
}

/// Accepts one connection, in non-blocking mode and not registered with
/// any runtime yet.
async fn accept(
    listener: &AsyncFd<std::net::TcpListener>,
) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    loop {
        let mut ready = listener.readable().await?;
        if let Ok(accepted) = ready.try_io(|l| l.get_ref().accept()) {
            let (stream, peer) = accepted?;
            stream.set_nonblocking(true)?;
            return Ok((stream, peer));
        }
    }
}
