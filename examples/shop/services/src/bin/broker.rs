//! The shop's Kafka broker: librdkafka's mock cluster (a real broker
//! protocol implementation, in process); the `topics` job has it create
//! the `orders` topic once it is ready. The mock
//! picks its own port, so this forwards `$PORT` to it; the broker addresses
//! clients learn from Metadata are the mock's own (an observing tapmesh
//! proxy rewrites them to its own listeners).

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = shop_services::listen_addr();
    let cluster: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1)?;
    let mock = cluster.bootstrap_servers();
    let listener = TcpListener::bind(addr).await?;
    eprintln!("broker: Kafka on {addr} (librdkafka mock cluster at {mock})");
    loop {
        let (mut client, _) = listener.accept().await?;
        let mock = mock.clone();
        tokio::spawn(async move {
            if let Ok(mut broker) = TcpStream::connect(&mock).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
            }
        });
    }
}
