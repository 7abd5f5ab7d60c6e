//! Publishes one message at each QoS and prints how each flow ended: QoS 0 once handed
//! to the connection, QoS 1 on its PUBACK, QoS 2 on its PUBCOMP.
//!
//! ```text
//! cargo run -p midge-client --example publish [HOST:PORT]
//! ```
//! Without an address it starts an in-process Midge broker, so it runs anywhere.

use midge_client::{Client, ClientError, ConnectOptions, Publish, QoS, TopicName};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let (addr, broker) = match std::env::args().nth(1) {
        Some(addr) => (addr, None),
        None => {
            let broker = midge_broker::Broker::start(midge_broker::Config::local_ephemeral())
                .await
                .expect("start an in-process broker");
            (broker.local_addr().to_string(), Some(broker))
        }
    };

    let options = ConnectOptions::new()
        .server(&addr)
        .client_id("example-publisher");
    let (client, _events) = Client::connect(options).await?;
    println!("connected to {addr}");

    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let done = client
            .publish("midge/example", qos, format!("hello at QoS {}", qos as u8))
            .await?;
        println!(
            "QoS {}: done, reason {}, PUBACK/PUBREC {}, PUBCOMP {}",
            qos as u8,
            done.reason_code(),
            done.ack.is_some(),
            done.complete.is_some()
        );
    }

    // Full control: retain and MQTT 5.0 properties.
    let mut publish = Publish::new(TopicName::new("midge/example/retained").unwrap(), "kept");
    publish.qos = QoS::AtLeastOnce;
    publish.retain = true;
    publish.properties.content_type = Some("text/plain".into());
    publish.properties.message_expiry_interval = Some(60);
    publish
        .properties
        .user_properties
        .push(("origin".into(), "example".into()));
    client.publish_with(publish).await?;
    println!("retained message published");

    client.disconnect().await?;
    if let Some(broker) = broker {
        broker.shutdown().await;
    }
    Ok(())
}
