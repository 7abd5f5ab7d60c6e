//! MQTT 5.0 request/response: a responder answers on the request's Response Topic,
//! echoing its Correlation Data, and a requester matches answers to questions.
//!
//! ```text
//! cargo run -p midge-client --example request_response [HOST:PORT]
//! ```
//! Without an address it starts an in-process Midge broker.

use std::collections::HashMap;

use bytes::Bytes;
use midge_client::{Client, ClientError, ConnectOptions, Publish, QoS, TopicName};

const SERVICE: &str = "service/upper";

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

    // The responder: upper-cases each request and answers where it is asked to.
    let (responder, mut requests) =
        Client::connect(ConnectOptions::new().server(&addr).client_id("responder")).await?;
    responder.subscribe(SERVICE, QoS::AtLeastOnce).await?;
    let service = tokio::spawn(async move {
        while let Some(request) = requests.recv_message().await {
            let Some(reply_to) = request.properties.response_topic.clone() else {
                continue; // not a request
            };
            let answer = String::from_utf8_lossy(&request.payload).to_uppercase();
            let mut reply = Publish::new(reply_to, answer);
            reply.qos = QoS::AtLeastOnce;
            reply.properties.correlation_data = request.properties.correlation_data.clone();
            if responder.publish_with(reply).await.is_err() {
                break;
            }
        }
    });

    // The requester: its own reply topic, one correlation id per request.
    let (requester, mut replies) =
        Client::connect(ConnectOptions::new().server(&addr).client_id("requester")).await?;
    let reply_topic = TopicName::new("reply/requester").unwrap();
    requester
        .subscribe(reply_topic.as_str(), QoS::AtLeastOnce)
        .await?;
    let mut waiting = HashMap::new();
    for (n, question) in ["hello", "midge", "mqtt"].into_iter().enumerate() {
        let correlation = Bytes::from(format!("req-{n}"));
        let mut request = Publish::new(TopicName::new(SERVICE).unwrap(), question);
        request.qos = QoS::AtLeastOnce;
        request.properties.response_topic = Some(reply_topic.clone());
        request.properties.correlation_data = Some(correlation.clone());
        requester.publish_with(request).await?;
        waiting.insert(correlation, question);
    }
    while !waiting.is_empty() {
        let Some(reply) = replies.recv_message().await else {
            break;
        };
        let Some(question) = reply
            .properties
            .correlation_data
            .as_ref()
            .and_then(|c| waiting.remove(c))
        else {
            continue;
        };
        println!("{question} -> {}", String::from_utf8_lossy(&reply.payload));
    }

    requester.disconnect().await?;
    service.abort();
    if let Some(broker) = broker {
        broker.shutdown().await;
    }
    Ok(())
}
