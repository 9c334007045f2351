//! `tapmesh proxy`: one observing edge, no spec needed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::events::{EventLog, EventLogConfig, EventSink};
use crate::proxy::{Proxy, ProxyConfig};
use crate::redact::{RedactConfig, Redactor};
use tapmesh_protocols::grpc::SchemaRegistry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProtocolArg {
    /// Relay bytes and report connections (spliced in the kernel).
    Tcp,
    /// Also decode HTTP/1.x and HTTP/2: one `request.completed` per
    /// exchange, one `grpc.call.completed` per gRPC call.
    Http,
    /// The same decoding as `http`, for an edge that carries gRPC.
    Grpc,
    /// Kafka: one `kafka.request.completed` per request; broker addresses
    /// in responses are rewritten to proxy listeners, one per broker.
    Kafka,
    /// PostgreSQL: one `postgres.query.completed` per statement.
    Postgres,
    /// Redis: one `redis.command.completed` per command, one `redis.push`
    /// per message the server pushes.
    Redis,
}

#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// Address to listen on, e.g. 127.0.0.1:7000 (port 0 picks a free one).
    #[arg(long)]
    listen: SocketAddr,
    /// Address to relay connections to (host:port; a name is resolved once).
    #[arg(long)]
    target: String,
    /// What the edge carries.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Tcp)]
    protocol: ProtocolArg,
    /// Name of the connecting side, as `source` in events.
    #[arg(long, default_value = "client")]
    source: String,
    /// Name of the target, as `target` in events (default: the --target address).
    #[arg(long)]
    target_name: Option<String>,
    /// Write events as JSON Lines to this file, or `-` for stdout.
    #[arg(long, default_value = "-")]
    events: String,
    /// Give up connecting to the target after this long (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Body bytes captured per request or response (e.g. 64KiB, 1MiB, 0).
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    capture_limit: usize,
    /// Name of the environment in events.
    #[arg(long, default_value = "proxy")]
    environment: String,
    /// A .proto file whose services decode gRPC calls (repeatable).
    #[arg(long = "proto", value_name = "FILE")]
    protos: Vec<PathBuf>,
    /// Where imports of the --proto files are found (repeatable; default:
    /// each file's own directory).
    #[arg(long = "proto-include", value_name = "DIR")]
    proto_includes: Vec<PathBuf>,
    /// A FileDescriptorSet (protoc --descriptor_set_out --include_imports)
    /// whose services decode gRPC calls (repeatable).
    #[arg(long = "descriptor-set", value_name = "FILE")]
    descriptor_sets: Vec<PathBuf>,
    /// Do not ask the target's gRPC server reflection for schemas.
    #[arg(long)]
    no_reflection: bool,
    /// Kafka: open proxy listeners for at most this many brokers (the
    /// edge's own included); a response naming more is forwarded unchanged
    /// and reported with a decode.error.
    #[arg(long, default_value_t = crate::proxy::DEFAULT_MAX_BROKERS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_brokers: usize,
    /// Keep secrets in events as sent: no header, metadata, body or query
    /// redaction (see the README's "Redaction"). For a local debugging
    /// session only: the events file then holds credentials.
    #[arg(long)]
    no_redact: bool,
    /// Also hide this header's value (repeatable; the defaults stay).
    #[arg(long = "redact-header", value_name = "NAME")]
    redact_headers: Vec<String>,
    /// Also hide this gRPC metadata key's value (repeatable).
    #[arg(long = "redact-metadata", value_name = "NAME")]
    redact_metadata: Vec<String>,
    /// Also hide JSON members and query or form parameters named like
    /// this (repeatable; matched word by word, as the defaults are).
    #[arg(long = "redact-field", value_name = "NAME")]
    redact_fields: Vec<String>,
    /// Also hide the JSON value at this path, e.g. $.card.number (repeatable).
    #[arg(long = "redact-path", value_name = "PATH")]
    redact_paths: Vec<String>,
    /// Also hide what this regular expression matches in header values,
    /// request targets and body text (only its groups, if it has any;
    /// repeatable).
    #[arg(long = "redact-pattern", value_name = "REGEX")]
    redact_patterns: Vec<String>,
    /// A fault on the edge from the start, as the daemon's JSON takes it:
    /// '{"type": "latency", "attributes": {"latency": 100}}' (repeatable).
    #[arg(long = "fault", value_name = "JSON")]
    faults: Vec<String>,
}

/// The redaction the flags ask for; a bad entry stops the proxy, saying
/// which flag.
fn redactor(args: &ProxyArgs) -> Result<Option<Arc<Redactor>>> {
    let config = RedactConfig {
        enabled: !args.no_redact,
        headers: args.redact_headers.clone(),
        metadata: args.redact_metadata.clone(),
        json_fields: args.redact_fields.clone(),
        json_paths: args.redact_paths.clone(),
        patterns: args.redact_patterns.clone(),
    };
    let redactor = Redactor::new(&config).map_err(|errors| {
        let flag = |path: &str| match path.split('[').next().unwrap_or(path) {
            "headers" => "--redact-header",
            "metadata" => "--redact-metadata",
            "json_fields" => "--redact-field",
            "json_paths" => "--redact-path",
            _ => "--redact-pattern",
        };
        let problems: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", flag(&e.path), e.message))
            .collect();
        anyhow::anyhow!(problems.join("\n"))
    })?;
    if redactor.is_none() {
        tracing::warn!("--no-redact: events keep credentials, cookies and secret fields as sent");
    }
    Ok(redactor.map(Arc::new))
}

/// The `--fault` options, each checked (every problem said at once).
fn faults(written: &[String]) -> Result<std::sync::Arc<crate::proxy::fault::EdgeFaults>> {
    let faults = crate::proxy::fault::EdgeFaults::new();
    for (i, text) in written.iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(text)
            .with_context(|| format!("--fault #{}: not JSON: {text}", i + 1))?;
        let spec = crate::spec::read_fault(&value).map_err(|problems| {
            let said: Vec<String> = problems
                .iter()
                .map(|(path, message)| format!("{path}: {message}"))
                .collect();
            anyhow::anyhow!("--fault #{}: {}", i + 1, said.join("; "))
        })?;
        faults.add(spec).map_err(anyhow::Error::msg)?;
    }
    Ok(faults)
}

pub(crate) fn run(args: ProxyArgs) -> Result<()> {
    match crate::sys::raise_open_file_limit() {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ProxyArgs) -> Result<()> {
    let redact = redactor(&args)?;
    let target_addr = tokio::net::lookup_host(&args.target)
        .await
        .with_context(|| format!("resolving --target {}", args.target))?
        .next()
        .with_context(|| format!("--target {} resolved to no address", args.target))?;
    let sink = match args.events.as_str() {
        "-" => EventSink::Stdout,
        path => EventSink::File(PathBuf::from(path)),
    };
    // Nothing subscribes to a standalone proxy's log: the file is the
    // record, so keep only a small window in memory. Small enough to stay
    // in cache: events are freed as new ones come, and an event whose
    // memory is reused cold costs the relay thread cache misses (with wrk
    // through the proxy, 64 kept gave a few per cent more requests per
    // second than 4,096).
    let log = EventLog::new(
        EventLogConfig::new(args.environment.as_str())
            .memory_events(64)
            .sink(sink),
    )
    .with_context(|| format!("opening the event file {}", args.events))?;

    let target_name = args
        .target_name
        .clone()
        .unwrap_or_else(|| args.target.clone());
    let config = match args.protocol {
        ProtocolArg::Tcp => {
            ProxyConfig::tcp(args.source.as_str(), target_name.as_str(), target_addr)
        }
        ProtocolArg::Http | ProtocolArg::Grpc => ProxyConfig::http(
            args.source.as_str(),
            target_name.as_str(),
            target_addr,
            args.capture_limit,
        )
        .with_grpc(grpc_schemas(&args)?, !args.no_reflection),
        ProtocolArg::Kafka => ProxyConfig::kafka(
            args.source.as_str(),
            target_name.as_str(),
            target_addr,
            args.capture_limit,
        )
        .with_max_brokers(args.max_brokers),
        ProtocolArg::Postgres => ProxyConfig::postgres(
            args.source.as_str(),
            target_name.as_str(),
            target_addr,
            args.capture_limit,
        ),
        ProtocolArg::Redis => ProxyConfig::redis(
            args.source.as_str(),
            target_name.as_str(),
            target_addr,
            args.capture_limit,
        ),
    }
    .with_connect_timeout(args.connect_timeout)
    .with_redact(redact)
    .with_faults(faults(&args.faults)?);
    let proxy = Proxy::bind(args.listen, config, log.clone())
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = proxy.local_addr()?;
    tracing::info!(listen = %local, target = %target_addr, protocol = ?args.protocol, "proxy listening");

    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let signal = wait_for_stop_signal().await;
        stop.cancel();
        tracing::info!(signal, "stopping");
    });
    proxy.run(cancel).await;

    tokio::task::spawn_blocking(move || log.flush())
        .await?
        .context("writing the event file")?;
    Ok(())
}

/// The schemas named by --proto and --descriptor-set, compiled before the
/// proxy starts so a bad file stops it with the reason.
fn grpc_schemas(args: &ProxyArgs) -> Result<SchemaRegistry> {
    let mut registry = SchemaRegistry::new();
    for path in &args.descriptor_sets {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading --descriptor-set {}", path.display()))?;
        registry
            .add_descriptor_set(&bytes)
            .with_context(|| format!("--descriptor-set {}", path.display()))?;
    }
    if !args.protos.is_empty() {
        let mut includes = args.proto_includes.clone();
        if includes.is_empty() {
            for proto in &args.protos {
                let dir = proto.parent().filter(|d| !d.as_os_str().is_empty());
                includes.push(dir.map_or_else(|| PathBuf::from("."), PathBuf::from));
            }
            includes.dedup();
        }
        registry
            .add_proto_files(&args.protos, &includes)
            .context("compiling the --proto files")?;
    }
    Ok(registry)
}

/// Resolves on Ctrl-C or SIGTERM, naming which.
async fn wait_for_stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// `65536`, `64KiB`, `64KB`, `1MiB`, `1mb` → bytes (K, M, G are powers of 1024).
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (try 65536, 64KiB or 1MiB)"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?} (use KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1mb"), Ok(1 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("12 parsecs")
            .unwrap_err()
            .contains("unknown size unit"));
        assert!(parse_size("KiB").is_err());
    }
}
