//! One proxied connection, from accept to `connection.closed`.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::SockRef;
use tapmesh_protocols::grpc::GrpcCall;
use tapmesh_protocols::Decoded;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::kafka::Brokers;
use super::observe::{decode_error_info, kafka_request_info, request_info, Edge};
use super::relay::{relay, RelayError, RelayOutcome, Side, Watch};
use super::ProxyConfig;
use crate::events::{ConnectionInfo, EventDraft, EventKind, EventLog, Payload};

/// Connection ids are unique within the process, so events from several
/// proxies of one environment never share one.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

pub(super) struct Connection {
    /// Accepted on the listener's runtime, registered on the shard's.
    client: std::net::TcpStream,
    events: ConnectionEvents,
}

/// What a connection's events say about it, and where they go. Apart from
/// the sockets so the relay can hold those mutably while decoded output is
/// published through this.
struct ConnectionEvents {
    id: u64,
    peer: SocketAddr,
    accepted: Instant,
    config: Arc<ProxyConfig>,
    /// The edge's names, this connection's own copies: every event clones
    /// them, and the config's are shared by every relay thread, so cloning
    /// those would move their reference counts between cores per event.
    source: Arc<str>,
    target: Arc<str>,
    ingress: Arc<str>,
    log: EventLog,
    kafka_brokers: Option<Arc<Brokers>>,
    /// A PostgreSQL connection's database and user, once its startup is seen.
    sql_session: std::sync::OnceLock<super::sql::SqlSession>,
}

impl Connection {
    pub(super) fn new(
        client: std::net::TcpStream,
        peer: SocketAddr,
        config: Arc<ProxyConfig>,
        log: EventLog,
        kafka_brokers: Option<Arc<Brokers>>,
    ) -> Self {
        Self {
            client,
            events: ConnectionEvents {
                id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                peer,
                accepted: Instant::now(),
                source: Arc::from(&*config.source),
                target: Arc::from(&*config.target),
                ingress: Arc::from(&*config.ingress),
                config,
                log,
                kafka_brokers,
                sql_session: std::sync::OnceLock::new(),
            },
        }
    }

    pub(super) async fn serve(self, cancel: CancellationToken) {
        let Self { client, events } = self;
        match TcpStream::from_std(client) {
            Ok(mut client) => events.serve(&mut client, cancel).await,
            Err(e) => {
                events.publish(EventKind::ConnectionOpened, 0, 0, None);
                let error = format!("registering the accepted connection failed: {e}");
                events.publish(EventKind::ConnectionClosed, 0, 0, Some(error));
            }
        }
    }
}

impl ConnectionEvents {
    async fn serve(&self, client: &mut TcpStream, cancel: CancellationToken) {
        self.publish(EventKind::ConnectionOpened, 0, 0, None);
        // The proxy is a hop the endpoints cannot see: it must not add
        // Nagle delays of its own.
        let _ = client.set_nodelay(true);

        let connected = tokio::select! {
            _ = cancel.cancelled() => Err("the proxy stopped".to_string()),
            connected = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(self.config.target_addr)) => {
                match connected {
                    Ok(Ok(target)) => Ok(target),
                    Ok(Err(e)) => Err(connect_error(self.config.target_addr, &e)),
                    Err(_) => Err(format!(
                        "connecting to the target at {} timed out after {}",
                        self.config.target_addr,
                        humantime::format_duration(self.config.connect_timeout)
                    )),
                }
            }
        };
        let mut target = match connected {
            Ok(target) => target,
            Err(error) => {
                tracing::warn!(connection = self.id, %error, "target unreachable");
                // The client sees a reset, the nearest thing to the refusal
                // it would have seen connecting directly.
                reset(client);
                self.publish(EventKind::ConnectionClosed, 0, 0, Some(error));
                return;
            }
        };
        let _ = target.set_nodelay(true);

        let decoder = self.config.decoder.as_ref().map(|make| make());
        let transform = self.kafka_brokers.as_ref().and_then(|brokers| {
            // Clients are told to reach brokers where they reached us.
            let local = client.local_addr().ok()?;
            Some(brokers.transform(local.ip()))
        });
        let mut on_decoded = |decoded: Decoded| self.publish_decoded(decoded);
        let RelayOutcome {
            bytes_in,
            bytes_out,
            error,
        } = relay(
            client,
            &mut target,
            self.config.mode,
            Watch { decoder, transform },
            self.accepted,
            &cancel,
            &mut on_decoded,
        )
        .await;

        let error = error.map(|error| {
            // Carry a reset across: whoever did not fail gets a reset too,
            // as it would have had the two been connected directly.
            match &error {
                RelayError::Reset(Side::Client) => reset(&target),
                RelayError::Reset(Side::Target) => reset(client),
                RelayError::Io(..) => {
                    reset(&target);
                    reset(client);
                }
                RelayError::Stopped => {}
            }
            describe(&error)
        });
        drop(target);
        self.publish(EventKind::ConnectionClosed, bytes_in, bytes_out, error);
    }

    fn publish(&self, kind: EventKind, bytes_in: u64, bytes_out: u64, error: Option<String>) {
        let duration_ms = match kind {
            EventKind::ConnectionOpened => 0.0,
            // Microsecond precision, so the JSON shows 12.345 rather than 12.344999999.
            _ => self.accepted.elapsed().as_micros() as f64 / 1000.0,
        };
        self.log.append(EventDraft::now(
            kind,
            Payload::Connection(ConnectionInfo {
                id: self.id,
                source: self.source.clone(),
                target: self.target.clone(),
                ingress: self.ingress.clone(),
                client_addr: self.peer.to_string(),
                bytes_in,
                bytes_out,
                duration_ms,
                error,
            }),
        ));
    }

    fn edge(&self) -> Edge<'_> {
        Edge {
            connection: self.id,
            source: &self.source,
            target: &self.target,
            ingress: &self.ingress,
        }
    }

    fn publish_decoded(&self, decoded: Decoded) {
        let (kind, payload) = match decoded {
            Decoded::Http(exchange) => {
                if let Some(grpc) = &self.config.grpc {
                    if let Some(call) =
                        GrpcCall::from_exchange(&exchange, exchange.grpc_messages.as_ref())
                    {
                        let redact = self.config.redact.as_ref();
                        grpc.publish(&self.edge(), exchange, call, &self.log, redact);
                        return;
                    }
                }
                (
                    EventKind::RequestCompleted,
                    Payload::Request(request_info(
                        &self.edge(),
                        *exchange,
                        self.config.redact.as_deref(),
                    )),
                )
            }
            Decoded::Kafka(exchange) => (
                EventKind::KafkaRequestCompleted,
                Payload::KafkaRequest(kafka_request_info(&self.edge(), &exchange)),
            ),
            Decoded::Postgres(output) => {
                match super::sql::event(&self.edge(), &self.sql_session, *output) {
                    Some(event) => event,
                    None => return,
                }
            }
            Decoded::Redis(output) => match super::redis::event(&self.edge(), *output) {
                Some(event) => event,
                None => return,
            },
            Decoded::Failure(failure) => {
                tracing::debug!(connection = self.id, protocol = failure.protocol, kind = failure.kind.name(), reason = %failure.detail, "decoder gave up");
                (
                    EventKind::DecodeError,
                    Payload::DecodeError(decode_error_info(&self.edge(), failure)),
                )
            }
            other => {
                tracing::trace!(
                    connection = self.id,
                    ?other,
                    "decoded output with no event yet"
                );
                return;
            }
        };
        self.log.append(EventDraft::now(kind, payload));
    }
}

/// Closes with RST instead of FIN once the socket is dropped.
fn reset(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

fn connect_error(addr: SocketAddr, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => format!("the target at {addr} refused the connection"),
        _ => format!("connecting to the target at {addr} failed: {e}"),
    }
}

fn describe(error: &RelayError) -> String {
    match error {
        RelayError::Reset(side) => format!("the {} reset the connection", side.name()),
        RelayError::Io(side, e) => format!("I/O error on the {} side: {e}", side.name()),
        RelayError::Stopped => "the proxy stopped".to_string(),
    }
}
