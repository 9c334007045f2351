//! `tapmesh kafka-mock`: librdkafka's in-memory mock cluster on a chosen
//! port, the engine of a `kafka` service with `engine: mock`.
//!
//! The mock picks its own port, so this listens on `--port` and relays
//! each connection to it. Clients still learn the mock's own address from
//! Metadata; an observing proxy rewrites those to its listeners, and
//! without one the client reaches the mock directly on the same host.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use clap::Args;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Args)]
pub(crate) struct KafkaMockArgs {
    /// Port to listen on, on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// A topic to create before listening, as NAME:PARTITIONS (repeat it).
    #[arg(long = "topic", value_name = "NAME:PARTITIONS")]
    topics: Vec<String>,
}

pub(crate) fn run(args: KafkaMockArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: KafkaMockArgs) -> Result<()> {
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).context("starting librdkafka's mock cluster")?;
    for topic in &args.topics {
        let (name, partitions) = parse_topic(topic)?;
        cluster
            .create_topic(name, partitions, 1)
            .with_context(|| format!("creating topic {name}"))?;
    }
    let mock = cluster.bootstrap_servers();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    eprintln!(
        "kafka-mock: Kafka on {addr} (librdkafka mock cluster at {mock}; topics: {})",
        if args.topics.is_empty() {
            "none".to_string()
        } else {
            args.topics.join(", ")
        }
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut client, _) = accepted?;
                let mock = mock.clone();
                tokio::spawn(async move {
                    if let Ok(mut broker) = TcpStream::connect(&mock).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                });
            }
            _ = terminate.recv() => {
                eprintln!("kafka-mock: stopping");
                return Ok(());
            }
        }
    }
}

fn parse_topic(text: &str) -> Result<(&str, i32)> {
    let (name, partitions) = text.rsplit_once(':').unwrap_or((text, "1"));
    let partitions: i32 = partitions
        .parse()
        .with_context(|| format!("{text:?}: partitions must be a number"))?;
    if name.is_empty() || partitions < 1 {
        bail!("{text:?}: expected NAME:PARTITIONS with at least one partition");
    }
    Ok((name, partitions))
}
