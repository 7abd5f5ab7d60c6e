//! Subscribes to a topic filter and prints what arrives, with the connection's ups and
//! downs (the client reconnects on its own).
//!
//! ```text
//! cargo run -p midge-client --example subscribe [HOST:PORT [FILTER]]
//! ```
//! With an address it runs until interrupted. Without one it starts an in-process Midge
//! broker, publishes three messages to itself, prints them and exits.

use std::time::Duration;

use midge_client::{
    Client, ClientError, ConnectOptions, Event, QoS, SubscriptionOptions, TopicFilter,
};
use midge_codec::SubscribeProperties;

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let addr = args.next();
    let filter = args.next().unwrap_or_else(|| "midge/#".to_owned());
    let broker = match &addr {
        Some(_) => None,
        None => Some(
            midge_broker::Broker::start(midge_broker::Config::local_ephemeral())
                .await
                .expect("start an in-process broker"),
        ),
    };
    let addr = addr.unwrap_or_else(|| broker.as_ref().unwrap().local_addr().to_string());

    let options = ConnectOptions::new()
        .server(&addr)
        .client_id("example-subscriber")
        .keep_alive(Duration::from_secs(30))
        // Keep the session (and what is sent to it) for an hour across disconnections.
        .session_expiry_interval(3600);
    let (client, mut events) = Client::connect(options).await?;

    // MQTT 5.0 subscription options and a subscription identifier.
    let options = SubscriptionOptions {
        no_local: false,
        retain_as_published: true,
        ..SubscriptionOptions::new(QoS::ExactlyOnce)
    };
    let properties = SubscribeProperties {
        subscription_identifier: Some(1),
        ..SubscribeProperties::default()
    };
    let ack = client
        .subscribe_with(
            vec![(TopicFilter::new(filter.as_str())?, options)],
            properties,
        )
        .await?;
    println!("subscribed to {filter}: {:?}", ack.reason_codes);

    let demo = broker.is_some();
    if demo {
        for n in 1..=3 {
            client
                .publish("midge/demo", QoS::AtLeastOnce, format!("message {n}"))
                .await?;
        }
    }

    let mut received = 0;
    while let Some(event) = events.recv().await {
        match event {
            Event::Connected(ack) => {
                println!("connected (session present: {})", ack.session_present)
            }
            Event::Message(message) => {
                received += 1;
                println!(
                    "{} [QoS {}{}] {}",
                    message.topic,
                    message.qos as u8,
                    if message.retain { ", retained" } else { "" },
                    String::from_utf8_lossy(&message.payload)
                );
                if demo && received == 3 {
                    break;
                }
            }
            Event::Disconnected(error) => println!("disconnected: {error}"),
            _ => {}
        }
    }

    client.disconnect().await?;
    if let Some(broker) = broker {
        broker.shutdown().await;
    }
    Ok(())
}
