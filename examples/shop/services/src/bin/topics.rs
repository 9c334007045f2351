//! A job: makes sure the broker has the shop's `orders` topic before
//! `orders` starts, then exits 0. It asks for the topic's metadata with
//! topic creation allowed, through its observed edge (so the Metadata call
//! is an event too), and checks every partition has a leader. (The shop's
//! broker, librdkafka's mock cluster, creates topics that way but does not
//! implement CreateTopics.)

use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

const TOPIC: &str = "orders";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = shop_services::wiring("BROKER_HOSTPORT");
    let client: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .set("client.id", "topics")
        .set("allow.auto.create.topics", "true")
        .create()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metadata = client.client().fetch_metadata(Some(TOPIC), Duration::from_secs(5))?;
        let ready = metadata.topics().iter().find(|t| t.name() == TOPIC).and_then(|t| {
            let partitions = t.partitions();
            let led = t.error().is_none()
                && !partitions.is_empty()
                && partitions.iter().all(|p| p.leader() >= 0);
            led.then_some(partitions.len())
        });
        if let Some(partitions) = ready {
            eprintln!("topics: {TOPIC} is ready on {broker} with {partitions} partitions");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{TOPIC} has no leader on {broker} after 20 s").into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
