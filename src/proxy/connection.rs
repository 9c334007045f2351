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

use super::fault::{Dice, FaultMark, LiveFaults, RequestFaults, Rule};
use super::kafka::Brokers;
use super::observe::{decode_error_info, kafka_request_info, request_info, Edge};
use super::relay::{relay, Observed, RelayError, RelayOutcome, Side, Watch};
use super::ProxyConfig;
use crate::events::{ConnectionInfo, EventDraft, EventKind, EventLog, FaultInfo, Payload};

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
        let faults = self.config.faults.as_ref().map(|edge| {
            let requests = RequestFaults {
                source: self.source.clone(),
                target: self.target.clone(),
                ingress: self.ingress.clone(),
                connection: self.id,
                dice: Dice::new(self.id),
            };
            let http = self.config.grpc.is_some();
            Box::new(LiveFaults::new(edge.clone(), requests, http))
        });
        let mut on_decoded = |observed: Observed| match observed {
            Observed::Decoded(decoded, mark) => self.publish_decoded(decoded, mark),
            Observed::Fault(rule) => {
                let detail = describe_fault(&rule);
                self.publish_fault(&rule, None, detail);
            }
        };
        let RelayOutcome {
            bytes_in,
            bytes_out,
            error,
        } = relay(
            client,
            &mut target,
            self.config.mode,
            Watch {
                decoder,
                transform,
                faults,
            },
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
                RelayError::Fault { reset: true } => {
                    reset(&target);
                    reset(client);
                }
                RelayError::Stopped | RelayError::Fault { reset: false } => {}
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

    /// A fault acted: `fault.injected`, after the request it acted on
    /// (`request_seq`) if there is one.
    fn publish_fault(&self, rule: &Rule, request_seq: Option<u64>, detail: String) {
        self.log.append(EventDraft::now(
            EventKind::FaultInjected,
            Payload::Fault(FaultInfo {
                fault: rule.spec.name.clone(),
                kind: rule.spec.action.type_name().to_string(),
                source: self.source.clone(),
                target: self.target.clone(),
                ingress: self.ingress.clone(),
                connection: self.id,
                request_seq,
                detail,
            }),
        ));
    }

    fn publish_decoded(&self, decoded: Decoded, mark: Option<FaultMark>) {
        let (kind, payload) = match decoded {
            Decoded::Http(exchange) => {
                if let Some(grpc) = &self.config.grpc {
                    if let Some(call) =
                        GrpcCall::from_exchange(&exchange, exchange.grpc_messages.as_ref())
                    {
                        let redact = self.config.redact.as_ref();
                        grpc.publish(&self.edge(), exchange, call, &self.log, redact);
                        if let Some(mark) = mark {
                            self.publish_fault(&mark.rule, None, mark.detail);
                        }
                        return;
                    }
                }
                let mut info = request_info(&self.edge(), *exchange, self.config.redact.as_deref());
                if let Some(mark) = mark {
                    info.fault = Some(mark.rule.spec.name.clone());
                    let seq = self.log.append(EventDraft::now(
                        EventKind::RequestCompleted,
                        Payload::Request(info),
                    ));
                    self.publish_fault(&mark.rule, Some(seq), mark.detail);
                    return;
                }
                (EventKind::RequestCompleted, Payload::Request(info))
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
        RelayError::Fault { reset: true } => "a fault reset the connection".to_string(),
        RelayError::Fault { reset: false } => "a fault closed the connection".to_string(),
    }
}

/// What a connection fault does, in a sentence.
fn describe_fault(rule: &Rule) -> String {
    use crate::spec::{FaultAction as A, Stream};
    let way = match rule.spec.stream {
        Stream::Upstream => "client → target",
        Stream::Downstream => "target → client",
    };
    let ms = |d: &Duration| humantime::format_duration(*d).to_string();
    match &rule.spec.action {
        A::Latency { latency, jitter } if jitter.is_zero() => {
            format!("latency {} on {way}", ms(latency))
        }
        A::Latency { latency, jitter } => {
            format!("latency {} ± {} on {way}", ms(latency), ms(jitter))
        }
        A::Bandwidth { rate } => format!("bandwidth {rate} KB/s on {way}"),
        A::SlowClose { delay } => format!("close held {} on {way}", ms(delay)),
        A::Timeout { timeout } if timeout.is_zero() => format!("data stopped on {way}"),
        A::Timeout { timeout } => format!("data stopped on {way}, closing after {}", ms(timeout)),
        A::ResetPeer { timeout } => format!("connection reset after {}", ms(timeout)),
        A::Slicer { average_size, .. } => {
            format!("data sliced into ~{average_size}-byte pieces on {way}")
        }
        A::LimitData { bytes } => format!("connection closed after {bytes} bytes on {way}"),
        other => other.type_name().to_string(),
    }
}
