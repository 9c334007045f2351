//! A job: creates the shop's `orders` topic (3 partitions) on the broker,
//! through its observed edge, so the CreateTopics call is an event too.
//! Exits 0 once the topic exists (also when it already did), non-zero with
//! the broker's reason otherwise.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = shop_services::wiring("BROKER_HOSTPORT");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .set("client.id", "topics")
        .create()?;
    let topic = NewTopic::new("orders", 3, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics([&topic], &options).await? {
        match result {
            Ok(name) => eprintln!("topics: created {name} (3 partitions) on {broker}"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                eprintln!("topics: {name} already exists on {broker}")
            }
            Err((name, code)) => return Err(format!("creating {name}: {code}").into()),
        }
    }
    Ok(())
}
