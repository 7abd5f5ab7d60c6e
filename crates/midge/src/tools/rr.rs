//! `midge rr`: publish a request and print the response, as `mosquitto_rr` 2.0
//! (`client/rr_client.c`): subscribe to the response topic (`-e`), publish the request
//! (`-t`, payload from `-m -f -s -n`) with the Response Topic set, print the first
//! message that comes back (`-v -N -F`), exit; `-W` gives up with "Timed out" (27).
//! MQTT 5.0 by default. Unlike mosquitto_rr, the request also carries Correlation Data
//! (unique to this run), which responders conventionally copy into the response.

use bytes::Bytes;
use midge_client::{Client, Event, Events};
use midge_codec::{Publish, SubscriptionOptions, TopicFilter, TopicName};

use super::options::Config;
use super::{connect, err_print, print_message, read_payload, reason_string};

/// Runs `midge rr`; returns the exit code.
pub(super) async fn run(config: Config) -> i32 {
    let Some(payload) = read_payload(&config) else {
        return 1;
    };
    let (client, events) = match connect(&config, false).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let work = exchange(&config, &client, events, payload);
    super::run_with_timeout(&config, &client, work).await
}

/// Subscribe to the response topic, publish the request, print the response.
async fn exchange(config: &Config, client: &Client, mut events: Events, payload: Bytes) -> i32 {
    let response_topic = config.response_topic.clone().unwrap_or_default();
    let (Ok(filter), Ok(response_name), Ok(topic)) = (
        TopicFilter::new(response_topic.as_str()),
        TopicName::new(response_topic.as_str()),
        TopicName::new(config.topics[0].as_str()),
    ) else {
        err_print(config, "Error: Invalid topic.\n");
        return 1;
    };
    let options = SubscriptionOptions::new(config.qos);
    match client
        .subscribe_with(vec![(filter, options)], config.properties.subscribe.clone())
        .await
    {
        Ok(ack) => {
            if let Some(code) = ack.reason_codes.first().filter(|c| c.is_error()) {
                err_print(config, &format!("{}\n", reason_string(*code)));
                return 1;
            }
        }
        Err(e) => {
            err_print(config, &format!("Error: {e}\n"));
            return 1;
        }
    }
    let mut request = Publish::new(topic, payload);
    request.qos = config.qos;
    request.properties = config.properties.publish.clone().into();
    if config.version == midge_codec::ProtocolVersion::V5 {
        request.properties.response_topic = Some(response_name);
        request.properties.correlation_data =
            Some(Bytes::from(format!("midge-rr-{}", std::process::id())));
    }
    if let Err(e) = client.publish_with(request).await {
        err_print(config, &format!("Error: {e}\n"));
        return 1;
    }
    while let Some(event) = events.recv().await {
        match event {
            Event::Message(message) => {
                print_message(config, &mut Vec::new(), &message);
                return 0;
            }
            Event::Disconnected(e) => {
                err_print(config, &format!("Error: {e}\n"));
                return 1;
            }
            _ => {}
        }
    }
    1
}
