//! Probes that tell a service's ingress is ready. They go straight to the
//! service, never through a proxy, so they are not traffic in the events.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tokio::sync::watch;

use super::runner::Probe;
use crate::spec::ReadyProbe;

/// How long a service with nothing to probe must run before it counts as
/// ready: one that dies on start (a bad config, say) must not count as up
/// even for an instant, or the environment could report `up` between its
/// crashes.
const UNPROBED_SETTLE: Duration = Duration::from_millis(250);

/// Polls `probe` until it passes (a log probe: until `matched` is set), or
/// gives up at its timeout saying why. Nothing to probe: ready once it has
/// run [`UNPROBED_SETTLE`].
pub async fn probe_until_ready(
    probe: Option<&Probe>,
    matched: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let Some(probe) = probe else {
        tokio::time::sleep(UNPROBED_SETTLE).await;
        return Ok(());
    };
    let deadline = Instant::now() + probe.timeout;
    loop {
        let outcome = match &probe.probe {
            ReadyProbe::Log { pattern } => {
                if *matched.borrow_and_update() {
                    Ok(())
                } else {
                    Err(format!("no output line matched /{pattern}/ yet"))
                }
            }
            other => probe_once(other, probe.addr).await,
        };
        let last_error = match outcome {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "not ready after {} (last probe: {last_error})",
                humantime::format_duration(probe.timeout)
            ));
        }
        tokio::time::sleep(probe.interval).await;
    }
}

/// One attempt; `Err` says why it is not ready yet. (Log probes are
/// answered by the output reader, not here.)
pub async fn probe_once(probe: &ReadyProbe, addr: SocketAddr) -> Result<(), String> {
    let attempt = async {
        match probe {
            ReadyProbe::Tcp | ReadyProbe::Log { .. } => TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            ReadyProbe::Http { path } => http(addr, path).await,
            ReadyProbe::Grpc => grpc(addr).await,
            ReadyProbe::Postgres { user, password } => {
                super::probes::postgres(addr, user, password).await
            }
            ReadyProbe::Redis { password } => super::probes::redis(addr, password.as_deref()).await,
            ReadyProbe::Kafka => super::probes::kafka(addr).await,
        }
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 2 s".into()))
}

async fn http(addr: SocketAddr, path: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: tapmesh-ready\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < 12 {
        let n = stream
            .read(&mut head[filled..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed without a response".into());
        }
        filled += n;
    }
    let line = String::from_utf8_lossy(&head[..filled]);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP response: {:?}",
                line.lines().next().unwrap_or("")
            )
        })?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

async fn grpc(addr: SocketAddr) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| format!("health check: {} {}", s.code(), s.message()))?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(format!("health check says {}", other.as_str_name())),
    }
}
