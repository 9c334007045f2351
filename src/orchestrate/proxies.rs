//! The environment's proxies: one per edge of the running graph, each
//! listening before any service starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ports::{reserve_port, Ports};
use super::EnvironmentError;
use crate::events::EventLog;
use crate::graph::Graph;
use crate::proxy::fault::EdgeFaults;
use crate::proxy::{Proxy, ProxyConfig};
use crate::redact::Redactor;
use crate::spec::Spec;

/// The running proxies. Dropped, they stop: whoever drops a start halfway
/// (a signal, a DELETE while starting) leaves none listening.
pub(super) struct Proxies {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// Proxy node name → where it listens.
    pub addrs: BTreeMap<String, SocketAddr>,
    /// Each edge's faults, by its name (`orders->inventory`); shared by
    /// the edge's proxies (one per ingress of the target).
    pub faults: BTreeMap<String, Arc<EdgeFaults>>,
}

impl Proxies {
    pub fn start(
        spec: &Spec,
        graph: &Graph,
        ports: &Ports,
        log: &EventLog,
    ) -> Result<Proxies, EnvironmentError> {
        let mut proxies = Proxies {
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
            addrs: BTreeMap::new(),
            faults: BTreeMap::new(),
        };
        let io =
            |what: &str, e: std::io::Error| EnvironmentError::new(None, format!("{what}: {e}"));
        // Checked when the spec was read; compiled once for every edge.
        let redact = Redactor::new(&spec.redact)
            .map_err(|errors| {
                let what: Vec<String> = errors
                    .iter()
                    .map(|e| format!("redact.{}: {}", e.path, e.message))
                    .collect();
                EnvironmentError::new(None, what.join("; "))
            })?
            .map(Arc::new);
        for node in graph.proxies.values() {
            let target = ports.ingress[&(node.target.clone(), node.ingress.clone())];
            let config = ProxyConfig::for_node(node, &spec.base_dir, target)
                .map_err(|e| EnvironmentError::new(Some(&node.target), e))?
                .with_redact(redact.clone())
                .with_faults(proxies.edge_faults(spec, node)?);
            let listener = reserve_port().map_err(|e| io("binding a proxy", e))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| io("binding a proxy", e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| io("binding a proxy", e))?;
            let running = Proxy::from_listener(listener, config, log.clone())
                .map_err(|e| io("starting a proxy", e))?;
            proxies
                .tasks
                .push(tokio::spawn(running.run(proxies.cancel.clone())));
            proxies.addrs.insert(node.name.clone(), addr);
        }
        Ok(proxies)
    }

    /// The faults of `node`'s edge, made (with the spec's `faults:` for
    /// its egress) the first time the edge is met.
    fn edge_faults(
        &mut self,
        spec: &Spec,
        node: &crate::graph::ProxyNode,
    ) -> Result<Arc<EdgeFaults>, EnvironmentError> {
        let edge = format!("{}->{}", node.source, node.target);
        if let Some(faults) = self.faults.get(&edge) {
            return Ok(faults.clone());
        }
        let faults = EdgeFaults::new();
        let written = spec
            .services
            .get(&node.source)
            .and_then(|s| s.egresses.get(&node.egress))
            .map(|e| e.faults.as_slice())
            .unwrap_or_default();
        for fault in written {
            faults
                .add(fault.clone())
                .map_err(|e| EnvironmentError::new(Some(&node.source), e))?;
        }
        self.faults.insert(edge, faults.clone());
        Ok(faults)
    }

    /// Stops every proxy and waits for each to end.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
