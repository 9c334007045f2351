//! Kafka edges: clients must keep talking through the proxy.
//!
//! A Kafka client connects to one bootstrap address and then to whichever
//! brokers the cluster names in Metadata, FindCoordinator and
//! DescribeCluster responses. So on a Kafka edge the target → client
//! direction goes through a [`KafkaTransform`] that rewrites those broker
//! addresses to proxy listeners, and every broker gets a listener of its
//! own, opened the first time a response names it. All listeners of an edge
//! share one [`Brokers`] map; its mutex is taken only when a connection
//! meets a broker it has not mapped yet, never per chunk.
//!
//! Each listener holds a descriptor and a task for the life of the edge,
//! so an edge opens at most [`ProxyConfig::max_brokers`] of them: a
//! response naming brokers past that is forwarded unchanged (its clients
//! then reach those brokers directly) and reported with a `decode.error`.
//! Without a cap, one Metadata response naming 20,000 brokers used up the
//! process's descriptors, and every client of every edge hung.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tapmesh_protocols::kafka::{BrokerAddressMap, ResponseRewriter, RewriteFailure};
use tapmesh_protocols::{DecodeFailure, Direction};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::relay::Transform;
use super::{Proxy, ProxyConfig};
use crate::events::EventLog;

/// The proxy listeners of one Kafka edge, by the broker they lead to.
pub(crate) struct Brokers {
    /// Where per-broker listeners bind: the edge listener's own address.
    listen_ip: IpAddr,
    /// The edge's configuration; each broker's listener copies it with its
    /// own target.
    template: ProxyConfig,
    log: EventLog,
    /// Stops the per-broker listeners (the edge's own stops with its caller).
    cancel: CancellationToken,
    tasks: TaskTracker,
    /// Broker address → the proxy listener in front of it (the edge's own
    /// listener included), at most `template.max_brokers` of them.
    listeners: Mutex<HashMap<SocketAddr, SocketAddr>>,
}

/// How to raise the cap, for the reason a response past it gives.
const RAISE_THE_CAP: &str =
    "raise it with `tapmesh proxy --max-brokers N` (ProxyConfig::max_brokers)";

impl Brokers {
    /// The edge's listener at `listen` already leads to the edge's target.
    pub(crate) fn new(listen: SocketAddr, template: ProxyConfig, log: EventLog) -> Arc<Self> {
        let listeners = HashMap::from([(template.target_addr, listen)]);
        Arc::new(Self {
            listen_ip: listen.ip(),
            template,
            log,
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            listeners: Mutex::new(listeners),
        })
    }

    /// A transform for one connection; `advertise` is the address clients
    /// reached the proxy at, which they are told for every broker.
    pub(crate) fn transform(self: &Arc<Self>, advertise: IpAddr) -> Box<dyn Transform> {
        Box::new(KafkaTransform {
            rewriter: ResponseRewriter::new(MAX_REWRITTEN_FRAME),
            map: ConnectionMap {
                brokers: self.clone(),
                advertise,
                known: HashMap::new(),
            },
            out: Vec::new(),
            failures: Vec::new(),
        })
    }

    /// The listener in front of `broker`, opened now if there is none yet.
    fn listener_for(
        self: &Arc<Self>,
        node_id: i32,
        broker: SocketAddr,
    ) -> Result<SocketAddr, BrokerError> {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(listen) = listeners.get(&broker) {
            return Ok(*listen);
        }
        let cap = self.template.max_brokers;
        if listeners.len() >= cap {
            tracing::warn!(%broker, node_id, cap, "kafka broker left without a listener: the edge's cap is met");
            return Err(BrokerError::Cap(format!(
                "broker {node_id} at {broker} would be past this edge's cap of {cap} broker listeners, all in use; {RAISE_THE_CAP}"
            )));
        }
        let mut config = self.template.clone();
        config.target_addr = broker;
        config.target = format!("{}/broker-{node_id}", self.template.target).into();
        let listener =
            bind_listener(SocketAddr::new(self.listen_ip, 0)).map_err(BrokerError::Io)?;
        let proxy = Proxy::with_brokers(listener, config, self.log.clone(), self.clone())
            .map_err(BrokerError::Io)?;
        let listen = proxy.local_addr().map_err(BrokerError::Io)?;
        tracing::info!(%broker, node_id, %listen, "kafka broker listener");
        self.tasks.spawn(proxy.run(self.cancel.clone()));
        listeners.insert(broker, listen);
        Ok(listen)
    }

    /// Refuses a response naming more brokers than the edge may ever
    /// listen for. One naming fewer may still meet the cap in
    /// [`Brokers::listener_for`], when earlier responses named others.
    fn admit(&self, brokers: usize) -> Result<(), String> {
        let cap = self.template.max_brokers;
        if brokers <= cap {
            return Ok(());
        }
        tracing::warn!(
            brokers,
            cap,
            "kafka response names more brokers than the edge's cap"
        );
        Err(format!(
            "it names {brokers} brokers, more than this edge's cap of {cap} broker listeners; {RAISE_THE_CAP}"
        ))
    }

    /// Stops every per-broker listener and waits for their connections to
    /// close (each publishes its `connection.closed`).
    pub(crate) async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

enum BrokerError {
    /// The edge's cap is met: the reason, for the `decode.error`.
    Cap(String),
    Io(io::Error),
}

fn bind_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(super::LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A rewritten response is held whole in memory; a larger one is forwarded
/// unchanged (and reported): room for the Metadata of thousands of partitions.
const MAX_REWRITTEN_FRAME: u32 = 4 * 1024 * 1024;

/// One connection's view of the broker map, cached so that the shared map
/// is consulted only for a broker this connection has not seen.
struct ConnectionMap {
    brokers: Arc<Brokers>,
    advertise: IpAddr,
    known: HashMap<(String, i32), (String, i32)>,
}

impl BrokerAddressMap for ConnectionMap {
    fn proxy_address(
        &mut self,
        node_id: i32,
        host: &str,
        port: i32,
    ) -> Result<(String, i32), String> {
        if let Some(mapped) = self.known.get(&(host.to_string(), port)) {
            return Ok(mapped.clone());
        }
        let port16 =
            u16::try_from(port).map_err(|_| format!("broker {node_id} has port {port}"))?;
        // A broker named by host name is resolved once, here, when it is
        // first seen (usually an IP or `localhost`, answered without DNS).
        let broker = (host, port16)
            .to_socket_addrs()
            .map_err(|e| format!("resolving broker {node_id} at {host}:{port}: {e}"))?
            .next()
            .ok_or_else(|| format!("broker {node_id} at {host}:{port} resolves to no address"))?;
        let listen = self
            .brokers
            .listener_for(node_id, broker)
            .map_err(|e| match e {
                BrokerError::Cap(reason) => reason,
                BrokerError::Io(e) => {
                    format!("opening a listener for broker {node_id} at {broker}: {e}")
                }
            })?;
        let mapped = (self.advertise.to_string(), i32::from(listen.port()));
        self.known.insert((host.to_string(), port), mapped.clone());
        Ok(mapped)
    }

    fn admit(&mut self, brokers: usize) -> Result<(), String> {
        self.brokers.admit(brokers)
    }
}

struct KafkaTransform {
    rewriter: ResponseRewriter,
    map: ConnectionMap,
    /// Reused for every chunk.
    out: Vec<Bytes>,
    failures: Vec<RewriteFailure>,
}

impl Transform for KafkaTransform {
    fn client_chunk(&mut self, chunk: &Bytes) {
        self.rewriter.observe_request(chunk);
    }

    fn target_chunk(
        &mut self,
        chunk: Bytes,
        out: &mut VecDeque<Bytes>,
        failures: &mut Vec<DecodeFailure>,
    ) {
        self.rewriter
            .rewrite_response(chunk, &mut self.map, &mut self.out, &mut self.failures);
        out.extend(self.out.drain(..));
        failures.extend(self.failures.drain(..).map(|f| DecodeFailure {
            protocol: "kafka",
            direction: Direction::TargetToClient,
            offset: f.offset,
            kind: f.kind,
            detail: f.detail,
        }));
    }

    fn target_end(&mut self, out: &mut VecDeque<Bytes>) {
        self.rewriter.end_of_stream(&mut self.out);
        out.extend(self.out.drain(..));
    }
}
