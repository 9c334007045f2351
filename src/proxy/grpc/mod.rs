//! gRPC on HTTP/2 edges: every call becomes a `grpc.call.completed` with
//! its messages decoded by the first source that knows the method.
//!
//! The sources, in order: the schemas given for the edge (`.proto` files or
//! descriptor sets), then what the target's gRPC server reflection says
//! (asked once per service, directly of the target, and cached for the
//! edge), then the schema-less decoder. A call whose service no schema knows
//! yet waits in the edge's reflection worker while the question is asked,
//! so the relay never waits for it; calls of known services are decoded
//! where they complete. If the worker's queue is full the call is decoded
//! schema-less at once rather than held.

pub mod reflection;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tapmesh_protocols::grpc::{decode_call, DecodeLimits, GrpcCall, SchemaRegistry};
use tapmesh_protocols::http::HttpExchange;
use tokio::sync::mpsc;

use super::observe::{grpc_call_info, Edge, OwnedEdge};
use crate::events::{EventDraft, EventKind, EventLog, Payload};
use crate::redact::Redactor;

/// Calls waiting for a reflection answer, at most, per edge.
const REFLECTION_QUEUE: usize = 4096;
/// How long a service reflection could not describe is not asked about again.
const REFLECTION_RETRY: Duration = Duration::from_secs(30);
/// How long one reflection exchange may take.
const REFLECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// An edge's gRPC schemas, shared by its connections.
pub struct GrpcSchemas {
    /// Replaced whole when reflection adds files, so a decode only holds
    /// the lock long enough to clone the `Arc`.
    registry: Mutex<Arc<SchemaRegistry>>,
    limits: DecodeLimits,
    /// Where to ask for reflection; `None` when it is off.
    reflection_target: Option<SocketAddr>,
    worker: OnceLock<mpsc::Sender<Deferred>>,
}

/// A call that waits for the reflection worker.
struct Deferred {
    /// The worker holds the schemas only through its calls: they hold its
    /// sender, so holding them while idle would keep both alive (and the
    /// task parked) after the edge is gone.
    schemas: Arc<GrpcSchemas>,
    edge: OwnedEdge,
    exchange: Box<HttpExchange>,
    call: GrpcCall,
    log: EventLog,
    redact: Option<Arc<Redactor>>,
}

impl GrpcSchemas {
    /// `registry` holds the schemas given for the edge (possibly none);
    /// `reflection_target`, if set, is asked about services it lacks.
    pub fn new(registry: SchemaRegistry, reflection_target: Option<SocketAddr>) -> Self {
        Self {
            registry: Mutex::new(Arc::new(registry)),
            limits: DecodeLimits::default(),
            reflection_target,
            worker: OnceLock::new(),
        }
    }

    fn snapshot(&self) -> Arc<SchemaRegistry> {
        self.registry.lock().expect("registry lock").clone()
    }

    /// Publishes one completed call, now or once reflection has answered.
    pub(crate) fn publish(
        self: &Arc<Self>,
        edge: &Edge<'_>,
        exchange: Box<HttpExchange>,
        call: GrpcCall,
        log: &EventLog,
        redact: Option<&Arc<Redactor>>,
    ) {
        let registry = self.snapshot();
        let decode = Decode {
            registry: &registry,
            limits: &self.limits,
            redact: redact.map(|r| &**r),
        };
        if self.reflection_target.is_some() && !registry.knows_service(&call.service) {
            let deferred = Deferred {
                schemas: self.clone(),
                edge: edge.to_owned(),
                exchange,
                call,
                log: log.clone(),
                redact: redact.cloned(),
            };
            match self.worker().try_send(deferred) {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!("reflection queue full: decoding without waiting");
                    let Deferred { exchange, call, .. } = e.into_inner();
                    publish_call(edge, &exchange, call, &decode, log);
                    return;
                }
            }
        }
        publish_call(edge, &exchange, call, &decode, log);
    }

    /// The edge's reflection worker, started with the first call that needs it.
    fn worker(&self) -> &mpsc::Sender<Deferred> {
        self.worker.get_or_init(|| {
            let (tx, rx) = mpsc::channel(REFLECTION_QUEUE);
            tokio::spawn(reflection_worker(rx));
            tx
        })
    }

    /// Asks the target about `service` and adds what it says.
    async fn learn(&self, service: &str) -> Result<(), String> {
        let target = self.reflection_target.ok_or("reflection is off")?;
        let files = reflection::fetch_service_files(target, service, REFLECTION_TIMEOUT).await?;
        let mut registry = (*self.snapshot()).clone();
        let progress = registry.add_reflection_files(&files);
        if !progress.missing.is_empty() || !progress.refused.is_empty() {
            tracing::debug!(service, missing = ?progress.missing, refused = ?progress.refused, "reflection left files out");
        }
        *self.registry.lock().expect("registry lock") = Arc::new(registry);
        Ok(())
    }
}

/// Handles deferred calls in order: asks about each unknown service once
/// (and again after [`REFLECTION_RETRY`] if that failed), then publishes.
/// Ends when the schemas are dropped (which closes the channel).
async fn reflection_worker(mut rx: mpsc::Receiver<Deferred>) {
    let mut failed: HashMap<String, Instant> = HashMap::new();
    while let Some(d) = rx.recv().await {
        let schemas = d.schemas.clone();
        let service = d.call.service.clone();
        let recently_failed = failed
            .get(&service)
            .is_some_and(|at| at.elapsed() < REFLECTION_RETRY);
        if !service.is_empty() && !schemas.snapshot().knows_service(&service) && !recently_failed {
            match schemas.learn(&service).await {
                Ok(()) => {
                    failed.remove(&service);
                    tracing::debug!(service, "schemas learned by reflection");
                }
                Err(error) => {
                    tracing::info!(service, %error, "reflection could not describe the service; decoding schema-less");
                    failed.insert(service, Instant::now());
                }
            }
        }
        let registry = schemas.snapshot();
        let decode = Decode {
            registry: &registry,
            limits: &schemas.limits,
            redact: d.redact.as_deref(),
        };
        publish_call(&d.edge.borrow(), &d.exchange, d.call, &decode, &d.log);
    }
}

/// How a call is turned into its event.
struct Decode<'a> {
    registry: &'a SchemaRegistry,
    limits: &'a DecodeLimits,
    redact: Option<&'a Redactor>,
}

fn publish_call(
    edge: &Edge<'_>,
    exchange: &HttpExchange,
    call: GrpcCall,
    how: &Decode<'_>,
    log: &EventLog,
) {
    let decoded = decode_call(exchange, &call, how.registry, how.limits);
    log.append(EventDraft::now(
        EventKind::GrpcCallCompleted,
        Payload::GrpcCall(grpc_call_info(edge, exchange, call, &decoded, how.redact)),
    ));
}
