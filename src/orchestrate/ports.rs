//! Addresses: a reserved port for every ingress tapmesh starts, held by a
//! listener until just before its service binds it, and the resolved
//! address of every ingress of an external service.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};

use super::EnvironmentError;
use crate::spec::{expand, Spec};

/// Every ingress's address, and the listeners holding those tapmesh will
/// start.
#[derive(Default)]
pub(super) struct Ports {
    /// Per service, its ingresses' listeners (none for an external one).
    pub reserved: BTreeMap<String, Vec<TcpListener>>,
    /// (service, ingress) → where it listens.
    pub ingress: BTreeMap<(String, String), SocketAddr>,
}

impl Ports {
    pub async fn reserve(spec: &Spec) -> Result<Ports, EnvironmentError> {
        let mut ports = Ports::default();
        for (name, service) in &spec.services {
            for (ingress, def) in &service.ingresses {
                let addr = match &def.address {
                    Some(address) if service.is_external() => resolve(name, address).await?,
                    _ => {
                        let listener = reserve_port().map_err(|e| {
                            EnvironmentError::new(None, format!("reserving a port: {e}"))
                        })?;
                        let addr = listener.local_addr().map_err(|e| {
                            EnvironmentError::new(None, format!("reserving a port: {e}"))
                        })?;
                        ports
                            .reserved
                            .entry(name.clone())
                            .or_default()
                            .push(listener);
                        addr
                    }
                };
                ports.ingress.insert((name.clone(), ingress.clone()), addr);
            }
        }
        Ok(ports)
    }
}

/// An external service's `host:port` (variables of tapmesh's environment
/// expanded), its first address.
async fn resolve(service: &str, address: &str) -> Result<SocketAddr, EnvironmentError> {
    let fail = |why: String| EnvironmentError::new(Some(service), format!("{service}: {why}"));
    let address = expand(address, |name| std::env::var(name).ok()).map_err(fail)?;
    let mut found = tokio::net::lookup_host(address.as_str())
        .await
        .map_err(|e| fail(format!("cannot resolve its address {address:?}: {e}")))?;
    found
        .next()
        .ok_or_else(|| fail(format!("its address {address:?} resolves to nothing")))
}

/// A free port, held until the service starts. Taken below the kernel's
/// ephemeral range when it can be: a service binds its port only after the
/// reservation is let go, and in that window any outgoing connection (a
/// proxy's to its target, say) or `bind(0)` in the machine could be given
/// an ephemeral port, but never one below the range.
pub(super) fn reserve_port() -> std::io::Result<TcpListener> {
    const LOWEST: u16 = 20_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_start > LOWEST + 1_000 {
        // Random per call and per process (std's hasher keys are), so
        // environments starting at once do not try the same ports.
        use std::hash::BuildHasher;
        let random = std::hash::RandomState::new();
        let span = u64::from(ephemeral_start - LOWEST);
        for attempt in 0..64u64 {
            let port = LOWEST + (random.hash_one(attempt) % span) as u16;
            if let Ok(listener) = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))) {
                return Ok(listener);
            }
        }
    }
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
}
